"""SQL that calendar scheduling needs beyond the calendar store.

Rooms and resources must never be booked twice (RFC 6638 auto-scheduling of
a location): every booking decision for one principal runs under a
transaction-level advisory lock on that principal, so two concurrent
invitations for the same room are decided one after the other, the second
seeing the first's committed booking.
"""

from __future__ import annotations

import asyncpg

__all__ = ["BOOKING_LOCK", "lock_bookings"]

# The first key of the two-key advisory lock: "book" (names the lock family).
BOOKING_LOCK = 0x626F6F6B


async def lock_bookings(conn: asyncpg.Connection, account_id: int) -> None:
    """Serialize booking decisions for one room/resource until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1::int, $2::int)", BOOKING_LOCK,
                       account_id)
