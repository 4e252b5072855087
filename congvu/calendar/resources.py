"""The CalDAV URL space, what each URL names, and what the acting user may do there.

    /dav/                                          root
    /dav/principals/                               principal collection
    /dav/principals/users/ADDRESS/                 an account (person, room, resource)
    /dav/principals/users/ADDRESS/calendar-proxy-read/   Apple delegation groups
    /dav/principals/users/ADDRESS/calendar-proxy-write/
    /dav/principals/units/SLUG/                    a unit (owns its work schedule)
    /dav/principals/groups/ADDRESS/                a distribution group
    /dav/calendars/users/ADDRESS/                  calendar home (a plain collection)
    /dav/calendars/users/ADDRESS/NAME/             a calendar
    /dav/calendars/users/ADDRESS/NAME/OBJECT.ics   a calendar object resource
    /dav/calendars/units/SLUG/work-schedule/       a unit's work schedule
    /dav/feeds/TOKEN.ics                           read-only ICS feed (no login)

Rights come from `congvu.directory.authz` only: an account's calendars by
its own login or a ``calendar-read``/``calendar-write`` grant; a unit's by
``may_read_unit_schedule`` (publication scope) and ``may_write_unit_schedule``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from congvu.calendar.davxml import DavError
from congvu.directory.authz import default_publication
from congvu.services import Services
from congvu.store import accounts as accounts_repo
from congvu.store import calendars as cal_repo
from congvu.store import groups as groups_repo
from congvu.store import units as units_repo
from congvu.store.accounts import Account
from congvu.store.calendars import Calendar, Owner, StoredObject
from congvu.store.errors import NotFound
from congvu.store.groups import Group
from congvu.store.units import Unit

PREFIX = "/dav"
PROXY_KINDS = ("calendar-proxy-read", "calendar-proxy-write")


@dataclass(frozen=True)
class Rights:
    read: bool = False
    write: bool = False
    is_owner: bool = False

    @property
    def sees_private(self) -> bool:
        """CLASS:PRIVATE/CONFIDENTIAL details only for those who may write."""
        return self.write


NONE = Rights()


@dataclass(frozen=True)
class Resource:
    kind: str  # root principals collection principal proxy home calendar object
    path: str
    account: Account | None = None
    unit: Unit | None = None
    group: Group | None = None
    proxy: str | None = None
    calendar: Calendar | None = None
    name: str | None = None  # object name inside the calendar
    obj: StoredObject | None = None
    rights: Rights = field(default=NONE)

    @property
    def owner(self) -> Owner | None:
        if self.account is not None and self.group is None:
            return cal_repo.account_owner(self.account)
        if self.unit is not None:
            return cal_repo.unit_owner(self.unit)
        return None

    @property
    def is_collection(self) -> bool:
        return self.kind != "object"

    @property
    def label(self) -> str:
        """The owner for audit lines: an address or ``unit:slug``."""
        if self.account is not None:
            return self.account.address
        if self.unit is not None:
            return f"unit:{self.unit.slug}"
        return ""


def principal_path(account: Account) -> str:
    return f"{PREFIX}/principals/users/{account.address}/"


def unit_principal_path(unit: Unit) -> str:
    return f"{PREFIX}/principals/units/{unit.slug}/"


def group_principal_path(group: Group) -> str:
    return f"{PREFIX}/principals/groups/{group.address}/"


def home_path(owner_kind: str, key: str) -> str:
    return f"{PREFIX}/calendars/{'users' if owner_kind == 'account' else 'units'}/{key}/"


def account_home(account: Account) -> str:
    return home_path("account", account.address)


def unit_home(unit: Unit) -> str:
    return home_path("unit", unit.slug)


def calendar_path(home: str, cal: Calendar) -> str:
    return f"{home}{cal.name}/"


async def rights_on(
    services: Services, conn: asyncpg.Connection, actor: Account, owner: Account | Unit,
) -> Rights:
    """What ``actor`` may do with the calendars of ``owner`` (an account or a unit)."""
    authz = services.authz
    if isinstance(owner, Account):
        if owner.id == actor.id:
            return Rights(True, True, True)
        scopes = await authz.scopes(actor.id, owner.id, conn)
        return Rights("calendar-read" in scopes, "calendar-write" in scopes, False)
    publication = await cal_repo.get_publication(conn, owner.id) or default_publication(owner)
    write = await authz.may_write_unit_schedule(actor, owner)
    read = write or await authz.may_read_unit_schedule(actor, owner, publication)
    return Rights(read, write, False)


def unit_schedule_name(unit: Unit) -> str:
    return f"Lịch công tác – {unit.name}"


async def unit_calendar(conn: asyncpg.Connection, unit: Unit) -> Calendar:
    """The unit's work-schedule calendar (made on first use)."""
    return await cal_repo.default_calendar(conn, cal_repo.unit_owner(unit),
                                           unit_schedule_name(unit))


UNIT_PREFIX = "unit-"
"""In an official's own home, ``unit-SLUG/`` is the unit's work schedule, so
clients that only look in the home (Thunderbird, DAVx5, phones) show it."""


async def _unit_binding(
    services: Services, conn: asyncpg.Connection, actor: Account, home: str, segs: list[str],
    load_object: bool = True,
) -> Resource:
    unit = await units_repo.get(conn, segs[3][len(UNIT_PREFIX):])
    rights = await rights_on(services, conn, actor, unit)
    if not rights.read:
        raise NotFound(segs[3])
    cal = await unit_calendar(conn, unit)
    path = f"{home}{segs[3]}/"
    if len(segs) == 4:
        return Resource("calendar", path, unit=unit, calendar=cal, rights=rights)
    name = segs[4]
    obj = await cal_repo.find_object(conn, cal, name) if load_object else None
    return Resource("object", path + name, unit=unit, calendar=cal, name=name, obj=obj,
                    rights=rights)


