"""Outbound delivery: queue workers on every node.

A worker claims due messages (``FOR UPDATE SKIP LOCKED`` plus a lease, see
``congvu.store.outqueue``), routes each recipient domain through the
configured smarthost or its MX hosts (RFC 5321 §5.1: MX by preference, the
domain's own address when it has no MX, RFC 7505 null MX means "accepts no
mail"), and hands the message over with aiosmtplib, upgrading with STARTTLS
whenever the server offers it (opportunistic, RFC 3207 / RFC 7435: an MX's
certificate is not verified).

Each recipient keeps its own outcome: 2xx delivered, 5xx failed, 4xx or no
connection retried after a growing interval (:func:`retry_delay`) until the
message's lifetime (``queue_lifetime_hours``) runs out (RFC 5321 §4.5.4.1).
Once a message has waited :attr:`QueueWorker.delay_notice_after`, its sender
gets one delay notice; failed and expired recipients are reported in a DSN
(RFC 3464) delivered to the sender's mailbox in the same transaction that
records the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosmtplib

from ...services import Services
from ...store import delivery, outqueue
from ...store.outqueue import QueuedMessage, QueuedRecipient, RecipientResult
from ..mime import parse_message
from .dnsresolve import DnsTempError, Resolver
from .dsn import DsnRecipient, build_dsn

log = logging.getLogger(__name__)

__all__ = ["QueueWorker", "retry_delay"]

_BACKOFF = (5, 10, 20, 40, 80, 160)  # minutes, then every 4 hours


def retry_delay(attempts: int) -> timedelta:
    """5, 10, 20, 40, 80, 160 minutes, then every 4 hours (RFC 5321 §4.5.4.1:
    at least 30 minutes is usual; the first retries are faster because most
    temporary failures are greylisting)."""
    if attempts <= len(_BACKOFF):
        return timedelta(minutes=_BACKOFF[max(attempts, 1) - 1])
    return timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class _Route:
    hosts: list[tuple[str, int, str]]  # (address, port, name for Remote-MTA)
    error: RecipientResult | None = None  # a verdict for the whole domain


def _result(rcpt: str, code: int, reply: str, mta: str | None) -> RecipientResult:
    text = " ".join(reply.split())
    enhanced = text.split(" ", 1)[0] if text[:1].isdigit() and text[1:2] == "." else None
    if 200 <= code < 300:
        status = "delivered"
    elif 500 <= code < 600:
        status = "failed"
    else:
        status = "pending"
    if enhanced is None:
        enhanced = {"delivered": "2.0.0", "failed": "5.0.0"}.get(status, "4.0.0")
    return RecipientResult(rcpt, status, code, enhanced, f"{code} {text}", mta)


class QueueWorker:
    """Delivers the queue; ``run_once`` is one pass (tests call it directly)."""

    def __init__(self, services: Services, resolver: Resolver, *,
                 smarthost: str | None = None, mx_port: int = 25, concurrency: int = 8,
                 poll_interval: float = 30.0, lease: timedelta = timedelta(minutes=15),
                 delay_notice_after: timedelta = timedelta(hours=4),
                 timeout: float = 60.0) -> None:
        self.services = services
        self.resolver = resolver
        self.smarthost = smarthost if smarthost is not None else services.settings.smarthost
        self.mx_port = mx_port
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease = lease
        self.delay_notice_after = delay_notice_after
        self.timeout = timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    # -- lifecycle --------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="smtp-queue")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                while await self.run_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbound queue pass failed; will retry")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim and attempt what is due now; return how many messages were tried."""
        async with self.services.db.connection() as conn:
            batch = await outqueue.claim(conn, self.services.now(), self.lease, self.concurrency)
        if batch:
            await asyncio.gather(*(self._attempt(m) for m in batch))
        return len(batch)

    # -- one message ------------------------------------------------------------

    async def _attempt(self, msg: QueuedMessage) -> None:
        try:
            by_domain: dict[str, list[QueuedRecipient]] = defaultdict(list)
            for r in msg.pending:
                by_domain[r.domain].append(r)
            results: list[RecipientResult] = []
            for domain, rcpts in by_domain.items():
                results += await self._deliver_domain(msg, domain, [r.rcpt for r in rcpts])
            await self._finish(msg, results)
        except Exception:
            log.exception("queue message %d: attempt failed; lease will expire", msg.id)

    async def _finish(self, msg: QueuedMessage, results: list[RecipientResult]) -> None:
        now = self.services.now()
        pending = [r for r in results if r.status == "pending"]
        if pending and now >= msg.expires_at:
            # RFC 3463 X.4.7: delivery time expired
            pending_expired = [RecipientResult(r.rcpt, "failed", r.code, "4.4.7",
                                               f"delivery time expired; last: {r.reply}",
                                               r.remote_mta) for r in pending]
            results = [r for r in results if r.status != "pending"] + pending_expired
            pending = []
        failed = [r for r in results if r.status == "failed"]
        notify_delay = bool(pending) and not msg.delay_notified and \
            now - msg.created_at >= self.delay_notice_after
        error = "; ".join(f"{r.rcpt}: {r.reply}" for r in pending)[:2000] or None
        for r in results:
            log.info("queue %d: %s -> %s (%s)", msg.id, r.rcpt, r.status, r.reply)
        async with self.services.db.transaction() as conn:
            await outqueue.finish_attempt(
                conn, msg.id, results, now=now,
                next_attempt=now + retry_delay(msg.attempts) if pending else None,
                error=error, delay_notified=True if notify_delay else None)
            if failed:
                await self._notify(conn, msg, "failed", failed, now)
            if notify_delay:
                await self._notify(conn, msg, "delayed", pending, now)
            if not pending:
                await outqueue.remove(conn, msg.id)

    async def _notify(self, conn: object, msg: QueuedMessage, action: str,
                      results: list[RecipientResult], now: datetime) -> None:
        """A DSN to the sender: into its mailbox if local, else queued with <>."""
        if not msg.mail_from:
            return  # RFC 5321 §4.5.5: a bounce is never bounced
        dsn = build_dsn(
            action=action, hostname=self.services.settings.hostname, sender=msg.mail_from,
            original=msg.raw, arrival=msg.created_at, now=now,
            retry_until=msg.expires_at if action == "delayed" else None,
            recipients=[DsnRecipient(r.rcpt, r.enhanced or "5.0.0", r.reply, r.remote_mta)
                        for r in results])
        from ...directory.addresses import normalize_address
        from ...store.errors import Invalid

        try:
            sender = normalize_address(msg.mail_from)
        except Invalid:
            return
        found = await delivery.resolve_address(conn, sender)  # type: ignore[arg-type]
        if found.kind in ("account", "alias") and found.account_ids:
            await delivery.deliver(conn, parse_message(dsn), dsn,  # type: ignore[arg-type]
                                   list(found.account_ids), internal_date=now)
        elif found.kind == "foreign":
            await outqueue.enqueue(conn, account_id=None, mail_from="",  # type: ignore[arg-type]
                                   recipients=[msg.mail_from], raw=dsn, smtputf8=False,
                                   now=now, lifetime=msg.expires_at - msg.created_at)

    # -- routing ------------------------------------------------------------------

    async def _route(self, domain: str) -> _Route:
        if self.smarthost:
            host, _, port = self.smarthost.rpartition(":")
            if not host:
                host, port = port, "25"
            return _Route(await self._addresses(host, int(port)))
        mx = await self.resolver.query(domain, "MX")
        if any(name in ("", ".") for _p, name in mx) and len(mx) == 1:
            # RFC 7505 §3: a null MX says the domain accepts no mail
            return _Route([], RecipientResult("", "failed", 556, "5.1.10",
                                              f"556 5.1.10 {domain} does not accept mail"))
        names = [name for _p, name in sorted(mx)] if mx else [domain]  # RFC 5321 §5.1
        hosts: list[tuple[str, int, str]] = []
        for name in names:
            hosts += await self._addresses(name, self.mx_port)
        if not hosts and not mx:
            # neither MX nor address: RFC 3463 X.1.2 bad destination system address
            return _Route([], RecipientResult("", "failed", 550, "5.1.2",
                                              f"550 5.1.2 {domain} has no mail server"))
        if not hosts:
            # MX names without addresses may be a DNS hiccup: X.4.4 unable to route
            return _Route([], RecipientResult("", "pending", 451, "4.4.4",
                                              f"451 4.4.4 no address for the MX hosts of {domain}"))
        return _Route(hosts)

    async def _addresses(self, name: str, port: int) -> list[tuple[str, int, str]]:
        try:
            import ipaddress

            ipaddress.ip_address(name)
            return [(name, port, name)]
        except ValueError:
            pass
        out = [(a, port, name) for a in await self.resolver.query(name, "A")]
        out += [(a, port, name) for a in await self.resolver.query(name, "AAAA")]
        return out

    async def _deliver_domain(self, msg: QueuedMessage, domain: str,
                              rcpts: list[str]) -> list[RecipientResult]:
        try:
            route = await self._route(domain)
        except DnsTempError as exc:
            return [RecipientResult(r, "pending", None, "4.4.3", f"DNS: {exc}") for r in rcpts]
        if route.error is not None:
            e = route.error
            return [RecipientResult(r, e.status, e.code, e.enhanced, e.reply) for r in rcpts]
        last = "no mail server reachable"
        for addr, port, name in route.hosts:
            try:
                return await self._session(msg, addr, port, name, rcpts)
            except (TimeoutError, OSError, aiosmtplib.SMTPException) as exc:
                # RFC 5321 §5.1: try the next address; the whole attempt fails
                # temporarily only when none of them answers.
                last = f"{name} [{addr}]: {exc}"
                log.info("queue %d: %s", msg.id, last)
        return [RecipientResult(r, "pending", None, "4.4.1", last) for r in rcpts]

    async def _session(self, msg: QueuedMessage, addr: str, port: int, name: str,
                       rcpts: list[str]) -> list[RecipientResult]:
        smtp = aiosmtplib.SMTP(hostname=addr, port=port, timeout=self.timeout,
                               local_hostname=self.services.settings.hostname,
                               start_tls=None, tls_context=self._tls, validate_certs=False)
        await smtp.connect()
        try:
            await smtp.ehlo()
            options = []
            if msg.smtputf8:
                if not smtp.supports_extension("smtputf8"):
                    return [_result(r, 553, "5.6.7 the receiving server does not support "
                                    "SMTPUTF8 (RFC 6531)", name) for r in rcpts]
                options.append("SMTPUTF8")
            if any(b > 127 for b in msg.raw):
                if not smtp.supports_extension("8bitmime"):
                    # RFC 6152 §3: downgrade or return the message; we do not
                    # downgrade (it would also break the DKIM signature).
                    return [_result(r, 554, "5.6.3 the receiving server does not support "
                                    "8BITMIME (RFC 6152) and the message has 8-bit data",
                                    name) for r in rcpts]
                options.append("BODY=8BITMIME")
            if smtp.supports_extension("size"):
                options.append(f"SIZE={len(msg.raw)}")
            enc = "utf-8" if msg.smtputf8 else "ascii"
            try:
                await smtp.mail(msg.mail_from, options=options, encoding=enc)
            except aiosmtplib.SMTPResponseException as exc:
                return [_result(r, exc.code, exc.message, name) for r in rcpts]
            results: dict[str, RecipientResult] = {}
            accepted = []
            for r in rcpts:
                try:
                    await smtp.rcpt(r, encoding=enc)
                    accepted.append(r)
                except aiosmtplib.SMTPResponseException as exc:
                    results[r] = _result(r, exc.code, exc.message, name)
            if accepted:
                try:
                    resp = await smtp.data(msg.raw)
                    for r in accepted:
                        results[r] = _result(r, resp.code, resp.message, name)
                except aiosmtplib.SMTPResponseException as exc:
                    for r in accepted:
                        results[r] = _result(r, exc.code, exc.message, name)
            with contextlib.suppress(Exception):
                await smtp.quit()
            return [results[r] for r in rcpts]
        finally:
            smtp.close()
