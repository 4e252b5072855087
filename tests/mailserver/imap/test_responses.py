"""Response writer: quoting rules, status lines, untagged data, FETCH items."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from congvu.mailserver.imap import responses as r
from congvu.mailserver.imap.commands import Fetch
from congvu.mailserver.imap.parser import parse_command
from congvu.mailserver.imap.sequence import SequenceSet


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("INBOX", b"INBOX"),
        ("a]b", b"a]b"),  # "]" is an ASTRING-CHAR
        ("", b'""'),
        ("two words", b'"two words"'),
        ("NIL", b'"NIL"'),
        ('say "hi"\\', b'"say \\"hi\\"\\\\"'),
        ("x%y", b'"x%y"'),
        ("Hà Nội", b"{9}\r\nH\xc3\xa0 N\xe1\xbb\x99i"),
        ("line1\r\nline2", b"{12}\r\nline1\r\nline2"),
    ],
)
def test_astring(value: str, wire: bytes) -> None:
    assert r.astring(value) == wire


def test_string_nstring_literal() -> None:
    assert r.string("abc") == b'"abc"'
    assert r.string(b"a\x00b") == b"{3}\r\na\x00b"
    assert r.nstring(None) == b"NIL"
    assert r.nstring("") == b'""'
    assert r.literal(b"") == b"{0}\r\n"
    assert r.quoted("x") == b'"x"'


def test_mailbox_names_are_mutf7() -> None:
    assert r.mailbox("Hộp thư đã gửi") == b'"H&Htk-p th&AbA- &AREA4w- g&Hu0-i"'
    assert r.mailbox("inbox") == b'"INBOX"'


def test_status_lines() -> None:
    assert r.format_response("a1", "OK", "READ-WRITE", "SELECT completed") == (
        b"a1 OK [READ-WRITE] SELECT completed\r\n")
    assert r.format_response("a1", "NO", None, "bad\r\ninjection") == b"a1 NO bad  injection\r\n"
    assert r.untagged_ok("UIDVALIDITY 3857529045", "UIDs valid") == (
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n")
    assert r.bye("Logging out") == b"* BYE Logging out\r\n"
    assert r.continuation() == b"+ Ready\r\n"
    assert r.continuation(b"") == b"+ \r\n"
    assert r.CONTINUE_LITERAL == b"+ Ready for literal data\r\n"


def test_errors_render_their_reply() -> None:
    err = r.ImapNo("Mailbox does not exist", code="TRYCREATE")
    assert err.response("a5") == b"a5 NO [TRYCREATE] Mailbox does not exist\r\n"
    assert r.ImapBad("Syntax").response(b"t") == b"t BAD Syntax\r\n"
    assert r.ParseError("x", tag="q").response() == b"q BAD x\r\n"
    assert r.ParseError("x").response() == b"* BAD x\r\n"
    assert r.ImapFatal("Too many errors").response("a") == b"* BYE Too many errors\r\n"
    assert issubclass(r.ParseError, r.ImapError) and issubclass(r.BadCharset, r.ImapNo)


def test_untagged_data() -> None:
    assert r.capability(["IMAP4rev1", "IDLE"]) == b"* CAPABILITY IMAP4rev1 IDLE\r\n"
    assert r.flags(("\\Seen", "\\Deleted")) == b"* FLAGS (\\Seen \\Deleted)\r\n"
    assert r.exists(23) == b"* 23 EXISTS\r\n"
    assert r.recent(0) == b"* 0 RECENT\r\n"
    assert r.expunge(3) == b"* 3 EXPUNGE\r\n"
    assert r.vanished(SequenceSet.from_numbers([1, 2, 3, 9]), earlier=True) == (
        b"* VANISHED (EARLIER) 1:3,9\r\n")
    assert r.search([2, 3, 6]) == b"* SEARCH 2 3 6\r\n"
    assert r.search([]) == b"* SEARCH\r\n"
    assert r.search([2, 5], modseq=917162500) == b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    assert r.sort([5, 1]) == b"* SORT 5 1\r\n"
    assert r.enabled(["CONDSTORE"]) == b"* ENABLED CONDSTORE\r\n"
    assert r.enabled([]) == b"* ENABLED\r\n"


def test_esearch() -> None:
    # RFC 4731 §3.1 examples
    assert r.esearch("A282", False, min=2, count=3) == b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'
    assert r.esearch("A284", True, all=SequenceSet.from_numbers([4, 5, 6, 7, 10])) == (
        b'* ESEARCH (TAG "A284") UID ALL 4:7,10\r\n')
    assert r.esearch("A285", True, min=None, all=SequenceSet(())) == (
        b'* ESEARCH (TAG "A285") UID\r\n')


def test_list_and_status() -> None:
    assert r.list_line(["\\HasNoChildren", "\\Sent"], "/", "Hộp thư đã gửi") == (
        b'* LIST (\\HasNoChildren \\Sent) "/" "H&Htk-p th&AbA- &AREA4w- g&Hu0-i"\r\n')
    assert r.list_line(["\\Noselect"], None, "", command="LSUB") == b'* LSUB (\\Noselect) NIL ""\r\n'
    assert r.list_line([], "/", "Foo", extended={"CHILDINFO": b'("SUBSCRIBED")'}) == (
        b'* LIST () "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))\r\n')
    assert r.status("INBOX", {"MESSAGES": 231, "UIDNEXT": 44292}) == (
        b'* STATUS "INBOX" (MESSAGES 231 UIDNEXT 44292)\r\n')


def test_id_namespace_acl_quota() -> None:
    assert r.id_response({"name": "Congvu", "support-url": None}) == (
        b'* ID ("name" "Congvu" "support-url" NIL)\r\n')
    assert r.id_response(None) == b"* ID NIL\r\n"
    assert r.namespace([("", "/")], [("Người dùng khác/", "/")], None) == (
        b'* NAMESPACE (("" "/")) (("Ng&AbAe3Q-i d&APk-ng kh&AOE-c/" "/")) NIL\r\n')
    assert r.acl("INBOX", [("Fred", "rwipsldexta"), ("thu.ky@x.vn", "lrs")]) == (
        b"* ACL \"INBOX\" Fred rwipsldexta thu.ky@x.vn lrs\r\n")
    assert r.listrights("INBOX", "Fred", "lr", ["s", "w", "i"]) == (
        b'* LISTRIGHTS "INBOX" Fred lr s w i\r\n')
    assert r.myrights("INBOX", "") == b'* MYRIGHTS "INBOX" ""\r\n'
    assert r.quota("", [("STORAGE", 10, 512)]) == b'* QUOTA "" (STORAGE 10 512)\r\n'
    assert r.quotaroot("INBOX", [""]) == b'* QUOTAROOT "INBOX" ""\r\n'
    assert r.code_copyuid(38505, SequenceSet.parse("304,319:320"),
                          SequenceSet.parse("3956:3958")) == "COPYUID 38505 304,319:320 3956:3958"
    assert r.code_appenduid(38505, 3955) == "APPENDUID 38505 3955"


def test_internaldate() -> None:
    dt = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
    assert r.format_internaldate(dt) == b'"17-Jul-1996 02:44:25 -0700"'
    assert r.format_internaldate(datetime(2024, 1, 5, 0, 0, 0)) == b'"05-Jan-2024 00:00:00 +0000"'
    # The parser reads what the writer writes.
    cmd = parse_command(b"a APPEND x " + r.format_internaldate(dt) + b" {1}\r\nx\r\n")
    assert cmd.messages[0].internal_date == dt  # type: ignore[attr-defined]


def test_fetch_items() -> None:
    cmd = parse_command(b"a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From)]<0.10>)\r\n")
    assert isinstance(cmd, Fetch)
    key = cmd.attributes[0].key
    line = r.fetch_response(12, [
        r.fetch_uid(44), r.fetch_flags(frozenset()), r.fetch_size(1024), r.fetch_modseq(7),
        r.fetch_raw(b"ENVELOPE", b'(NIL "x" NIL NIL NIL NIL NIL NIL NIL NIL)'),
        r.fetch_data(key, b"From: a\r\n"), r.fetch_data(b"BODY[1]", None),
    ])
    assert line == (
        b'* 12 FETCH (UID 44 FLAGS () RFC822.SIZE 1024 MODSEQ (7) '
        b'ENVELOPE (NIL "x" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b"BODY[HEADER.FIELDS (From)]<0> {9}\r\nFrom: a\r\n BODY[1] NIL)\r\n"
    )


def test_hundred_thousand_fetch_flags() -> None:
    # the time of this loop is printed by bench/pure_paths.py
    flag_sets = [("\\Seen",), ("\\Seen", "\\Flagged"), ()]
    out = [
        r.fetch_response(i, [r.fetch_uid(i + 7), r.fetch_flags(flag_sets[i % 3])])
        for i in range(1, 100_001)
    ]
    assert out[0] == b"* 1 FETCH (UID 8 FLAGS (\\Seen \\Flagged))\r\n"
    assert out[-1] == b"* 100000 FETCH (UID 100007 FLAGS (\\Seen \\Flagged))\r\n"
