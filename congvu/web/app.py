"""The HTTP application: ``/healthz`` here; CalDAV, webmail and admin mount under it."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..services import Services

# Each feature package registers a function returning its routes/mounts;
# build_app() asks every one of them (CalDAV at /dav/, webmail at /, admin at /admin).
ROUTE_PROVIDERS: list[Callable[[Services], list[BaseRoute]]] = []


class Direct(Mount):
    """A mount served ahead of Starlette's middleware and router.

    A request for ``path`` itself or anything under ``path/`` goes straight to
    ``app``, with the scope as the server made it (``path`` the full path, no
    ``root_path`` added): each layer costs CPU on every request, which counts
    on a protocol's hot path (CalDAV). ``app`` must answer its own errors, as
    Starlette's exception middleware would not see them; an exception that
    still escapes gets the same bare 500 as from Starlette's error middleware
    (if nothing was sent yet) and goes on to the server, which logs it.
    Requests the app server sends with a ``root_path`` take the ordinary route.
    """


class HttpApp(Starlette):
    """The Starlette app, with `Direct` mounts dispatched before everything else."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes)
        self._direct: tuple[tuple[str, int, ASGIApp], ...] = tuple(
            (r.path, len(r.path), r.app) for r in routes if isinstance(r, Direct))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path: str = scope["path"]
            for prefix, size, app in self._direct:
                if path.startswith(prefix) and (len(path) == size or path[size] == "/"):
                    scope["app"] = self
                    await _serve_direct(app, scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


async def _serve_direct(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    started = False

    async def sender(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, sender)
    except Exception:
        if not started:
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
        raise


def build_app(services: Services) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        try:
            async with services.db.connection() as conn:
                await conn.fetchval("SELECT 1")
        except Exception as exc:  # the check's whole point is to report any failure
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__, "database": "ok"})

    routes: list[BaseRoute] = [Route("/healthz", healthz)]
    for provider in ROUTE_PROVIDERS:
        routes.extend(provider(services))
    app = HttpApp(routes)
    app.state.services = services
    return app
