"""``congvu admin mail restore`` through the admin parser and dispatcher."""

from __future__ import annotations

import argparse

from congvu.admin.commands import _dispatch, add_admin_parser

from .conftest import AN, deliver, message
from .transcript import Raw, ok


async def test_admin_mail_restore_brings_expunged_mail_back(imap, services, settings, capsys):
    for s in ("a", "b"):
        await deliver(services, AN, message(s))
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    assert ok(await c.cmd("SELECT INBOX"))
    assert ok(await c.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)"))
    assert ok(await c.cmd("EXPUNGE"))
    parser = argparse.ArgumentParser()
    add_admin_parser(parser)
    args = parser.parse_args(["mail", "restore", AN, "--since", "2000-01-01"])
    assert await _dispatch(args, services.directory, settings) == 0
    assert f"restored 2 messages of {AN} (INBOX)" in capsys.readouterr().out
    lines = await c.cmd("NOOP")
    assert b"* 2 EXISTS\r\n" in lines
    lines = await c.cmd("FETCH 1:* (UID FLAGS)")
    assert lines[:-1] == [b"* 1 FETCH (UID 3 FLAGS ())\r\n", b"* 2 FETCH (UID 4 FLAGS ())\r\n"]
    entries = await services.directory.audit(action="mail.restore")
    assert entries and entries[0].target == AN
    await c.close()


async def test_deleted_mailbox_keeps_its_mail_for_restore(imap, services, settings, capsys):
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    assert ok(await c.cmd("CREATE Old"))
    for s in ("a", "b"):
        await deliver(services, AN, message(s), mailbox="Old")
    before = (await services.directory.get_account(AN)).used_bytes
    assert before > 0
    assert ok(await c.cmd("SELECT INBOX"))
    assert ok(await c.cmd("DELETE Old"))
    # Out of sight (INBOX shows nothing new) and out of the quota, like EXPUNGE...
    lines = await c.cmd("NOOP")
    assert not any(x.endswith(b" EXISTS\r\n") for x in lines)
    assert b"MESSAGES 0" in (await c.cmd("STATUS INBOX (MESSAGES)"))[0]
    assert (await services.directory.get_account(AN)).used_bytes == 0
    # ...but kept for the retention period: the restore brings them back to INBOX.
    parser = argparse.ArgumentParser()
    add_admin_parser(parser)
    args = parser.parse_args(["mail", "restore", AN, "--since", "2000-01-01"])
    assert await _dispatch(args, services.directory, settings) == 0
    assert f"restored 2 messages of {AN} (INBOX)" in capsys.readouterr().out
    assert b"* 2 EXISTS\r\n" in await c.cmd("NOOP")
    assert (await services.directory.get_account(AN)).used_bytes == before
    await c.close()


async def test_retention_purge_runs_on_one_node_at_a_time(services, org):
    import asyncio

    from congvu.store import imap_messages, imap_retention, imapstore
    from congvu.store.db import Database

    for s in ("a", "b", "c"):
        await deliver(services, AN, message(s))
    acc = await services.directory.get_account(AN)
    async with services.db.transaction() as conn:
        inbox = await imapstore.get_mailbox(conn, acc.id, "INBOX")
        await imap_messages.expunge(conn, acc.id, inbox.id, None, deleted_only=False)
        await conn.execute("UPDATE mailbox_messages SET expunged_at = now() - interval '40 days'"
                           " WHERE account_id = $1", acc.id)

    async def rows() -> int:
        async with services.db.connection() as conn:
            return await conn.fetchval("SELECT count(*) FROM mailbox_messages")

    node2 = await Database.connect(services.db.params, min_size=1, max_size=4)
    try:
        async with node2.connection() as other:  # another node is purging
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)",
                                        imap_retention.PURGE_LOCK)
            assert await imap_retention.purge(services.db, 30) == 0
            assert await rows() == 3
            await other.execute("SELECT pg_advisory_unlock($1)", imap_retention.PURGE_LOCK)
        # Both nodes at once: every row is purged exactly once.
        done = await asyncio.gather(imap_retention.purge(services.db, 30),
                                    imap_retention.purge(node2, 30))
        assert sum(done) == 3 and await rows() == 0
        async with services.db.connection() as conn:  # blobs and their header copies went
            assert await conn.fetchval("SELECT count(*) FROM message_blobs") == 0
            assert await conn.fetchval("SELECT count(*) FROM mailbox_message_texts") == 0
    finally:
        await node2.close()
