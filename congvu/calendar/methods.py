"""CalDAV methods other than REPORT: one ``do_<METHOD>`` per HTTP method.

Each takes the services, the request, the authenticated account and the
decoded path, and returns a response; errors are `DavError`s. Writes run in
one transaction with the object hooks (`congvu.calendar.hooks`) and are
acknowledged only after it committed (DESIGN §2).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from collections.abc import Iterable
from email.utils import format_datetime
from urllib.parse import urlsplit

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from congvu.calendar import caltz, ical, reqdb, schedbatch
from congvu.calendar.davxml import (
    DavError,
    Multistatus,
    PropPatchOp,
    caldav,
    cs,
    dav,
    error_body,
    href_to_path,
    ical as ical_ns,
    parse_mkcalendar,
    parse_propfind,
    parse_proppatch,
    prop_text,
    quote_href,
    wants_minimal,
)
from congvu.calendar.hooks import plain_objects_skip_hooks, run_hooks
from congvu.calendar.schedule_dav import check_schedule_tag, outbox_post
from congvu.calendar.scheduling import (lock_for_attendee_write, lock_for_organizer_write,
                                        scheduling_role)
from congvu.calendar.objects import (
    fits,
    index_of,
    parse,
    parse_for,
    reindex_floating,
    settle_floating,
)
from congvu.calendar.props import PropContext, properties
from congvu.calendar.resources import (
    UNIT_PREFIX,
    Resource,
    calendar_path,
    readable_unit_schedules,
    resolve,
    unit_calendar,
)
from congvu.services import Services
from congvu.store import audit as audit_repo
from congvu.store import calendar_put
from congvu.store import calendars as cal_repo
from congvu.store.accounts import Account
from congvu.store.calendars import Calendar, StoredObject
from congvu.store.errors import Conflict, NotFound

XML = "application/xml; charset=utf-8"
ICS = "text/calendar; charset=utf-8"


class NeedPrivileges(DavError):
    """RFC 3744 §7.1.1: 403 naming the resource and the missing privilege."""

    def __init__(self, path: str, privilege: str = "write") -> None:
        super().__init__(403, dav("need-privileges"), f"no {privilege} privilege on {path}")
        self.path = path
        self.privilege = privilege

    @property
    def body(self) -> bytes:
        res = ET.Element(dav("resource"))
        ET.SubElement(res, dav("href")).text = self.path
        ET.SubElement(ET.SubElement(res, dav("privilege")), dav(self.privilege))
        elem = ET.Element(dav("need-privileges"))
        elem.append(res)
        return error_body(elem, self.message)


def require(res: Resource, privilege: str) -> None:
    ok = res.rights.write if privilege == "write" else res.rights.read
    if not ok:
        raise NeedPrivileges(res.path, privilege)


async def read_body(request: Request, limit: int = 10 * 1024 * 1024) -> bytes:
    chunks = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise DavError(413, None, "request body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def multistatus(ms: Multistatus, token: str | None = None) -> Response:
    return Response(ms.to_bytes(token), status_code=207, media_type=XML)


def depth_of(request: Request, default: str = "1") -> str:
    depth = (request.headers.get("depth") or default).strip().lower()
    if depth not in ("0", "1", "infinity"):
        raise DavError(400, None, f"bad Depth {depth!r}")
    return "1" if depth == "infinity" else depth


def calendar_data(obj: StoredObject, res: Resource) -> str:
    """The body a reader gets: private objects only as busy time without write rights."""
    if obj.class_ != "PUBLIC" and not res.rights.sees_private:
        return ical.redact_private(obj.ics).decode("utf-8")
    return obj.ics


OBJECT_PROPS = frozenset({dav("getetag"), dav("getcontenttype"), dav("getcontentlength"),
                          dav("getlastmodified"), dav("resourcetype"),
                          dav("current-user-principal"), caldav("schedule-tag"),
                          caldav("calendar-data")})


def object_props(
    obj: StoredObject, names: Iterable[str] | None, current_user: str
) -> dict[str, object]:
    """Fast path for the properties of many objects (PROPFIND Depth 1, REPORTs)."""
    out: dict[str, object] = {}
    wanted = None if names is None else set(names)
    if wanted is None or dav("getetag") in wanted:
        out[dav("getetag")] = obj.etag
    if wanted is None or dav("getcontenttype") in wanted:
        out[dav("getcontenttype")] = (f"text/calendar; charset=utf-8; "
                                      f"component={obj.component.lower()}")
    if wanted is None or dav("getcontentlength") in wanted:
        out[dav("getcontentlength")] = str(obj.size)
    if wanted is None or dav("getlastmodified") in wanted:
        out[dav("getlastmodified")] = format_datetime(obj.updated_at, usegmt=True)
    if wanted is None or dav("resourcetype") in wanted:
        out[dav("resourcetype")] = None
    if wanted is not None and dav("current-user-principal") in wanted:
        out[dav("current-user-principal")] = ET.Element(dav("href"))
        out[dav("current-user-principal")].text = current_user  # type: ignore[attr-defined]
    if obj.schedule_tag is not None and (wanted is None or caldav("schedule-tag") in wanted):
        out[caldav("schedule-tag")] = obj.schedule_tag
    return out


FAST_PROPS = frozenset({dav("getetag"), dav("getcontenttype"), dav("resourcetype")})
_OK = "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"


_PLAIN_HREF = re.compile(r"^[A-Za-z0-9._~@:!$'()*+,;=-]*$")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _href_text(name: str) -> str:
    """An object name as href text: most need neither percent- nor XML-escaping."""
    return name if _PLAIN_HREF.match(name) else _xml_text(quote_href(name))


def fast_responses(ms: Multistatus, cal_path: str, tags: Iterable[cal_repo.ObjectTag],
                   props: tuple[str, ...]) -> None:
    """``<D:response>``s for many objects when only getetag/getcontenttype/
    resourcetype are asked: written directly, a few microseconds each."""
    base = _xml_text(quote_href(cal_path))
    want_etag = dav("getetag") in props
    want_type = dav("getcontenttype") in props
    want_rtype = dav("resourcetype") in props
    missing = [n for n in props if n not in FAST_PROPS]
    tail = ""
    if missing and not ms.minimal:
        tail = ('<D:propstat><D:prop>' + "".join(f"<{ms._tag(n)}/>" for n in missing)
                + "</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>")
    add = ms.add_raw
    for t in tags:
        parts = ["<D:response><D:href>", base, _href_text(t.href),
                 "</D:href><D:propstat><D:prop>"]
        if want_etag:
            etag = t.etag if "&" not in t.etag and "<" not in t.etag else _xml_text(t.etag)
            parts.append(f"<D:getetag>{etag}</D:getetag>")
        if want_type:
            parts.append("<D:getcontenttype>text/calendar; charset=utf-8; component="
                         f"{t.component.lower()}</D:getcontenttype>")
        if want_rtype:
            parts.append("<D:resourcetype/>")
        parts.append(_OK)
        parts.append(tail)
        parts.append("</D:response>")
        add("".join(parts))


# --- PROPFIND ---------------------------------------------------------------------


async def _children(services: Services, conn: asyncpg.Connection, res: Resource,
                    with_data: bool) -> list[Resource]:
    if res.kind == "home" and res.rights.read:
        owner = res.owner
        assert owner is not None
        if res.unit is not None:
            await unit_calendar(conn, res.unit)
        else:
            await cal_repo.default_calendar(conn, owner)
        cals = await cal_repo.list_calendars(conn, owner, ("calendar",))
        out = [Resource("calendar", calendar_path(res.path, c), account=res.account,
                        unit=res.unit, calendar=c, rights=res.rights) for c in cals]
        if res.rights.is_owner and res.account is not None:
            # the work schedules this official reads, bound into the own home
            for unit, rights in await readable_unit_schedules(services, conn, res.account):
                cal = await unit_calendar(conn, unit)
                out.append(Resource("calendar", f"{res.path}{UNIT_PREFIX}{unit.slug}/",
                                    unit=unit, calendar=cal, rights=rights))
        return out
    if res.kind == "principal" and res.account is not None:
        return [Resource("proxy", f"{res.path}{k}/", account=res.account, proxy=k)
                for k in ("calendar-proxy-read", "calendar-proxy-write")]
    return []


async def do_PROPFIND(services: Services, request: Request, actor: Account, path: str) -> Response:
    req = parse_propfind(await read_body(request))
    depth = depth_of(request)
    minimal = wants_minimal(request.headers)
    ms = Multistatus(minimal=minimal)
    async with reqdb.connection(services, request) as conn:
        res = await resolve(services, conn, actor, path)
        if res.kind in ("missing",) or (res.kind == "object" and res.obj is None):
            raise DavError(404)
        if res.kind in ("calendar", "object", "home"):
            require(res, "read")
        ctx = PropContext(services, conn, actor)
        targets = [res]
        if depth == "1":
            targets += await _children(services, conn, res, False)
        for r in targets:
            await _propfind_one(ctx, ms, r, req)
        if depth == "1" and res.kind == "calendar":
            assert res.calendar is not None
            if req.kind == "prop" and FAST_PROPS.intersection(req.props) and all(
                    p in FAST_PROPS or p not in OBJECT_PROPS for p in req.props):
                tags = await cal_repo.list_tags(conn, res.calendar)
                fast_responses(ms, res.path, tags, req.props)
                return multistatus(ms)
            with_data = req.kind == "prop" and caldav("calendar-data") in req.props
            objs = await cal_repo.list_objects(conn, res.calendar, with_data=with_data)
            me = f"/dav/principals/users/{actor.address}/"
            for obj in objs:
                _object_entry(ms, res, obj, req.kind, req.props, me)
    return multistatus(ms)


def _object_entry(ms: Multistatus, cal_res: Resource, obj: StoredObject, kind: str,
                  props: tuple[str, ...], me: str) -> None:
    href = cal_res.path + obj.href
    if kind == "propname":
        ms.add(href, dict.fromkeys(object_props(obj, None, me)))
        return
    if kind == "allprop":
        ms.add(href, object_props(obj, None, me))  # type: ignore[arg-type]
        return
    found = object_props(obj, props, me)
    if caldav("calendar-data") in props and obj.ics:
        found[caldav("calendar-data")] = calendar_data(obj, cal_res)
    ms.add(href, found, [p for p in props if p not in found])  # type: ignore[arg-type]


async def _propfind_one(ctx: PropContext, ms: Multistatus, res: Resource, req) -> None:  # type: ignore[no-untyped-def]
    if res.kind == "object":
        assert res.obj is not None
        parent = Resource("calendar", res.path.rsplit("/", 1)[0] + "/", account=res.account,
                          unit=res.unit, calendar=res.calendar, rights=res.rights)
        me = f"/dav/principals/users/{ctx.actor.address}/"
        ms_req_props = req.props if req.kind == "prop" else ()
        obj = res.obj
        _object_entry(ms, parent, obj, req.kind, ms_req_props, me)
        return
    if req.kind == "propname":
        ms.add(res.path, dict.fromkeys(await properties(ctx, res, None)))
        return
    if req.kind == "allprop":
        ms.add(res.path, await properties(ctx, res, None))
        return
    found = await properties(ctx, res, req.props)
    ms.add(res.path, found, [p for p in req.props if p not in found])


# --- PROPPATCH / MKCALENDAR ----------------------------------------------------------

_SETTABLE = {
    dav("displayname"): "displayname",
    caldav("calendar-description"): "description",
    ical_ns("calendar-color"): "color",
    ical_ns("calendar-order"): "sort_order",
    caldav("calendar-timezone"): "timezone",
}


def _changes(ops: Iterable[PropPatchOp]) -> tuple[dict[str, object], list[str]]:
    changes: dict[str, object] = {}
    refused: list[str] = []
    for op in ops:
        column = _SETTABLE.get(op.name)
        if op.name == caldav("supported-calendar-component-set") and op.value is not None:
            comps = tuple(c.get("name", "").upper() for c in op.value)
            if comps and all(c in ("VEVENT", "VTODO") for c in comps):
                changes["components"] = comps
                continue
        if column is None:
            refused.append(op.name)
            continue
        value: object = op.text if op.action == "set" else ""
        if column == "sort_order":
            try:
                value = int(str(value)) if value != "" else None
            except ValueError:
                refused.append(op.name)
                continue
        if (column == "timezone" and isinstance(value, str) and value.strip()
                and caltz.parse_timezone(value) is None):
            # RFC 4791 §5.2.2: one valid VTIMEZONE in a VCALENDAR
            refused.append(op.name)
            continue
        if column == "color" and isinstance(value, str) and len(value) > 64:
            refused.append(op.name)
            continue
        changes[column] = value
    return changes, refused


async def do_PROPPATCH(services: Services, request: Request, actor: Account, path: str) -> Response:
    req = parse_proppatch(await read_body(request))
    async with reqdb.transaction(services, request) as conn:
        res = await resolve(services, conn, actor, path)
        if res.kind != "calendar":
            if res.kind in ("principal", "proxy", "home", "object"):
                ms = Multistatus()
                ms.add(res.path, forbidden=[op.name for op in req.ops])
                return multistatus(ms)
            raise DavError(404)
        require(res, "write")
        assert res.calendar is not None
        changes, refused = _changes(req.ops)
        ms = Multistatus()
        names = [op.name for op in req.ops]
        if refused:  # RFC 4918 §9.2: all or nothing
            ms.add(res.path, forbidden=refused,
                   other={424: [n for n in names if n not in refused]})
            return multistatus(ms)
        if changes:
            cal = await cal_repo.update_calendar(conn, res.calendar, **changes)
            if "timezone" in changes:
                # RFC 4791 §9.9: floating times now read in the new zone.
                await reindex_floating(conn, cal)
            await _audit_delegate(conn, actor, res, "calendar.proppatch", sorted(changes))
        ms.add(res.path, dict.fromkeys(names))
    return multistatus(ms)


async def do_MKCALENDAR(services: Services, request: Request, actor: Account, path: str) -> Response:
    req = parse_mkcalendar(await read_body(request))
    async with reqdb.transaction(services, request) as conn:
        res = await resolve(services, conn, actor, path)
        if res.kind != "missing":
            if res.kind == "calendar":
                # RFC 4791 §5.3.1.1: resource-must-be-null
                raise DavError(405, dav("resource-must-be-null"), "already exists")
            raise DavError(403, None, "calendars are made in a calendar home")
        if not res.rights.is_owner:
            raise NeedPrivileges(res.path.rsplit("/", 2)[0] + "/", "bind")
        changes, refused = _changes(req.props)
        if refused:
            ms = Multistatus()
            ms.add(res.path, forbidden=refused)
            return Response(ms.to_bytes(), status_code=403, media_type=XML)
        owner = res.owner
        assert owner is not None and res.name is not None
        try:
            cal = await cal_repo.create_calendar(conn, owner, res.name)
        except Conflict as exc:
            raise DavError(405, dav("resource-must-be-null"), str(exc)) from None
        if changes:
            await cal_repo.update_calendar(conn, cal, **changes)
    return Response(b"", status_code=201, headers={"Content-Length": "0"})


async def do_MKCOL(services: Services, request: Request, actor: Account, path: str) -> Response:
    """RFC 5689 extended MKCOL with a calendar resourcetype is MKCALENDAR."""
    body = await read_body(request)
    req = parse_mkcalendar(body)
    if caldav("calendar") not in req.resourcetype:
        raise DavError(403, None, "only calendar collections can be made here")

    async def again() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return await do_MKCALENDAR(services, Request(request.scope, again), actor, path)


# --- GET / HEAD / feeds ---------------------------------------------------------------


def merge_objects(objs: Iterable[str], name: str = "") -> bytes:
    """One VCALENDAR holding every component of ``objs`` (whole-calendar GET, feeds)."""
    from icalendar import Calendar as ICal

    out = ICal()
    out.add("VERSION", "2.0")
    out.add("PRODID", ical.PRODID)
    if name:
        out.add("X-WR-CALNAME", name)
    seen_tz: set[str] = set()
    for text in objs:
        cal = ical.load_calendar(text)
        for comp in cal.subcomponents:
            if comp.name == "VTIMEZONE":
                tzid = str(comp.get("TZID"))
                if tzid in seen_tz:
                    continue
                seen_tz.add(tzid)
            out.add_component(comp)
    return out.to_ical()


async def do_GET(services: Services, request: Request, actor: Account, path: str,
                 head: bool = False) -> Response:
    async with reqdb.connection(services, request) as conn:
        res = await resolve(services, conn, actor, path)
        if res.kind == "object":
            if res.obj is None:
                raise DavError(404)
            require(res, "read")
            body = calendar_data(res.obj, res).encode("utf-8")
            headers = {"ETag": res.obj.etag,
                       "Last-Modified": format_datetime(res.obj.updated_at, usegmt=True)}
            if res.obj.schedule_tag:
                headers["Schedule-Tag"] = res.obj.schedule_tag
            if request.headers.get("if-none-match", "").strip() == res.obj.etag:
                return Response(status_code=304, headers=headers)
        elif res.kind == "calendar":
            require(res, "read")
            assert res.calendar is not None
            objs = await cal_repo.list_objects(conn, res.calendar, with_data=True)
            body = merge_objects((calendar_data(o, res) for o in objs),
                                 res.calendar.displayname)
            headers = {"ETag": f'"{cal_repo.sync_token(res.calendar)}"'}
        elif res.kind in ("missing",):
            raise DavError(404)
        else:
            body = b"Congvu CalDAV: use a CalDAV client with this URL.\n"
            return Response(b"" if head else body, media_type="text/plain; charset=utf-8")
    return Response(b"" if head else body, media_type=ICS,
                    headers={**headers, "Content-Length": str(len(body))})


async def do_HEAD(services: Services, request: Request, actor: Account, path: str) -> Response:
    return await do_GET(services, request, actor, path, head=True)


async def feed(services: Services, request: Request, path: str) -> Response:
    """``/dav/feeds/TOKEN.ics``: a published work schedule, read-only, no login."""
    if request.method.upper() not in ("GET", "HEAD"):
        raise DavError(405, None, "feeds are read-only")
    token = path.rsplit("/", 1)[-1].removesuffix(".ics")
    async with reqdb.connection(services, request) as conn:
        try:
            cal = await cal_repo.calendar_for_feed(conn, token)
        except NotFound:
            raise DavError(404, None, "no such feed") from None
        objs = await cal_repo.list_objects(conn, cal, with_data=True)
    # A feed reader has no write rights: private entries are busy time only.
    texts = [o.ics if o.class_ == "PUBLIC" else ical.redact_private(o.ics).decode() for o in objs]
    body = merge_objects(texts, cal.displayname)
    return Response(b"" if request.method.upper() == "HEAD" else body, media_type=ICS,
                    headers={"ETag": f'"{cal_repo.sync_token(cal)}"',
                             "Cache-Control": "private, max-age=300"})


# --- PUT / DELETE / MOVE ---------------------------------------------------------------


def _check_preconditions(request: Request, current: StoredObject | None) -> None:
    """RFC 7232 If-Match / If-None-Match on the object's current ETag."""
    if_match = request.headers.get("if-match")
    if_none = request.headers.get("if-none-match")
    etag = current.etag if current else None
    if if_match is not None:
        tags = [t.strip() for t in if_match.split(",")]
        if etag is None or ("*" not in tags and etag not in tags
                            and etag not in [t.removeprefix("W/") for t in tags]):
            raise DavError(412, None, "If-Match failed")
    if if_none is not None:
        tags = [t.strip() for t in if_none.split(",")]
        if etag is not None and ("*" in tags or etag in tags):
            raise DavError(412, None, "If-None-Match failed")


