"""Real clients on ephemeral ports: imapclient, aioimaplib, mbsync (isync), and
COMPRESS=DEFLATE (RFC 4978) end to end."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import aioimaplib
from imapclient import IMAPClient

from tests.conftest import PASSWORD

from .conftest import AN, THU, client, deliver, message
from .transcript import Raw, ok


async def test_imapclient_session(imap, services):
    await deliver(services, AN, message("Thông báo nghỉ lễ", "Nghỉ lễ 30/4.\r\n"))

    def run() -> None:
        with IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=30) as c:
            c.plain_login(AN, PASSWORD)  # AUTHENTICATE PLAIN: the password is not ASCII
            assert c.has_capability("IDLE") and c.has_capability("MOVE")
            folders = {name: flags for flags, _delim, name in c.list_folders()}
            assert b"\\Sent" in folders["Sent"]
            name = "Văn bản đến"
            c.create_folder(name)
            assert name in [n for _f, _d, n in c.list_folders()]
            info = c.select_folder("INBOX")
            assert info[b"EXISTS"] == 1 and info[b"UIDNEXT"] == 2
            uids = c.search(["SUBJECT", "nghi le"])
            assert uids == [1]
            data = c.fetch(uids, ["ENVELOPE", "FLAGS", "BODY.PEEK[]", "RFC822.SIZE"])
            env = data[1][b"ENVELOPE"]
            assert env.subject.startswith(b"=?utf-8?")
            c.add_flags(1, [b"\\Flagged"])
            assert c.get_flags(1)[1] == (b"\\Flagged",)
            c.append(name, message("bản nháp"), flags=[b"\\Seen"])
            c.move([1], name)
            assert c.folder_status(name, [b"MESSAGES"])[b"MESSAGES"] == 2
            assert c.namespace().other[0][0] == "Other Users/"
            assert c.get_quota_root("INBOX")[0].quota_roots == [""]
            c.select_folder(name)
            c.idle()
            deliver_task = asyncio.run_coroutine_threadsafe(
                deliver(services, AN, message("mới"), mailbox=name), loop)
            deliver_task.result(30)
            responses = c.idle_check(timeout=30)
            c.idle_done()
            assert (3, b"EXISTS") in responses

    loop = asyncio.get_running_loop()
    await client(run)


async def test_aioimaplib_session(imap, services):
    await deliver(services, THU, message("Lịch công tác", to=THU))
    c = aioimaplib.IMAP4(host="127.0.0.1", port=imap.port, timeout=30)
    await c.wait_hello_from_server()
    res = await c.login(THU, "wrong")
    assert res.result == "NO"
    c2 = aioimaplib.IMAP4(host="127.0.0.1", port=imap.port, timeout=30)
    await c2.wait_hello_from_server()
    # aioimaplib sends the password quoted; ours is UTF-8, which LOGIN accepts.
    res = await c2.login(THU, PASSWORD)
    assert res.result == "OK", res
    res = await c2.select("INBOX")
    assert res.result == "OK" and b"1 EXISTS" in res.lines
    res = await c2.uid("fetch", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert res.result == "OK"
    res = await c2.search("UNSEEN")
    assert res.result == "OK" and res.lines[0] == b"1"
    idle = await c2.idle_start(timeout=30)
    await deliver(services, THU, message("Lịch 2", to=THU))
    pushed = await c2.wait_server_push()
    c2.idle_done()
    await asyncio.wait_for(idle, 30)
    assert b"2 EXISTS" in pushed
    await c2.logout()
    await c.logout()


async def test_compress_deflate(imap, services):
    await deliver(services, AN, message("nén", "x" * 5000 + "\r\n"))
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    lines = await c.cmd("COMPRESS DEFLATE")
    assert ok(lines)
    c.start_compress()
    assert ok(await c.cmd("SELECT INBOX"))
    lines = await c.cmd("FETCH 1 BODY.PEEK[TEXT]")
    assert b"x" * 5000 in lines[0]
    caps = (await c.cmd("CAPABILITY"))[0]
    assert b"COMPRESS=DEFLATE" not in caps
    lines = await c.cmd("COMPRESS DEFLATE")
    assert lines[-1].split(b" ", 1)[1].startswith(b"NO [COMPRESSIONACTIVE]")
    await c.close()


async def test_mbsync_syncs_down_and_a_change_back_up(imap, services, tmp_path: Path):
    password = "mbsync-pass-2026"
    await services.directory.set_password(AN, password, "test")
    for s in ("một", "hai", "ba"):
        await deliver(services, AN, message(s))
    maildir = tmp_path / "mail"
    maildir.mkdir()
    cert = services.settings.cert_path
    config = tmp_path / "mbsyncrc"
    config.write_text(f"""
IMAPAccount congvu
Host 127.0.0.1
Port {imap.port}
User {AN}
Pass {password}
SSLType STARTTLS
CertificateFile {cert}
AuthMechs LOGIN

IMAPStore remote
Account congvu

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
""")

    def mbsync() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["mbsync", "-c", str(config), "-a"], capture_output=True,
                              text=True, timeout=120)

    res = await client(mbsync)
    assert res.returncode == 0, res.stderr + res.stdout
    cur_new = list((maildir / "INBOX" / "new").iterdir()) + \
        list((maildir / "INBOX" / "cur").iterdir())
    assert len(cur_new) == 3
    # Mark one read and one deleted locally (maildir flags), then sync up.
    first, second = sorted(cur_new)[:2]
    cur = maildir / "INBOX" / "cur"
    first.rename(cur / (first.name.split(":2,")[0] + ":2,S"))
    second.rename(cur / (second.name.split(":2,")[0] + ":2,T"))
    res = await client(mbsync)
    assert res.returncode == 0, res.stderr + res.stdout
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN, password))
    assert ok(await c.cmd("SELECT INBOX"))
    lines = await c.cmd("SEARCH SEEN")
    assert len(lines[0].split()) == 3  # one \Seen message left
    assert b"MESSAGES 2" in (await c.cmd("STATUS INBOX (MESSAGES)"))[0]
    await c.close()
