"""The outbound queue against a second local SMTP server that accepts, defers and rejects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from congvu.admin.mailcmds import create_dkim_key
from congvu.directory.service import Directory
from congvu.mailserver.smtp.dnsresolve import DnsTempError, StaticResolver
from congvu.mailserver.smtp.queue import QueueWorker, retry_delay
from congvu.services import Services
from congvu.store import outqueue

from .conftest import AN, DOMAIN, inbox, with_settings

REMOTE = "remote.example"


class Remote:
    """A peer MTA: ok@ → 250, later@ → 451, bad@ → 550; records what it accepted."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.defer_all = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        local = address.split("@")[0].lower()
        if local.startswith("later") or self.defer_all:
            return "451 4.3.0 Try again later"
        if local.startswith("bad"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append({"from": envelope.mail_from, "rcpts": list(envelope.rcpt_tos),
                              "data": envelope.original_content, "tls": session.ssl is not None,
                              "options": list(envelope.mail_options)})
        return "250 2.0.0 Accepted"


@pytest.fixture
async def remote(services: Services) -> AsyncIterator[tuple[Remote, int]]:
    handler = Remote()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, tls_context=services.tls, enable_SMTPUTF8=True,
                     hostname="mx.remote.example", loop=loop), "127.0.0.1", 0)
    yield handler, server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
def clock(services: Services) -> list[datetime]:
    now = [datetime(2026, 3, 2, 2, 0, tzinfo=UTC)]
    services.now = lambda: now[0]
    return now


def mx_resolver() -> StaticResolver:
    return StaticResolver({(REMOTE, "MX"): [(10, f"mx.{REMOTE}")],
                           (f"mx.{REMOTE}", "A"): ["127.0.0.1"]})


async def enqueue(services: Services, rcpts: list[str], sender: str = AN) -> int:
    raw = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: Công văn\r\n"
           f"Message-ID: <cv1@{DOMAIN}>\r\n\r\nNội dung.\r\n").encode()
    async with services.db.transaction() as conn:
        account = await conn.fetchval("SELECT id FROM accounts WHERE address = $1", AN)
        return await outqueue.enqueue(conn, account_id=account, mail_from=sender,
                                      recipients=rcpts, raw=raw, smtputf8=False,
                                      now=services.now(), lifetime=timedelta(hours=120))


async def queue_rows(services: Services) -> list[outqueue.QueuedMessage]:
    async with services.db.connection() as conn:
        return await outqueue.list_queue(conn)


def dsn_parts(raw: bytes) -> tuple[str, str]:
    msg = message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"] == "auto-replied"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status",
                                                     "text/rfc822-headers"]
    status = "\n".join(str(b) for b in parts[1].get_payload())
    return parts[0].get_payload(decode=True).decode(), status


async def test_accept_defer_reject_then_delay_notice_then_expiry(
        services: Services, org: Directory, remote: tuple[Remote, int],
        clock: list[datetime]) -> None:
    handler, port = remote
    worker = QueueWorker(services, mx_resolver(), mx_port=port)
    await enqueue(services, [f"ok@{REMOTE}", f"later@{REMOTE}", f"bad@{REMOTE}"])
    assert await worker.run_once() == 1
    # accepted: over STARTTLS (opportunistic), envelope intact
    assert len(handler.received) == 1
    got = handler.received[0]
    assert got["rcpts"] == [f"ok@{REMOTE}"] and got["from"] == AN and got["tls"]
    assert any(o.startswith("SIZE=") for o in got["options"])
    # rejected: a bounce in the sender's INBOX at once
    box = await inbox(services, AN)
    assert len(box) == 1
    text, status = dsn_parts(box[0]["raw"])
    assert f"bad@{REMOTE}" in text and "không thể gửi" in text
    assert f"Final-Recipient: rfc822; bad@{REMOTE}" in status and "Status: 5.1.1" in status
    assert "Action: failed" in status and "550 5.1.1 No such mailbox" in status
    # deferred: still queued, retried after the first interval
    [q] = await queue_rows(services)
    assert {r.rcpt: r.status for r in q.recipients} == {
        f"ok@{REMOTE}": "delivered", f"later@{REMOTE}": "pending", f"bad@{REMOTE}": "failed"}
    assert q.next_attempt == clock[0] + retry_delay(1)
    assert await worker.run_once() == 0  # not due yet
    # four hours later: one delay notice, once
    clock[0] += timedelta(hours=4, minutes=1)
    assert await worker.run_once() == 1
    box = await inbox(services, AN)
    assert len(box) == 2
    text, status = dsn_parts(box[1]["raw"])
    assert "Action: delayed" in status and "Will-Retry-Until:" in status
    assert f"later@{REMOTE}" in status and "bad@" not in status
    clock[0] += timedelta(hours=5)
    await worker.run_once()
    assert len(await inbox(services, AN)) == 2  # no second delay notice
    assert len(handler.received) == 1  # delivered recipients are not sent again
    # past the lifetime: the last recipient bounces as expired and the row goes
    clock[0] += timedelta(days=5)
    await worker.run_once()
    box = await inbox(services, AN)
    assert len(box) == 3
    _text, status = dsn_parts(box[2]["raw"])
    assert "Status: 4.4.7" in status and "Action: failed" in status
    assert await queue_rows(services) == []


