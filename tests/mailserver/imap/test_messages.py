"""Message commands: APPEND (APPENDUID, flags, date, MULTIAPPEND), FETCH items and
sections, STORE, COPY/MOVE (COPYUID), EXPUNGE/UID EXPUNGE/CLOSE/UNSELECT, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from congvu.store import imap_messages as msgs
from congvu.store import imap_retention

from .conftest import AN, deliver, message
from .transcript import Raw, ok

MULTI = (
    b"From: a@hanoi.gov.vn\r\nTo: b@hanoi.gov.vn\r\nSubject: parts\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nXin ch\xc3\xa0o\r\n"
    b"--XX\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--XX--\r\n"
)


async def _select(imap, mailbox: str = "INBOX") -> Raw:
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    assert ok(await c.cmd(f"SELECT {mailbox}"))
    return c


def status_of(lines: list[bytes]) -> bytes:
    return lines[-1].split(b" ", 1)[1]


async def test_append_with_flags_and_date_reports_appenduid(imap):
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    msg = message("Giấy mời họp")
    await c.send(b'a1 APPEND Drafts (\\Draft \\Seen) "05-Mar-2026 08:30:00 +0700" {%d+}\r\n'
                 % len(msg) + msg + b"\r\n")
    lines = await c.until("a1")
    st = await c.cmd("STATUS Drafts (UIDVALIDITY)")
    uidvalidity = st[0].split(b"UIDVALIDITY ")[1].split(b")")[0]
    assert lines[-1].startswith(b"a1 OK [APPENDUID " + uidvalidity + b" 1]")
    assert ok(await c.cmd("SELECT Drafts"))
    lines = await c.cmd("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert lines[0] == (b'* 1 FETCH (FLAGS (\\Draft \\Seen) INTERNALDATE '
                        b'"05-Mar-2026 01:30:00 +0000" RFC822.SIZE %d)\r\n' % len(msg))
    # MULTIAPPEND (RFC 3502): both or neither
    await c.send(b"a2 APPEND Drafts {3+}\r\nx\r\n {3+}\r\ny\r\n\r\n")
    lines = await c.until("a2")
    assert lines[-1].startswith(b"a2 OK [APPENDUID " + uidvalidity + b" 2:3]")
    assert status_of(await c.cmd("APPEND Nope {1+}\r\nx")).startswith(b"NO [TRYCREATE]")
    await c.close()


async def test_fetch_items_and_sections(imap, services):
    await deliver(services, AN, MULTI)
    c = await _select(imap)
    lines = await c.cmd("FETCH 1 (UID BODY BODYSTRUCTURE ENVELOPE)")
    assert lines[0].startswith(b"* 1 FETCH (UID 1 BODY ((\"text\" \"plain\"")
    assert b'BODYSTRUCTURE (("text" "plain" ("charset" "utf-8")' in lines[0]
    assert b'ENVELOPE (NIL "parts"' in lines[0]
    lines = await c.cmd("FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (Subject)]"
                        " BODY.PEEK[TEXT]<0.4>)")
    f = lines[0]
    assert b"BODY[1] {9}\r\nXin ch\xc3\xa0o BODY[2.MIME]" in f
    assert b'BODY[2.MIME] {' in f and b"application/pdf" in f
    assert b"BODY[HEADER.FIELDS (Subject)] {18}\r\nSubject: parts\r\n\r\n" in f
    assert b"BODY[TEXT]<0> {4}\r\n--XX" in f
    assert b"FLAGS" not in f  # PEEK never sets \Seen
    lines = await c.cmd("FETCH 1 (RFC822.HEADER RFC822.TEXT)")
    assert b"RFC822.HEADER {" in lines[0] and b"RFC822.TEXT {" in lines[0]
    assert b"FLAGS (\\Seen)" in lines[0]  # RFC822.TEXT sets \Seen
    lines = await c.cmd("FETCH 1 BODY[5]")  # nonexistent part: empty
    assert b"BODY[5] {0}\r\n" in lines[0]
    lines = await c.cmd("UID FETCH 1:* (FLAGS)")
    assert lines[0] == b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n"
    assert status_of(await c.cmd("FETCH 2 FLAGS")).startswith(b"BAD")  # beyond EXISTS
    assert status_of(await c.cmd("FETCH 1:x FLAGS")).startswith(b"BAD")
    lines = await c.cmd("UID FETCH 99 FLAGS")  # unknown UID: nothing, OK
    assert len(lines) == 1 and ok(lines)
    await c.close()


async def test_store_flags_and_silent(imap, services):
    for s in ("a", "b", "c"):
        await deliver(services, AN, message(s))
    c = await _select(imap)
    lines = await c.cmd("STORE 1:2 +FLAGS (\\Flagged $Forwarded)")
    assert lines[:-1] == [b"* 1 FETCH (FLAGS (\\Flagged $Forwarded))\r\n",
                          b"* 2 FETCH (FLAGS (\\Flagged $Forwarded))\r\n"]
    lines = await c.cmd("STORE 2 -FLAGS.SILENT (\\Flagged)")
    assert len(lines) == 1
    lines = await c.cmd("UID STORE 3 FLAGS (\\Answered)")
    assert lines[0] == b"* 3 FETCH (UID 3 FLAGS (\\Answered))\r\n"
    lines = await c.cmd("FETCH 1:* FLAGS")
    assert lines[:-1] == [b"* 1 FETCH (FLAGS (\\Flagged $Forwarded))\r\n",
                          b"* 2 FETCH (FLAGS ($Forwarded))\r\n",
                          b"* 3 FETCH (FLAGS (\\Answered))\r\n"]
    # EXAMINE is read-only: STORE refused, and fetching bodies does not set \Seen
    assert ok(await c.cmd("EXAMINE INBOX"))
    assert status_of(await c.cmd("STORE 1 +FLAGS (\\Seen)")).startswith(b"NO [READ-ONLY]")
    lines = await c.cmd("FETCH 1 BODY[]")
    assert b"\\Seen" not in lines[0]
    await c.close()


async def test_copy_and_move_report_copyuid(imap, services):
    for s in ("a", "b", "c"):
        await deliver(services, AN, message(s))
    c = await _select(imap)
    lines = await c.cmd("COPY 2:3 Archive")
    st = (await c.cmd("STATUS Archive (UIDVALIDITY MESSAGES)"))[0]
    v = st.split(b"UIDVALIDITY ")[1].split(b")")[0].split()[0]
    assert lines[-1].startswith(b"t3 OK [COPYUID " + v + b" 2:3 1:2]")
    lines = await c.cmd("UID MOVE 1 Archive")
    assert lines[0].startswith(b"* OK [COPYUID " + v + b" 1 3]")
    assert lines[1] == b"* 1 EXPUNGE\r\n"
    assert ok(lines)
    lines = await c.cmd("MOVE 1 Trash")
    assert b"* 1 EXPUNGE\r\n" in lines
    assert b"MESSAGES 3" in (await c.cmd("STATUS Archive (MESSAGES)"))[0]
    assert status_of(await c.cmd("COPY 1 Nope")).startswith(b"NO [TRYCREATE]")
    await c.close()


async def test_expunge_uid_expunge_close_and_retention(imap, services):
    for s in ("a", "b", "c", "d"):
        await deliver(services, AN, message(s))
    c = await _select(imap)
    assert ok(await c.cmd("STORE 1:3 +FLAGS.SILENT (\\Deleted)"))
    lines = await c.cmd("UID EXPUNGE 2:3")
    assert lines[:-1] == [b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]
    lines = await c.cmd("EXPUNGE")
    assert lines[:-1] == [b"* 1 EXPUNGE\r\n"]
    lines = await c.cmd("UID SEARCH ALL")
    assert lines[0] == b"* SEARCH 4\r\n"
    assert ok(await c.cmd("STORE 1 +FLAGS (\\Deleted)"))
    assert len(await c.cmd("CLOSE")) == 1  # silent expunge
    assert b"MESSAGES 0" in (await c.cmd("STATUS INBOX (MESSAGES)"))[0]
    assert ok(await c.cmd("SELECT INBOX"))
    assert ok(await c.cmd("UNSELECT"))
    assert status_of(await c.cmd("EXPUNGE")).startswith(b"BAD")
    await c.close()
    # The rows are kept out of sight; a restore brings them back with new UIDs.
    acc = await services.directory.get_account(AN)
    async with services.db.transaction() as conn:
        hidden = await conn.fetchval("SELECT count(*) FROM mailbox_messages WHERE "
                                     "account_id = $1 AND expunged_at IS NOT NULL", acc.id)
        assert hidden == 4
        res = await imap_retention.restore(conn, acc.id, datetime.now(UTC) - timedelta(hours=1))
    assert res.restored == 4 and res.mailboxes == ("INBOX",)
    c = await _select(imap)
    lines = await c.cmd("UID FETCH 1:* (FLAGS)")
    assert [x.split(b"UID ")[1].split(b" ")[0] for x in lines[:-1]] == [b"5", b"6", b"7", b"8"]
    assert all(b"\\Deleted" not in x for x in lines)
    await c.close()
    # Purge after the retention period: rows and unreferenced blobs go.
    async with services.db.transaction() as conn:
        await conn.execute("UPDATE mailbox_messages SET expunged_at = now() - interval '40 days'"
                           " WHERE account_id = $1", acc.id)
    assert await imap_retention.purge(services.db, 30) == 4
    async with services.db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM message_blobs") == 0


async def test_fetch_flags_and_envelope_streams_in_keyset_batches(imap, services):
    for i in range(5):
        await deliver(services, AN, message(f"Batch {i}"))
    c = await _select(imap)
    assert ok(await c.cmd("STORE 2,4 +FLAGS (\\Flagged $Label1)"))
    account = await services.directory.find_account(AN)
    async with services.db.connection() as conn, conn.transaction():
        mb = await conn.fetchval("SELECT id FROM mailboxes WHERE account_id = $1"
                                 " AND name = 'INBOX'", account.id)
        got = [b async for b in msgs.fetch_column_arrays(conn, account.id, mb, [(1, 2**63 - 1)],
                                                         None, "flags", batch=2)]
        assert [u for u, _ in got] == [[1, 2], [3, 4], [5]]
        assert got[0][1] == ["", "\\Flagged $Label1"]
        got = [b async for b in msgs.fetch_column_arrays(conn, account.id, mb, [(1, 1), (3, 5)],
                                                         None, "envelope", batch=2)]
        assert [u for u, _ in got] == [[1, 3], [4, 5]]
        assert got[1][1][1].startswith(b"(") and b"Batch_4" in got[1][1][1]
    lines = await c.cmd("FETCH 2:3 (ENVELOPE)")
    assert lines[0].startswith(b"* 2 FETCH (ENVELOPE (") and lines[1].startswith(b"* 3 FETCH")
    lines = await c.cmd("UID FETCH 2,4:5 (FLAGS)")
    assert lines[:3] == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged $Label1))\r\n",
                         b"* 4 FETCH (UID 4 FLAGS (\\Flagged $Label1))\r\n",
                         b"* 5 FETCH (UID 5 FLAGS ())\r\n"]
    await c.close()


async def test_reselect_from_the_uid_cache_sees_changes(imap, services):
    # Re-SELECT reads the mailbox row and first unseen in one statement and
    # uses this node's cached UIDs only while HIGHESTMODSEQ is unchanged.
    for i in range(3):
        await deliver(services, AN, message(f"Cache {i}"))
    c = await _select(imap)
    lines = await c.cmd("SELECT INBOX")
    assert b"* 3 EXISTS\r\n" in lines and b"* OK [UNSEEN 1] First unseen\r\n" in lines
    assert ok(await c.cmd("STORE 1 +FLAGS.SILENT (\\Seen)"))
    lines = await c.cmd("SELECT INBOX")
    assert b"* 3 EXISTS\r\n" in lines and b"* OK [UNSEEN 2] First unseen\r\n" in lines
    await deliver(services, AN, message("Cache 3"))
    lines = await c.cmd("SELECT INBOX")
    assert b"* 4 EXISTS\r\n" in lines
    assert ok(await c.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)"))
    assert ok(await c.cmd("EXPUNGE"))
    lines = await c.cmd("SELECT INBOX")
    assert b"* 3 EXISTS\r\n" in lines and b"* OK [UNSEEN 2] First unseen\r\n" in lines
    assert (await c.cmd("UID FETCH 1:* (FLAGS)"))[:3] == [
        b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n", b"* 2 FETCH (UID 3 FLAGS ())\r\n",
        b"* 3 FETCH (UID 4 FLAGS ())\r\n"]
    # The cache remembers mailboxes by name only as a hint: a folder renamed,
    # or deleted and made again under the same name, is read afresh.
    await deliver(services, AN, message("In Archive"), mailbox="Archive")
    assert b"* 1 EXISTS\r\n" in await c.cmd("SELECT Archive")
    assert ok(await c.cmd("RENAME Archive Old"))
    assert ok(await c.cmd("CREATE Archive"))
    lines = await c.cmd("SELECT Archive")
    assert b"* 0 EXISTS\r\n" in lines and not any(b"UNSEEN" in x for x in lines)
    lines = await c.cmd("SELECT Old")
    assert b"* 1 EXISTS\r\n" in lines and b"* OK [UNSEEN 1] First unseen\r\n" in lines
    assert status_of(await c.cmd("SELECT Nope")).startswith(b"NO [NONEXISTENT]")
    await c.close()
