"""Background jobs run every so often on one node at a time.

The IMAP retention purge and the schedule-inbox expiry share the shape: a
task on every node wakes every *interval* seconds; the node that gets the
session-level advisory lock named by the job does the work, the others skip
the round (:func:`node_lock`); a failing round is logged and retried at the
next (:func:`every`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

__all__ = ["every", "node_lock"]


@asynccontextmanager
async def node_lock(conn: asyncpg.Connection, key: int) -> AsyncIterator[bool]:
    """``pg_try_advisory_lock(key)`` on ``conn``: True while this node holds it,
    False (at once, nothing held) when another node does; released on exit."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        yield False
        return
    try:
        yield True
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", key)


async def every(interval: float, job: Callable[[], Awaitable[int]], log: logging.Logger,
                done: str, failed: str) -> None:
    """Run ``job()`` now and then every ``interval`` seconds, for ever.

    A nonzero count is logged with the ``done`` format (one ``%d``); an
    exception is logged with ``failed`` and the job runs again next time.
    """
    while True:
        try:
            n = await job()
            if n:
                log.info(done, n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failed)
        await asyncio.sleep(interval)