async def _audit_delegate(conn: asyncpg.Connection, actor: Account, res: Resource,
                          action: str, detail: object) -> None:
    """Edits by anyone but the owner itself are audited (delegates, schedule managers)."""
    if res.rights.is_owner:
        return
    await audit_repo.record(conn, actor.address, action, res.label,
                            {"calendar": res.calendar.name if res.calendar else "",
                             "detail": detail})


def _sequence(ics: str | bytes) -> int | None:
    """Highest SEQUENCE of an object's components; None when it has none."""
    found = schedbatch.sequences(ics.encode() if isinstance(ics, str) else ics)
    return max(found) if found else None


def _organizes(account: Account | None, organizer: ical.Attendee) -> bool:
    """Is ``organizer`` one of the account's own addresses (no database)?"""
    if account is None:
        return False
    email = organizer.email.lower()
    return email == account.address.lower() or email in (a.lower() for a in account.aliases)


def _schedule_reply(request: Request) -> bool:
    """RFC 6638 §8.1: ``Schedule-Reply: F`` on an attendee's PUT/DELETE/MOVE
    means no REPLY to the organizer (any other value, or none: reply)."""
    return (request.headers.get("schedule-reply") or "T").strip().upper() != "F"


def _plain_precondition(request: Request) -> tuple[str, str | None] | None:
    """The request's If-Match / If-None-Match as `calendar_put.put_plain` checks
    them, or None when only the general path can (several tags, Schedule-Tag)."""
    headers = request.headers
    if headers.get("if-schedule-tag-match") is not None:
        return None
    if_match, if_none = headers.get("if-match"), headers.get("if-none-match")
    if if_match is None and if_none is None:
        return ("any", None)
    if if_match is None and if_none is not None and if_none.strip() == "*":
        return ("absent", None)
    if if_none is None and if_match is not None and "," not in if_match:
        tag = if_match.strip()
        return ("exists", None) if tag == "*" else ("match", tag.removeprefix("W/"))
    return None


