"""End to end: mail delivered over SMTP (smtplib, the MX listener) is read over
IMAP with Python's imaplib, and an IMAP session in IDLE hears it arrive."""

from __future__ import annotations

import email
import email.policy
import smtplib

import pytest

from congvu.directory.service import Directory
from congvu.mailserver.smtp.dnsresolve import StaticResolver
from congvu.mailserver.smtp.queue import QueueWorker
from congvu.mailserver.smtp.service import SmtpServer, start_smtp
from congvu.services import Services

from .conftest import AN, client, login


@pytest.fixture
async def smtp(services: Services, org: Directory):
    resolver = StaticResolver()
    srv: SmtpServer = await start_smtp(services, mx_port=0, submission_port=0,
                                       submissions_port=0, resolver=resolver,
                                       queue_worker=QueueWorker(services, resolver))
    try:
        yield srv
    finally:
        await srv.stop()


MESSAGE = (
    "From: Sở Tài chính <vanthu@stc.example.org>\r\nTo: {to}\r\n"
    "Subject: =?utf-8?b?{subject}?=\r\nDate: Mon, 02 Mar 2026 09:00:00 +0700\r\n"
    "Message-ID: <smtp-imap-1@stc.example.org>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "Kính gửi đồng chí Giám đốc,\r\nĐề nghị duyệt dự toán ngân sách năm 2027.\r\n"
)


async def test_delivered_over_smtp_read_over_imaplib(imap, smtp):
    import base64

    subject = "Dự toán ngân sách 2027"
    raw = MESSAGE.format(to=AN, subject=base64.b64encode(subject.encode()).decode()).encode()

    def run() -> None:
        watcher = login(imap)  # already waiting in IDLE when the mail arrives
        watcher.select("INBOX")
        tag = watcher._new_tag()
        watcher.send(tag + b" IDLE\r\n")
        assert watcher.readline().startswith(b"+")

        with smtplib.SMTP("127.0.0.1", smtp.ports["mx"], timeout=30) as s:
            s.ehlo("stc.example.org")
            refused = s.sendmail("vanthu@stc.example.org", [AN], raw)
            assert refused == {}

        # RFC 2177: the new message is announced while idling.
        watcher.sock.settimeout(30)
        assert watcher.readline() == b"* 1 EXISTS\r\n"
        watcher.send(b"DONE\r\n")
        while not watcher.readline().startswith(tag + b" OK"):
            pass
        watcher.logout()

        c = login(imap)
        typ, data = c.select("INBOX")
        assert typ == "OK" and data == [b"1"]
        typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "BODY", "\"ngan sach\"")  # folded
        assert typ == "OK" and data == [b"1"]
        typ, data = c.uid("SEARCH", "SUBJECT", "\"du toan\"", "FROM", "vanthu")  # header keys
        assert typ == "OK" and data == [b"1"]
        typ, data = c.uid("FETCH", "1", "(FLAGS BODY.PEEK[])")
        assert typ == "OK"
        stored = data[0][1]
        assert b"\\Seen" not in data[0][0]
        msg = email.message_from_bytes(stored, policy=email.policy.default)
        assert msg["Subject"] == subject
        assert "dự toán ngân sách năm 2027" in msg.get_content()
        assert stored.endswith(raw.split(b"\r\n\r\n", 1)[1])  # body bytes unchanged
        # Received: trace added by the MX in front of the original header.
        assert stored.startswith(b"Received: ") or b"\r\nReceived: " in stored.split(
            b"\r\n\r\n", 1)[0]
        typ, data = c.fetch("1", "(BODY[TEXT])")  # not PEEK: sets \Seen (RFC 3501 §6.4.5)
        assert typ == "OK"
        typ, data = c.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0]
        c.logout()

    await client(run)
