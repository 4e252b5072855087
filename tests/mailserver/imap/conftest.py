"""IMAP server fixtures: a live server on ephemeral ports over the test database.

Client libraries here are synchronous (imaplib, imapclient) and run in a
thread with :func:`client`, so the server keeps serving on the test's loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import imaplib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from congvu.directory.service import Directory
from congvu.mailserver.imap.service import ImapServer, start_imap
from congvu.mailserver.mime import normalize_crlf, parse_message
from congvu.services import Services
from congvu.store import imap_messages, imapstore
from tests.conftest import DOMAIN, PASSWORD

T = TypeVar("T")

AN = f"an.nv@{DOMAIN}"
THU = f"thu.lt@{DOMAIN}"
BINH = f"binh.tq@{DOMAIN}"


@pytest.fixture
async def imap(services: Services, org: Directory) -> AsyncIterator[ImapServer]:
    srv = await start_imap(services, port=0, tls_port=0, retention=False)
    try:
        yield srv
    finally:
        await srv.stop()


async def client(fn: Callable[[], T]) -> T:
    """Run blocking client code in a thread while the server runs on this loop."""
    return await asyncio.to_thread(fn)


def login(srv: ImapServer, user: str = AN) -> imaplib.IMAP4:
    """imaplib's LOGIN only sends ASCII; our password is Vietnamese: AUTHENTICATE PLAIN."""
    c = imaplib.IMAP4("127.0.0.1", srv.port, timeout=30)
    c.authenticate("PLAIN", lambda _: f"\0{user}\0{PASSWORD}".encode())
    return c


def message(subject: str = "Báo cáo tuần", body: str = "Nội dung báo cáo.\r\n",
            sender: str = "binh.tq@hanoi.gov.vn", to: str = AN,
            date: str = "Mon, 02 Mar 2026 09:00:00 +0700", extra: str = "") -> bytes:
    from email.header import Header

    subj = Header(subject, "utf-8").encode()
    return (
        f"From: Trần Quốc Bình <{sender}>\r\nTo: {to}\r\nSubject: {subj}\r\n"
        f"Date: {date}\r\nMessage-ID: <{hashlib.md5((subject + body).encode()).hexdigest()}"
        f"@hanoi.gov.vn>\r\n{extra}MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body.encode("utf-8")


async def deliver(services: Services, address: str, raw: bytes, mailbox: str = "INBOX",
                  flags: tuple[str, ...] = (), when: datetime | None = None) -> int:
    """Put a message into a mailbox through the store (as SMTP delivery does)."""
    raw = normalize_crlf(raw)
    pm = parse_message(raw)
    row: dict[str, Any] = pm.to_row()
    row["raw"] = raw
    acc = await services.directory.get_account(address)
    async with services.db.transaction() as conn:
        mb = await imapstore.get_mailbox(conn, acc.id, mailbox)
        res = await imap_messages.append_messages(
            conn, acc.id, mb.id,
            [(hashlib.sha256(raw).digest(), row, list(flags), when or datetime.now(UTC))],
        )
    return res.uids[0]
