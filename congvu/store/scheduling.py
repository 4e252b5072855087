"""SQL that calendar scheduling needs beyond the calendar store.

Rooms and resources must never be booked twice (RFC 6638 auto-scheduling of
a location): every booking decision for one principal runs under a
transaction-level advisory lock on that principal, so two concurrent
invitations for the same room are decided one after the other, the second
seeing the first's committed booking.

A scheduling operation writes other people's calendars (attendee copies,
inboxes, the organizer's copy on a REPLY). Two crossing operations (an
organizer updating while an attendee answers) would lock those calendars in
opposite orders and deadlock, so each first takes a lock on every account it
touches, in ascending id order (:func:`lock_accounts`).
"""

from __future__ import annotations

import asyncpg

__all__ = ["BOOKING_LOCK", "INBOX_EXPIRY_LOCK", "SCHEDULING_LOCK", "expired_inbox_messages",
           "lock_accounts", "lock_accounts_by_address", "lock_bookings", "still_expired"]

# The first key of the two-key advisory lock: "book" (names the lock family).
BOOKING_LOCK = 0x626F6F6B
# "schd": accounts taking part in one scheduling operation.
SCHEDULING_LOCK = 0x73636864
# "Cinb": the schedule-inbox expiry, held (session level) by the one node running it.
INBOX_EXPIRY_LOCK = 0x43696E62


async def lock_bookings(conn: asyncpg.Connection, account_id: int) -> None:
    """Serialize booking decisions for one room/resource until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1::int, $2::int)", BOOKING_LOCK,
                       account_id)


async def lock_accounts(conn: asyncpg.Connection, account_ids: list[int]) -> None:
    """Lock the accounts one scheduling operation touches, in id order, until commit."""
    # One statement; the sorted subquery feeds the locks in ascending id order.
    await conn.execute(
        """SELECT count(pg_advisory_xact_lock($1::int, id))
           FROM (SELECT id FROM unnest($2::int[]) AS t(id) ORDER BY id) s""",
        SCHEDULING_LOCK, sorted(set(account_ids)),
    )


async def lock_accounts_by_address(conn: asyncpg.Connection, account_id: int,
                                   addresses: list[str]) -> None:
    """`lock_accounts` for ``account_id`` and the accounts behind ``addresses``
    (lower case, no ``mailto:``; unknown ones are skipped), in one statement."""
    await conn.execute(
        """SELECT count(pg_advisory_xact_lock($1::int, id))
           FROM (SELECT id FROM (SELECT $2::int AS id
                                 UNION
                                 SELECT x.account_id FROM addresses x
                                 WHERE x.address = ANY($3::text[])
                                   AND x.account_id IS NOT NULL) u
                 ORDER BY id) s""",
        SCHEDULING_LOCK, account_id, sorted(set(addresses)),
    )


async def expired_inbox_messages(conn: asyncpg.Connection, days: int,
                                 limit: int) -> list[tuple[int, int, str]]:
    """(owner_id, calendar_id, href) of schedule-inbox messages last written
    more than ``days`` days ago, at most ``limit``, grouped by inbox."""
    rows = await conn.fetch(
        """SELECT o.owner_id, o.calendar_id, o.href
           FROM calendars c
           JOIN calendar_objects o ON o.owner_id = c.owner_id AND o.calendar_id = c.id
           WHERE c.kind = 'schedule-inbox'
             AND o.updated_at < now() - make_interval(days => $1)
           ORDER BY o.owner_id, o.calendar_id
           LIMIT $2""",
        days, limit,
    )
    return [(r["owner_id"], r["calendar_id"], r["href"]) for r in rows]


async def still_expired(conn: asyncpg.Connection, owner_id: int, calendar_id: int,
                        hrefs: list[str], days: int) -> list[str]:
    """Those of ``hrefs`` still older than ``days`` (read under the owner's
    scheduling lock: a newer message may have replaced one meanwhile)."""
    rows = await conn.fetch(
        """SELECT href FROM calendar_objects
           WHERE owner_id = $1 AND calendar_id = $2 AND href = ANY($3::text[])
             AND updated_at < now() - make_interval(days => $4)""",
        owner_id, calendar_id, hrefs, days,
    )
    return [r["href"] for r in rows]
