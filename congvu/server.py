"""``congvu serve``: every listener on one asyncio loop, stopped gracefully.

Protocol packages plug in by adding a starter to ``COMPONENTS``: an async
function taking the Services and returning an object with ``async stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol
from collections.abc import Awaitable, Callable

import uvicorn

from .config import Settings
from .services import Services
from .store.db import Database, open_database
from .tlscert import ensure_certificate, server_context
from .web.app import build_app

log = logging.getLogger(__name__)


class Component(Protocol):
    async def stop(self) -> None: ...


Starter = Callable[[Services], Awaitable[Component | None]]


class HttpListener:
    """uvicorn driven from our loop (its own signal handling stays out of the way).

    One app, served in the clear on ``listeners.http`` and over TLS on
    ``listeners.https`` (the configured or self-signed certificate): CalDAV and
    the web take passwords by HTTP Basic, so clients outside loopback belong on
    the TLS port.
    """

    def __init__(self, servers: list[tuple[uvicorn.Server, asyncio.Task[None]]]) -> None:
        self.servers = servers

    @classmethod
    async def start(cls, services: Services) -> HttpListener | None:
        lst = services.settings.listeners
        if not lst.http and not lst.https:
            return None
        app = build_app(services)
        self = cls([])
        try:
            if lst.http:
                await self._serve(app, lst.host, lst.http, {})
                log.info("HTTP listening on http://%s:%d", lst.host, lst.http)
            if lst.https:
                cert, key = ensure_certificate(services.settings)
                await self._serve(app, lst.host, lst.https,
                                  {"ssl_certfile": str(cert), "ssl_keyfile": str(key)})
                log.info("HTTPS listening on https://%s:%d", lst.host, lst.https)
        except BaseException:
            await self.stop()
            raise
        return self

    async def _serve(self, app: object, host: str, port: int, tls: dict[str, str]) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None,  # type: ignore[arg-type]
            lifespan="off", access_log=False, server_header=False, **tls,  # type: ignore[arg-type]
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup()
        if server.should_exit:
            raise OSError(f"cannot listen for HTTP{'S' if tls else ''} on {host}:{port}")
        self.servers.append((server, asyncio.create_task(server.main_loop())))

    async def stop(self) -> None:
        for server, _ in self.servers:
            server.should_exit = True
        for server, task in self.servers:
            await task
            await server.shutdown()


COMPONENTS: list[Starter] = [HttpListener.start]


def _register_protocols() -> None:
    """Import protocol packages that add themselves to COMPONENTS (if present)."""
    import importlib

    for name in ("congvu.mailserver.smtp.service", "congvu.mailserver.imap.service",
                 "congvu.calendar.app", "congvu.web.webmail", "congvu.admin.web"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


async def start_all(services: Services) -> list[Component]:
    _register_protocols()
    started: list[Component] = []
    try:
        for starter in COMPONENTS:
            comp = await starter(services)
            if comp is not None:
                started.append(comp)
    except BaseException:
        await stop_all(started)
        raise
    return started


async def stop_all(components: list[Component]) -> None:
    for comp in reversed(components):
        try:
            await comp.stop()
        except Exception:
            log.exception("error while stopping %r", comp)


async def serve(settings: Settings, *, demo: bool = False,
                ready: Callable[[Services], None] | None = None) -> None:
    db: Database = await open_database(settings)
    try:
        if demo:
            from .demo import seed_demo

            await seed_demo(db, settings)
        services = Services.build(settings, db, tls=server_context(settings))
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_event.set)
        components = await start_all(services)
        log.info("congvu is up (data directory %s)", settings.data_dir)
        if ready:
            ready(services)
        await stop_event.wait()
        log.info("stopping: closing listeners, finishing what is in flight")
        await stop_all(components)
    finally:
        await db.close()
    log.info("stopped")


def run(settings: Settings, *, demo: bool = False) -> None:
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # uvloop is optional
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(settings, demo=demo))
