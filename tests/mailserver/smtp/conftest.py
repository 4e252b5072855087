"""SMTP fixtures: the listeners on ephemeral ports, a static resolver, mailbox readers.

Blocking clients (smtplib, swaks) run in a thread with :func:`client` so the
server keeps serving on the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from congvu.directory.service import Directory
from congvu.mailserver.smtp.dnsresolve import StaticResolver
from congvu.mailserver.smtp.queue import QueueWorker
from congvu.mailserver.smtp.service import SmtpServer, start_smtp
from congvu.services import Services
from tests.conftest import DOMAIN, PASSWORD

T = TypeVar("T")

AN = f"an.nv@{DOMAIN}"
THU = f"thu.lt@{DOMAIN}"
BINH = f"binh.tq@{DOMAIN}"
HOA = f"hoa.nt@{DOMAIN}"
__all__ = ["AN", "BINH", "DOMAIN", "HOA", "PASSWORD", "THU", "client", "inbox", "message"]


async def client(fn: Callable[[], T]) -> T:
    """Run blocking client code in a thread while the server runs on this loop."""
    return await asyncio.to_thread(fn)


@pytest.fixture
def resolver() -> StaticResolver:
    return StaticResolver()


@pytest.fixture
async def queue_worker(services: Services, resolver: StaticResolver) -> QueueWorker:
    return QueueWorker(services, resolver)


@pytest.fixture
async def smtp(services: Services, org: Directory, resolver: StaticResolver,
               queue_worker: QueueWorker) -> AsyncIterator[SmtpServer]:
    srv = await start_smtp(services, mx_port=0, submission_port=0, submissions_port=0,
                           resolver=resolver, queue_worker=queue_worker)
    try:
        yield srv
    finally:
        await srv.stop()


def message(subject: str = "Thông báo họp", sender: str = "someone@example.org",
            to: str = AN, body: str = "Kính gửi các đồng chí,\r\nHọp lúc 9 giờ.\r\n",
            extra: str = "") -> bytes:
    from email.header import Header

    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {Header(subject, 'utf-8').encode()}\r\n"
            f"Date: Mon, 02 Mar 2026 09:00:00 +0700\r\nMessage-ID: <m{abs(hash(subject))}@x>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n{extra}\r\n{body}").encode()


async def inbox(services: Services, address: str, mailbox: str = "INBOX") -> list[dict[str, Any]]:
    """The visible messages of a mailbox with their stored bytes, in UID order."""
    async with services.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT m.uid, m.modseq, m.size, b.raw, b.subject, b.search_body FROM mailbox_messages m"
            " JOIN mailboxes x ON x.account_id = m.account_id AND x.id = m.mailbox_id"
            " JOIN accounts a ON a.id = m.account_id JOIN message_blobs b ON b.sha256 = m.sha256"
            " WHERE a.address = $1 AND x.name = $2 AND m.expunged_at IS NULL ORDER BY m.uid",
            address, mailbox)
    return [dict(r) for r in rows]


def with_settings(services: Services, **changes: Any) -> Services:
    return replace(services, settings=replace(services.settings, **changes))
