"""The one database connection of a CalDAV request.

`congvu.calendar.app` takes one pooled connection per authenticated request,
reads the account for authentication on it and keeps it in the request's
state; the methods use it through `connection` and `transaction` here
instead of acquiring a second one (each acquire/release pair costs work and,
when the pool resets the connection, a round trip). Without one (the
unauthenticated feed URL, tests calling a method directly) they fall back to
the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.requests import Request

__all__ = ["connection", "transaction"]


def _held(request: Request) -> asyncpg.Connection | None:
    return getattr(request.state, "db", None)


@asynccontextmanager
async def connection(services: Any, request: Request) -> AsyncIterator[asyncpg.Connection]:
    conn = _held(request)
    if conn is not None:
        yield conn
        return
    async with services.db.connection() as conn:
        yield conn


@asynccontextmanager
async def transaction(services: Any, request: Request) -> AsyncIterator[asyncpg.Connection]:
    """Commit on success, roll back on error (acknowledge only after it returned)."""
    conn = _held(request)
    if conn is not None:
        async with conn.transaction():
            yield conn
        return
    async with services.db.transaction() as conn:
        yield conn
