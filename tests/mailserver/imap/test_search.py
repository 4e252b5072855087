"""Pure SEARCH evaluation: normalization for SQL and Python predicates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from congvu.mailserver.imap import searchkeys as k
from congvu.mailserver.imap.commands import Search
from congvu.mailserver.imap.parser import parse_command
from congvu.mailserver.imap.search import (
    MessageInfo, compile_predicate, fold, normalize, required_fields,
)
from congvu.mailserver.imap.sequence import SequenceSet

ICT = timezone(timedelta(hours=7))

MESSAGES = [
    MessageInfo(
        seq=1, uid=10, flags=frozenset({"\\Seen"}), size=2_000,
        internal_date=datetime(2024, 3, 1, 23, 30, tzinfo=ICT),
        sent_date=datetime(2024, 2, 29, 8, 0, tzinfo=ICT),
        from_=fold("Nguyễn Văn A <a@hanoi.gov.vn>"), to=fold("Trần Thị B <b@hanoi.gov.vn>"),
        subject=fold("Công văn đến số 123"), body=fold("Kính gửi Sở Nội vụ"),
        header_text=fold("Subject: Công văn đến số 123"),
        headers={"x-priority": "1", "subject": fold("Công văn đến số 123")}, modseq=5,
    ),
    MessageInfo(
        seq=2, uid=12, flags=frozenset({"\\Recent", "$Work"}), size=50_000,
        internal_date=datetime(2024, 3, 2, 9, 0, tzinfo=ICT),
        from_=fold("Lê Văn C <c@danang.gov.vn>"), cc=fold("Phòng Hành chính"),
        subject=fold("ĐÀ NẴNG: báo cáo"), body=fold("Báo cáo tháng 3"),
        header_text=fold("Subject: ĐÀ NẴNG: báo cáo"), modseq=9,
    ),
    MessageInfo(
        seq=3, uid=20, flags=frozenset({"\\Deleted", "\\Seen", "\\Flagged"}), size=300,
        internal_date=datetime(2024, 3, 5, 12, 0, tzinfo=ICT),
        from_=fold("spam@example.com"), bcc=fold("archive@hanoi.gov.vn"),
        subject=fold("Hello"), body=fold("nothing"), modseq=12,
    ),
]


def run(query: str, saved: SequenceSet | None = None) -> list[int]:
    cmd = parse_command(f"a UID SEARCH {query}\r\n".encode())
    assert isinstance(cmd, Search)
    pred = compile_predicate(cmd.key, max_seq=3, max_uid=20, saved_uids=saved)
    return [m.uid for m in MESSAGES if pred(m)]


@pytest.mark.parametrize(
    ("query", "uids"),
    [
        ("ALL", [10, 12, 20]),
        ("1:* NOT DELETED", [10, 12]),  # iOS
        ("SEEN", [10, 20]),
        ("UNSEEN", [12]),
        ("NEW", [12]),
        ("OLD", [10, 20]),
        ("RECENT", [12]),
        ("FLAGGED DELETED", [20]),
        ("KEYWORD $work", [12]),  # keywords compare case-insensitively
        ("UNKEYWORD $Work", [10, 20]),
        ("OR SEEN FLAGGED", [10, 20]),
        ("NOT (SEEN FLAGGED)", [10, 12]),
        ("LARGER 1999", [10, 12]),
        ("SMALLER 2000", [20]),
        ("2:*", [12, 20]),
        ("*", [20]),
        ("UID 11:15", [12]),
        ("UID 15:*", [20]),
        ("UID 25:*", [20]),  # RFC 9051 §6.4.9: n:* includes the last UID
        ("MODSEQ 9", [12, 20]),
        ("$", [12]),
    ],
)
def test_flag_set_size_keys(query: str, uids: list[int]) -> None:
    assert run(query, saved=SequenceSet.parse("12")) == uids


@pytest.mark.parametrize(
    ("query", "uids"),
    [
        ('SUBJECT "cong van"', [10]),
        ('SUBJECT "Công Văn"', [10]),
        ('SUBJECT "CÔNG VĂN ĐẾN"', [10]),
        ('SUBJECT "da nang"', [12]),
        ('FROM "nguyen"', [10]),
        ('FROM "GOV.VN"', [10, 12]),
        ("TO b@hanoi", [10]),
        ('CC "hanh chinh"', [12]),
        ("BCC archive", [20]),
        ('BODY "noi vu"', [10]),
        ('TEXT "bao cao"', [12]),  # header or body
        ('TEXT "so 123"', [10]),
        ('SUBJECT ""', [10, 12, 20]),  # empty substring matches all
        ("HEADER X-Priority 1", [10]),
        ('HEADER X-PRIORITY ""', [10]),  # "" = has the field
        ('HEADER X-Mailer ""', []),
        ('OR SUBJECT hello FROM "le van"', [12, 20]),
    ],
)
def test_text_keys_substring_folded(query: str, uids: list[int]) -> None:
    assert run("CHARSET UTF-8 " + query) == uids


@pytest.mark.parametrize(
    ("query", "uids"),
    [
        ("BEFORE 2-Mar-2024", [10]),
        ("ON 1-Mar-2024", [10]),  # the date as written, not converted to UTC
        ("SINCE 2-Mar-2024", [12, 20]),
        ("SENTON 29-Feb-2024", [10]),  # Date: header
        ("SENTSINCE 2-Mar-2024", [12, 20]),  # no Date: → internal date
        ("SENTBEFORE 1-Mar-2024", [10]),
    ],
)
def test_date_keys(query: str, uids: list[int]) -> None:
    assert run(query) == uids


def test_normalize_for_sql() -> None:
    cmd = parse_command("a SEARCH CHARSET UTF-8 NEW 2:3,5 NOT NOT SUBJECT \"Công Văn\" "
                        "(HEADER Message-ID \"<X@Y>\" ALL) NOT SEEN $\r\n".encode())
    assert isinstance(cmd, Search)
    tree = normalize(cmd.key, uids=[10, 12, 20, 21, 30], saved_uids=SequenceSet.parse("12,20"))
    assert tree == k.And((
        k.Flag("\\Recent"), k.Flag("\\Seen", False),
        k.UidSet(SequenceSet(((12, 20), (30, 30)))),
        k.Text("subject", "cong van"),
        k.Header("message-id", "<x@y>"),
        k.UidSet(SequenceSet.parse("12,20")),
    ))


def test_normalize_simplifies() -> None:
    assert normalize(k.And((k.All(), k.All()))) == k.All()
    assert normalize(k.Or(k.Flag("\\Seen"), k.All())) == k.All()
    assert normalize(k.Not(k.Old())) == k.Flag("\\Recent")
    assert normalize(k.SeqSet(SequenceSet.parse("$"))) == k.UidSet(SequenceSet(()))
    assert normalize(k.SeqSet(SequenceSet.parse("1:*"))) == k.SeqSet(SequenceSet.parse("1:*"))


def test_required_fields() -> None:
    cmd = parse_command(b"a SEARCH OR TEXT x FROM y NOT (SEEN LARGER 5 SENTON 1-Jan-2024)\r\n")
    assert isinstance(cmd, Search)
    assert required_fields(cmd.key) == {
        "header_text", "body", "from_", "flags", "keywords", "size", "internal_date", "sent_date"}


def test_fold_semantics() -> None:
    assert fold("Hộp thư ĐÃ GỬI") == "hop thu da gui"
    assert fold("Đà Nẵng") == "da nang"


def test_from_stored_search_text() -> None:
    from congvu.mailserver.mime import parse_message

    raw = (
        "From: =?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?= <a@hanoi.gov.vn>\r\n"
        "To: b@hanoi.gov.vn\r\nSubject: =?utf-8?b?Q8O0bmcgdsSDbiDEkeG6v24=?=\r\n"
        "X-Priority: 1\r\n\r\nK\xednh g\u1eedi S\u1edf N\u1ed9i v\u1ee5\r\n"
    ).encode("utf-8")
    parsed = parse_message(raw)
    info = MessageInfo.from_search_text(
        search_headers=parsed.search_headers, search_body=parsed.search_body, seq=1, uid=1)
    assert info.subject == "cong van den"

    def hits(query: str) -> bool:
        cmd = parse_command(f"a SEARCH CHARSET UTF-8 {query}\r\n".encode())
        assert isinstance(cmd, Search)
        return compile_predicate(cmd.key, max_seq=1, max_uid=1)(info)

    assert hits('FROM "nguyễn văn"') and hits("TO b@hanoi") and hits('SUBJECT "Văn đến"')
    assert hits("HEADER X-Priority 1") and hits('BODY "noi vu"') and hits('TEXT "x-priority"')
    assert not hits("FROM b@hanoi") and not hits('HEADER Cc ""')
