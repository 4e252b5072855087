"""The CalDAV application: ``/dav/`` and ``/.well-known/caldav`` on the HTTP listener.

One ASGI endpoint takes every method under ``/dav``; it authenticates with
HTTP Basic through the directory's `Authenticator`, resolves the URL
(`congvu.calendar.resources`), and dispatches by method name to
``do_<METHOD>`` in `congvu.calendar.methods` (REPORTs in
`congvu.calendar.reports`). A `DavError` renders its own reply; anything
unexpected is logged and answered 500 — the server lives on.

``DAV_FEATURES`` is the ``DAV:`` header of OPTIONS (RFC 4791 §5.1, RFC 6638
§2): a feature is listed only once it works (scheduling appends
``calendar-schedule`` itself).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import importlib
import logging
import random
import secrets
import time
from dataclasses import dataclass

import asyncpg
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from congvu.calendar import caltz, objects
from congvu.calendar.davxml import DavError
from congvu.services import Services
from congvu.store import accounts as accounts_repo
from congvu.store import calendars as cal_repo
from congvu.store.accounts import Account
from congvu.web.app import ROUTE_PROVIDERS, Direct

log = logging.getLogger(__name__)

DAV_FEATURES: list[str] = ["1", "3", "access-control", "calendar-access", "calendar-proxy"]
ALLOW = ("OPTIONS, GET, HEAD, PUT, DELETE, MOVE, PROPFIND, PROPPATCH, MKCALENDAR, MKCOL, POST, "
         "REPORT")
REALM = "Congvu CalDAV"
MAX_BODY = 10 * 1024 * 1024
CACHE_SECONDS = 300.0
# How often a request whose transaction PostgreSQL aborted (deadlock,
# serialization failure) is run in all before the client gets a 500.
TX_ATTEMPTS = 3


@dataclass(frozen=True)
class _Cached:
    account_id: int
    password_hash: str
    at: float
    # The account as last read with its stamp (`accounts_repo.stamp`), once read so.
    account: Account | None = None
    stamp: list[int | None] | None = None


class BasicAuth:
    """HTTP Basic (RFC 7617) through ``services.auth.authenticate``.

    argon2 takes tens of milliseconds, so a verified credential is remembered
    for a few minutes, keyed by a keyed hash of ``address:password``. The
    account is still checked on every request and the remembered login only
    counts while the stored password hash is unchanged and the account
    enabled: a password change or a disable on any node ends it at once.
    The check reads the account's stamp, a small value that changes with any
    change to the account, its roles, aliases or unit; the account itself is
    read again (and re-validated) only when the stamp is not the one it was
    last read with, so every request still acts with the account as stored.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, _Cached] = {}

    async def __call__(self, request: Request, conn: asyncpg.Connection | None = None) -> Account:
        """The authenticated account; ``conn``: the request's connection, if it has one."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            raise DavError(401, None, "authentication required")
        try:
            login, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise DavError(401, None, "bad credentials") from None
        key = hashlib.blake2b(f"{login}\0{password}".encode(), key=self._key).digest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit.at < CACHE_SECONDS:
            try:
                if conn is not None:
                    account = await self._current(conn, key, hit)
                else:
                    async with self.services.db.connection() as own:
                        account = await self._current(own, key, hit)
            except Exception:
                account = None
            if account is not None:
                return account
            self._cache.pop(key, None)
        peer = request.client.host if request.client else None
        result = await self.services.auth.authenticate(login, password, peer, "caldav")
        if result.account is None:
            raise DavError(401, None, "authentication failed")
        account = result.account
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[key] = _Cached(account.id, account.password_hash or "", now)
        return account

    async def _current(self, conn: asyncpg.Connection, key: bytes,
                       hit: _Cached) -> Account | None:
        """The remembered login's account as stored now, if it still counts."""
        if (hit.stamp is not None
                and await accounts_repo.stamp(conn, hit.account_id) == hit.stamp):
            return hit.account  # checked when read with this stamp
        found = await accounts_repo.get_stamped(conn, hit.account_id)
        if found is None:
            return None
        account, stamp = found
        if not account.enabled or account.password_hash != hit.password_hash:
            return None
        self._cache[key] = _Cached(hit.account_id, hit.password_hash, hit.at, account, stamp)
        return account


def _error_response(exc: DavError) -> Response:
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    return Response(exc.body, status_code=exc.status, media_type=exc.content_type,
                    headers=headers)