def _own_object(actor: Account, path: str) -> tuple[str, str] | None:
    """(calendar name, object name) when ``path`` names an object in one of the
    actor's own calendars (``/dav/calendars/users/ME/NAME/OBJECT``, as
    `resources.resolve` reads it; not a unit schedule bound into the home)."""
    segs = path.split("/")
    if (len(segs) != 7 or segs[0] or segs[1] != "dav" or segs[2] != "calendars"
            or segs[3] != "users" or segs[4].lower() != actor.address or not segs[5]
            or segs[5].startswith(UNIT_PREFIX) or not segs[6]):
        return None
    return segs[5], segs[6]


async def _put_plain(services: Services, request: Request, actor: Account, path: str,
                     parsed: ical.CalendarObject) -> Response | None:
    """The common PUT in one statement (`congvu.store.calendar_put`): the owner
    writing a non-scheduling object (no ORGANIZER, so no hooks to run, RFC 6638
    §3.1) with no floating times. None: the general path decides (it reads
    everything again in its transaction)."""
    condition = _plain_precondition(request)
    if (condition is None or parsed.floating or b"ORGANIZER" in parsed.data.upper()
            or not plain_objects_skip_hooks()):
        return None
    # a bounded series: its instances are indexed (objects.recurring_spans) and
    # written by the same statement when it is new
    index = index_of(parsed)
    own = _own_object(actor, path)
    async with reqdb.connection(services, request) as conn:
        if conn.is_in_transaction():
            return None
        try:
            if own is not None:
                # the actor's own calendar: found by the statement itself
                put = await calendar_put.put_plain_by_name(conn, actor.id, own[0], own[1],
                                                           index, parsed.data, *condition)
            else:
                res = await resolve(services, conn, actor, path, load_object=False)
                cal = res.calendar
                if (res.kind != "object" or cal is None or res.name is None
                        or not res.rights.is_owner or cal.kind != "calendar"
                        or parsed.component not in (cal.components or ("VEVENT", "VTODO"))):
                    return None
                put = await calendar_put.put_plain(conn, cal, res.name, index, parsed.data,
                                                   *condition)
        except asyncpg.UniqueViolationError:
            return None  # the UID was taken meanwhile: the general path decides
    if put.verdict == "precondition":
        raise DavError(412, None, "If-Match failed" if condition[0] in ("exists", "match")
                       else "If-None-Match failed")
    if put.verdict != "written":
        return None
    assert put.etag is not None
    headers = {"ETag": put.etag, "Content-Length": "0"}
    if put.schedule_tag:
        headers["Schedule-Tag"] = put.schedule_tag
    # The statement committed when it returned (DESIGN §2).
    return Response(b"", status_code=201 if put.created else 204, headers=headers)


