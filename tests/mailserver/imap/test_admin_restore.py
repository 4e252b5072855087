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
