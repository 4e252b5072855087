"""Tests for the parse-once MIME layer (congvu.mailserver.mime).

Bytes in, stored renderings out.  The BODYSTRUCTURE strings below were
computed by hand from the raw messages (octets = bytes of the encoded part
body, lines = LF count, the CRLF before a boundary belonging to the
boundary, RFC 2046 §5.1.1).
"""

from __future__ import annotations

import email
import json
import random
from datetime import UTC, datetime
from email import policy

import pytest

from congvu.mailserver.mime import (
    Address,
    ParsedMessage,
    base_subject,
    normalize_crlf,
    parse_date,
    parse_message,
    render_header_fields,
    section_bytes,
)


def crlf(*lines: str | bytes) -> bytes:
    """Join lines with CRLF (str lines are UTF-8)."""
    return b"".join((ln.encode() if isinstance(ln, str) else ln) + b"\r\n" for ln in lines)


# --------------------------------------------------------------------------
# Sample messages

SIMPLE = crlf("From: a@b.c", "Subject: hi", "", "Hello", "World")

ALTERNATIVE = crlf(
    "From: a@b.c",
    'Content-Type: multipart/alternative; boundary="XX"',
    "",
    "--XX",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "Hi",
    "--XX",
    "Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "<p>Hi</p>",
    "--XX--",
)

FORWARD = crlf(
    "From: a@b.c",
    "Content-Type: multipart/mixed; boundary=b",
    "",
    "--b",
    "",
    "see below",
    "--b",
    "Content-Type: message/rfc822",
    "",
    "Subject: inner",
    "From: x@y.z",
    "",
    "body",
    "--b--",
)

PDF_VI = crlf(
    "From: =?UTF-8?B?Tmd1eeG7hW4gVsSDbiBB?= <a@hanoi.gov.vn>",
    "To: =?utf-8?Q?Ph=C3=B2ng_V=C4=83n_th=C6=B0?= <vanthu@hanoi.gov.vn>, b@hanoi.gov.vn",
    "Subject: =?UTF-8?B?Q8O0bmcgdsSDbiBz4buRIDEyL1VCTkQ=?=",
    "Date: Mon, 3 Jun 2024 10:00:00 +0700",
    "Message-ID: <cv12@hanoi.gov.vn>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="==b1=="',
    "",
    "This is a multi-part message in MIME format.",
    "--==b1==",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    "Kính gửi các đồng chí,",
    "Xin gửi công văn về việc họp tại Hà Nội.",
    "",
    "--==b1==",
    "Content-Type: application/pdf; name*=utf-8''C%C3%B4ng%20v%C4%83n.pdf",
    "Content-Disposition: attachment;",
    " filename*=utf-8''C%C3%B4ng%20v%C4%83n.pdf",
    "Content-Transfer-Encoding: base64",
    "",
    "JVBERi0xLjQK",
    "--==b1==--",
    "",
)


def nested3() -> bytes:
    return crlf(
        "From: a@b.c",
        "Subject: three levels",
        "Content-Type: multipart/mixed; boundary=L1",
        "",
        "--L1",
        "Content-Type: multipart/related; boundary=L2",
        "",
        "--L2",
        "Content-Type: multipart/alternative; boundary=L3",
        "",
        "--L3",
        "Content-Type: text/plain",
        "",
        "plain text",
        "--L3",
        "Content-Type: text/html",
        "",
        "<b>html</b>",
        "--L3--",
        "--L2",
        "Content-Type: image/png",
        "Content-ID: <img1>",
        "Content-Transfer-Encoding: base64",
        "",
        "iVBORw0K",
        "--L2--",
        "--L1",
        "Content-Type: text/plain; name=notes.txt",
        "Content-Disposition: attachment; filename=notes.txt",
        "",
        "attached notes",
        "--L1--",
    )


# --------------------------------------------------------------------------
# BODY / BODYSTRUCTURE, exact


def test_simple_text_structure() -> None:
    pm = parse_message(SIMPLE)
    assert pm.size == len(SIMPLE)
    # body "Hello\r\nWorld\r\n": 14 octets, 2 lines; RFC 2045 §5.2 default type
    assert pm.body == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2)'
    assert pm.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2 NIL NIL NIL NIL)'
    )
    assert pm.preview == "Hello World"
    assert not pm.has_attachments


