"""Consistency across sessions and nodes: pending expunges (RFC 3501 §7.4.1),
EXISTS/FETCH updates, IDLE through LISTEN/NOTIFY on two nodes, CONDSTORE and
QRESYNC (RFC 7162), UIDs allocated in the database under concurrency."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from congvu.mailserver.imap.service import start_imap
from congvu.services import Services
from congvu.store.db import Database

from .conftest import AN, deliver, message
from .transcript import Raw, ok


@asynccontextmanager
async def second_node(services: Services) -> AsyncIterator[tuple[Services, Any]]:
    """Another server node on the same database, with its own IMAP listener."""
    db2 = await Database.connect(services.db.params, min_size=1, max_size=4)
    node2 = Services.build(services.settings, db2, tls=services.tls)
    srv2 = await start_imap(node2, port=0, tls_port=None, retention=False)
    try:
        yield node2, srv2
    finally:
        await srv2.stop()
        await db2.close()


async def _select(port: int, mailbox: str = "INBOX", pre: str | None = None) -> Raw:
    c = await Raw.connect(port)
    assert ok(await c.login(AN))
    if pre:
        assert ok(await c.cmd(pre))
    assert ok(await c.cmd(f"SELECT {mailbox}"))
    return c


async def _views_around_expunges(services: Services, port: int, subject: str, *,
                                 seen_odd: bool = False,
                                 uid7_flags: str = "\\Deleted") -> tuple[Raw, Raw]:
    """Messages "<subject> 1".."<subject> 8" (odd ones \\Seen if ``seen_odd``);
    session b expunges UIDs 2 and 5 (kept for retention) before session a
    selects (a's view: UIDs 1 3 4 6 7 8); then b expunges UID 7 (flags
    ``uid7_flags`` set first) and "<subject> 9" arrives, neither reported to a.
    Returns (a, b)."""
    for i in range(1, 9):
        await deliver(services, AN, message(f"{subject} {i}"),
                      flags=("\\Seen",) if seen_odd and i % 2 else ())
    b = await _select(port)
    assert ok(await b.cmd("STORE 2,5 +FLAGS.SILENT (\\Deleted)"))
    assert ok(await b.cmd("EXPUNGE"))  # UIDs 2 and 5: retained, out of sight
    a = await _select(port)  # view: UIDs 1 3 4 6 7 8
    assert ok(await b.cmd(f"UID STORE 7 +FLAGS.SILENT ({uid7_flags})"))
    assert ok(await b.cmd("UID EXPUNGE 7"))
    await deliver(services, AN, message(f"{subject} 9"))
    return a, b


async def test_expunge_from_another_session_waits_for_an_allowed_moment(imap, services):
    for s in "abc":
        await deliver(services, AN, message(s))
    a = await _select(imap.port)
    b = await _select(imap.port)
    assert ok(await b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    assert ok(await b.cmd("EXPUNGE"))
    # FETCH/STORE/SEARCH must not report the expunge; the numbers stay valid.
    lines = await a.cmd("FETCH 1:* (UID)")
    assert lines[:-1] == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 2)\r\n",
                          b"* 3 FETCH (UID 3)\r\n"]
    lines = await a.cmd("SEARCH ALL")
    assert lines[0] == b"* SEARCH 1 2 3\r\n" and len(lines) == 2
    lines = await a.cmd("STORE 3 +FLAGS (\\Flagged)")
    assert lines[0] == b"* 3 FETCH (FLAGS (\\Flagged))\r\n" and len(lines) == 2
    lines = await a.cmd("NOOP")
    assert lines[:-1] == [b"* 1 EXPUNGE\r\n"]
    lines = await a.cmd("FETCH 1:* (UID)")
    assert lines[:-1] == [b"* 1 FETCH (UID 2)\r\n", b"* 2 FETCH (UID 3)\r\n"]
    # A UID command may report it at once.
    assert ok(await b.cmd("NOOP"))
    assert ok(await b.cmd("UID STORE 2 +FLAGS.SILENT (\\Deleted)"))
    assert ok(await b.cmd("EXPUNGE"))
    lines = await a.cmd("UID FETCH 3 (FLAGS)")
    assert b"* 1 EXPUNGE\r\n" in lines
    await a.close()
    await b.close()


async def test_flags_resync_keeps_numbers_when_view_and_store_differ(imap, services):
    """UID FETCH 1:* (FLAGS) (Thunderbird's resync) when the store holds rows the
    session does not show yet (new mail) or any more (reported expunges)."""
    for s in "abcd":
        await deliver(services, AN, message(s), flags=("\\Seen",) if s == "b" else ())
    a = await _select(imap.port)
    b = await _select(imap.port)
    assert ok(await b.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)"))
    assert ok(await b.cmd("EXPUNGE"))
    await deliver(services, AN, message("e"))
    lines = await a.cmd("FETCH 1:* (FLAGS)")  # the expunge may not be reported yet
    assert lines[:-1] == [b"* 1 FETCH (FLAGS ())\r\n", b"* 2 FETCH (FLAGS (\\Seen \\Deleted))\r\n",
                          b"* 3 FETCH (FLAGS ())\r\n", b"* 4 FETCH (FLAGS ())\r\n",
                          b"* 5 EXISTS\r\n"]
    lines = await a.cmd("UID FETCH 1:* (FLAGS)")
    assert lines[:-1] == [b"* 1 FETCH (UID 1 FLAGS ())\r\n",
                          b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Deleted))\r\n",
                          b"* 3 FETCH (UID 3 FLAGS ())\r\n", b"* 4 FETCH (UID 4 FLAGS ())\r\n",
                          b"* 5 FETCH (UID 5 FLAGS ())\r\n", b"* 2 EXPUNGE\r\n"]
    lines = await a.cmd("UID FETCH 1:* (FLAGS)")  # now the view is 1, 3, 4, 5
    assert lines[:-1] == [b"* 1 FETCH (UID 1 FLAGS ())\r\n", b"* 2 FETCH (UID 3 FLAGS ())\r\n",
                          b"* 3 FETCH (UID 4 FLAGS ())\r\n", b"* 4 FETCH (UID 5 FLAGS ())\r\n"]
    await a.close()
    await b.close()


async def test_select_after_changes_on_this_and_another_node(imap, services):
    """SELECT uses the node's UID cache only as far as the database confirms it."""
    for s in "abcdef":
        await deliver(services, AN, message(s))

    async def view(port: int) -> list[bytes]:
        c = await _select(port)
        lines = await c.cmd("UID SEARCH ALL")
        await c.close()
        return lines[0].split()[2:]

    assert await view(imap.port) == [b"1", b"2", b"3", b"4", b"5", b"6"]  # fills the cache
    async with second_node(services) as (node2, srv2):
        other = await _select(srv2.port)
        assert ok(await other.cmd("STORE 2,4 +FLAGS.SILENT (\\Deleted)"))
        assert ok(await other.cmd("EXPUNGE"))
        assert ok(await other.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)"))
        await other.close()
        await deliver(node2, AN, message("g"))
        assert await view(imap.port) == [b"1", b"3", b"5", b"6", b"7"]  # caught up
        assert await view(imap.port) == [b"1", b"3", b"5", b"6", b"7"]  # unchanged
        assert await view(srv2.port) == [b"1", b"3", b"5", b"6", b"7"]
        c = await _select(imap.port)
        lines = await c.cmd("FETCH 1:* (UID)")
        assert [x.split(b"UID ")[1] for x in lines[:-1]] == [b"1)\r\n", b"3)\r\n", b"5)\r\n",
                                                            b"6)\r\n", b"7)\r\n"]
        await c.close()


async def test_new_mail_and_flag_changes_reach_other_sessions(imap, services):
    await deliver(services, AN, message("a"))
    a = await _select(imap.port)
    b = await _select(imap.port)
    await deliver(services, AN, message("b"))
    assert ok(await b.cmd("STORE 1 +FLAGS (\\Answered)"))
    lines = await a.cmd("NOOP")
    assert b"* 1 FETCH (FLAGS (\\Answered))\r\n" in lines
    assert b"* 2 EXISTS\r\n" in lines
    lines = await a.cmd("FETCH 2 (UID)")
    assert lines[0] == b"* 2 FETCH (UID 2)\r\n"
    await a.close()
    await b.close()


async def test_idle_sees_changes_made_through_another_node(imap, services: Services):
    await deliver(services, AN, message("a"))
    async with second_node(services) as (_node2, srv2):
        idler = await _select(imap.port)
        await idler.send(b"i1 IDLE\r\n")
        assert (await idler.line()).startswith(b"+ ")
        other = await _select(srv2.port)
        msg = message("qua node 2")
        assert ok(await other.cmd(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg))
        assert await idler.line() == b"* 2 EXISTS\r\n"
        assert ok(await other.cmd("NOOP"))
        assert ok(await other.cmd("STORE 2 +FLAGS (\\Flagged)"))
        assert await idler.line() == b"* 2 FETCH (FLAGS (\\Flagged))\r\n"
        assert ok(await other.cmd("STORE 1 +FLAGS (\\Deleted)"))
        assert await idler.line() == b"* 1 FETCH (FLAGS (\\Deleted))\r\n"
        assert ok(await other.cmd("EXPUNGE"))
        assert await idler.line() == b"* 1 EXPUNGE\r\n"
        await idler.send(b"DONE\r\n")
        assert (await idler.until("i1"))[-1].startswith(b"i1 OK")
        await idler.close()
        await other.close()


async def test_uids_strictly_increase_under_concurrent_appends(imap, services):
    db2 = await Database.connect(services.db.params, min_size=4, max_size=8)
    node2 = Services.build(services.settings, db2)
    try:
        tasks = [deliver(services if i % 2 else node2, AN, message(f"m{i}")) for i in range(30)]
        uids = await asyncio.gather(*tasks)
    finally:
        await db2.close()
    assert sorted(uids) == list(range(1, 31))
    c = await _select(imap.port)
    st = await c.cmd("STATUS INBOX (UIDNEXT MESSAGES)")
    assert b"UIDNEXT 31" in st[0] and b"MESSAGES 30" in st[0]
    await c.close()


async def test_smtp_delivery_and_append_on_two_nodes_get_increasing_uids(imap, services):
    """SMTP delivery (store.delivery) on one node and IMAP APPEND on another, at
    once, into one mailbox: UIDs are unique, strictly increasing in commit
    order, without gaps, and an IDLE session on the first node sees them all."""
    from datetime import UTC, datetime

    from congvu.mailserver.mime import parse_message
    from congvu.store import delivery

    acc = await services.directory.get_account(AN)
    idler = await _select(imap.port)
    await idler.send(b"i1 IDLE\r\n")
    assert (await idler.line()).startswith(b"+ ")
    db2 = await Database.connect(services.db.params, min_size=4, max_size=8)
    node2 = Services.build(services.settings, db2)

    async def smtp_deliver(i: int) -> int:
        raw = message(f"smtp {i}")
        async with node2.db.connection() as conn:
            done = await delivery.deliver(conn, parse_message(raw), raw, [acc.id],
                                          internal_date=datetime.now(UTC))
        return done[0].uid

    try:
        tasks = [smtp_deliver(i) if i % 2 else deliver(services, AN, message(f"imap {i}"))
                 for i in range(40)]
        uids = await asyncio.gather(*tasks)
    finally:
        await db2.close()
    assert sorted(uids) == list(range(1, 41))
    seen = 0
    while seen < 40:  # EXISTS may be coalesced; the last one counts all
        line = await idler.line()
        assert line.endswith(b" EXISTS\r\n"), line
        seen = int(line.split()[1])
    await idler.send(b"DONE\r\n")
    assert (await idler.until("i1"))[-1].startswith(b"i1 OK")
    lines = await idler.cmd("UID FETCH 1:* (UID)")
    assert [int(x.split(b"UID ")[1].split(b")")[0]) for x in lines[:-1]] == list(range(1, 41))
    await idler.close()


async def test_condstore_and_qresync(imap, services):
    for s in "abcd":
        await deliver(services, AN, message(s))
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    lines = await c.cmd("ENABLE QRESYNC")
    assert lines[0] == b"* ENABLED QRESYNC\r\n"
    lines = await c.cmd("SELECT INBOX (CONDSTORE)")
    hms = int(next(x for x in lines if b"HIGHESTMODSEQ" in x).split(b"HIGHESTMODSEQ ")[1]
              .split(b"]")[0])
    uidvalidity = next(x for x in lines if b"UIDVALIDITY" in x).split(b"UIDVALIDITY ")[1] \
        .split(b"]")[0].decode()
    lines = await c.cmd(f"STORE 1 (UNCHANGEDSINCE {hms}) +FLAGS (\\Seen)")
    assert lines[0].startswith(b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (")
    lines = await c.cmd(f"STORE 1,2 (UNCHANGEDSINCE {hms}) +FLAGS (\\Flagged)")
    assert lines[-1].split(b" ", 1)[1].startswith(b"OK [MODIFIED 1]")
    assert ok(await c.cmd("STORE 3 +FLAGS.SILENT (\\Deleted)"))
    assert ok(await c.cmd("EXPUNGE"))
    lines = await c.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert lines[0] == b"* VANISHED (EARLIER) 3\r\n"
    assert any(x.startswith(b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ") for x in lines)
    assert ok(await c.cmd("UNSELECT"))
    lines = await c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms} 1:4))")
    assert b"* VANISHED (EARLIER) 3\r\n" in lines
    assert any(x.startswith(b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (") for x in lines)
    # Another session's expunge shows as VANISHED once QRESYNC is on.
    other = await _select(imap.port)
    assert ok(await other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    assert ok(await other.cmd("EXPUNGE"))
    lines = await c.cmd("NOOP")
    assert b"* VANISHED 1\r\n" in lines
    await c.close()
    await other.close()


async def test_flags_resync_in_batches_around_retained_and_unreported_expunges(
        imap, services, monkeypatch):
    """FETCH (FLAGS) pages through the store in batches; rows expunged before the
    SELECT (kept for retention) are not the session's, one expunged since is
    until reported, and the numbers stay right across batch boundaries."""
    from congvu.mailserver.imap import commands_fetch
    from congvu.store import imap_messages as msgs

    monkeypatch.setattr(commands_fetch, "_FLAG_FIRST_BATCH", 2)
    monkeypatch.setattr(commands_fetch, "_FLAG_BATCH", 3)
    a, b = await _views_around_expunges(services, imap.port, "m", seen_odd=True,
                                        uid7_flags="\\Deleted $Done")
    lines = await a.cmd("FETCH 1:* (FLAGS)")
    assert lines[:-1] == [b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"* 2 FETCH (FLAGS (\\Seen))\r\n",
                          b"* 3 FETCH (FLAGS ())\r\n", b"* 4 FETCH (FLAGS ())\r\n",
                          b"* 5 FETCH (FLAGS (\\Seen \\Deleted $Done))\r\n",
                          b"* 6 FETCH (FLAGS ())\r\n", b"* 7 EXISTS\r\n"]
    # UID 7 is now known expunged but not reported: still number 5 during FETCH.
    lines = await a.cmd("FETCH 4:* (FLAGS)")
    assert lines[:-1] == [b"* 4 FETCH (FLAGS ())\r\n",
                          b"* 5 FETCH (FLAGS (\\Seen \\Deleted $Done))\r\n",
                          b"* 6 FETCH (FLAGS ())\r\n", b"* 7 FETCH (FLAGS ())\r\n"]
    lines = await a.cmd("UID FETCH 1:* (FLAGS)")
    assert lines[:-1] == [b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n",
                          b"* 2 FETCH (UID 3 FLAGS (\\Seen))\r\n",
                          b"* 3 FETCH (UID 4 FLAGS ())\r\n",
                          b"* 4 FETCH (UID 6 FLAGS ())\r\n",
                          b"* 5 FETCH (UID 7 FLAGS (\\Seen \\Deleted $Done))\r\n",
                          b"* 6 FETCH (UID 8 FLAGS ())\r\n",
                          b"* 7 FETCH (UID 9 FLAGS ())\r\n", b"* 5 EXPUNGE\r\n"]
    lines = await a.cmd("UID FETCH 3:8 (FLAGS)")
    assert lines[:-1] == [b"* 2 FETCH (UID 3 FLAGS (\\Seen))\r\n",
                          b"* 3 FETCH (UID 4 FLAGS ())\r\n",
                          b"* 4 FETCH (UID 6 FLAGS ())\r\n",
                          b"* 5 FETCH (UID 8 FLAGS ())\r\n"]
    # The store's batches: packed UIDs and flag texts; retained rows only when asked.
    account = await services.directory.find_account(AN)
    async with services.db.connection() as conn:
        mb, ms = await conn.fetchrow("SELECT id, highestmodseq FROM mailboxes"
                                     " WHERE account_id = $1 AND name = 'INBOX'", account.id)
        everything = msgs.FlagBatches(account.id, mb, [(1, 100)], None)
        uids, flags = await everything.fetch(conn, 0, 100)
        assert list(uids) == list(range(1, 10))
        assert flags[1] == b"\\Deleted" and flags[6] == b"\\Seen \\Deleted $Done"
        view = msgs.FlagBatches(account.id, mb, [(1, 4), (6, 9)], None, seen_modseq=ms,
                                keep=[7])
        assert [list(u) for u, _ in [await view.fetch(conn, 0, 3),
                                     await view.fetch(conn, 4, 3),
                                     await view.fetch(conn, 9, 3)]] == [[1, 3, 4], [6, 7, 8], []]
        uids, flags = await view.fetch(conn, 4, 10)
        assert (list(uids), flags) == ([6, 7, 8, 9], [b"", b"\\Seen \\Deleted $Done", b"", b""])
    await a.close()
    await b.close()


async def test_flags_from_the_node_copy_follow_changes_on_any_node(imap, services,
                                                                  monkeypatch):
    """UID FETCH 1:* (FLAGS) answered from the node's copy of the flags: it is
    brought up to date from the database on each FETCH (changes made through
    another node included) and used only when the session's view is the
    mailbox as it is now."""
    for s in "abcde":
        await deliver(services, AN, message(s), flags=("\\Seen",) if s in "bd" else ())
    account = await services.directory.find_account(AN)
    a = await _select(imap.port)
    async with services.db.connection() as conn:
        inbox = await conn.fetchval("SELECT id FROM mailboxes WHERE account_id = $1"
                                    " AND name = 'INBOX'", account.id)

    def cached() -> list[tuple[int, bytes]]:
        st = imap.hub.flag_cache.get(account.id, inbox)
        assert st is not None
        return [(u, st.sets[n]) for u, n in zip(st.uids, st.set_of)]

    from congvu.mailserver.imap import commands_fetch

    lines = await a.cmd("UID FETCH 1:* (FLAGS)")  # a few messages: from the database
    assert len(lines) == 6 and imap.hub.flag_cache.get(account.id, inbox) is None
    monkeypatch.setattr(commands_fetch, "_FLAG_CACHE_FROM", 4)
    assert (await a.cmd("FETCH 2:3 (FLAGS)"))[:-1] == [b"* 2 FETCH (FLAGS (\\Seen))\r\n",
                                                      b"* 3 FETCH (FLAGS ())\r\n"]
    assert imap.hub.flag_cache.get(account.id, inbox) is None
    lines = await a.cmd("UID FETCH 1:* (FLAGS)")  # a resync: the node copies them after it
    for _ in range(100):
        if imap.hub.flag_cache.get(account.id, inbox) is not None:
            break
        await asyncio.sleep(0.05)
    assert lines[:-1] == [b"* 1 FETCH (UID 1 FLAGS ())\r\n",
                          b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n",
                          b"* 3 FETCH (UID 3 FLAGS ())\r\n",
                          b"* 4 FETCH (UID 4 FLAGS (\\Seen))\r\n",
                          b"* 5 FETCH (UID 5 FLAGS ())\r\n"]
    assert cached() == [(1, b""), (2, b"\\Seen"), (3, b""), (4, b"\\Seen"), (5, b"")]
    async with second_node(services) as (node2, srv2):
        other = await _select(srv2.port)
        assert ok(await other.cmd("UID STORE 3 +FLAGS.SILENT ($Done \\Flagged)"))
        lines = await a.cmd("UID FETCH 2:4 (FLAGS)")
        assert lines[:3] == [b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n",
                             b"* 3 FETCH (UID 3 FLAGS ($Done \\Flagged))\r\n",
                             b"* 4 FETCH (UID 4 FLAGS (\\Seen))\r\n"]
        assert cached()[2] == (3, b"$Done \\Flagged")
        # Expunged on the other node, not yet told: the view is not the mailbox
        # now, so the database answers (UID 2 keeps its number).
        assert ok(await other.cmd("UID STORE 2 +FLAGS.SILENT (\\Deleted)"))
        assert ok(await other.cmd("EXPUNGE"))
        await deliver(node2, AN, message("f"))
        lines = await a.cmd("FETCH 1:* (FLAGS)")
        assert lines[:5] == [b"* 1 FETCH (FLAGS ())\r\n",
                             b"* 2 FETCH (FLAGS (\\Seen \\Deleted))\r\n",
                             b"* 3 FETCH (FLAGS ($Done \\Flagged))\r\n",
                             b"* 4 FETCH (FLAGS (\\Seen))\r\n", b"* 5 FETCH (FLAGS ())\r\n"]
        assert b"* 6 EXISTS\r\n" in lines
        assert ok(await a.cmd("NOOP"))  # * 2 EXPUNGE: the view is now 1 3 4 5 6
        lines = await a.cmd("UID FETCH 1:* (FLAGS)")
        assert lines[:-1] == [b"* 1 FETCH (UID 1 FLAGS ())\r\n",
                              b"* 2 FETCH (UID 3 FLAGS ($Done \\Flagged))\r\n",
                              b"* 3 FETCH (UID 4 FLAGS (\\Seen))\r\n",
                              b"* 4 FETCH (UID 5 FLAGS ())\r\n",
                              b"* 5 FETCH (UID 6 FLAGS ())\r\n"]
        assert [u for u, _ in cached()] == [1, 3, 4, 5, 6]
        lines = await a.cmd("FETCH 2,4:5 (FLAGS)")
        assert lines[:-1] == [b"* 2 FETCH (FLAGS ($Done \\Flagged))\r\n",
                              b"* 4 FETCH (FLAGS ())\r\n", b"* 5 FETCH (FLAGS ())\r\n"]
        lines = await a.cmd("UID FETCH 4:5,1,5:* (FLAGS)")
        assert lines[:-1] == [b"* 1 FETCH (UID 1 FLAGS ())\r\n",
                              b"* 3 FETCH (UID 4 FLAGS (\\Seen))\r\n",
                              b"* 4 FETCH (UID 5 FLAGS ())\r\n",
                              b"* 5 FETCH (UID 6 FLAGS ())\r\n"]
        await other.close()
    await a.close()


async def test_envelope_fetch_in_batches_around_retained_and_unreported_expunges(
        imap, services, monkeypatch):
    """FETCH (ENVELOPE) asks for the next batch while sending this one; rows kept
    for retention are skipped, an unreported expunge keeps its number."""
    from congvu.mailserver.imap import commands_fetch

    monkeypatch.setattr(commands_fetch, "_COLUMN_FIRST_BATCH", 2)
    monkeypatch.setattr(commands_fetch, "_COLUMN_BATCH", 3)
    a, b = await _views_around_expunges(services, imap.port, "Env")

    def subjects(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
        # The ENVELOPE keeps the subject as sent: =?utf-8?q?Env_N?=
        found = [re.match(rb"\* (\d+) FETCH .*?Env_(\d)", x, re.S) for x in lines]
        return [(m.group(1), m.group(2)) for m in found if m]

    lines = await a.cmd("FETCH 1:* (ENVELOPE)")
    assert subjects(lines) == [(b"1", b"1"), (b"2", b"3"), (b"3", b"4"), (b"4", b"6"),
                               (b"5", b"7"), (b"6", b"8")]
    assert b"* 7 EXISTS\r\n" in lines
    lines = await a.cmd("UID FETCH 3:* (ENVELOPE)")
    assert subjects(lines) == [(b"2", b"3"), (b"3", b"4"), (b"4", b"6"), (b"5", b"7"),
                               (b"6", b"8"), (b"7", b"9")]
    assert lines[-2] == b"* 5 EXPUNGE\r\n"
    lines = await a.cmd("FETCH 2:* (UID ENVELOPE)")
    assert [x.split(b" ENVELOPE")[0] for x in lines[:-1]] == [
        b"* 2 FETCH (UID 3", b"* 3 FETCH (UID 4", b"* 4 FETCH (UID 6", b"* 5 FETCH (UID 8",
        b"* 6 FETCH (UID 9"]
    await a.close()
    await b.close()
