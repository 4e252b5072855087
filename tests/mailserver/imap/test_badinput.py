"""Bad input: each gets BAD/NO with a response code or a clean BYE, and other
sessions carry on (issue: "Bad input")."""

from __future__ import annotations

import asyncio

from .conftest import AN, deliver, message
from .transcript import Raw, ok


async def _selected(imap) -> Raw:
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    assert ok(await c.cmd("SELECT INBOX"))
    return c


async def test_each_bad_input_is_answered_and_others_unaffected(imap, services):
    await deliver(services, AN, message("a"))
    bystander = await _selected(imap)
    c = await _selected(imap)
    # unknown command / wrong state / malformed sequence sets
    assert (await c.cmd("XYZZY 1 2"))[-1].split(b" ", 1)[1].startswith(b"BAD")
    assert (await c.cmd("LOGIN a b"))[-1].split(b" ", 1)[1].startswith(b"BAD [CLIENTBUG]")
    for bad in ("FETCH 0 FLAGS", "FETCH 1:: FLAGS", "FETCH -1 FLAGS", "FETCH 1,,2 FLAGS",
                "FETCH 99999999999 FLAGS", "UID FETCH abc FLAGS", "STORE 1 +FLAGS (\\Bogus",
                "FETCH 5 FLAGS"):
        lines = await c.cmd(bad)
        assert lines[-1].split(b" ", 1)[1].startswith(b"BAD"), (bad, lines)
    # a line without a tag
    await c.send(b"\r\n")
    assert (await c.line()).startswith(b"* BAD")
    # oversized literal: refused at once, the client never sends it
    await c.send(b"a1 APPEND INBOX {999999999999}\r\n")
    assert (await c.line()).startswith(b"a1 BAD [TOOBIG]")
    # oversized non-synchronizing literal: refused and skipped
    await c.send(b"a2 APPEND INBOX {70000000+}\r\n")
    assert (await c.line()).startswith(b"a2 BAD [TOOBIG]")
    await c.close()
    # a 10 MB line: BAD [TOOBIG], the next command works
    c = await _selected(imap)
    await c.send(b"a3 SEARCH SUBJECT " + b"x" * (10 * 1024 * 1024) + b"\r\n")
    assert (await c.line()).startswith(b"a3 BAD [TOOBIG]")
    assert ok(await c.cmd("NOOP"))
    await c.close()
    # an unterminated literal followed by hanging up: the server just ends it
    c = await _selected(imap)
    await c.send(b"a4 APPEND INBOX {100}\r\n")
    assert (await c.line()).startswith(b"+ ")
    await c.send(b"only a little")
    await c.close()
    assert ok(await bystander.cmd("NOOP"))
    lines = await bystander.cmd("FETCH 1 (FLAGS)")
    assert lines[0] == b"* 1 FETCH (FLAGS ())\r\n"
    await bystander.close()


async def test_unauthenticated_literals_are_small_and_garbage_is_survived(imap):
    c = await Raw.connect(imap.port)
    await c.send(b"a1 LOGIN {100000}\r\n")
    assert (await c.line()).startswith(b"a1 BAD [TOOBIG]")
    await c.send(b"\x00\xff\xfe garbage \x01\r\n")
    assert (await c.line()).startswith(b"* BAD")
    assert ok(await c.cmd("NOOP"))
    await c.close()


async def test_client_disconnect_mid_command_and_during_idle(imap):
    c = await _selected(imap)
    await c.send(b"i IDLE\r\n")
    assert (await c.line()).startswith(b"+ ")
    await c.close()
    c = await _selected(imap)
    await c.send(b"i IDLE\r\n")
    await c.line()
    await c.send(b"NOT-DONE\r\n")
    assert (await c.line()).startswith(b"i BAD")
    assert ok(await c.cmd("NOOP"))
    await c.close()
    await asyncio.sleep(0)
    c = await _selected(imap)
    assert ok(await c.cmd("NOOP"))
    await c.close()