def test_alternative_structure() -> None:
    pm = parse_message(ALTERNATIVE)
    assert pm.bodystructure == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 2 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 9 0 NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "XX") NIL NIL NIL)'
    )
    assert pm.body == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 2 0)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 9 0) "alternative")'
    )
    assert pm.preview == "Hi"
    assert pm.search_body == "hi\nhi".replace("\n", " ")


def test_forwarded_message_structure() -> None:
    pm = parse_message(FORWARD)
    inner_env = (
        b'(NIL "inner" ((NIL NIL "x" "y.z")) ((NIL NIL "x" "y.z")) ((NIL NIL "x" "y.z"))'
        b" NIL NIL NIL NIL NIL)"
    )
    assert pm.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL NIL NIL)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 35 ' + inner_env
        + b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0 NIL NIL NIL NIL)'
        b" 3 NIL NIL NIL NIL)"
        b' "mixed" ("boundary" "b") NIL NIL NIL)'
    )
    assert pm.body == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 35 ' + inner_env
        + b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0) 3) "mixed")'
    )
    assert pm.has_attachments
    assert pm.attachments[0].part == "2"
    assert pm.attachments[0].content_type == "message/rfc822"
    # the forwarded message's header and body are searchable body text
    assert "subject: inner" in pm.search_body
    assert "body" in pm.search_body


def test_rfc2231_vietnamese_attachment() -> None:
    pm = parse_message(PDF_VI)
    assert pm.bodystructure.endswith(
        b'("application" "pdf" ("name*" "utf-8\'\'C%C3%B4ng%20v%C4%83n.pdf") NIL NIL "base64" 12'
        b' NIL ("attachment" ("filename*" "utf-8\'\'C%C3%B4ng%20v%C4%83n.pdf")) NIL NIL)'
        b' "mixed" ("boundary" "==b1==") NIL NIL NIL)'
    )
    text_body = "Kính gửi các đồng chí,\r\nXin gửi công văn về việc họp tại Hà Nội.\r\n".encode()
    assert pm.bodystructure.startswith(
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "8bit" %d 2 NIL NIL NIL NIL)'
        % len(text_body)
    )
    assert section_bytes(PDF_VI, pm.part_map, "1") == text_body
    assert section_bytes(PDF_VI, pm.part_map, "2") == b"JVBERi0xLjQK"
    assert pm.has_attachments
    (att,) = pm.attachments
    assert att.filename == "Công văn.pdf"
    assert (att.part, att.content_type, att.octets, att.encoding) == (
        "2", "application/pdf", 12, "base64")
    assert pm.subject == "Công văn số 12/UBND"
    assert pm.from_addrs == (Address("Nguyễn Văn A", "a@hanoi.gov.vn"),)
    assert pm.to_addrs == (
        Address("Phòng Văn thư", "vanthu@hanoi.gov.vn"), Address("", "b@hanoi.gov.vn"))
    assert pm.from_text == "Nguyễn Văn A <a@hanoi.gov.vn>"
    assert pm.sent_date == datetime(2024, 6, 3, 3, 0, tzinfo=UTC)
    assert pm.message_id == "<cv12@hanoi.gov.vn>"
    assert "ha noi" in pm.search_body and "cong van" in pm.search_body
    assert "subject: cong van so 12/ubnd" in pm.search_headers.splitlines()
    assert pm.preview.startswith("Kính gửi các đồng chí, Xin gửi")
    # ENVELOPE keeps the encoded-words (RFC 3501 §7.4.2)
    assert b'"=?UTF-8?B?Q8O0bmcgdsSDbiBz4buRIDEyL1VCTkQ=?="' in pm.envelope


def test_rfc2231_continuations_are_merged() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=z",
        "",
        "--z",
        "Content-Type: application/octet-stream",
        "Content-Disposition: attachment; filename*0*=utf-8''%C4%90%C3%A0%20;",
        " filename*1*=N%E1%BA%B5ng; filename*2=.doc",
        "",
        "x",
        "--z",
        "Content-Type: text/plain; name*0=\"long \"; name*1=\"name.txt\"",
        "Content-Disposition: attachment",
        "",
        "y",
        "--z--",
    )
    pm = parse_message(raw)
    assert b'("attachment" ("filename*" "utf-8\'\'%C4%90%C3%A0%20N%E1%BA%B5ng.doc"))' in (
        pm.bodystructure)
    assert b'("text" "plain" ("name" "long name.txt" "charset" "us-ascii")' in pm.bodystructure
    assert [a.filename for a in pm.attachments] == ["Đà Nẵng.doc", "long name.txt"]