async def test_smarthost_and_dkim_signature_verifies(
        services: Services, org: Directory, remote: tuple[Remote, int]) -> None:
    import dkim

    key = await create_dkim_key(services.db, DOMAIN, "s1")
    svc = with_settings(services, smarthost=f"127.0.0.1:{remote[1]}")
    resolver = StaticResolver()
    worker = QueueWorker(svc, resolver)
    from congvu.mailserver.smtp.dkimsign import sign
    raw = sign(f"From: {AN}\r\nTo: x@far.example\r\nSubject: s\r\n\r\nbody\r\n".encode(),
               DOMAIN, key.selector, key.private_key)
    async with services.db.transaction() as conn:
        await outqueue.enqueue(conn, account_id=None, mail_from=AN, recipients=["x@far.example"],
                               raw=raw, smtputf8=False, now=services.now(),
                               lifetime=timedelta(hours=1))
    await worker.run_once()
    assert resolver.queries == []  # the smarthost needs no MX lookup
    data = remote[0].received[0]["data"]
    txt = f"v=DKIM1; k=rsa; p={key.public_key}".encode()
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: txt)


async def test_null_mx_no_mx_and_dns_failure(services: Services, org: Directory,
                                             remote: tuple[Remote, int],
                                             clock: list[datetime]) -> None:
    resolver = StaticResolver({
        ("nullmx.example", "MX"): [(0, "")],
        ("plain.example", "A"): ["127.0.0.1"],  # no MX: the domain itself (RFC 5321 §5.1)
        ("broken.example", "MX"): [DnsTempError("SERVFAIL")],
    })
    worker = QueueWorker(services, resolver, mx_port=remote[1])
    await enqueue(services, ["a@nullmx.example", "ok@plain.example", "c@broken.example"])
    await worker.run_once()
    assert [r["rcpts"] for r in remote[0].received] == [["ok@plain.example"]]
    [q] = await queue_rows(services)
    st = {r.rcpt: (r.status, r.last_status) for r in q.recipients}
    assert st == {"a@nullmx.example": ("failed", "5.1.10"),
                  "ok@plain.example": ("delivered", "2.0.0"),
                  "c@broken.example": ("pending", "4.4.3")}
    _t, status = dsn_parts((await inbox(services, AN))[0]["raw"])
    assert "Status: 5.1.10" in status


async def test_unreachable_server_is_retried(services: Services, org: Directory,
                                             clock: list[datetime]) -> None:
    resolver = StaticResolver({(REMOTE, "MX"): [(10, "a.mx"), (20, "b.mx")],
                               ("a.mx", "A"): ["127.0.0.1"], ("b.mx", "A"): ["127.0.0.1"]})
    worker = QueueWorker(services, resolver, mx_port=1, timeout=5)  # nothing listens on port 1
    await enqueue(services, [f"ok@{REMOTE}"])
    await worker.run_once()
    [q] = await queue_rows(services)
    assert q.recipients[0].status == "pending" and q.recipients[0].last_status == "4.4.1"
    assert q.attempts == 1 and q.last_error
    assert await inbox(services, AN) == []


async def test_two_nodes_never_send_twice(services: Services, org: Directory,
                                          remote: tuple[Remote, int]) -> None:
    for i in range(12):
        await enqueue(services, [f"ok{i}@{REMOTE}"])
    a = QueueWorker(services, mx_resolver(), mx_port=remote[1], concurrency=4)
    b = QueueWorker(services, mx_resolver(), mx_port=remote[1], concurrency=4)
    while sum(await asyncio.gather(a.run_once(), b.run_once())):
        pass
    rcpts = sorted(r["rcpts"][0] for r in remote[0].received)
    assert rcpts == sorted(f"ok{i}@{REMOTE}" for i in range(12))
    assert await queue_rows(services) == []


async def test_submission_wakes_the_worker(services: Services, org: Directory,
                                           remote: tuple[Remote, int]) -> None:
    """End to end: submit over SMTP; the running worker delivers without polling."""
    import smtplib

    from congvu.mailserver.smtp.service import start_smtp
    from .conftest import PASSWORD, client
    from .test_submission import auth_plain

    worker = QueueWorker(services, mx_resolver(), mx_port=remote[1], poll_interval=3600)
    srv = await start_smtp(services, submission_port=0, resolver=mx_resolver(),
                           queue_worker=worker)
    worker.start()
    try:
        def send() -> None:
            with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30) as s:
                s.ehlo("laptop")
                assert auth_plain(s, AN, PASSWORD)[0] == 235
                s.sendmail(AN, [f"ok@{REMOTE}"], f"From: {AN}\r\nSubject: x\r\n\r\nhi\r\n".encode())
        await client(send)
        for _ in range(200):
            if remote[0].received:
                break
            await asyncio.sleep(0.05)
        assert remote[0].received[0]["rcpts"] == [f"ok@{REMOTE}"]
    finally:
        await srv.stop()


class SevenBitPeer(SMTP):
    """An old MTA: EHLO without 8BITMIME."""

    async def smtp_EHLO(self, hostname: str) -> None:
        self._set_rset_state()
        self.session.extended_smtp = True
        self.session.host_name = hostname
        await self.push(f"250-{self.hostname}\r\n250-SIZE 10240000\r\n250 HELP")


async def test_eight_bit_mail_to_a_seven_bit_server_is_returned(
        services: Services, org: Directory, clock: list[datetime]) -> None:
    handler = Remote()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SevenBitPeer(handler, hostname="mx.remote.example", loop=loop), "127.0.0.1", 0)
    try:
        worker = QueueWorker(services, mx_resolver(), mx_port=server.sockets[0].getsockname()[1])
        await enqueue(services, [f"ok@{REMOTE}"])  # "Nội dung" in UTF-8: 8-bit data
        assert await worker.run_once() == 1
    finally:
        server.close()
    assert handler.received == []  # RFC 6152 §3: not sent as 8-bit, not downgraded
    [bounce] = await inbox(services, AN)
    _text, status = dsn_parts(bounce["raw"])
    assert "Status: 5.6.3" in status and "8BITMIME" in status

