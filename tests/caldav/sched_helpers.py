"""Helpers for the scheduling tests: events, and PUT/DELETE the way the CalDAV app does them.

The HTTP listener is ``dav_url`` from tests/caldav/conftest.py.

``put``/``delete`` run the object hooks and store the result in one
transaction, exactly like the app's PUT and DELETE handlers.
"""

from __future__ import annotations

import httpx
from icalendar import Calendar

import congvu.calendar.scheduling  # noqa: F401  (registers the hook)
from congvu.calendar.hooks import run_hooks
from congvu.calendar.objects import remove_object, write_object
from congvu.directory.service import Directory, NewAccount
from congvu.services import Services
from congvu.store import calendars as repo
from congvu.store.accounts import Account
from tests.conftest import PASSWORD

DOMAIN = "hanoi.gov.vn"
AN, THU, BINH, HOA = (f"{x}@{DOMAIN}" for x in ("an.nv", "thu.lt", "binh.tq", "hoa.nt"))
ROOM = f"phong-hop-1@{DOMAIN}"


def ics(uid: str, attendees: list[str], *, organizer: str = AN, start: str = "20260305T020000Z",
        end: str = "20260305T030000Z", seq: int = 0, comp: str = "VEVENT",
        extra: str = "", summary: str = "Họp giao ban") -> bytes:
    when = f"DTSTART:{start}\r\nDTEND:{end}" if comp == "VEVENT" else f"DUE:{end}"
    lines = "".join(f"ATTENDEE;CN=Người dự;PARTSTAT={p};RSVP=TRUE:mailto:{a}\r\n"
                    for a, p in (x.split("=") if "=" in x else (x, "NEEDS-ACTION")
                                 for x in attendees))
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        f"BEGIN:{comp}\r\nUID:{uid}\r\nDTSTAMP:20260301T000000Z\r\n{when}\r\n"
        f"SEQUENCE:{seq}\r\nSUMMARY:{summary}\r\nORGANIZER;CN=Tổ chức:mailto:{organizer}\r\n"
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{organizer}\r\n{lines}{extra}"
        f"END:{comp}\r\nEND:VCALENDAR\r\n"
    ).encode()


async def account(org: Directory, address: str) -> Account:
    return await org.get_account(address)


async def put(services: Services, actor: str, owner: str, href: str, body: bytes) -> None:
    act, own = await account(services.directory, actor), await account(services.directory, owner)
    async with services.db.transaction() as conn:
        cal = await repo.default_calendar(conn, repo.account_owner(own))
        old = await repo.find_object(conn, cal, href)
        new, tag = await run_hooks(conn, services, act, repo.account_owner(own), cal, href,
                                   old.ics.encode() if old else None, body)
        assert new is not None
        await write_object(conn, cal, href, new, schedule_tag=tag)


async def delete(services: Services, actor: str, owner: str, href: str) -> None:
    act, own = await account(services.directory, actor), await account(services.directory, owner)
    async with services.db.transaction() as conn:
        cal = await repo.default_calendar(conn, repo.account_owner(own))
        old = await repo.get_object(conn, cal, href)
        await run_hooks(conn, services, act, repo.account_owner(own), cal, href,
                        old.ics.encode(), None)
        await remove_object(conn, cal, href)


async def copy(services: Services, owner: str, uid: str) -> tuple[repo.StoredObject, Calendar] | None:
    own = await account(services.directory, owner)
    async with services.db.connection() as conn:
        found = await repo.find_uid(conn, repo.account_owner(own), uid)
    if not found:
        return None
    obj = found[0][1]
    return obj, Calendar.from_ical(obj.ics)


async def inbox(services: Services, owner: str) -> list[str]:
    own = await account(services.directory, owner)
    async with services.db.connection() as conn:
        box = await repo.special_collection(conn, repo.account_owner(own), "schedule-inbox")
        return [o.ics for o in await repo.list_objects(conn, box, with_data=True)]


def attendee(cal: Calendar, address: str, comp: str = "VEVENT") -> dict[str, str]:
    for a in cal.walk(comp)[0].get("ATTENDEE"):
        if str(a).lower() == f"mailto:{address}":
            return {k: str(v) for k, v in a.params.items()}
    raise AssertionError(f"{address} not an attendee")


async def make_room(org: Directory) -> None:
    await org.add_account(NewAccount(ROOM, "Phòng họp tầng 1", "so-tttt", kind="room"), "test")


def http(base: str, who: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, auth=(who, PASSWORD), timeout=60)


def object_url(owner: str, href: str) -> str:
    return f"/dav/calendars/users/{owner}/calendar/{href}"