def test_nested_three_levels() -> None:
    raw = nested3()
    pm = parse_message(raw)
    parts = [e[0] for e in pm.part_map]
    assert parts == ["", "1", "1.1", "1.1.1", "1.1.2", "1.2", "2"]
    assert section_bytes(raw, pm.part_map, "1.1.1") == b"plain text"
    assert section_bytes(raw, pm.part_map, "1.1.2") == b"<b>html</b>"
    assert section_bytes(raw, pm.part_map, "1.1.2.MIME") == b"Content-Type: text/html\r\n\r\n"
    assert section_bytes(raw, pm.part_map, "1.2") == b"iVBORw0K"
    assert section_bytes(raw, pm.part_map, "2") == b"attached notes"
    assert pm.bodystructure == (
        b"((("
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 11 0 NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "L3") NIL NIL NIL)'
        b'("image" "png" NIL "<img1>" NIL "base64" 8 NIL NIL NIL NIL)'
        b' "related" ("boundary" "L2") NIL NIL NIL)'
        b'("text" "plain" ("name" "notes.txt" "charset" "us-ascii") NIL NIL "7bit" 14 0 NIL'
        b' ("attachment" ("filename" "notes.txt")) NIL NIL)'
        b' "mixed" ("boundary" "L1") NIL NIL NIL)'
    )
    # the inline picture of the HTML is not an attachment; the notes are
    assert [a.part for a in pm.attachments] == ["2"]
    assert pm.preview == "plain text"
    assert "attached notes" in pm.search_body and "html" in pm.search_body


def test_extension_fields() -> None:
    raw = crlf(
        "Content-Type: text/plain; charset=utf-8",
        "Content-ID: <c1@x>",
        "Content-Description: =?utf-8?Q?M=C3=B4_t=E1=BA=A3?=",
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
        "Content-Language: vi, en",
        "Content-Location: http://example.vn/a.txt",
        "Content-Disposition: inline",
        "",
        "x",
    )
    pm = parse_message(raw)
    assert pm.bodystructure == (
        b'("text" "plain" ("charset" "utf-8") "<c1@x>" "=?utf-8?Q?M=C3=B4_t=E1=BA=A3?=" "7bit"'
        b' 3 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" NIL) ("vi" "en")'
        b' "http://example.vn/a.txt")'
    )


# --------------------------------------------------------------------------
# ENVELOPE


def test_envelope_group_syntax_undisclosed_recipients() -> None:
    raw = crlf(
        "Date: Tue, 4 Jun 2024 08:30:00 +0700",
        "From: Văn thư <vanthu@hanoi.gov.vn>".encode("ascii", "replace").decode(),
        "To: undisclosed-recipients:;",
        "Subject: Thông báo".encode("ascii", "replace").decode(),
        "",
        "x",
    )
    raw = crlf(
        "Date: Tue, 4 Jun 2024 08:30:00 +0700",
        '"Van thu" <vanthu@hanoi.gov.vn>'.join(["From: ", ""]),
        "To: undisclosed-recipients:;",
        "Cc: Team: a@x.vn, \"B, b\" <b@x.vn>;, c@y.vn",
        "Subject: hello \"world\"",
        "In-Reply-To: <p@x>",
        "Message-ID: <m@x>",
        "",
        "x",
    )
    pm = parse_message(raw)
    assert pm.envelope == (
        b'("Tue, 4 Jun 2024 08:30:00 +0700" "hello \\"world\\""'
        b' (("Van thu" NIL "vanthu" "hanoi.gov.vn"))'
        b' (("Van thu" NIL "vanthu" "hanoi.gov.vn"))'
        b' (("Van thu" NIL "vanthu" "hanoi.gov.vn"))'
        b" ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))"
        b' ((NIL NIL "Team" NIL)(NIL NIL "a" "x.vn")("B, b" NIL "b" "x.vn")(NIL NIL NIL NIL)'
        b'(NIL NIL "c" "y.vn"))'
        b' NIL "<p@x>" "<m@x>")'
    )
    assert pm.to_addrs == ()
    assert pm.cc_addrs == (Address("", "a@x.vn"), Address("B, b", "b@x.vn"),
                           Address("", "c@y.vn"))
    assert pm.sort_to == "" and pm.sort_cc == "a"
    assert pm.in_reply_to == "<p@x>"


