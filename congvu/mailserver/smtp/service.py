"""SMTP listeners and the outbound queue worker, as a ``congvu serve`` component.

- MX on ``listeners.smtp`` (STARTTLS offered when a certificate is loaded);
- submission on ``listeners.submission`` (STARTTLS, RFC 6409);
- submissions on ``listeners.submissions`` (implicit TLS, RFC 8314 §3.3);
- one :class:`~.queue.QueueWorker` per node.

Importing this module appends :func:`start_from_services` to
``congvu.server.COMPONENTS`` (a port of 0 disables a listener there). Tests
call :func:`start_smtp` with ``0`` for ephemeral ports and read
:attr:`SmtpServer.ports`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from congvu import server as _server
from congvu.config import ConfigError
from congvu.services import Services

from .authcheck import InboundChecker
from .dnsresolve import CachingResolver, DnsResolver, Resolver
from .policy import SmtpPolicy
from .protocol import SmtpConnection
from .queue import QueueWorker
from .ratelimit import ClientLimiter

log = logging.getLogger(__name__)
# aiosmtpd logs every command at INFO: far too much for a busy MX.
logging.getLogger("mail.log").setLevel(logging.WARNING)

__all__ = ["SmtpServer", "start_from_services", "start_smtp"]


@dataclass
class SmtpServer:
    services: Services
    ports: dict[str, int] = field(default_factory=dict)  # mx / submission / submissions
    servers: list[asyncio.base_events.Server] = field(default_factory=list)
    connections: set[SmtpConnection] = field(default_factory=set)
    queue: QueueWorker | None = None

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening, let transactions in DATA finish, close the rest."""
        for srv in self.servers:
            srv.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(c.busy for c in self.connections) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        for srv in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 5)
        if self.queue is not None:
            await self.queue.stop()


async def start_smtp(services: Services, *, mx_port: int | None = None,
                     submission_port: int | None = None, submissions_port: int | None = None,
                     host: str | None = None, resolver: Resolver | None = None,
                     queue: bool = True, queue_worker: QueueWorker | None = None,
                     dmarc_reject: str | None = None, check_inbound: bool = True) -> SmtpServer:
    """Start the listeners whose port is not None (0: an ephemeral port).

    ``resolver`` answers every DNS question (SPF, DKIM, DMARC, MX, PTR),
    behind a TTL cache; by default the system's DNS through dnspython. ``queue`` starts a worker (or uses
    ``queue_worker``); ``dmarc_reject`` is ``"reject"`` or ``"junk"`` (default:
    ``settings.dmarc_reject_action``).
    """
    s = services.settings
    dmarc_reject = dmarc_reject or s.dmarc_reject_action
    if dmarc_reject not in ("reject", "junk"):
        raise ConfigError(f"dmarc_reject_action: expected reject or junk, got {dmarc_reject!r}")
    host = host or s.listeners.host
    # Answers are kept for their TTL, as every MTA's resolver does.
    resolver = CachingResolver(resolver or DnsResolver())
    srv = SmtpServer(services)
    worker = queue_worker
    if worker is None and queue:
        worker = QueueWorker(services, resolver)
    srv.queue = worker
    wake = worker.wake if worker is not None else None
    checker = InboundChecker(resolver) if check_inbound else None
    lim = s.limits
    limiter = ClientLimiter(lim.mx_connections_per_ip, lim.mx_messages_per_ip_per_minute,
                            lim.mx_limit_exempt)
    mx = SmtpPolicy(services, submission=False, checker=checker, dmarc_reject=dmarc_reject,
                    resolver=resolver, limiter=limiter)
    msa = SmtpPolicy(services, submission=True, wake_queue=wake, resolver=resolver)
    loop = asyncio.get_running_loop()

    def factory(policy: SmtpPolicy, implicit: bool) -> SmtpConnection:
        conn = SmtpConnection(
            policy, hostname=s.hostname, limits=s.limits, submission=policy.submission,
            tls_context=services.tls, implicit_tls=implicit,
            allow_plaintext_loopback=s.allow_plaintext_loopback,
            on_close=srv.connections.discard)
        srv.connections.add(conn)
        return conn

    plan = [("mx", mx_port, mx, False), ("submission", submission_port, msa, False),
            ("submissions", submissions_port, msa, True)]
    try:
        for name, port, policy, implicit in plan:
            if port is None:
                continue
            if implicit and services.tls is None:
                log.warning("no TLS certificate: %s listener not started", name)
                continue
            server = await loop.create_server(
                lambda p=policy, i=implicit: factory(p, i), host, port,  # type: ignore[misc]
                ssl=services.tls if implicit else None, reuse_address=True)
            srv.servers.append(server)
            srv.ports[name] = server.sockets[0].getsockname()[1]
    except BaseException:
        await srv.stop(grace=0)
        raise
    if worker is not None and queue_worker is None:
        worker.start()
    log.info("SMTP listening on %s: %s", host,
             ", ".join(f"{k} {v}" for k, v in srv.ports.items()) or "nothing")
    return srv


async def start_from_services(services: Services) -> SmtpServer | None:
    """The ``congvu serve`` starter: configured ports, 0 disables a listener."""
    lst = services.settings.listeners
    return await start_smtp(services, mx_port=lst.smtp or None,
                            submission_port=lst.submission or None,
                            submissions_port=lst.submissions or None)


if start_from_services not in _server.COMPONENTS:
    _server.COMPONENTS.append(start_from_services)
