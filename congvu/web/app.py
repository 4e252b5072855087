"""The HTTP application: ``/healthz`` here; CalDAV, webmail and admin mount under it."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..services import Services

# Each feature package registers a function returning its routes/mounts;
# build_app() asks every one of them (CalDAV at /dav/, webmail at /, admin at /admin).
ROUTE_PROVIDERS: list[Callable[[Services], list[BaseRoute]]] = []


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
    app = Starlette(routes=routes)
    app.state.services = services
    return app