def test_envelope_sender_reply_to_and_missing_fields() -> None:
    raw = crlf("From: a@x.vn", "Sender: s@x.vn", "Reply-To:", "", "")
    pm = parse_message(raw)
    assert pm.envelope == (
        b'(NIL NIL ((NIL NIL "a" "x.vn")) ((NIL NIL "s" "x.vn")) ((NIL NIL "a" "x.vn"))'
        b" NIL NIL NIL NIL NIL)"
    )


def test_envelope_address_forms() -> None:
    raw = crlf(
        "From: a@x.vn (Nguyen A), <@r1,@r2:b@y.vn>, local-only, \"q u\"@z.vn",
        "",
    )
    pm = parse_message(raw)
    assert pm.envelope.split(b" ", 2)[2].startswith(
        b'(("Nguyen A" NIL "a" "x.vn")(NIL "@r1,@r2" "b" "y.vn")'
        b'(NIL NIL "local-only" "MISSING_DOMAIN")(NIL NIL "\\"q u\\"" "z.vn"))'
    )


def test_smtputf8_raw_headers_are_literals() -> None:
    subject = "Công văn".encode()
    raw = crlf(
        b"From: " + "Nguyễn Văn A <nguyễn@hà-nội.vn>".encode(),
        b"Subject: " + subject,
        b"",
        "Nội dung".encode(),
    )
    pm = parse_message(raw)
    name = "Nguyễn Văn A".encode()
    assert pm.envelope.startswith(b"(NIL {%d}\r\n%s ((" % (len(subject), subject))
    assert b"(({%d}\r\n%s NIL {%d}\r\n" % (len(name), name, len("nguyễn".encode())) in pm.envelope
    assert pm.subject == "Công văn"
    assert pm.from_addrs == (Address("Nguyễn Văn A", "nguyễn@hà-nội.vn"),)
    assert pm.sort_from == "nguyễn"
    # no charset given: 8-bit body read as UTF-8
    assert pm.search_body == "noi dung"
    assert "subject: cong van" in pm.search_headers


def test_windows_1258_encoded_word() -> None:
    # windows-1258 spells "văn" with 0xE3 and tones as combining marks (0xD2 = U+0309)
    raw = crlf("Subject: =?windows-1258?Q?C=F4ng_v=E3n_s=F4=D2_1?=", "", "")
    pm = parse_message(raw)
    assert pm.subject == "Công văn sổ 1"  # NFC-normalized
    assert "subject: cong van so 1" in pm.search_headers


def test_encoded_words_split_and_mixed() -> None:
    # one UTF-8 character split across two encoded-words; whitespace between
    # adjacent words dropped (RFC 2047 §6.2)
    ha = "Hà".encode()
    w1 = f"=?utf-8?Q?H={ha[1]:02X}?="
    w2 = f"=?utf-8?Q?={ha[2]:02X}?="
    raw = crlf(f"Subject: Re: {w1} {w2} N=?bogus?Q?x?=", "", "")
    pm = parse_message(raw)
    assert pm.subject == "Re: Hà N" + "x"
    assert pm.sort_subject == "hà nx"


# --------------------------------------------------------------------------
# Sections (RFC 3501 §6.4.5)


def test_sections_of_simple_message() -> None:
    pm = parse_message(SIMPLE)
    header = b"From: a@b.c\r\nSubject: hi\r\n\r\n"
    assert section_bytes(SIMPLE, pm.part_map, "") == SIMPLE
    assert section_bytes(SIMPLE, pm.part_map, "HEADER") == header
    assert section_bytes(SIMPLE, pm.part_map, "TEXT") == b"Hello\r\nWorld\r\n"
    # part 1 of a non-multipart message is its body; 1.MIME the header
    assert section_bytes(SIMPLE, pm.part_map, "1") == b"Hello\r\nWorld\r\n"
    assert section_bytes(SIMPLE, pm.part_map, "1.MIME") == header
    assert section_bytes(SIMPLE, pm.part_map, "2") == b""
    assert section_bytes(SIMPLE, pm.part_map, "1.1") == b""
    assert section_bytes(SIMPLE, pm.part_map, "1.HEADER") == b""


