"""The connection pool, and the embedded PostgreSQL server used when no URL is set.

``open_database(settings)`` is the one way in: with ``database_url`` (or
``CONGVU_DATABASE_URL``) it connects to that server; without, it starts (or
attaches to) the ``pgserver`` PostgreSQL in ``<data_dir>/pgdata`` so that the
admin CLI, run beside a live server, works on the same data. Migrations are
applied before the pool is handed out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs, urlparse

import asyncpg

from ..config import Settings

log = logging.getLogger(__name__)
# pgserver logs every command it runs at INFO; only its problems interest us.
logging.getLogger("pgserver").setLevel(logging.WARNING)

EMBEDDED_DB = "congvu"


@dataclass(frozen=True)
class ConnectParams:
    """What asyncpg needs, split out so tests can clone databases on the same server."""

    host: str
    port: int | None
    user: str
    password: str | None
    database: str

    def with_database(self, name: str) -> ConnectParams:
        return ConnectParams(self.host, self.port, self.user, self.password, name)

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "user": self.user, "database": self.database}
        if self.port:
            out["port"] = self.port
        if self.password:
            out["password"] = self.password
        return out


def params_from_url(url: str) -> ConnectParams:
    """Parse ``postgresql://user:pw@host:port/db?host=/socket/dir``."""
    parts = urlparse(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    return ConnectParams(
        host=host,
        port=parts.port,
        user=parts.username or os.environ.get("PGUSER", "postgres"),
        password=parts.password or None,
        database=(parts.path or "/").lstrip("/") or "postgres",
    )


_embedded: dict[Path, Any] = {}


def start_embedded(pg_dir: Path) -> ConnectParams:
    """Start or attach to the embedded server in ``pg_dir``; create the app database.

    pgserver counts the processes using a data directory and stops PostgreSQL
    when the last one exits, so a running ``congvu serve`` keeps it up for a
    concurrent ``congvu admin``.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI): harmless here
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: an external-database node never needs it

    pg_dir = pg_dir.resolve()
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # pgserver runs PostgreSQL as the unprivileged user "pgserver";
        # it must be able to reach the data directory.
        for parent in [pg_dir.parent, *pg_dir.parent.parents]:
            try:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
            except OSError:
                break
    server = _embedded.get(pg_dir)
    if server is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(pg_dir, cleanup_mode="stop")
        _embedded[pg_dir] = server
    params = params_from_url(server.get_uri())
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DB}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DB};")
    return params.with_database(EMBEDDED_DB)


# Run on every new pool connection once the store's modules registered them
# (`warm_new_connections`): a hot statement prepared and planned before the
# first request that needs it, instead of during it. A warmer must change
# nothing; its failure (a database not migrated yet) is ignored.
_WARMERS: list[Callable[[asyncpg.Connection], Awaitable[None]]] = []


def warm_new_connections(warmer: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
    if warmer not in _WARMERS:
        _WARMERS.append(warmer)


def _json_codecs_setup(warm: bool = False) -> Any:
    async def init(conn: asyncpg.Connection) -> None:
        for typ in ("json", "jsonb"):
            await conn.set_type_codec(
                typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        for warmer in _WARMERS if warm else ():
            try:
                await warmer(conn)
            except Exception as exc:  # never a reason to lose the connection
                log.debug("warming a new connection: %s", exc)

    return init


# Statements that leave state in the session (beyond the transaction): session
# advisory locks, SET/RESET, set_config(), LISTEN, DECLARE (WITH HOLD cursors),
# PREPARE. Matching too much is harmless (the connection is then reset); the
# list must not miss any such statement the code sends.
# SET LOCAL ends with its transaction (asyncpg rolls back one left open), so
# it leaves nothing behind.
_SESSION_STATE = re.compile(
    r"advisory_(?!xact_)|\bset_config\b"
    r"|(?:^|;)\s*(?:set(?!\s+local\b)|reset|listen|declare|prepare|discard)\b",
    re.IGNORECASE | re.MULTILINE,
)

_STATE_OF: dict[str, bool] = {}


class _PoolConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that is reset on release only when it needs to be.

    asyncpg's default release runs ``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release: one more round trip per request
    for every protocol. Nearly all of our statements change nothing in the
    session: transactions end at commit/rollback (asyncpg still rolls back an
    open one on release, and its cursors live inside transactions), LISTEN runs
    on dedicated connections outside the pool (``raw_connection``, the IMAP
    notify hub). So each connection notes whether a statement that may leave
    session state (see ``_SESSION_STATE``; e.g. the session advisory lock of
    the IMAP purge) ran since its last reset, and only then is it reset.
    """

    _needs_reset = True  # a fresh connection: the init callback ran statements

    def _note(self, query: object) -> None:
        if self._needs_reset or not isinstance(query, str):
            return
        hit = _STATE_OF.get(query)
        if hit is None:  # statement texts are few and constant: look each up once
            hit = _SESSION_STATE.search(query) is not None
            if len(_STATE_OF) > 4096:
                _STATE_OF.clear()
            _STATE_OF[query] = hit
        if hit:
            self._needs_reset = True

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        self._note(query)
        return await super().execute(query, *args, timeout=timeout)  # type: ignore[no-any-return]

    async def _get_statement(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._note(query)
        return await super()._get_statement(query, *args, **kwargs)


async def _reset_if_needed(conn: asyncpg.Connection) -> None:
    """The pool's reset (after asyncpg's own rollback of an open transaction)."""
    if getattr(conn, "_needs_reset", True):
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)
        conn._needs_reset = False


class Database:
    """A pool plus the parameters it was made from (LISTEN needs its own connection)."""

    def __init__(self, pool: asyncpg.Pool, params: ConnectParams) -> None:
        self.pool = pool
        self.params = params

    @classmethod
    async def connect(
        cls, params: ConnectParams, *, min_size: int = 2, max_size: int = 20
    ) -> Database:
        pool = await asyncpg.create_pool(
            **params.kwargs(),
            min_size=min_size,
            max_size=max_size,
            init=_json_codecs_setup(warm=True),
            command_timeout=60,
            connection_class=_PoolConnection,
            reset=_reset_if_needed,
        )
        assert pool is not None
        return cls(pool, params)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction: commit on success, roll back on error."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn:
            yield conn

    async def raw_connection(self) -> asyncpg.Connection:
        """A connection outside the pool, e.g. for LISTEN."""
        conn = await asyncpg.connect(**self.params.kwargs())
        await _json_codecs_setup()(conn)
        return conn


async def resolve_params(settings: Settings) -> ConnectParams:
    if settings.database_url:
        return params_from_url(settings.database_url)
    return await asyncio.to_thread(start_embedded, settings.pg_dir)


async def open_database(
    settings: Settings, *, migrate: bool = True, max_size: int = 20
) -> Database:
    """Connect (starting the embedded server if needed) and apply migrations."""
    from .migrate import apply_migrations

    params = await resolve_params(settings)
    db = await Database.connect(params, max_size=max_size)
    if migrate:
        await apply_migrations(db)
    return db
