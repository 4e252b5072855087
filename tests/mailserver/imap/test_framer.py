"""Command framing from a byte stream: literals, LITERAL+, limits (RFC 9051 §2.2, RFC 7888)."""

from __future__ import annotations

import pytest

from congvu.mailserver.imap.errors import ImapFatal
from congvu.mailserver.imap.parser import (
    CommandFramer, CommandReady, ContinuationNeeded, Rejected, parse_command,
)
from congvu.mailserver.imap.commands import Append, Noop


def feed_bytewise(framer: CommandFramer, data: bytes) -> list[object]:
    events: list[object] = []
    for i in range(len(data)):
        events.extend(framer.feed(data[i : i + 1]))
    return events


def test_simple_lines_and_pipelining() -> None:
    f = CommandFramer()
    events = f.feed(b"a NOOP\r\nb NOOP\r\nc NO")
    assert events == [CommandReady(b"a NOOP\r\n"), CommandReady(b"b NOOP\r\n")]
    assert not f.idle
    assert f.feed(b"OP\r\n") == [CommandReady(b"c NOOP\r\n")]
    assert f.idle


def test_synchronizing_literal() -> None:
    f = CommandFramer()
    assert f.feed(b"a LOGIN {4}\r\n") == [ContinuationNeeded("a", 4)]
    assert f.feed(b"us") == []
    assert f.feed(b"er {2}\r\n") == [ContinuationNeeded("a", 2)]
    events = f.feed(b"pw\r\n")
    assert events == [CommandReady(b"a LOGIN {4}\r\nuser {2}\r\npw\r\n")]
    assert parse_command(events[0].data).tag == "a"  # type: ignore[union-attr]


def test_literal_may_contain_crlf_and_braces() -> None:
    msg = b"Subject: {5}\r\n\r\nbody {3}\r\n"
    f = CommandFramer()
    data = b'A APPEND "INBOX" (\\Seen) {%d+}\r\n' % len(msg) + msg + b"\r\n"
    events = feed_bytewise(f, data)
    assert events == [CommandReady(data)]  # LITERAL+: no continuation
    cmd = parse_command(data)
    assert isinstance(cmd, Append) and cmd.messages[0].data == msg


def test_literal_too_big_synchronizing() -> None:
    f = CommandFramer(max_literal=100)
    events = f.feed(b"a APPEND INBOX {101}\r\n")
    assert len(events) == 1 and isinstance(events[0], Rejected)
    assert events[0].error.response() == (
        b"a BAD [TOOBIG] Literal of 101 octets is too large (limit 100)\r\n")
    # The client got BAD instead of "+": it does not send the literal.
    assert f.idle
    assert f.feed(b"b NOOP\r\n") == [CommandReady(b"b NOOP\r\n")]


def test_literal_too_big_nonsync_is_skipped() -> None:
    f = CommandFramer(max_literal=10)
    events = f.feed(b"a APPEND INBOX {20+}\r\n" + b"x" * 20 + b" {3+}\r\nabc\r\nb NOOP\r\n")
    assert isinstance(events[0], Rejected) and events[0].error.tag == "a"
    assert events[1:] == [CommandReady(b"b NOOP\r\n")]


def test_literal_minus() -> None:
    f = CommandFramer(max_nonsync_literal=4096)
    events = f.feed(b"a APPEND INBOX {4097+}\r\n")
    assert isinstance(events[0], Rejected)
    assert f.feed(b"x" * 4097 + b"\r\n") == []
    assert f.feed(b"b NOOP\r\n") == [CommandReady(b"b NOOP\r\n")]


def test_overlong_line_gets_bad_then_recovers() -> None:
    f = CommandFramer(max_line=1024)
    events = f.feed(b"t1 SEARCH TEXT " + b"x" * 2000)
    assert len(events) == 1 and isinstance(events[0], Rejected)
    assert events[0].error.response() == b"t1 BAD [TOOBIG] Command line too long\r\n"
    assert f.feed(b"y" * 5000) == []
    assert f.feed(b"z\r\nt2 NOOP\r\n") == [CommandReady(b"t2 NOOP\r\n")]


def test_ten_megabyte_line() -> None:
    f = CommandFramer()
    chunk = b"A" * 65536
    events = f.feed(b"big FETCH 1 (") + [e for _ in range(160) for e in f.feed(chunk)]
    assert [type(e) for e in events] == [Rejected]
    assert f.feed(b"\r\nn NOOP\r\n") == [CommandReady(b"n NOOP\r\n")]
    assert isinstance(parse_command(b"n NOOP\r\n"), Noop)


def test_overlong_line_in_one_chunk() -> None:
    f = CommandFramer(max_line=100)
    events = f.feed(b"a " + b"x" * 200 + b"\r\nb NOOP\r\n")
    assert isinstance(events[0], Rejected) and events[0].error.tag == "a"
    assert events[1:] == [CommandReady(b"b NOOP\r\n")]


def test_overlong_line_announcing_literal_skips_it() -> None:
    f = CommandFramer(max_line=100)
    events = f.feed(b"a " + b"x" * 200 + b" {5+}\r\n12345\r\nb NOOP\r\n")
    assert isinstance(events[0], Rejected)
    assert events[1:] == [CommandReady(b"b NOOP\r\n")]


def test_endless_line_is_fatal() -> None:
    f = CommandFramer(max_line=100, max_discard=10_000)
    f.feed(b"a " + b"x" * 200)
    with pytest.raises(ImapFatal) as info:
        for _ in range(100):
            f.feed(b"x" * 1000)
    assert info.value.response() == b"* BYE [TOOBIG] Command line far too long\r\n"


def test_untagged_overlong_line() -> None:
    f = CommandFramer(max_line=10)
    events = f.feed(b"(" * 50 + b"\r\n")
    assert isinstance(events[0], Rejected)
    assert events[0].error.response().startswith(b"* BAD [TOOBIG]")


def test_command_size_limit() -> None:
    f = CommandFramer(max_line=100, max_literal=1000, max_command=150)
    events = f.feed(b"a LOGIN {140}\r\n")
    assert isinstance(events[0], Rejected)


def test_empty_lines_pass_through_for_sasl() -> None:
    # An empty AUTHENTICATE client response is an empty line (RFC 9051 §6.2.2).
    f = CommandFramer()
    assert f.feed(b"\r\n") == [CommandReady(b"\r\n")]