async def do_PUT(services: Services, request: Request, actor: Account, path: str) -> Response:
    body = await read_body(request)
    # Parsed first (no database work) so the stored object and its UID's are
    # read in one statement; a parse error still answers only after the
    # URL and the write right were checked.
    bad: ical.InvalidCalendarData | None = None
    try:
        parsed = parse(body, ical.OBJECT_TYPES)
    except ical.InvalidCalendarData as exc:
        bad = exc
    if bad is None:
        done = await _put_plain(services, request, actor, path, parsed)
        if done is not None:
            return done
    async with reqdb.transaction(services, request) as conn:
        res = await resolve(services, conn, actor, path, load_object=False)
        if res.kind != "object" or res.calendar is None or res.name is None:
            raise DavError(405 if res.kind != "missing" else 409, None,
                           "PUT needs a calendar object URL")
        require(res, "write")
        cal = res.calendar
        supported = cal.components or ("VEVENT", "VTODO")
        if bad is None and parsed.component not in supported:
            bad = ical.UnsupportedComponent(f"component {parsed.component} not supported here")
        if bad is not None:
            raise DavError(bad.status, bad.precondition, bad.message) from None
        if not fits(parsed, cal):  # RFC 4791 §9.9: floating times in the calendar's zone
            parsed = parse_for(body, cal, ical.OBJECT_TYPES)
        href = res.name
        attending = False
        if (parsed.organizer is not None and res.owner is not None
                and res.owner.kind == "account" and cal.kind == "calendar"):
            if not _organizes(res.account, parsed.organizer):
                # An attendee's answer racing the organizer's update: locked before
                # the stored copy is read, so it is read after (or before) the update.
                attending = await lock_for_attendee_write(conn, res.owner,
                                                          parsed.organizer.address)
            else:
                # The organizer's update: a REPLY merged into the stored copy
                # between this read and the hook's locks would be overwritten
                # (lost update). A first look tells whom the stored copy invites;
                # then everyone's locks (id order) and the read that counts.
                at_href, same_uid = await cal_repo.find_href_and_uid(conn, cal, href,
                                                                     parsed.uid)
                prior = at_href or same_uid
                await lock_for_organizer_write(
                    conn, res.owner, [parsed.data, *([prior.ics] if prior else [])])
        at_href, same_uid = await cal_repo.find_href_and_uid(conn, cal, href, parsed.uid)
        res = replace(res, obj=at_href)
        _check_preconditions(request, res.obj)
        check_schedule_tag(request.headers, res.obj)  # RFC 6638 §8.3
        old = res.obj
        displaced: tuple[Calendar, str] | None = None
        if old is None and same_uid is not None:
            # Thunderbird may PUT an invitation it accepted from email under a
            # new href: the UID is the object's identity, so the existing
            # object moves to the new href (a removal + a change for sync).
            old, displaced = same_uid, (cal, same_uid.href)
        elif old is None and parsed.organizer is not None and res.owner is not None:
            # RFC 6638 §3.2.4.1: one scheduling object per UID in the owner's
            # calendars. A client filing an invitation it accepted into another
            # calendar than the server's copy (Thunderbird) moves that copy here,
            # with its scheduling state, instead of making a second one.
            for other_cal, other in await cal_repo.find_uid(conn, res.owner, parsed.uid):
                if other_cal.id != cal.id:
                    old, displaced = other, (other_cal, other.href)
                    break
        sent_seq = _sequence(parsed.data) if attending and old is not None else None
        stale = (sent_seq is not None and old is not None and old.uid == parsed.uid
                 and sent_seq < (_sequence(old.ics) or 0))
        if stale:
            # RFC 5546 §2.1.5: the attendee's client answered a version the
            # organizer has since replaced (Thunderbird's PUT racing an
            # update): the newer version stands, unanswered, and no stale REPLY
            # goes out; no ETag in the answer, so the client fetches it.
            assert old is not None
            parsed = parse_for(old.ics, cal)
        # The hooks take the scheduling locks (store.scheduling.lock_accounts)
        # before they write; nothing is written here before them, so a PUT and
        # an organizer's update lock in one order and never deadlock.
        new_body, tag = await run_hooks(conn, services, actor, res.owner, cal, href,
                                        old.ics.encode() if old else None, parsed.data,
                                        schedule_reply=_schedule_reply(request))
        if displaced is not None:
            try:
                await cal_repo.delete_object(conn, *displaced)
            except NotFound:
                pass  # removed meanwhile (a CANCEL): nothing left to move
        # the body a hook stored instead of the client's (SCHEDULE-STATUS, ...)
        rewritten = new_body if new_body is not None and new_body != parsed.data else None
        scheduled = stale or rewritten is not None
        if rewritten is not None:
            try:
                parsed = parse_for(rewritten, cal)
            except ical.InvalidCalendarData as exc:
                raise DavError(500, None, f"hook produced bad data: {exc}") from None
        if tag is None and old is not None:
            tag = old.schedule_tag
        try:
            # The UID was looked up above for a new href; an existing href with
            # the same UID cannot collide (UIDs are unique per calendar).
            checked = old is None or old.uid == parsed.uid
            # Written only over the version read above (If-Match, the hooks' old
            # body): another writer in between -> ObjectChanged, the request is
            # run again on fresh data (app._with_retry), so two PUTs with one
            # If-Match or two If-None-Match: * creates never both succeed.
            obj, created = await cal_repo.put_object(
                conn, cal, href, index_of(parsed), parsed.data, tag, check_uid=not checked,
                expect=res.obj.modseq if res.obj is not None else None)
        except Conflict as exc:  # RFC 4791 §5.3.2.1
            raise DavError(409, caldav("no-uid-conflict"), str(exc)) from None
        await settle_floating(conn, cal, parsed)  # a calendar-timezone changed meanwhile
        await _audit_delegate(conn, actor, res, "calendar.put", href)
    headers = {"ETag": obj.etag, "Content-Length": "0"}
    if scheduled:
        # RFC 4791 §5.3.4: scheduling changed what was stored (SCHEDULE-STATUS, a
        # room's answer): no ETag, so the client fetches the stored version.
        del headers["ETag"]
    if obj.schedule_tag:
        headers["Schedule-Tag"] = obj.schedule_tag
    # Acknowledged only now, after the commit (DESIGN §2).
    return Response(b"", status_code=201 if created and res.obj is None else 204, headers=headers)


