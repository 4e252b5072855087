"""The calendar store (congvu.store.calendars): collections, objects, sync, ranges, feeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from congvu.calendar.objects import write_object
from congvu.store import calendars as repo
from congvu.store.errors import Conflict, NotFound

DOMAIN = "hanoi.gov.vn"


def event(uid: str, start: str, end: str, extra: str = "") -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\n"
        f"SUMMARY:Họp {uid}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


async def test_default_calendar_objects_sync_and_ranges(org) -> None:
    an = await org.get_account(f"an.nv@{DOMAIN}")
    owner = repo.account_owner(an)
    async with org.db.transaction() as conn:
        cal = await repo.default_calendar(conn, owner)
        again = await repo.default_calendar(conn, owner)
        assert cal.id == again.id and cal.name == "calendar" and cal.is_default
        inbox = await repo.special_collection(conn, owner, "schedule-inbox")
        assert inbox.kind == "schedule-inbox" and inbox.name == "inbox"
        assert [c.id for c in await repo.list_calendars(conn, owner, ("calendar",))] == [cal.id]

        o1, created = await write_object(conn, cal, "a.ics", event("a", "20260105T020000Z",
                                                                       "20260105T030000Z"))
        assert created and o1.etag.startswith('"')
        token1 = repo.sync_token(await repo.get_calendar_by_id(conn, an.id, cal.id))
        o1b, created = await write_object(conn, cal, "a.ics", event("a", "20260105T020000Z",
                                                                        "20260105T040000Z"))
        assert not created and o1b.etag != o1.etag
        with pytest.raises(Conflict):
            await write_object(conn, cal, "other.ics", event("a", "20260105T020000Z",
                                                               "20260105T030000Z"))
        await write_object(conn, cal, "weekly.ics", event(
            "w", "20250106T010000Z", "20250106T020000Z", "RRULE:FREQ=WEEKLY\r\n"))
        await write_object(conn, cal, "old.ics", event("old", "20200105T020000Z",
                                                         "20200105T030000Z"))
        week = (datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 12, tzinfo=UTC))
        hits = {o.href for o in await repo.objects_in_range(conn, cal, "VEVENT", *week)}
        assert hits == {"a.ics", "weekly.ics"}
        open_end = {o.href for o in await repo.objects_in_range(conn, cal, "VEVENT", week[0], None)}
        assert open_end == {"a.ics", "weekly.ics"}
        busy = await repo.busy_objects(conn, owner, *week)
        assert {o.href for o in busy} == {"a.ics", "weekly.ics"}

        # Inside the writing transaction a token cannot tell its own earlier
        # writes from later ones (one transaction id): everything is reported.
        changes = await repo.changes_since(conn, cal, token1)
        assert {o.href for o in changes.changed} == {"a.ics", "weekly.ics", "old.ics"}
    async with org.db.transaction() as conn:
        token2 = repo.sync_token(await repo.get_calendar_by_id(conn, an.id, cal.id))
        assert {o.href for o in (await repo.changes_since(conn, cal, token2)).changed} == set()
    async with org.db.transaction() as conn:
        await repo.delete_object(conn, cal, "old.ics")
    async with org.db.transaction() as conn:
        changes2 = await repo.changes_since(conn, cal, token2)
        assert changes2.changed == [] and changes2.removed == ["old.ics"]
        assert (await repo.changes_since(conn, cal, changes2.token)).removed == []
        for bad in ("999-1", f"{cal.id}-1", f"{cal.id}-0x{2**62}", f"{cal.id}-0x5.9"):
            with pytest.raises(repo.InvalidSyncToken):
                await repo.changes_since(conn, cal, bad)
        with pytest.raises(NotFound):
            await repo.get_object(conn, cal, "old.ics")
        found = await repo.find_uid(conn, owner, "a")
        assert [(c.id, o.href) for c, o in found] == [(cal.id, "a.ics")]


async def test_unit_schedule_publication_and_feed(org) -> None:
    unit = await org.get_unit("so-tttt")
    owner = repo.unit_owner(unit)
    async with org.db.transaction() as conn:
        cal = await repo.default_calendar(conn, owner)
        assert cal.name == "work-schedule" and cal.owner_kind == "unit"
        assert await repo.get_publication(conn, unit.id) is None
        await repo.set_publication(conn, unit.id, "organisation", "test")
        assert await repo.get_publication(conn, unit.id) == "organisation"
        token = await repo.create_feed(conn, cal, "test")
        assert await repo.create_feed(conn, cal, "test") == token
        assert (await repo.calendar_for_feed(conn, token)).id == cal.id
        assert await repo.revoke_feeds(conn, cal) == 1
        with pytest.raises(NotFound):
            await repo.calendar_for_feed(conn, token)
        assert datetime.now(UTC) - cal.created_at < timedelta(hours=1)