async def readable_unit_schedules(
    services: Services, conn: asyncpg.Connection, actor: Account,
) -> list[tuple[Unit, Rights]]:
    """Work schedules ``actor`` may read: candidates are the own unit and the
    units above it, units published to the whole organisation and the units
    the actor manages; the Authorizer decides each."""
    ids: set[int] = set()
    if actor.unit_id is not None:
        mine = await units_repo.get_by_id(conn, actor.unit_id)
        ids.update(int(x) for x in mine.path.strip("/").split("/"))
    ids.update(r.unit_id for r in actor.roles if r.role == "schedule-manager" and r.unit_id)
    for unit in await units_repo.list_all(conn):
        if unit.depth == 0 or await cal_repo.get_publication(conn, unit.id) == "organisation":
            ids.add(unit.id)
    out = []
    for uid in sorted(ids):
        unit = await units_repo.get_by_id(conn, uid)
        rights = await rights_on(services, conn, actor, unit)
        if rights.read:
            out.append((unit, rights))
    return out


async def resolve(
    services: Services, conn: asyncpg.Connection, actor: Account, path: str,
    *, load_object: bool = True,
) -> Resource:
    """The resource at a decoded request path (NotFound → 404).

    ``load_object=False``: an object URL's stored object is left for the
    caller to read (``obj`` None; PUT reads it together with its UID's)."""
    if not (path == PREFIX or path.startswith(PREFIX + "/")):
        raise DavError(404)
    rest = path[len(PREFIX):].strip("/")
    segs = [s for s in rest.split("/") if s] if rest else []
    trailing = path.endswith("/")
    try:
        return await _resolve(services, conn, actor, segs, trailing, load_object)
    except NotFound as exc:
        raise DavError(404, None, str(exc)) from None


async def _owner_by_key(
    conn: asyncpg.Connection, collection: str, key: str, actor: Account | None = None
) -> Account | Unit:
    if collection == "users":
        if actor is not None and key.lower() == actor.address:
            return actor  # read for this request already (authentication)
        return await accounts_repo.get(conn, key.lower())
    if collection == "units":
        return await units_repo.get(conn, key)
    raise NotFound(collection)


async def _resolve(
    services: Services, conn: asyncpg.Connection, actor: Account, segs: list[str], trailing: bool,
    load_object: bool = True,
) -> Resource:
    n = len(segs)
    if n == 0:
        return Resource("root", PREFIX + "/")
    top = segs[0]
    if top == "principals":
        if n == 1:
            return Resource("principals", f"{PREFIX}/principals/")
        if n == 2 and segs[1] in ("users", "units", "groups"):
            return Resource("collection", f"{PREFIX}/principals/{segs[1]}/")
        if segs[1] == "groups" and n == 3:
            group = await groups_repo.get(conn, segs[2].lower())
            return Resource("principal", group_principal_path(group), group=group)
        if segs[1] in ("users", "units") and n in (3, 4):
            owner = await _owner_by_key(conn, segs[1], segs[2])
            if isinstance(owner, Account):
                if n == 4:
                    if segs[3] not in PROXY_KINDS:
                        raise NotFound(segs[3])
                    return Resource("proxy", f"{principal_path(owner)}{segs[3]}/",
                                    account=owner, proxy=segs[3])
                return Resource("principal", principal_path(owner), account=owner)
            if n == 3:
                return Resource("principal", unit_principal_path(owner), unit=owner)
        raise NotFound("/".join(segs))
    if top == "calendars":
        if n == 1:
            return Resource("collection", f"{PREFIX}/calendars/")
        if n == 2 and segs[1] in ("users", "units"):
            return Resource("collection", f"{PREFIX}/calendars/{segs[1]}/")
        if segs[1] not in ("users", "units") or n > 5:
            raise NotFound("/".join(segs))
        owner = await _owner_by_key(conn, segs[1], segs[2], actor)
        acc = owner if isinstance(owner, Account) else None
        unit = owner if isinstance(owner, Unit) else None
        rights = await rights_on(services, conn, actor, owner)
        home = account_home(acc) if acc else unit_home(unit)  # type: ignore[arg-type]
        if n == 3:
            return Resource("home", home, account=acc, unit=unit, rights=rights)
        own = cal_repo.account_owner(acc) if acc else cal_repo.unit_owner(unit)
        if acc is not None and acc.id == actor.id and segs[3].startswith(UNIT_PREFIX):
            return await _unit_binding(services, conn, actor, home, segs, load_object)
        if segs[3] == cal_repo.DEFAULT_NAMES[own.kind]:
            cal = (await unit_calendar(conn, unit) if unit is not None
                   else await cal_repo.default_calendar(conn, own))
        else:
            try:
                cal = await cal_repo.get_calendar(conn, own, segs[3])
            except NotFound:
                if n == 4:  # a new collection (MKCALENDAR) or nothing
                    return Resource("missing", f"{home}{segs[3]}/", account=acc, unit=unit,
                                    rights=rights, name=segs[3])
                raise
        cpath = calendar_path(home, cal)
        if n == 4:
            return Resource("calendar", cpath, account=acc, unit=unit, calendar=cal,
                            rights=rights)
        name = segs[4]
        obj = await cal_repo.find_object(conn, cal, name) if load_object else None
        return Resource("object", cpath + name, account=acc, unit=unit, calendar=cal,
                        name=name, obj=obj, rights=rights)
    raise NotFound("/".join(segs))
