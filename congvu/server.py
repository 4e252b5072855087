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
from .tlscert import server_context
from .web.app import build_app

log = logging.getLogger(__name__)


class Component(Protocol):
    async def stop(self) -> None: ...


Starter = Callable[[Services], Awaitable[Component | None]]


class HttpListener:
    """uvicorn driven from our loop (its own signal handling stays out of the way)."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, services: Services) -> HttpListener | None:
        lst = services.settings.listeners
        if not lst.http:
            return None
        config = uvicorn.Config(
            build_app(services), host=lst.host, port=lst.http, log_config=None,
            lifespan="off", access_log=False, server_header=False,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup()
        if server.should_exit:
            raise OSError(f"cannot listen for HTTP on {lst.host}:{lst.http}")
        self = cls(server)
        self.task = asyncio.create_task(server.main_loop())
        log.info("HTTP listening on http://%s:%d", lst.host, lst.http)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task:
            await self.task
        await self.server.shutdown()


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