def test_sections_of_forwarded_message() -> None:
    pm = parse_message(FORWARD)
    inner = b"Subject: inner\r\nFrom: x@y.z\r\n\r\nbody"
    assert section_bytes(FORWARD, pm.part_map, "2") == inner
    assert section_bytes(FORWARD, pm.part_map, "2.MIME") == b"Content-Type: message/rfc822\r\n\r\n"
    assert section_bytes(FORWARD, pm.part_map, "2.HEADER") == inner[: inner.index(b"body")]
    assert section_bytes(FORWARD, pm.part_map, "2.TEXT") == b"body"
    assert section_bytes(FORWARD, pm.part_map, "2.1") == b"body"
    assert section_bytes(FORWARD, pm.part_map, "2.HEADER.FIELDS (FROM)") == (
        b"From: x@y.z\r\n\r\n")
    assert section_bytes(FORWARD, pm.part_map, "1") == b"see below"
    assert section_bytes(FORWARD, pm.part_map, "1.MIME") == b"\r\n"
    assert section_bytes(FORWARD, pm.part_map, "TEXT") == FORWARD[FORWARD.index(b"--b"):]
    assert section_bytes(FORWARD, pm.part_map, "1.TEXT") == b""  # not a message/rfc822


def test_header_fields_and_not() -> None:
    raw = crlf(
        "Received: from a",
        "\tby b",
        "Subject: folded",
        " subject",
        "From: a@b.c",
        "X-Spam: yes",
        "subject: second",
        "",
        "body",
    )
    pm = parse_message(raw)
    assert section_bytes(raw, pm.part_map, "HEADER.FIELDS (SUBJECT)") == crlf(
        "Subject: folded", " subject", "subject: second", "")
    assert section_bytes(raw, pm.part_map, "HEADER.FIELDS.NOT (Received X-SPAM)") == crlf(
        "Subject: folded", " subject", "From: a@b.c", "subject: second", "")
    assert section_bytes(raw, pm.part_map, "HEADER.FIELDS", fields=["x-spam"]) == crlf(
        "X-Spam: yes", "")
    assert section_bytes(raw, pm.part_map, "HEADER.FIELDS (Nope)") == b"\r\n"
    assert render_header_fields(b"A: 1\r\nB: 2", ["b"]) == b"B: 2\r\n\r\n"


def test_part_map_is_json() -> None:
    raw = nested3()
    pm = parse_message(raw)
    stored = json.loads(pm.part_map_json())
    assert stored[0] == ["", 0, raw.index(b"\r\n\r\n") + 4, len(raw)]
    for section in ("1.1.1", "1.2.MIME", "2", "TEXT", "HEADER"):
        assert section_bytes(raw, stored, section) == section_bytes(raw, pm.part_map, section)


# --------------------------------------------------------------------------
# Broken mail


def test_bare_lf_offsets() -> None:
    raw = FORWARD.replace(b"\r\n", b"\n")
    pm = parse_message(raw)
    inner = b"Subject: inner\nFrom: x@y.z\n\nbody"
    assert section_bytes(raw, pm.part_map, "2") == inner
    assert section_bytes(raw, pm.part_map, "2.TEXT") == b"body"
    assert section_bytes(raw, pm.part_map, "1") == b"see below"
    assert b'"7bit" %d ' % len(inner) in pm.bodystructure
    assert b"\n" not in pm.bodystructure  # no literal needed


def test_normalize_crlf() -> None:
    assert normalize_crlf(b"a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd"
    assert normalize_crlf(SIMPLE) is SIMPLE
    raw = normalize_crlf(FORWARD.replace(b"\r\n", b"\n"))
    assert raw == FORWARD


def test_no_headers() -> None:
    raw = b"\r\njust a body\r\n"
    pm = parse_message(raw)
    assert section_bytes(raw, pm.part_map, "HEADER") == b"\r\n"
    assert section_bytes(raw, pm.part_map, "TEXT") == b"just a body\r\n"
    assert pm.envelope == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert pm.subject == "" and pm.sent_date is None and pm.message_id is None


def test_no_body() -> None:
    raw = b"Subject: only headers\r\nFrom: a@b.c\r\n"
    pm = parse_message(raw)
    assert section_bytes(raw, pm.part_map, "HEADER") == raw
    assert section_bytes(raw, pm.part_map, "TEXT") == b""
    assert pm.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)')
    assert pm.preview == "" and pm.search_body == ""