class DavEndpoint:
    """The ASGI app mounted at /dav."""

    def __init__(self, services: Services) -> None:
        from congvu.calendar import methods

        self.services = services
        self.auth = BasicAuth(services)
        self.methods = methods
        # RFC 4791 §9.9: floating times are read in the organisation's zone.
        caltz.configure(services.settings.timezone)
        self._reindex: asyncio.Task[None] | None = None
        self._checked = False

    async def _check_floating(self, conn: asyncpg.Connection) -> None:
        """Once per process: objects indexed in a zone that is no longer their
        calendar's (a new configured zone, rows from before migration 009) are
        indexed again in the background."""
        self._checked = True
        try:
            async with conn.transaction():  # a failure here must not spoil the request
                stale = await cal_repo.calendars_with_stale_floating(
                    conn, caltz.default_zone().key, 1)
        except asyncpg.PostgresError:
            log.exception("checking for floating times to re-index failed")
            return
        if stale:
            self._reindex = asyncio.create_task(self._run_reindex())

    async def _run_reindex(self) -> None:
        try:
            done = await objects.reindex_stale(self.services.db)
            log.info("re-indexed %d calendar objects with floating times", done)
        except Exception:
            log.exception("re-indexing floating times failed")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        try:
            path = request.scope["path"]
            if not path.startswith("/dav"):  # older Starlette strips the mount prefix
                path = request.scope.get("root_path", "") + path
            if path.startswith("/dav/feeds/"):
                return await self.methods.feed(self.services, request, path)
            if method == "OPTIONS" and not request.headers.get("authorization"):
                return self.options()
            size = int(request.headers.get("content-length") or 0)
            if size > MAX_BODY:
                raise DavError(413, None, "request body too large")
            # The body is read before a database connection is taken, so a slow
            # client never holds one; the methods read it again from the cache.
            request._body = await self.methods.read_body(request, MAX_BODY)
            # One pooled connection for the whole request: authentication reads
            # the account on it and the methods use it (congvu.calendar.reqdb).
            async with self.services.db.connection() as conn:
                if not self._checked:
                    await self._check_floating(conn)
                actor = await self.auth(request, conn)
                if method == "OPTIONS":
                    return self.options()
                handler = getattr(self.methods, f"do_{method}", None)
                if handler is None:
                    raise DavError(405, None, f"{method} not supported")
                request.state.db = conn
                return await self._with_retry(handler, request, actor, path)
        except DavError as exc:
            return _error_response(exc)
        except Exception:
            log.exception("CalDAV %s %s failed", method, request.url.path)
            return Response("internal error", status_code=500, media_type="text/plain")

    async def _with_retry(self, handler, request: Request, actor: Account,  # type: ignore[no-untyped-def]
                          path: str) -> Response:
        """Run the handler again when PostgreSQL aborted its transaction for a
        deadlock or a serialization failure, or when a conditional write found
        the object changed since it was read and checked (``ObjectChanged``,
        nothing written; the next run decides on fresh data): nothing was
        acknowledged (DESIGN §2) and the body is still in memory, so the request
        is simply redone.
        Scheduling takes its locks in one order, so this stays rare."""
        for attempt in range(1, TX_ATTEMPTS + 1):
            try:
                return await handler(self.services, request, actor, path)  # type: ignore[no-any-return]
            except (asyncpg.exceptions.TransactionRollbackError, cal_repo.ObjectChanged) as exc:
                if attempt == TX_ATTEMPTS:
                    raise
                log.info("CalDAV %s %s: %s, retrying (%d)", request.method, path,
                         type(exc).__name__, attempt)
                await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
        raise AssertionError("unreachable")

    def options(self) -> Response:
        return Response(b"", status_code=200, headers={
            "DAV": ", ".join(DAV_FEATURES), "Allow": ALLOW, "Content-Length": "0"})


def routes(services: Services) -> list[BaseRoute]:
    endpoint = DavEndpoint(services)

    async def well_known(request: Request) -> Response:
        # RFC 6764 §5: the context path is /dav/.
        return RedirectResponse("/dav/", status_code=301)

    return [
        Route("/.well-known/caldav", well_known,
              methods=["GET", "HEAD", "PROPFIND", "OPTIONS", "POST", "REPORT"]),
        # /dav and everything under it skip Starlette's middleware and router
        # (`Direct`); the endpoint answers its own errors.
        Route("/dav", endpoint),
        Direct("/dav", app=endpoint),
    ]


ROUTE_PROVIDERS.append(routes)

# Scheduling (RFC 6638) plugs in through congvu.calendar.hooks when present.
try:
    importlib.import_module("congvu.calendar.scheduling")
except ModuleNotFoundError as _exc:
    if _exc.name != "congvu.calendar.scheduling":
        raise
