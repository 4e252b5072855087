"""Live properties of every CalDAV resource, computed for one request.

`PropContext` carries the request's actor and connection; `properties`
returns the values a resource has (name → value) for the names asked, or
every name for ``allprop``/``propname``. Values are text, elements or None
(an empty element) as `congvu.calendar.davxml.Multistatus` writes them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import format_datetime

import asyncpg

from congvu.calendar import schedule_dav
from congvu.calendar.davreport import SUPPORTED_REPORTS
from congvu.calendar.davxml import PropValue, caldav, cs, dav, el, ical
from congvu.calendar.resources import (
    PREFIX,
    Resource,
    account_home,
    calendar_path,
    group_principal_path,
    principal_path,
    unit_home,
    unit_principal_path,
)
from congvu.services import Services
from congvu.store import accounts as accounts_repo
from congvu.store import calendars as cal_repo
from congvu.store import groups as groups_repo
from congvu.store.accounts import Account

# Reports offered on calendars (RFC 3253 §3.1.5); expand-property only where answered.
CALENDAR_REPORTS = (caldav("calendar-query"), caldav("calendar-multiget"),
                    caldav("free-busy-query"), dav("sync-collection"))
PRINCIPAL_REPORTS = (dav("principal-property-search"), dav("principal-search-property-set"),
                     dav("expand-property"), cs("calendarserver-principal-search"))
assert all(r in SUPPORTED_REPORTS for r in CALENDAR_REPORTS + PRINCIPAL_REPORTS)

USER_TYPES = {"person": "INDIVIDUAL", "room": "ROOM", "resource": "RESOURCE"}


@dataclass
class PropContext:
    services: Services
    conn: asyncpg.Connection
    actor: Account


def href(path: str) -> ET.Element:
    return el(dav("href"), path)


def hrefs(paths: Iterable[str]) -> list[ET.Element]:
    return [href(p) for p in paths]


def _privileges(names: Iterable[str]) -> list[ET.Element]:
    return [el(dav("privilege"), None, el(dav(n))) for n in names]


def privilege_set(res: Resource) -> list[ET.Element]:
    """RFC 3744 §5.4 current-user-privilege-set: Apple greys out read-only calendars."""
    names = ["read", "read-current-user-privilege-set"]
    if res.kind in ("principal", "proxy", "root", "principals", "collection"):
        return _privileges(names)
    if not res.rights.read and res.kind != "home":
        return _privileges(["read-current-user-privilege-set"])
    if res.rights.write:
        names += ["write", "write-content", "write-properties", "bind", "unbind"]
    out = _privileges(names)
    out.append(el(dav("privilege"), None, el(caldav("read-free-busy"))))
    return out


def _reports(names: Iterable[str]) -> list[ET.Element]:
    return [el(dav("supported-report"), None, el(dav("report"), None, el(n))) for n in names]


async def _owner_principal(res: Resource) -> str | None:
    if res.account is not None:
        return principal_path(res.account)
    if res.unit is not None:
        return unit_principal_path(res.unit)
    return None


async def properties(
    ctx: PropContext, res: Resource, wanted: Iterable[str] | None,
) -> dict[str, PropValue]:
    """Values of ``wanted`` names (None: every live property) that ``res`` has."""
    names = None if wanted is None else set(wanted)
    out: dict[str, PropValue] = {}

    def want(name: str) -> bool:
        return names is None or name in names

    me = principal_path(ctx.actor)
    if want(dav("current-user-principal")):
        out[dav("current-user-principal")] = href(me)
    if want(dav("principal-collection-set")):
        out[dav("principal-collection-set")] = href(f"{PREFIX}/principals/")
    if want(dav("current-user-privilege-set")):
        out[dav("current-user-privilege-set")] = privilege_set(res)
    kind = res.kind
    if kind in ("root", "principals", "collection"):
        if want(dav("resourcetype")):
            out[dav("resourcetype")] = el(dav("collection"))
        if want(dav("displayname")):
            out[dav("displayname")] = "Congvu"
        if kind == "root" and want(caldav("calendar-home-set")):
            out[caldav("calendar-home-set")] = href(account_home(ctx.actor))
        if want(dav("supported-report-set")):
            out[dav("supported-report-set")] = _reports(PRINCIPAL_REPORTS)
        return out
    if kind in ("principal", "proxy"):
        await _principal_props(ctx, res, want, out)
        return out
    if kind == "home":
        if want(dav("resourcetype")):
            out[dav("resourcetype")] = el(dav("collection"))
        if want(dav("displayname")):
            out[dav("displayname")] = (res.account.display_name if res.account
                                       else res.unit.name if res.unit else "")
        if want(dav("owner")):
            out[dav("owner")] = href(await _owner_principal(res) or me)
        if want(dav("supported-report-set")):
            out[dav("supported-report-set")] = _reports(())
        return out
    if kind == "calendar":
        _calendar_props(res, want, out)
        assert res.calendar is not None
        await schedule_dav.collection_properties(ctx.conn, res.account, res.calendar, want, out)
        if want(dav("owner")):
            out[dav("owner")] = href(await _owner_principal(res) or me)
        return out
    if kind == "object" and res.obj is not None:
        obj = res.obj
        if want(dav("getetag")):
            out[dav("getetag")] = obj.etag
        if want(dav("getcontenttype")):
            out[dav("getcontenttype")] = f"text/calendar; charset=utf-8; component={obj.component.lower()}"
        if want(dav("getcontentlength")):
            out[dav("getcontentlength")] = str(obj.size)
        if want(dav("getlastmodified")):
            out[dav("getlastmodified")] = format_datetime(obj.updated_at, usegmt=True)
        if want(dav("resourcetype")):
            out[dav("resourcetype")] = None
        if want(dav("owner")):
            out[dav("owner")] = href(await _owner_principal(res) or me)
        if obj.schedule_tag is not None and want(caldav("schedule-tag")):
            out[caldav("schedule-tag")] = obj.schedule_tag
    return out


def _calendar_props(res: Resource, want, out: dict[str, PropValue]) -> None:  # type: ignore[no-untyped-def]
    cal = res.calendar
    assert cal is not None
    if want(dav("resourcetype")):
        out[dav("resourcetype")] = [el(dav("collection")), el(caldav("calendar"))]
    if want(dav("displayname")):
        out[dav("displayname")] = cal.displayname or cal.name
    if want(caldav("calendar-description")) and cal.description:
        out[caldav("calendar-description")] = cal.description
    if want(ical("calendar-color")) and cal.color:
        out[ical("calendar-color")] = cal.color
    if want(ical("calendar-order")) and cal.sort_order is not None:
        out[ical("calendar-order")] = str(cal.sort_order)
    if want(caldav("calendar-timezone")) and cal.timezone:
        out[caldav("calendar-timezone")] = cal.timezone
    if want(caldav("supported-calendar-component-set")):
        out[caldav("supported-calendar-component-set")] = [
            ET.Element(caldav("comp"), {"name": c}) for c in cal.components]
    if want(caldav("supported-calendar-data")):
        out[caldav("supported-calendar-data")] = el(
            caldav("calendar-data"), None, **{"content-type": "text/calendar", "version": "2.0"})
    if want(caldav("max-resource-size")):
        out[caldav("max-resource-size")] = str(MAX_RESOURCE_SIZE)
    if want(cs("getctag")):
        out[cs("getctag")] = cal_repo.sync_token(cal)
    if want(dav("sync-token")):
        out[dav("sync-token")] = sync_uri(cal_repo.sync_token(cal))
    if want(dav("supported-report-set")):
        out[dav("supported-report-set")] = _reports(CALENDAR_REPORTS)


MAX_RESOURCE_SIZE = 10 * 1024 * 1024
SYNC_PREFIX = "http://congvu.invalid/sync/"


def sync_uri(token: str) -> str:
    """RFC 6578 §3.2: a sync token is a URI."""
    return SYNC_PREFIX + token


async def _principal_props(ctx: PropContext, res: Resource, want, out) -> None:  # type: ignore[no-untyped-def]
    authz = ctx.services.authz
    if res.kind == "proxy":
        owner = res.account
        assert owner is not None and res.proxy is not None
        if want(dav("resourcetype")):
            out[dav("resourcetype")] = [el(dav("principal")), el(cs(res.proxy))]
        if want(dav("displayname")):
            out[dav("displayname")] = f"{owner.display_name} ({res.proxy})"
        if want(dav("group-member-set")):
            scope = "calendar-write" if res.proxy.endswith("write") else "calendar-read"
            delegates = await authz.delegates_of(owner, scope)
            if scope == "calendar-read":  # writers are listed in the write group only
                writers = {a.id for a in await authz.delegates_of(owner, "calendar-write")}
                delegates = [d for d in delegates if d.id not in writers]
            out[dav("group-member-set")] = hrefs(principal_path(a) for a in delegates)
        if want(dav("principal-URL")):
            out[dav("principal-URL")] = href(res.path)
        return
    if want(dav("resourcetype")):
        out[dav("resourcetype")] = [el(dav("collection")), el(dav("principal"))]
    if want(dav("principal-URL")):
        out[dav("principal-URL")] = href(res.path)
    acc, unit, group = res.account, res.unit, res.group
    if group is not None:
        if want(dav("displayname")):
            out[dav("displayname")] = group.name
        if want(caldav("calendar-user-type")):
            out[caldav("calendar-user-type")] = "GROUP"
        if want(caldav("calendar-user-address-set")):
            out[caldav("calendar-user-address-set")] = hrefs([f"mailto:{group.address}", res.path])
        if want(dav("group-member-set")):
            members = await groups_repo.expand(ctx.conn, [group.id])
            out[dav("group-member-set")] = hrefs(
                f"{PREFIX}/principals/users/{m.address}/" for m in members)
        return
    if unit is not None:
        if want(dav("displayname")):
            out[dav("displayname")] = unit.name
        if want(caldav("calendar-user-type")):
            out[caldav("calendar-user-type")] = "GROUP"
        if want(caldav("calendar-home-set")):
            out[caldav("calendar-home-set")] = href(unit_home(unit))
        if want(caldav("calendar-user-address-set")):
            out[caldav("calendar-user-address-set")] = hrefs([res.path])
        if want(dav("group-member-set")):
            ids = await accounts_repo.accounts_in_units(ctx.conn, [unit.id])
            in_unit = [await accounts_repo.get_by_id(ctx.conn, i) for i in ids]
            out[dav("group-member-set")] = hrefs(principal_path(m) for m in in_unit)
        return
    assert acc is not None
    if want(dav("displayname")):
        out[dav("displayname")] = acc.display_name or acc.address
    if want(caldav("calendar-home-set")):
        out[caldav("calendar-home-set")] = href(account_home(acc))
    if want(caldav("calendar-user-address-set")):
        out[caldav("calendar-user-address-set")] = hrefs(
            [f"mailto:{acc.address}", *(f"mailto:{a}" for a in acc.aliases), res.path])
    if want(caldav("calendar-user-type")):
        out[caldav("calendar-user-type")] = USER_TYPES.get(acc.kind, "UNKNOWN")
    await schedule_dav.principal_properties(ctx.conn, acc, want, out)  # RFC 6638 §2
    if want(cs("email-address-set")):
        out[cs("email-address-set")] = [el(cs("email-address"), acc.address)]
    if want(dav("alternate-URI-set")):
        out[dav("alternate-URI-set")] = hrefs([f"mailto:{acc.address}"])
    for kind, scope in (("calendar-proxy-read-for", "calendar-read"),
                        ("calendar-proxy-write-for", "calendar-write")):
        if want(cs(kind)):
            owners = await authz.owners_for(acc, scope)
            if scope == "calendar-read":
                writable = {o.id for o in await authz.owners_for(acc, "calendar-write")}
                owners = [o for o in owners if o.id not in writable]
            out[cs(kind)] = hrefs(principal_path(o) for o in owners)
    if want(dav("group-membership")):
        groups = [f"{principal_path(o)}calendar-proxy-write/"
                  for o in await authz.owners_for(acc, "calendar-write")]
        writable = {o.id for o in await authz.owners_for(acc, "calendar-write")}
        groups += [f"{principal_path(o)}calendar-proxy-read/"
                   for o in await authz.owners_for(acc, "calendar-read") if o.id not in writable]
        out[dav("group-membership")] = hrefs(groups)
    if want(dav("supported-report-set")):
        out[dav("supported-report-set")] = _reports(PRINCIPAL_REPORTS)


def object_paths(res: Resource) -> str:
    assert res.calendar is not None
    home = account_home(res.account) if res.account else unit_home(res.unit)  # type: ignore[arg-type]
    return calendar_path(home, res.calendar)


__all__ = ["PropContext", "group_principal_path", "properties", "sync_uri"]