async def do_DELETE(services: Services, request: Request, actor: Account, path: str) -> Response:
    async with reqdb.transaction(services, request) as conn:
        res = await resolve(services, conn, actor, path)
        if res.kind == "object":
            if res.obj is None:
                raise DavError(404)
            require(res, "write")
            assert res.calendar is not None and res.name is not None
            _check_preconditions(request, res.obj)
            check_schedule_tag(request.headers, res.obj)  # RFC 6638 §8.3
            await run_hooks(conn, services, actor, res.owner, res.calendar, res.name,
                            res.obj.ics.encode(), None, schedule_reply=_schedule_reply(request))
            # Only the version checked and handed to the hooks (see do_PUT).
            await cal_repo.delete_object(conn, res.calendar, res.name, expect=res.obj.modseq)
            await _audit_delegate(conn, actor, res, "calendar.delete", res.name)
        elif res.kind == "calendar":
            assert res.calendar is not None
            if not res.rights.is_owner or res.calendar.is_default:
                raise NeedPrivileges(res.path, "unbind")
            await cal_repo.delete_calendar(conn, res.calendar)
        elif res.kind == "missing":
            raise DavError(404)
        else:
            raise DavError(403, None, "cannot delete this resource")
    return Response(b"", status_code=204)


async def do_MOVE(services: Services, request: Request, actor: Account, path: str) -> Response:
    dest = request.headers.get("destination")
    if not dest:
        raise DavError(400, None, "MOVE needs a Destination header")
    dest_path = href_to_path(dest)
    if urlsplit(dest).netloc and urlsplit(dest).netloc != request.headers.get("host"):
        raise DavError(502, None, "Destination on another server")
    overwrite = (request.headers.get("overwrite") or "T").strip().upper() != "F"
    async with reqdb.transaction(services, request) as conn:
        src = await resolve(services, conn, actor, path)
        if src.kind != "object" or src.obj is None:
            raise DavError(404 if src.kind in ("object", "missing") else 403)
        dst = await resolve(services, conn, actor, dest_path)
        if dst.kind != "object" or dst.calendar is None or dst.name is None:
            raise DavError(409, None, "Destination must be a calendar object URL")
        require(src, "write")
        require(dst, "write")
        assert src.calendar is not None and src.name is not None
        if dst.obj is not None and not overwrite:
            raise DavError(412, None, "Destination exists and Overwrite is F")
        if src.calendar.id == dst.calendar.id and src.name == dst.name:
            raise DavError(403, None, "source and destination are the same")
        try:  # RFC 4791 §5.3.2.1: the destination's component set applies too
            parsed = parse_for(src.obj.ics, dst.calendar)
        except ical.InvalidCalendarData as exc:
            raise DavError(exc.status, exc.precondition, exc.message) from None
        role = await scheduling_role(conn, src.owner, src.obj.ics)
        if role != "none":
            await _check_scheduling_move(conn, src, dst, role, parsed.uid)
        if dst.obj is not None:
            if dst.obj.uid != parsed.uid:
                # Overwrite: T removes the destination: for a scheduling object
                # that is a DELETE (RFC 6638 §3.2.1.3 / §3.2.2.3).
                await run_hooks(conn, services, actor, dst.owner, dst.calendar, dst.name,
                                dst.obj.ics.encode(), None,
                                schedule_reply=_schedule_reply(request))
            await cal_repo.delete_object(conn, dst.calendar, dst.name, expect=dst.obj.modseq)
        dst_cal: Calendar = await cal_repo.get_calendar_by_id(
            conn, dst.calendar.owner_id, dst.calendar.id)
        try:
            # No scheduling hooks for the object itself: between one owner's
            # calendars it stays the same scheduling object (same UID,
            # Schedule-Tag, attendees): nobody is re-invited or cancelled.
            # both ends as read and checked above, else the request runs again
            await cal_repo.move_object(conn, src.calendar, src.name, dst_cal, dst.name,
                                       index_of(parsed), expect=src.obj.modseq)
        except Conflict as exc:
            raise DavError(409, caldav("no-uid-conflict"), str(exc)) from None
        await settle_floating(conn, dst_cal, parsed)
        detail = f"{src.name} -> {dest_path}"
        if role != "none":  # scheduling objects' moves are always on record
            await audit_repo.record(conn, actor.address, "calendar.move", src.label,
                                    {"calendar": src.calendar.name, "detail": detail,
                                     "uid": parsed.uid, "role": role})
        else:
            await _audit_delegate(conn, actor, src, "calendar.move", detail)
    return Response(b"", status_code=204 if dst.obj is not None else 201)


