"""SEARCH (every key kind, diacritic-insensitive substring, CHARSET UTF-8),
ESEARCH (RFC 4731) and SORT (RFC 5256) against the store."""

from __future__ import annotations

from datetime import UTC, datetime

from .conftest import AN, deliver, message
from .transcript import Raw, ok


async def _mailbox(imap, services) -> Raw:
    await deliver(services, AN, message("Báo cáo tài chính quý I", "Kính gửi Giám đốc Sở.\r\n",
                                        sender="binh.tq@hanoi.gov.vn",
                                        date="Mon, 02 Mar 2026 09:00:00 +0700"),
                  when=datetime(2026, 3, 2, 2, 0, tzinfo=UTC), flags=("\\Seen",))
    await deliver(services, AN, message("Giấy mời họp giao ban", "Đúng 8 giờ tại phòng họp số 2."
                                        + "x" * 3000 + "\r\n", sender="hoa.nt@hanoi.gov.vn",
                                        date="Tue, 10 Mar 2026 10:00:00 +0700",
                                        extra="X-Priority: 1\r\nCc: an.nv@hanoi.gov.vn\r\n"),
                  when=datetime(2026, 3, 10, 3, 0, tzinfo=UTC), flags=("\\Flagged",))
    await deliver(services, AN, message("Re: Báo cáo", "ok\r\n", sender="zed@example.com",
                                        date="Wed, 01 Apr 2026 10:00:00 +0700"),
                  when=datetime(2026, 4, 1, 3, 0, tzinfo=UTC))
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    assert ok(await c.cmd("SELECT INBOX"))
    return c


async def search(c: Raw, criteria: str) -> bytes:
    lines = await c.cmd("SEARCH " + criteria)
    assert ok(lines), lines
    return lines[0].rstrip(b"\r\n")


async def test_text_keys_are_diacritic_and_case_insensitive(imap, services):
    c = await _mailbox(imap, services)
    assert await search(c, 'SUBJECT "bao cao"') == b"* SEARCH 1 3"
    assert await search(c, 'SUBJECT "BÁO CÁO TÀI"') == b"* SEARCH 1"
    assert await search(c, 'BODY "phong hop"') == b"* SEARCH 2"
    assert await search(c, 'TEXT "giam doc"') == b"* SEARCH 1"
    assert await search(c, 'FROM "hoa.nt"') == b"* SEARCH 2"
    assert await search(c, 'FROM "giam doc"') == b"* SEARCH"  # not in the From line
    assert await search(c, 'TO "an.nv"') == b"* SEARCH 1 2 3"
    assert await search(c, 'CC "an.nv"') == b"* SEARCH 2"
    assert await search(c, 'HEADER X-Priority ""') == b"* SEARCH 2"
    assert await search(c, 'HEADER X-Priority "1"') == b"* SEARCH 2"
    text = "tài chính".encode()
    lines = await c.cmd(b'SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n' % len(text) + text)
    assert lines[0] == b"* SEARCH 1\r\n"
    lines = await c.cmd('SEARCH CHARSET KOI8-R SUBJECT "x"')
    assert lines[-1].split(b" ", 1)[1].startswith(b"NO [BADCHARSET")
    await c.close()


async def test_flag_date_size_set_and_boolean_keys(imap, services):
    c = await _mailbox(imap, services)
    assert await search(c, "SEEN") == b"* SEARCH 1"
    assert await search(c, "UNSEEN") == b"* SEARCH 2 3"
    assert await search(c, "FLAGGED NOT SEEN") == b"* SEARCH 2"
    assert await search(c, "OR SEEN FLAGGED") == b"* SEARCH 1 2"
    assert await search(c, "NEW") == b"* SEARCH"
    assert await search(c, "OLD") == b"* SEARCH 1 2 3"
    assert await search(c, "RECENT") == b"* SEARCH"
    assert await search(c, "BEFORE 10-Mar-2026") == b"* SEARCH 1"
    assert await search(c, "ON 10-Mar-2026") == b"* SEARCH 2"
    assert await search(c, "SINCE 10-Mar-2026") == b"* SEARCH 2 3"
    assert await search(c, "SENTBEFORE 3-Mar-2026") == b"* SEARCH 1"
    assert await search(c, "SENTSINCE 1-Apr-2026") == b"* SEARCH 3"
    assert await search(c, "LARGER 2000") == b"* SEARCH 2"
    assert await search(c, "SMALLER 2000") == b"* SEARCH 1 3"
    assert await search(c, "2:3 UNSEEN") == b"* SEARCH 2 3"
    assert await search(c, "UID 1,3") == b"* SEARCH 1 3"
    assert await search(c, "(OR 1 3) NOT 3") == b"* SEARCH 1"
    assert await search(c, "KEYWORD $Forwarded") == b"* SEARCH"
    assert await search(c, "ALL UNKEYWORD $Forwarded") == b"* SEARCH 1 2 3"
    assert ok(await c.cmd("STORE 2 +FLAGS.SILENT ($Work)"))
    # Keywords compare case-insensitively (RFC 9051 §2.3.2), as the predicate does.
    assert await search(c, "KEYWORD $WORK") == b"* SEARCH 2"
    assert await search(c, "UNKEYWORD $work") == b"* SEARCH 1 3"
    assert await search(c, "KEYWORD $Work FLAGGED") == b"* SEARCH 2"
    lines = await c.cmd("UID SEARCH FLAGGED")
    assert lines[0] == b"* SEARCH 2\r\n"
    await c.close()