def test_empty_message() -> None:
    pm = parse_message(b"")
    assert pm.size == 0
    assert pm.body == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'


def test_empty_multipart() -> None:
    raw = crlf("Content-Type: multipart/mixed; boundary=q", "", "no parts here")
    pm = parse_message(raw)
    assert pm.body == b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'
    assert [e[0] for e in pm.part_map] == [""]


def test_missing_boundary_is_text() -> None:
    raw = crlf("Content-Type: multipart/mixed", "", "--foo", "", "text")
    pm = parse_message(raw)
    assert pm.body == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 15 3)'
    assert "text" in pm.search_body


def test_missing_close_delimiter_and_longer_boundary() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=ab",
        "",
        "--ab",
        "",
        "one",
        "--abc is not our boundary",
        "--ab",
        "",
        "two",
    )
    pm = parse_message(raw)
    assert section_bytes(raw, pm.part_map, "1") == b"one\r\n--abc is not our boundary"
    assert section_bytes(raw, pm.part_map, "2") == b"two\r\n"


def test_bad_charset_bad_base64_and_qp() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=z",
        "",
        "--z",
        "Content-Type: text/plain; charset=x-no-such-charset",
        "Content-Transfer-Encoding: base64",
        "",
        "SMOgIE7hu5lp!!!*",  # "Hà Nội" plus junk and broken padding
        "--z",
        "Content-Type: text/plain; charset=zlib",  # a bytes codec must be refused
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "=C4=90=C3=A0 N=E1=BA=B5ng=",
        " =ZZ",
        "--z",
        "Content-Type: text/plain; charset=iso-8859-1",
        "",
        b"caf\xe9",
        "--z--",
    )
    pm = parse_message(raw)
    assert "ha noi" in pm.search_body
    assert "da nang" in pm.search_body
    assert "cafe" in pm.search_body


def test_html_only_message() -> None:
    raw = crlf(
        "Content-Type: text/html; charset=utf-8",
        "",
        "<html><head><title>T</title><style>p{color:red}</style></head>",
        "<body><p>Xin&nbsp;ch&agrave;o</p><script>alert(1)</script>",
        "<div>Đà Nẵng</div></body></html>",
    )
    pm = parse_message(raw)
    assert pm.preview == "Xin chào Đà Nẵng"
    assert pm.search_body == "xin chao da nang"


def test_search_text_is_capped() -> None:
    big = b"A" * 100_000 + b"\r\n"
    raw = crlf("Content-Type: text/plain", "") + big * 30
    pm = parse_message(raw, max_text=50_000)
    assert len(pm.search_body) <= 50_000
    assert pm.bodystructure.startswith(
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d 30' % (len(big) * 30))


def test_garbage_never_raises() -> None:
    rng = random.Random(2024)
    seeds = [SIMPLE, ALTERNATIVE, FORWARD, PDF_VI, nested3(), b"", b"\n\n", b":::\r\n\r\n"]
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 12)):
            if data:
                data[rng.randrange(len(data))] = rng.choice(b'\r\n-:;="<>()\\\x00\xc3\xffab')
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data) + 1)]
        raw = bytes(data)
        pm = parse_message(raw)
        assert isinstance(pm, ParsedMessage)
        for section in ("", "HEADER", "TEXT", "1", "1.MIME", "2.1", "2.HEADER"):
            section_bytes(raw, pm.part_map, section)


def test_deep_nesting_is_bounded() -> None:
    depth = 200
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    raw = head + b"Content-Type: text/plain\r\n\r\nleaf\r\n"
    pm = parse_message(raw)
    assert pm.bodystructure.count(b"(") < 600


# --------------------------------------------------------------------------
# Cross-check with the stdlib parser


@pytest.mark.parametrize("raw", [ALTERNATIVE, FORWARD, PDF_VI, nested3()],
                         ids=["alternative", "forward", "pdf", "nested3"])
