"""Expiry of schedule-inbox messages (RFC 6638 §4 leaves their removal to clients).

Thunderbird and DAVx5 read scheduling messages from the calendar copies and
never delete them from the schedule inbox, so without this every invitation,
update, cancellation and reply an official ever received would stay there.
A message whose last write is older than ``settings.schedule_inbox_days``
(default 30; 0 keeps them) is removed, as a client's DELETE would be (a
tombstone, so sync-collection reports it).

Like the IMAP retention purge, it runs in the background on one node at a
time: the node holding the session-level advisory lock ``INBOX_EXPIRY_LOCK``
works, the others skip the round. Each inbox is cleaned in its own short
transaction under its owner's scheduling lock (the lock every scheduling
write into that inbox holds), re-checking the age there, so a message that
replaced an old one meanwhile (same href, RFC 5546 §2.1.5) is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from itertools import groupby

import asyncpg

from congvu import server as _server
from congvu.services import Services
from congvu.store import calendars as cal_repo
from congvu.store import scheduling as sched_repo
from congvu.store.errors import NotFound
from congvu.store.periodic import every, node_lock

log = logging.getLogger(__name__)

__all__ = ["InboxExpiry", "expire", "start_from_services"]

INTERVAL_SECONDS = 3600.0
BATCH = 1000


async def expire(services: Services, days: int | None = None) -> int:
    """One round: remove expired messages from every schedule inbox; count them.
    0 at once when another node is doing it or expiry is off."""
    days = services.settings.schedule_inbox_days if days is None else days
    if days <= 0:
        return 0
    removed = 0
    async with (services.db.connection() as conn,
                node_lock(conn, sched_repo.INBOX_EXPIRY_LOCK) as mine):
        if not mine:
            return 0  # another node is expiring
        while True:
            found = await sched_repo.expired_inbox_messages(conn, days, BATCH)
            if not found:
                break
            done = 0
            for (owner_id, calendar_id), group in groupby(found, key=lambda f: f[:2]):
                done += await _expire_inbox(conn, owner_id, calendar_id,
                                            [href for _, _, href in group], days)
            removed += done
            if done == 0 or len(found) < BATCH:
                break  # the rest was renewed meanwhile: next round
    return removed


async def _expire_inbox(conn: asyncpg.Connection, owner_id: int, calendar_id: int,
                        hrefs: list[str], days: int) -> int:
    async with conn.transaction():
        await sched_repo.lock_accounts(conn, [owner_id])
        try:
            inbox = await cal_repo.get_calendar_by_id(conn, owner_id, calendar_id)
        except NotFound:
            return 0
        n = 0
        for href in await sched_repo.still_expired(conn, owner_id, calendar_id, hrefs, days):
            await cal_repo.delete_object(conn, inbox, href)
            n += 1
        return n


@dataclass
class InboxExpiry:
    """The background task of one node (a ``congvu serve`` component)."""

    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _loop(services: Services, interval: float) -> None:
    await every(interval, lambda: expire(services), log,
                "schedule inboxes: removed %d expired scheduling messages",
                "schedule-inbox expiry failed; will retry")


async def start_from_services(services: Services,
                              interval: float = INTERVAL_SECONDS) -> InboxExpiry | None:
    """The ``congvu serve`` starter; None when expiry is off (0 days)."""
    if services.settings.schedule_inbox_days <= 0:
        return None
    return InboxExpiry(asyncio.create_task(_loop(services, interval)))


if start_from_services not in _server.COMPONENTS:
    _server.COMPONENTS.append(start_from_services)