async def test_esearch_and_modseq(imap, services):
    c = await _mailbox(imap, services)
    lines = await c.cmd("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
    assert lines[0] == b'* ESEARCH (TAG "t3") MIN 2 MAX 3 COUNT 2 ALL 2:3\r\n'
    lines = await c.cmd("UID SEARCH RETURN () ALL")
    assert lines[0] == b'* ESEARCH (TAG "t4") UID ALL 1:3\r\n'
    lines = await c.cmd("SEARCH RETURN (COUNT) SUBJECT nothing-like-this")
    assert lines[0] == b'* ESEARCH (TAG "t5") COUNT 0\r\n'
    assert ok(await c.cmd("STORE 3 +FLAGS.SILENT (\\Answered)"))
    lines = await c.cmd("SEARCH MODSEQ 2")
    assert lines[0].startswith(b"* SEARCH ") and b"(MODSEQ " in lines[0]
    await c.close()


async def test_sort(imap, services):
    c = await _mailbox(imap, services)

    async def sort(spec: str) -> bytes:
        lines = await c.cmd(f"SORT {spec} UTF-8 ALL")
        assert ok(lines), lines
        return lines[0].rstrip(b"\r\n")

    assert await sort("(SUBJECT)") == b"* SORT 3 1 2"  # "Re:" stripped: base subject
    assert await sort("(REVERSE ARRIVAL)") == b"* SORT 3 2 1"
    assert await sort("(DATE)") == b"* SORT 1 2 3"
    assert await sort("(FROM)") == b"* SORT 1 2 3"
    assert await sort("(SIZE)") == b"* SORT 3 1 2"
    assert await sort("(TO SUBJECT)") == b"* SORT 3 1 2"
    assert await sort("(CC)") == b"* SORT 1 3 2"
    lines = await c.cmd("UID SORT (REVERSE SIZE) UTF-8 UNSEEN")
    assert lines[0] == b"* SORT 2 3\r\n"
    await c.close()


async def test_header_search_over_long_headers_copies_and_moves(imap, services):
    """Header text beyond what the index holds (a circular to 150 units) is
    searched from its row; copies and moves are searchable where they land
    and the source's copy goes with its row."""
    many = ", ".join(f"Phòng ban số {i} <unit{i}@hanoi.gov.vn>" for i in range(150))
    await deliver(services, AN, message("Thông báo chung", to=many))
    await deliver(services, AN, message("Lịch trực Tết"))
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    assert ok(await c.cmd("SELECT INBOX"))
    account = await services.directory.find_account(AN)
    async with services.db.connection() as conn:
        kinds = await conn.fetch("SELECT uid, headers_short IS NULL AS long,"
                                 " envelope_short IS NULL AS long_envelope"
                                 " FROM mailbox_message_texts"
                                 " WHERE account_id = $1 ORDER BY uid", account.id)
        envelopes = await conn.fetch("SELECT b.envelope FROM mailbox_messages m JOIN"
                                     " message_blobs b ON b.sha256 = m.sha256"
                                     " WHERE m.account_id = $1 ORDER BY m.uid", account.id)
    assert [tuple(r) for r in kinds] == [(1, True, True), (2, False, False)]
    # FETCH ENVELOPE reads the copy: long or short, the bytes stored at delivery.
    lines = await c.cmd("FETCH 1:2 (ENVELOPE)")
    assert lines[0] == b"* 1 FETCH (ENVELOPE " + envelopes[0]["envelope"] + b")\r\n"
    assert lines[1] == b"* 2 FETCH (ENVELOPE " + envelopes[1]["envelope"] + b")\r\n"
    assert b'"unit149"' in lines[0] and len(lines[0]) > 4000
    lines = await c.cmd("UID FETCH 2 (ENVELOPE)")
    assert lines[0] == b"* 2 FETCH (UID 2 ENVELOPE " + envelopes[1]["envelope"] + b")\r\n"
    assert await search(c, 'TO "unit149@hanoi"') == b"* SEARCH 1"
    assert await search(c, 'TO "phong ban so 7 "') == b"* SEARCH 1"
    assert await search(c, 'SUBJECT "thong bao"') == b"* SEARCH 1"
    assert await search(c, 'OR SUBJECT "truc tet" TO "unit3@"') == b"* SEARCH 1 2"
    assert await search(c, 'NOT TO "unit1"') == b"* SEARCH 2"
    assert await search(c, 'HEADER Subject ""') == b"* SEARCH 1 2"
    assert ok(await c.cmd("COPY 1 Archive"))
    assert ok(await c.cmd("MOVE 2 Archive"))
    assert ok(await c.cmd("SELECT Archive"))
    assert await search(c, 'TO "unit149@"') == b"* SEARCH 1"
    assert await search(c, 'SUBJECT "truc tet"') == b"* SEARCH 2"
    assert ok(await c.cmd("DELETE Archive"))  # its rows go to INBOX, kept for retention
    async with services.db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM mailbox_message_texts h"
                                   " WHERE NOT EXISTS (SELECT 1 FROM mailbox_messages m WHERE"
                                   " (m.account_id, m.mailbox_id, m.uid)"
                                   " = (h.account_id, h.mailbox_id, h.uid))") == 0
        assert await conn.fetchval("SELECT count(*) FROM mailbox_message_texts"
                                   " WHERE account_id = $1", account.id) == 4
    await c.close()
