"""Schedule-inbox messages expire after ``schedule_inbox_days`` (issue 5).

Thunderbird and DAVx5 never empty the schedule inbox; the server removes
messages older than the setting, in the background, on one node at a time,
as a client's DELETE would (a tombstone for sync-collection). A message that
a newer one replaced meanwhile is kept. The calendar copies stay.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from congvu.calendar import inbox_expiry
from congvu.services import Services
from congvu.store import calendars as repo
from congvu.store import scheduling as sched_repo
from tests.caldav.sched_helpers import AN, BINH, THU, account, copy, ics, inbox, put


async def _inbox_rows(services: Services, who: str) -> list[tuple[str, str]]:
    own = await account(services.directory, who)
    async with services.db.connection() as conn:
        box = await repo.special_collection(conn, repo.account_owner(own), "schedule-inbox")
        return [(r["href"], r["uid"]) for r in await conn.fetch(
            "SELECT href, uid FROM calendar_objects WHERE owner_id = $1 AND calendar_id = $2"
            " ORDER BY uid", box.owner_id, box.id)]


async def _age(services: Services, who: str, uid: str, days: int) -> None:
    own = await account(services.directory, who)
    async with services.db.connection() as conn:
        await conn.execute(
            "UPDATE calendar_objects o SET updated_at = now() - make_interval(days => $3)"
            " FROM calendars c WHERE c.owner_id = o.owner_id AND c.id = o.calendar_id"
            " AND c.kind = 'schedule-inbox' AND o.owner_id = $1 AND o.uid = $2",
            own.id, uid, days)


async def test_old_messages_expire_fresh_ones_and_copies_stay(services: Services, org) -> None:
    await put(services, AN, AN, "old.ics", ics("old", [THU, BINH]))
    await put(services, AN, AN, "new.ics", ics("new", [THU]))
    await _age(services, THU, "old", 31)
    await _age(services, BINH, "old", 29)
    assert [u for _, u in await _inbox_rows(services, THU)] == ["new", "old"]
    old_href = next(h for h, u in await _inbox_rows(services, THU) if u == "old")

    assert await inbox_expiry.expire(services, 0) == 0  # 0 days: kept for ever
    assert await inbox_expiry.expire(services) == 1  # the default, 30 days
    assert [u for _, u in await _inbox_rows(services, THU)] == ["new"]
    assert [u for _, u in await _inbox_rows(services, BINH)] == ["old"]  # 29 days old
    assert await copy(services, THU, "old") is not None  # the calendar copy stays
    thu = await account(services.directory, THU)
    async with services.db.connection() as conn:  # sync-collection sees the removal
        assert await conn.fetchval(
            "SELECT count(*) FROM calendar_tombstones WHERE owner_id = $1 AND href = $2",
            thu.id, old_href) == 1
    assert await inbox_expiry.expire(services, 28) == 1  # BINH's, with a shorter setting
    assert await _inbox_rows(services, BINH) == []


async def test_one_node_at_a_time(services: Services, org) -> None:
    await put(services, AN, AN, "a.ics", ics("a", [THU]))
    await _age(services, THU, "a", 40)
    async with services.db.connection() as other_node:
        await other_node.execute("SELECT pg_advisory_lock($1)", sched_repo.INBOX_EXPIRY_LOCK)
        try:
            assert await inbox_expiry.expire(services) == 0
            assert len(await inbox(services, THU)) == 1
        finally:
            await other_node.execute("SELECT pg_advisory_unlock($1)",
                                     sched_repo.INBOX_EXPIRY_LOCK)
    assert await inbox_expiry.expire(services) == 1


async def test_a_message_renewed_meanwhile_is_kept(services: Services, org) -> None:
    """The candidates are read without locks; under the owner's scheduling
    lock a message a newer one replaced (same href) is no longer old."""
    await put(services, AN, AN, "r.ics", ics("r", [THU]))
    await _age(services, THU, "r", 40)
    async with services.db.connection() as conn:
        found = await sched_repo.expired_inbox_messages(conn, 30, 100)
    assert len(found) == 1
    # the organizer's update supersedes the REQUEST in place (same href)
    await put(services, AN, AN, "r.ics", ics("r", [THU], seq=1, summary="Đổi giờ"))
    assert [h for h, _ in await _inbox_rows(services, THU)] == [found[0][2]]
    async with services.db.connection() as conn:
        assert await inbox_expiry._expire_inbox(conn, found[0][0], found[0][1],
                                                [found[0][2]], 30) == 0
    assert len(await inbox(services, THU)) == 1


async def test_serve_component_runs_in_background(services: Services, org) -> None:
    await put(services, AN, AN, "b.ics", ics("b", [THU]))
    await _age(services, THU, "b", 31)
    comp = await inbox_expiry.start_from_services(services, interval=0.05)
    assert comp is not None
    try:
        for _ in range(200):
            if not await inbox(services, THU):
                break
            await asyncio.sleep(0.05)
        assert await inbox(services, THU) == []
    finally:
        await comp.stop()
    off = replace(services, settings=replace(services.settings, schedule_inbox_days=0))
    assert await inbox_expiry.start_from_services(off) is None
    from congvu import server
    assert inbox_expiry.start_from_services in server.COMPONENTS
