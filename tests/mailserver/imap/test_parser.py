"""IMAP command parser: bytes in, command objects out (RFC 9051, extensions, real clients)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from congvu.mailserver.imap import commands as c
from congvu.mailserver.imap import searchkeys as k
from congvu.mailserver.imap.errors import BadCharset, ImapError, ParseError
from congvu.mailserver.imap.parser import is_idle_done, parse_command
from congvu.mailserver.imap.sequence import STAR, SequenceSet


def parse(line: str | bytes) -> c.Command:
    raw = line.encode() if isinstance(line, str) else line
    return parse_command(raw + b"\r\n")


def bad(line: str | bytes) -> ImapError:
    with pytest.raises(ImapError) as info:
        parse(line)
    return info.value


# -- simple commands ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "cls"),
    [
        ("a CAPABILITY", c.Capability), ("a noop", c.Noop), ("a LOGOUT", c.Logout),
        ("a STARTTLS", c.StartTLS), ("a CHECK", c.Check), ("a CLOSE", c.Close),
        ("a UNSELECT", c.Unselect), ("a EXPUNGE", c.Expunge), ("a NAMESPACE", c.Namespace),
        ("a IDLE", c.Idle),
    ],
)
def test_simple(line: str, cls: type) -> None:
    cmd = parse(line)
    assert type(cmd) is cls and cmd.tag == "a"


def test_tag_forms() -> None:
    assert parse("A0001.x] NOOP").tag == "A0001.x]"
    assert parse_command(b"t1 NOOP").tag == "t1"  # final CRLF optional
    assert parse_command(b"t1 NOOP\n").tag == "t1"  # bare LF tolerated


def test_login_quoted_and_literal() -> None:
    cmd = parse('a001 LOGIN "nguyen.van.a@hanoi.gov.vn" "p\\"w\\\\d"')
    assert cmd == c.Login("a001", "nguyen.van.a@hanoi.gov.vn", 'p"w\\d')
    assert "p\\" not in repr(cmd)  # password masked
    cmd = parse_command(b"a LOGIN {4}\r\nuser {7}\r\nm\xe1t kh\xe1\r\n")
    assert isinstance(cmd, c.Login) and cmd.username == "user"


def test_authenticate_sasl_ir() -> None:
    cmd = parse("a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==")
    assert cmd == c.Authenticate("a", "PLAIN", b"\0user\0pass")
    assert parse("a authenticate plain =") == c.Authenticate("a", "PLAIN", b"")
    assert parse("a AUTHENTICATE XOAUTH2") == c.Authenticate("a", "XOAUTH2", None)
    assert bad("a AUTHENTICATE PLAIN !!!").status == "BAD"


# -- mailboxes ------------------------------------------------------------------


def test_select_inbox_case_insensitive() -> None:
    assert parse("a SELECT inbox") == c.Select("a", "INBOX")
    assert parse('a EXAMINE "InBoX"') == c.Examine("a", "INBOX")
    assert c.Examine.readonly and not c.Select.readonly


def test_select_vietnamese_mutf7() -> None:
    cmd = parse('a SELECT "L&AbA-u tr&Hu8-/C&APQ-ng v&AQM-n &AREevw-n"')
    assert isinstance(cmd, c.Select) and cmd.mailbox == "Lưu trữ/Công văn đến"


def test_invalid_mutf7_is_bad() -> None:
    err = bad('a SELECT "&AGE-"')
    assert err.status == "BAD" and err.tag == "a" and "mailbox" in err.text.lower()


def test_select_condstore_qresync() -> None:
    assert parse("a SELECT INBOX (CONDSTORE)") == c.Select("a", "INBOX", condstore=True)
    # RFC 7162 §3.2.5.2 example
    cmd = parse(
        "A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"
    )
    assert isinstance(cmd, c.Select) and cmd.qresync is not None
    assert cmd.qresync.uidvalidity == 67890007
    assert cmd.qresync.modseq == 20050715194045000
    assert cmd.qresync.known_uids == SequenceSet(((41, 41), (43, 211), (214, 541)))
    cmd = parse(
        "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
        "(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979:29997)))"
    )
    assert isinstance(cmd, c.Select) and cmd.qresync and cmd.qresync.seq_match
    assert str(cmd.qresync.seq_match[0]) == "5000,7500,9000,9990:9999"
    cmd = parse("a SELECT INBOX (QRESYNC (1 2))")
    assert isinstance(cmd, c.Select) and cmd.qresync == c.QResyncParams(1, 2)
    assert bad("a SELECT INBOX (FOO)").status == "BAD"


def test_create_delete_rename_subscribe() -> None:
    assert parse('a CREATE "Hộp thư đã gửi"'.encode()).mailbox == "Hộp thư đã gửi"  # type: ignore[attr-defined]
    assert parse("a CREATE Drafts (USE (\\drafts))") == c.Create("a", "Drafts", ("\\Drafts",))
    assert parse("a CREATE x (USE ())") == c.Create("a", "x", ())
    assert parse("a DELETE foo") == c.Delete("a", "foo")
    assert parse("a RENAME INBOX Old") == c.Rename("a", "INBOX", "Old")
    assert parse("a SUBSCRIBE x") == c.Subscribe("a", "x")
    assert parse("a UNSUBSCRIBE x") == c.Unsubscribe("a", "x")


def test_list_classic_and_lsub() -> None:
    assert parse('a LIST "" "*"') == c.List("a", "", ("*",))
    assert parse('a LIST "" ""') == c.List("a", "", ("",))
    assert parse("a LIST ~/Mail/ %") == c.List("a", "~/Mail/", ("%",))
    assert parse('a LSUB "#news." "comp.mail.*"') == c.Lsub("a", "#news.", "comp.mail.*")


def test_list_extended() -> None:
    # RFC 5258 §5 / RFC 5819 / RFC 6154 forms
    cmd = parse('A02 LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "Lưu trữ/*")'.encode())
    assert isinstance(cmd, c.List)
    assert cmd.selection == {"SUBSCRIBED", "RECURSIVEMATCH"}
    assert cmd.patterns == ("INBOX", "Lưu trữ/*") and cmd.extended
    cmd = parse('a LIST "" % RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))')
    assert isinstance(cmd, c.List)
    assert cmd.returns == {"CHILDREN", "SPECIAL-USE", "STATUS"}
    assert cmd.status_items == ("MESSAGES", "UNSEEN")
    cmd = parse('a LIST (SPECIAL-USE) "" "*"')
    assert isinstance(cmd, c.List) and cmd.selection == {"SPECIAL-USE"}
    assert bad('a LIST (RECURSIVEMATCH) "" "*"').status == "BAD"
    assert bad('a LIST (BOGUS) "" "*"').status == "BAD"
    assert bad('a LIST "" "*" RETURN (BOGUS)').status == "BAD"


def test_status() -> None:
    cmd = parse("a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)")
    assert isinstance(cmd, c.Status) and len(cmd.items) == 7
    assert bad("a STATUS INBOX (FOO)").status == "BAD"
    assert bad("a STATUS INBOX ()").status == "BAD"


# -- APPEND ---------------------------------------------------------------------


def test_append_mbsync_nonsync_literal() -> None:
    msg = b"From: a@b\r\nSubject: x\r\n\r\nhello\r\n"
    cmd = parse_command(b'APPEND1 APPEND "INBOX" (\\Seen) {%d+}\r\n' % len(msg) + msg + b"\r\n")
    assert isinstance(cmd, c.Append) and cmd.mailbox == "INBOX"
    assert cmd.messages == (c.AppendMessage(("\\Seen",), None, msg),)


def test_append_with_date_and_multiappend() -> None:
    cmd = parse_command(
        b'a APPEND Sent (\\Seen $Forwarded) "05-Mar-2024 09:15:00 +0700" {3}\r\nabc'
        b' {2}\r\nde\r\n'
    )
    assert isinstance(cmd, c.Append) and len(cmd.messages) == 2
    first, second = cmd.messages
    assert first.internal_date == datetime(2024, 3, 5, 9, 15, tzinfo=timezone(timedelta(hours=7)))
    assert first.flags == ("\\Seen", "$Forwarded") and first.data == b"abc"
    assert second == c.AppendMessage((), None, b"de")
    cmd = parse_command(b'a APPEND x " 5-Mar-2024 09:15:00 -0130" ~{1}\r\n\x00\r\n')
    assert isinstance(cmd, c.Append) and cmd.messages[0].binary
    assert cmd.messages[0].internal_date is not None
    assert cmd.messages[0].internal_date.utcoffset() == -timedelta(hours=1, minutes=30)


@pytest.mark.parametrize(
    "line",
    [
        b"a APPEND INBOX",
        b'a APPEND INBOX "hello"',
        b'a APPEND INBOX "32-Jan-2024 00:00:00 +0000" {1}\r\nx',
        b"a APPEND INBOX {10}\r\nshort",
    ],
)
def test_append_bad(line: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(line + b"\r\n")


# -- FETCH ----------------------------------------------------------------------


def test_thunderbird_resync() -> None:
    cmd = parse("5 UID FETCH 1:* (FLAGS)")
    assert cmd == c.Fetch("5", SequenceSet(((1, STAR),)), (c.FetchAttr("FLAGS"),), uid=True)


def test_thunderbird_headers() -> None:
    cmd = parse(
        "6 UID fetch 5:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc "
        "Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To "
        "Content-Type Reply-To)])"
    )
    assert isinstance(cmd, c.Fetch) and cmd.uid
    names = [a.name for a in cmd.attributes]
    assert names == ["UID", "RFC822.SIZE", "FLAGS", "BODY"]
    body = cmd.attributes[3]
    assert body.peek and body.section is not None
    assert body.section.text == "HEADER.FIELDS" and body.section.headers[0] == "From"
    assert len(body.section.headers) == 14
    assert body.key.startswith(b"BODY[HEADER.FIELDS (From To ") and not cmd.sets_seen


def test_mbsync_fetch() -> None:
    cmd = parse("7 UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-TUID)])")
    assert isinstance(cmd, c.Fetch)
    assert cmd.attributes[2].key == b"BODY[HEADER.FIELDS (X-TUID)]"


def test_fetch_macros() -> None:
    full = parse("a FETCH 1 FULL")
    assert isinstance(full, c.Fetch)
    assert [a.name for a in full.attributes] == [
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]
    fast = parse("a fetch 1:2 fast")
    assert isinstance(fast, c.Fetch) and len(fast.attributes) == 3
    alls = parse("a FETCH 1 ALL")
    assert isinstance(alls, c.Fetch) and len(alls.attributes) == 4


@pytest.mark.parametrize(
    ("att", "section", "partial", "key", "seen"),
    [
        ("BODY[]", c.Section(), None, b"BODY[]", True),
        ("BODY.PEEK[]<0.2048>", c.Section(), (0, 2048), b"BODY[]<0>", False),
        ("BODY[HEADER]", c.Section((), "HEADER"), None, b"BODY[HEADER]", True),
        ("body[text]", c.Section((), "TEXT"), None, b"BODY[TEXT]", True),
        ("BODY[1.2.3]", c.Section((1, 2, 3)), None, b"BODY[1.2.3]", True),
        ("BODY[2.MIME]", c.Section((2,), "MIME"), None, b"BODY[2.MIME]", True),
        ("BODY[4.2.HEADER]", c.Section((4, 2), "HEADER"), None, b"BODY[4.2.HEADER]", True),
        ("BODY[1.TEXT]<10.20>", c.Section((1,), "TEXT"), (10, 20), b"BODY[1.TEXT]<10>", True),
        ("BODY.PEEK[HEADER.FIELDS.NOT (Received)]", c.Section((), "HEADER.FIELDS.NOT",
                                                              ("Received",)),
         None, b"BODY[HEADER.FIELDS.NOT (Received)]", False),
        ("BINARY[1]", c.Section((1,)), None, b"BINARY[1]", True),
        ("BINARY.PEEK[]<0.10>", c.Section(), (0, 10), b"BINARY[]<0>", False),
        ("BINARY.SIZE[2]", c.Section((2,)), None, b"BINARY.SIZE[2]", False),
    ],
)
def test_fetch_sections(att: str, section: c.Section, partial: tuple[int, int] | None,
                        key: bytes, seen: bool) -> None:
    cmd = parse(f"a FETCH 1 ({att})")
    assert isinstance(cmd, c.Fetch)
    (a,) = cmd.attributes
    assert a.section == section and a.partial == partial and a.key == key
    assert a.sets_seen is seen


def test_fetch_simple_attributes() -> None:
    cmd = parse("a FETCH 1:3,5 (ENVELOPE BODYSTRUCTURE BODY INTERNALDATE RFC822 RFC822.HEADER "
                "RFC822.TEXT RFC822.SIZE MODSEQ UID FLAGS FLAGS)")
    assert isinstance(cmd, c.Fetch)
    assert len(cmd.attributes) == 11  # duplicate FLAGS dropped
    assert cmd.sets_seen  # RFC822 and RFC822.TEXT set \Seen
    assert not next(a for a in cmd.attributes if a.name == "RFC822.HEADER").sets_seen


def test_fetch_modifiers() -> None:
    # RFC 7162 §3.1.4.1 and §3.2.6 examples
    cmd = parse("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)")
    assert isinstance(cmd, c.Fetch) and cmd.changedsince == 12345 and not cmd.vanished
    cmd = parse("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
    assert isinstance(cmd, c.Fetch) and cmd.vanished
    assert bad("a UID FETCH 1 (FLAGS) (VANISHED)").status == "BAD"
    assert bad("a FETCH 1 (FLAGS) (FOO 1)").status == "BAD"


@pytest.mark.parametrize(
    "line",
    [
        "a FETCH 1 (BODY[HEADER.FIELDS])",
        "a FETCH 1 (BODY[HEADER.FIELDS ()])",
        "a FETCH 1 (BODY[MIME])",  # MIME needs a part
        "a FETCH 1 (BODY[0])",
        "a FETCH 1 (BODY[1.TEXT)",
        "a FETCH 1 (BODY[]<0.0>)",
        "a FETCH 1 (BODY[]<5>)",
        "a FETCH 1 (BINARY[HEADER])",
        "a FETCH 1 (FOO)",
        "a FETCH 1 ()",
        "a FETCH 1 (FLAGS",
        "a FETCH 1",
        "a FETCH (FLAGS)",
    ],
)
def test_fetch_bad(line: str) -> None:
    err = bad(line)
    assert err.status == "BAD" and err.tag == "a"


# -- sequence sets --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("1", ((1, 1),)), ("1:*", ((1, STAR),)), ("*:4", ((STAR, 4),)),
        ("1,3:5,7", ((1, 1), (3, 5), (7, 7))), ("*", ((STAR, STAR),)),
        ("4294967295", ((4294967295, 4294967295),)),
    ],
)
def test_sequence_sets(text: str, ranges: tuple[tuple[int, int], ...]) -> None:
    cmd = parse(f"a FETCH {text} FLAGS")
    assert isinstance(cmd, c.Fetch) and cmd.seqset.ranges == ranges


def test_searchres_dollar() -> None:
    cmd = parse("a UID FETCH $ FLAGS")
    assert isinstance(cmd, c.Fetch) and cmd.seqset.saved


@pytest.mark.parametrize("text", ["0:3", "1:", ":3", "1,,2", "0", "1:2:3", "01", "4294967296",
                                  "1,$", "a"])
def test_bad_sequence_sets(text: str) -> None:
    err = bad(f"a FETCH {text} FLAGS")
    assert err.status == "BAD" and err.tag == "a"


# -- STORE, COPY, MOVE, EXPUNGE ------------------------------------------------------------


def test_store_forms() -> None:
    seq = SequenceSet(((2, 4),))
    assert parse("a STORE 2:4 +FLAGS (\\Deleted)") == c.Store("a", seq, "+", ("\\Deleted",))
    assert parse("a STORE 2:4 -FLAGS.SILENT \\seen $Junk") == c.Store(
        "a", seq, "-", ("\\Seen", "$Junk"), silent=True)
    assert parse("a UID STORE 2:4 FLAGS ()") == c.Store("a", seq, "", (), uid=True)
    # RFC 7162 §3.1.3 UNCHANGEDSINCE
    cmd = parse("d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)")
    assert isinstance(cmd, c.Store) and cmd.unchangedsince == 320162338 and cmd.silent
    assert bad("a STORE 1 +FLAG (\\Seen)").status == "BAD"
    assert bad("a STORE 1 (FOO 1) FLAGS (\\Seen)").status == "BAD"


def test_copy_move_expunge() -> None:
    seq = SequenceSet(((1, 3),))
    assert parse("a COPY 1:3 Trash") == c.Copy("a", seq, "Trash")
    assert parse('a UID MOVE 1:3 "Th&AbA- r&AOE-c"') == c.Move("a", seq, "Thư rác", uid=True)
    assert parse("a UID EXPUNGE 1:3") == c.Expunge("a", True, seq)
    assert bad("a UID EXPUNGE").status == "BAD"
    assert bad("a UID NOOP").text.startswith("Unknown UID command")


# -- SEARCH ---------------------------------------------------------------------


def test_ios_search() -> None:
    cmd = parse("a UID SEARCH 1:* NOT DELETED")
    assert cmd == c.Search("a", k.And((k.SeqSet(SequenceSet(((1, STAR),))),
                                       k.Not(k.Flag("\\Deleted")))), uid=True)


def test_search_rfc_example() -> None:
    # RFC 9051 §6.4.4 examples
    cmd = parse('A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert isinstance(cmd, c.Search) and cmd.returns == ("MIN", "COUNT")
    assert cmd.key == k.And((k.Flag("\\Flagged"), k.DateKey("internal", "since", date(1994, 2, 1)),
                             k.Not(k.Text("from", "Smith"))))
    cmd = parse("A283 SEARCH RETURN () TEXT \"string not in mailbox\"")
    assert isinstance(cmd, c.Search) and cmd.returns == ("ALL",)


def test_search_every_key() -> None:
    line = (
        'a SEARCH ALL ANSWERED BCC x BEFORE 1-Jan-2024 BODY y CC z DELETED DRAFT FLAGGED '
        'FROM f HEADER X-Priority 1 KEYWORD $Work LARGER 100 NEW NOT SEEN OLD ON 2-Jan-2024 '
        'OR SEEN UNSEEN RECENT SEEN SENTBEFORE 3-Jan-2024 SENTON "4-Jan-2024" SENTSINCE '
        '5-Jan-2024 SINCE 6-Jan-2024 SMALLER 200 SUBJECT s TEXT t TO u UID 1:* UNANSWERED '
        'UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $Junk UNSEEN 2,4 (SEEN FLAGGED) MODSEQ 5 '
        'MODSEQ "/flags/\\\\draft" all 620162338'
    )
    cmd = parse(line)
    assert isinstance(cmd, c.Search) and isinstance(cmd.key, k.And)
    keys = cmd.key.keys
    assert len(keys) == 39
    assert k.Header("X-Priority", "1") in keys and k.Flag("$Work") in keys
    assert k.Flag("$Junk", False) in keys and k.Size("larger", 100) in keys
    assert k.DateKey("sent", "on", date(2024, 1, 4)) in keys
    assert k.And((k.Flag("\\Seen"), k.Flag("\\Flagged"))) in keys
    assert keys[-1] == k.ModSeq(620162338, "/flags/\\draft", "all")
    assert k.New() in keys and k.Old() in keys


def test_search_charset_and_literal() -> None:
    cmd = parse_command(
        b"a SEARCH CHARSET UTF-8 SUBJECT {17}\r\nC\xc3\xb4ng v\xc4\x83n \xc4\x91\xe1\xba\xbfn\r\n"
    )
    assert isinstance(cmd, c.Search) and cmd.charset == "UTF-8"
    assert cmd.key == k.Text("subject", "Công văn đến")
    cmd = parse('a SEARCH CHARSET "us-ascii" OR (FROM a TO b) NOT (CC c)')
    assert isinstance(cmd, c.Search) and cmd.charset == "US-ASCII"
    assert cmd.key == k.Or(k.And((k.Text("from", "a"), k.Text("to", "b"))),
                           k.Not(k.Text("cc", "c")))


def test_search_bad_charset_is_no() -> None:
    err = bad("a SEARCH CHARSET KOI8-R TEXT x")
    assert isinstance(err, BadCharset) and err.status == "NO"
    assert err.response() == b"a NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset KOI8-R\r\n"
    assert bad(b"a SEARCH CHARSET US-ASCII TEXT \"\xc3\xa9\"").status == "BAD"


@pytest.mark.parametrize(
    "line",
    ["a SEARCH", "a SEARCH FOO", "a SEARCH OR SEEN", "a SEARCH (SEEN", "a SEARCH SEEN)",
     "a SEARCH BEFORE 32-Jan-2024", "a SEARCH BEFORE 1-Foo-2024", "a SEARCH LARGER x",
     "a SEARCH RETURN (BOGUS) ALL", "a SEARCH UID 0", "a SEARCH ()",
     "a SEARCH " + "NOT " * 100 + "SEEN", "a SEARCH " + "(" * 100 + "SEEN" + ")" * 100],
)
def test_search_bad(line: str) -> None:
    assert bad(line).status == "BAD"


def test_sort() -> None:
    cmd = parse("a UID SORT (REVERSE ARRIVAL SUBJECT) UTF-8 SINCE 1-Feb-1994")
    assert cmd == c.Sort("a", (c.SortCriterion("ARRIVAL", True), c.SortCriterion("SUBJECT")),
                         "UTF-8", k.DateKey("internal", "since", date(1994, 2, 1)), uid=True)
    assert bad("a SORT (FOO) UTF-8 ALL").status == "BAD"
    assert bad("a SORT () UTF-8 ALL").status == "BAD"
    assert bad("a SORT (DATE) BIG5 ALL").status == "NO"


# -- session extras -------------------------------------------------------------


def test_apple_mail_id() -> None:
    cmd = parse('7 ID ("name" "Mac OS X Mail" "version" "16.0 (3774.600.62)" "os" "Mac OS X" '
                '"os-version" "14.2 (23C64)" "vendor" "Apple Inc." "support-url" NIL)')
    assert isinstance(cmd, c.Id) and cmd.params is not None
    assert cmd.params[0] == ("name", "Mac OS X Mail") and cmd.params[-1] == ("support-url", None)
    assert parse("a ID NIL") == c.Id("a", None)
    assert parse("a ID ()") == c.Id("a", ())
    assert bad("a ID (\"x\")").status == "BAD"


def test_enable_compress_idle_done() -> None:
    assert parse("a ENABLE QRESYNC condstore") == c.Enable("a", ("QRESYNC", "CONDSTORE"))
    assert bad("a ENABLE").status == "BAD"
    assert parse("a COMPRESS DEFLATE") == c.Compress("a", "DEFLATE")
    assert is_idle_done(b"DONE\r\n") and is_idle_done(b"done\n")
    assert not is_idle_done(b"a DONE\r\n")


def test_acl_and_quota() -> None:
    assert parse("a GETACL INBOX") == c.GetAcl("a", "INBOX")
    assert parse("a SETACL INBOX thu.ky@hanoi.gov.vn +lrs") == c.SetAcl(
        "a", "INBOX", "thu.ky@hanoi.gov.vn", "lrs", "+")
    assert parse('a SETACL INBOX x ""') == c.SetAcl("a", "INBOX", "x", "", "")
    assert parse("a DELETEACL INBOX x") == c.DeleteAcl("a", "INBOX", "x")
    assert parse("a LISTRIGHTS INBOX x") == c.ListRights("a", "INBOX", "x")
    assert parse("a MYRIGHTS INBOX") == c.MyRights("a", "INBOX")
    assert parse('a GETQUOTA ""') == c.GetQuota("a", "")
    assert parse("a GETQUOTAROOT INBOX") == c.GetQuotaRoot("a", "INBOX")
    assert parse('a SETQUOTA "" (STORAGE 512 MESSAGE 1000)') == c.SetQuota(
        "a", "", (("STORAGE", 512), ("MESSAGE", 1000)))


# -- malformed input ---------------------------------------------------------------


def test_unknown_command_is_tagged_bad() -> None:
    err = bad("x1 FROBNICATE now")
    assert err.response() == b"x1 BAD Unknown command FROBNICATE\r\n"


@pytest.mark.parametrize("line", [b"", b" NOOP", b"+ NOOP", b"(x NOOP", b"\x00 NOOP"])
def test_missing_tag_is_untagged_bad(line: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_command(line + b"\r\n")
    assert info.value.response().startswith(b"* BAD ")


@pytest.mark.parametrize(
    "line",
    [
        'a LOGIN "unterminated',
        'a LOGIN "bad \\q escape" x',
        "a LOGIN onlyuser",
        "a",
        "a NOOP extra",
        "a  NOOP",
        "a SELECT",
        "a LOGIN {5}",  # literal announced but no data
        "a RENAME x",
    ],
)
def test_malformed(line: str) -> None:
    err = bad(line)
    assert err.status == "BAD" and err.tag == "a"
    assert err.response().startswith(b"a BAD ")