async def _check_scheduling_move(conn: asyncpg.Connection, src: Resource, dst: Resource,
                                 role: str, uid: str) -> None:
    """RFC 6638 §3.2.4: what a MOVE of a scheduling object resource may do.

    Between calendars of the same owner it stays the same organizer or
    attendee object. Into another owner's calendar it would stop being one
    (the ORGANIZER/ATTENDEE no longer name the collection's owner) without
    anyone being told: refused (§3.2.4.3/§3.2.4.4). Nor may it land beside a
    second scheduling object with its UID in the owner's calendars
    (§3.2.4.1 unique-scheduling-object-resource).
    """
    assert src.calendar is not None and dst.calendar is not None and dst.owner is not None
    if src.owner != dst.owner or dst.calendar.kind != "calendar":
        precondition = ("allowed-organizer-scheduling-object-change" if role == "organizer"
                        else "allowed-attendee-scheduling-object-change")
        raise DavError(403, caldav(precondition),
                       "a scheduling object moves only between its owner's calendars")
    for cal, obj in await cal_repo.find_uid(conn, dst.owner, uid):
        if (cal.id, obj.href) == (src.calendar.id, src.name):
            continue
        if cal.id == dst.calendar.id and obj.href == dst.name:
            continue  # the destination being overwritten
        raise DavError(403, caldav("unique-scheduling-object-resource"),
                       f"UID {uid} is already scheduled in {cal.name}/{obj.href}")


async def do_POST(services: Services, request: Request, actor: Account, path: str) -> Response:
    """RFC 6638 §5: free/busy through the schedule outbox (congvu.calendar.schedule_dav)."""
    return await outbox_post(services, request, actor, path)


async def do_REPORT(services: Services, request: Request, actor: Account, path: str) -> Response:
    from congvu.calendar.reports import report

    return await report(services, request, actor, path, await read_body(request))


__all__ = [
    "NeedPrivileges",
    "calendar_data",
    "cs",
    "do_PROPFIND",
    "feed",
    "merge_objects",
    "prop_text",
]
