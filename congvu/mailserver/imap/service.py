"""IMAP listeners: STARTTLS on ``listeners.imap``, implicit TLS on ``listeners.imaps``.

Importing this module adds :func:`start_from_services` to
``congvu.server.COMPONENTS``. Tests call :func:`start_imap` with ephemeral
ports (0) and read the bound ports from the returned :class:`ImapServer`.

Each node runs one :class:`.notify.NotifyHub` (one LISTEN connection) and a
retention task that purges expunged mail older than
``settings.retention_days`` — on one node at a time, under
``pg_try_advisory_lock`` (see ``congvu.store.imap_retention``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from congvu import server as _server
from congvu.services import Services
from congvu.store import imap_retention
from congvu.store.periodic import every

from .notify import NotifyHub
from .session import Session

log = logging.getLogger(__name__)

__all__ = ["ImapServer", "start_imap"]

RETENTION_INTERVAL_SECONDS = 3600.0


@dataclass
class ImapServer:
    services: Services
    hub: NotifyHub
    servers: list[asyncio.base_events.Server] = field(default_factory=list)
    port: int | None = None
    tls_port: int | None = None
    sessions: set[asyncio.Task[None]] = field(default_factory=set)
    retention_task: asyncio.Task[None] | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      tls: bool) -> None:
        session = Session(self.services, self.hub, reader, writer, tls_active=tls)
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            await session.run()
        except asyncio.CancelledError:
            pass  # stop(): the session said BYE; end this connection's task quietly
        finally:
            self.sessions.discard(task)

    async def stop(self) -> None:
        for srv in self.servers:
            srv.close()
        for task in list(self.sessions):
            task.cancel()
        for task in list(self.sessions):
            with contextlib.suppress(BaseException):
                await task
        for srv in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 5)
        if self.retention_task is not None:
            self.retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.retention_task
        await self.hub.stop()


async def _retention_loop(services: Services) -> None:
    await every(RETENTION_INTERVAL_SECONDS,
                lambda: imap_retention.purge(services.db, services.settings.retention_days),
                log, "retention: purged %d expunged messages", "retention purge failed; will retry")


async def start_imap(services: Services, *, port: int | None = None,
                     tls_port: int | None = None, host: str | None = None,
                     retention: bool = True) -> ImapServer:
    """Start the listeners: ``port`` STARTTLS, ``tls_port`` implicit TLS; 0 picks
    an ephemeral port, None starts no such listener."""
    host = host or services.settings.listeners.host
    hub = NotifyHub(services.db)
    await hub.start()
    srv = ImapServer(services, hub)
    try:
        if port is not None:
            s = await asyncio.start_server(lambda r_, w_: srv._client(r_, w_, False), host, port,
                                           limit=256 * 1024)
            srv.servers.append(s)
            srv.port = s.sockets[0].getsockname()[1]
        if tls_port is not None and services.tls is not None:
            s = await asyncio.start_server(lambda r_, w_: srv._client(r_, w_, True), host,
                                           tls_port, ssl=services.tls, limit=256 * 1024)
            srv.servers.append(s)
            srv.tls_port = s.sockets[0].getsockname()[1]
    except BaseException:
        await srv.stop()
        raise
    if retention:
        srv.retention_task = asyncio.create_task(_retention_loop(services))
    log.info("IMAP listening on %s port %s (STARTTLS), %s (TLS)", host, srv.port, srv.tls_port)
    return srv


async def start_from_services(services: Services) -> ImapServer | None:
    """The ``congvu serve`` starter: configured ports; 0 disables a listener."""
    lst = services.settings.listeners
    if not lst.imap and not lst.imaps:
        return None
    return await start_imap(services, port=lst.imap or None, tls_port=lst.imaps or None)


if start_from_services not in _server.COMPONENTS:
    _server.COMPONENTS.append(start_from_services)