def test_leaf_payloads_match_stdlib(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    pm = parse_message(raw)
    numbers: list[str] = []

    def walk(part: email.message.Message, number: str) -> None:
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            for k, sub in enumerate(part.get_payload(), 1):
                walk(sub, f"{number}.{k}" if number else str(k))
        elif part.get_content_type() == "message/rfc822":
            numbers.append(number)
        else:
            numbers.append(number or "1")
            ours = section_bytes(raw, pm.part_map, number or "1")
            theirs = part.get_payload(decode=False)
            assert ours.decode("utf-8") == theirs

    walk(msg, "")
    assert numbers


# --------------------------------------------------------------------------
# Header fields, dates and sort keys


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Re: hello", "hello"),
        ("RE: Fwd: [list] Re: hello (fwd)", "hello"),
        ("Fw: [PATCH] fix", "fix"),
        ("[list]", "[list]"),  # (4): a blob is kept if nothing would remain
        ("[Fwd: Re: meeting]", "meeting"),
        ("Re[2]: status", "status"),
        ("  Re:   spaced\t out  ", "spaced out"),
        ("Công văn", "Công văn"),
        ("", ""),
    ],
)
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == base


def test_base_subject_long_input() -> None:
    # its time (linear, not quadratic) is printed by bench/pure_paths.py
    assert base_subject("x" + " (fwd)" * 50_000) == "x"
    assert base_subject("(fwd) " * 50_000 + "x") == "(fwd) " * 49_999 + "(fwd) x"


def test_single_part_attachment_message() -> None:
    raw = crlf(
        "Content-Type: application/pdf; name=a.pdf",
        "Content-Transfer-Encoding: base64",
        "",
        "JVBERi0=",
    )
    pm = parse_message(raw)
    assert pm.attachments[0].part == "1" and pm.attachments[0].filename == "a.pdf"
    raw = crlf("Content-Type: text/plain; name=a.txt", "Content-Disposition: attachment", "", "x")
    assert parse_message(raw).has_attachments
    raw = crlf("Content-Type: text/plain; name=a.txt", "", "x")
    assert not parse_message(raw).has_attachments


def test_sort_keys_and_references() -> None:
    raw = crlf(
        "From: \"Z\" <Zeta@X.vn>",
        "To: grp: ;, Beta@y.vn",
        "Subject: =?utf-8?Q?Re=3A_=5BUBND=5D_B=C3=A1o_c=C3=A1o?=",
        "References: <a@x> <b@x>\r\n\t<c@x>",
        "In-Reply-To: <c@x> (comment)",
        "",
    )
    pm = parse_message(raw)
    assert pm.subject == "Re: [UBND] Báo cáo"
    assert pm.sort_subject == "báo cáo"
    assert pm.sort_from == "zeta"
    assert pm.sort_to == "beta"
    assert pm.references == ("<a@x>", "<b@x>", "<c@x>")
    assert pm.in_reply_to == "<c@x>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 3 Jun 2024 10:00:00 +0700", datetime(2024, 6, 3, 3, 0, tzinfo=UTC)),
        ("3 Jun 2024 10:00:00 -0000", datetime(2024, 6, 3, 10, 0, tzinfo=UTC)),
        ("Mon, 3 Jun 2024 10:00:00 GMT", datetime(2024, 6, 3, 10, 0, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
        (None, None),
        ("Mon, 99 Foo 2024 99:99:99 +9999", None),
    ],
)
def test_parse_date(value: str | None, expected: datetime | None) -> None:
    assert parse_date(value) == expected


def test_to_row_matches_message_blobs_columns() -> None:
    row = parse_message(PDF_VI).to_row()
    assert set(row) == {
        "size", "envelope", "body", "bodystructure", "part_map", "sent_date", "subject",
        "from_text", "to_text", "cc_text", "message_id", "sort_subject", "sort_from",
        "sort_to", "sort_cc", "search_headers", "search_body", "preview", "has_attachments",
    }
    assert isinstance(row["part_map"], str) and json.loads(row["part_map"])
    assert row["to_text"] == "Phòng Văn thư <vanthu@hanoi.gov.vn>, b@hanoi.gov.vn"


def test_parse_of_a_10kb_message_is_repeatable() -> None:
    # ~10 KB multipart message; its parse time is printed by bench/pure_paths.py
    raw = PDF_VI.replace(b"Xin g", b"Xin g" + b"x" * 10_000)
    first = parse_message(raw).to_row()
    assert parse_message(raw).to_row() == first
    assert first["size"] == len(raw)
