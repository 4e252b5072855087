"""CalDAV REPORTs: calendar-query, calendar-multiget, free-busy-query,
sync-collection, principal-property-search, principal-search-property-set and
expand-property.

calendar-query reads candidates from the store's indexed columns
(`congvu.store.calendars.objects_in_range`); a candidate that is a single,
non-recurring VEVENT and a filter that is only a VEVENT time-range are
decided from the columns too (RFC 4791 §9.9 on DTSTART/DTEND), so a week
view over a large calendar parses nothing. Everything else gets the exact
test of `congvu.calendar.filters.matches`.
"""

from __future__ import annotations


from starlette.requests import Request
from starlette.responses import Response

from datetime import timedelta, tzinfo

from congvu.calendar import caltz, ical, reqdb
from congvu.calendar.davreport import (
    CalendarMultiget,
    CalendarServerPrincipalSearch,
    CalendarQuery,
    ExpandItem,
    ExpandProperty,
    FreeBusyQuery,
    PrincipalPropertySearch,
    PrincipalSearchPropertySet,
    SyncCollection,
)
from congvu.calendar.davxml import (
    CalendarDataRequest,
    DavError,
    Multistatus,
    PropfindRequest,
    caldav,
    dav,
    el,
    parse_report,
    wants_minimal,
)
from congvu.calendar.filters import CompFilter, index_prefilter, matches
from congvu.calendar.freebusy import busy_periods, vfreebusy_response
from congvu.calendar.methods import (
    FAST_PROPS,
    OBJECT_PROPS,
    calendar_data,
    fast_responses,
    multistatus,
    object_props,
    require,
)
from congvu.calendar.principal_search import (calendarserver_search, principal_search,
                                              search_property_set)
from congvu.calendar.props import SYNC_PREFIX, PropContext, properties
from congvu.calendar.resources import Resource, principal_path, resolve
from congvu.services import Services
from congvu.store import calendars as cal_repo
from congvu.store.accounts import Account
from congvu.store.calendars import StoredObject
from congvu.store.errors import NotFound


async def report(services: Services, request: Request, actor: Account, path: str,
                 body: bytes) -> Response:
    rep = parse_report(body)
    minimal = wants_minimal(request.headers)
    async with reqdb.connection(services, request) as conn:
        res = await resolve(services, conn, actor, path)
        ctx = PropContext(services, conn, actor)
        if isinstance(rep, PrincipalSearchPropertySet):
            return search_property_set()
        if isinstance(rep, PrincipalPropertySearch):
            return await principal_search(ctx, rep, res.path, minimal)
        if isinstance(rep, CalendarServerPrincipalSearch):
            return await calendarserver_search(ctx, rep, res.path, minimal)
        if isinstance(rep, ExpandProperty):
            if res.kind in ("missing",) or (res.kind == "object" and res.obj is None):
                raise DavError(404)
            ms = Multistatus(minimal=minimal)
            ms.add(res.path, await _expand(ctx, res, rep.items, depth=0))  # type: ignore[arg-type]
            return multistatus(ms)
        if res.kind != "calendar" or res.calendar is None:
            if res.kind == "object" and isinstance(rep, CalendarMultiget):
                res = await resolve(services, conn, actor, res.path.rsplit("/", 1)[0] + "/")
            else:
                raise DavError(403, dav("supported-report"), "report needs a calendar")
        require(res, "read")
        if isinstance(rep, CalendarQuery):
            return await _query(ctx, res, rep, minimal)
        if isinstance(rep, CalendarMultiget):
            return await _multiget(ctx, res, rep, minimal)
        if isinstance(rep, SyncCollection):
            return await _sync(ctx, res, rep, minimal)
        if isinstance(rep, FreeBusyQuery):
            return await _freebusy(ctx, res, rep)
    raise DavError(403, dav("supported-report"))


def _render(ms: Multistatus, res: Resource, obj: StoredObject, props: PropfindRequest,
            me: str, *, always_etag: bool = False, tz: tzinfo | None = None) -> None:
    names: tuple[str, ...] | None = props.props if props.kind == "prop" else None
    found = object_props(obj, names, me)
    if always_etag:
        found.setdefault(dav("getetag"), obj.etag)
    wanted = names or ()
    if caldav("calendar-data") in wanted or (props.calendar_data is not None):
        found[caldav("calendar-data")] = _calendar_data(obj, res, props.calendar_data, tz)
    missing = [n for n in wanted if n not in found]
    ms.add(res.path + obj.href, found, missing)  # type: ignore[arg-type]


def _calendar_data(obj: StoredObject, res: Resource, req: CalendarDataRequest | None,
                   tz: tzinfo | None = None) -> str:
    text = calendar_data(obj, res)
    if req is None or (req.expand is None and req.limit_recurrence_set is None):
        return text
    # RFC 4791 §9.9: floating times in the query's or the calendar's zone.
    tz = tz or caltz.calendar_zone(res.calendar).tz
    if req.expand is not None:
        return ical.expand(text, *req.expand, floating_tz=tz).decode("utf-8")
    assert req.limit_recurrence_set is not None
    return ical.limit_recurrence_set(text, *req.limit_recurrence_set,
                                     floating_tz=tz).decode("utf-8")


def _columns_decide(flt: CompFilter) -> bool:
    """Is the filter exactly VCALENDAR > VEVENT [time-range] with nothing else?"""
    if flt.prop_filters or len(flt.comp_filters) != 1:
        return False
    child = flt.comp_filters[0]
    return (child.name == "VEVENT" and not child.is_not_defined and not child.comp_filters
            and not child.prop_filters)


async def _query(ctx: PropContext, res: Resource, rep: CalendarQuery, minimal: bool) -> Response:
    cal = res.calendar
    assert cal is not None
    # RFC 4791 §9.9: floating times are read in the query's CALDAV:timezone,
    # else the calendar's. The index holds them in the calendar's zone; in
    # another zone they may move by up to a day, so the candidates are
    # widened and every one is tested exactly.
    zone = own = caltz.calendar_zone(cal)
    if rep.timezone is not None:
        asked = caltz.zone_for_query(rep.timezone, cal)
        if asked is None:
            raise DavError(403, caldav("valid-calendar-data"),
                           "CALDAV:timezone must hold one valid VTIMEZONE")
        zone = asked
    other_zone = not zone.same(own)
    rng = index_prefilter(rep.filter)
    simple = _columns_decide(rep.filter) and not other_zone
    if rng is not None:
        slack = timedelta(days=2) if other_zone else timedelta(0)
        found = await cal_repo.objects_overlapping(
            ctx.conn, cal, rng.comp_type, rng.start - slack if rng.start else None,
            rng.end + slack if rng.end else None)
    else:
        found = [(o, None) for o in await cal_repo.list_objects(ctx.conn, cal, with_data=True)]
    ms = Multistatus(minimal=minimal)
    me = principal_path(ctx.actor)
    props = rep.props.props
    fast = (rep.props.kind == "prop" and bool(FAST_PROPS.intersection(props))
            and all(p in FAST_PROPS or p not in OBJECT_PROPS for p in props))
    matched = []
    for obj, hit in found:
        # The store decided the time-range from its columns where it could;
        # otherwise (other filters, VTODO, unbounded series) the exact test.
        # Readers without write rights are matched against what they may see.
        ok = (hit if (simple and hit is not None)
              else matches(rep.filter, calendar_data(obj, res), zone.tz))
        if ok:
            matched.append(obj)
    if fast:  # getetag and the like only (iPhone, DAVx5): written directly, as for sync
        fast_responses(ms, res.path, matched, props)  # type: ignore[arg-type]
    else:
        for obj in matched:
            _render(ms, res, obj, rep.props, me, tz=zone.tz)
    return multistatus(ms)


async def _multiget(ctx: PropContext, res: Resource, rep: CalendarMultiget,
                    minimal: bool) -> Response:
    cal = res.calendar
    assert cal is not None
    names: dict[str, str] = {}
    for p in rep.paths:
        parent, _, name = p.rpartition("/")
        names[p] = name if parent + "/" == res.path else ""
    with_data = rep.props.kind != "prop" or caldav("calendar-data") in rep.props.props
    objs = {o.href: o for o in await cal_repo.multiget(
        ctx.conn, cal, [n for n in names.values() if n], with_data=with_data)}
    ms = Multistatus(minimal=minimal)
    me = principal_path(ctx.actor)
    for p, name in names.items():
        obj = objs.get(name)
        if obj is None:
            ms.add_status(p, 404)
        else:
            # DAVx5 breaks on a multiget answer without getetag: always send it.
            _render(ms, res, obj, rep.props, me, always_etag=True)
    return multistatus(ms)


# RFC 6578 §3.6: the server may page a sync-collection answer on its own
# (None: it does not; a client's DAV:limit pages it anyway, §3.7).
SYNC_PAGE_LIMIT: int | None = None


async def _sync(ctx: PropContext, res: Resource, rep: SyncCollection, minimal: bool) -> Response:
    cal = res.calendar
    assert cal is not None
    if rep.sync_level != "1":
        raise DavError(403, dav("sync-traversal-supported"), "sync-level infinite")
    token = rep.sync_token
    if token.startswith(SYNC_PREFIX):
        token = token[len(SYNC_PREFIX):]
    elif token:
        token = "\0"  # not one of ours
    with_data = rep.props.kind == "prop" and caldav("calendar-data") in rep.props.props
    props = rep.props.props
    fast = (rep.props.kind == "prop" and bool(FAST_PROPS.intersection(props))
            and all(p in FAST_PROPS or p not in OBJECT_PROPS for p in props))
    limit = rep.limit
    if SYNC_PAGE_LIMIT is not None and (limit is None or limit > SYNC_PAGE_LIMIT):
        limit = SYNC_PAGE_LIMIT
    try:
        changes = await cal_repo.changes_since(ctx.conn, cal, token, with_data=with_data,
                                               tags_only=fast and limit is None, limit=limit)
    except cal_repo.InvalidSyncToken:
        # RFC 6578 §3.2: clients fall back to a full sync on this precondition.
        raise DavError(403, dav("valid-sync-token"), "unknown sync token") from None
    ms = Multistatus(minimal=minimal)
    me = principal_path(ctx.actor)
    if changes.tags is not None:
        fast_responses(ms, res.path, changes.tags, props)
    for obj in changes.changed:
        _render(ms, res, obj, rep.props, me)
    for href in changes.removed:
        ms.add_status(res.path + href, 404)
    if changes.truncated:
        # RFC 6578 §3.6/§3.7: the answer was cut (DAV:limit or our page): 507 on
        # the collection itself, and a token from which the client continues.
        ms.add_status(res.path, 507, dav("number-of-matches-within-limits"))
    return multistatus(ms, SYNC_PREFIX + changes.token)


async def _freebusy(ctx: PropContext, res: Resource, rep: FreeBusyQuery) -> Response:
    cal = res.calendar
    assert cal is not None
    periods = []
    tz = caltz.calendar_zone(cal).tz  # RFC 4791 §9.9 / §7.10: floating times
    for obj in await cal_repo.objects_in_range(ctx.conn, cal, "VEVENT", rep.start, rep.end):
        periods.extend(busy_periods(obj.ics, rep.start, rep.end, tz))
    body = vfreebusy_response(periods, rep.start, rep.end)
    return Response(body, media_type="text/calendar; charset=utf-8")


# --- principals: congvu.calendar.principal_search ----------------------------------


async def _expand(ctx: PropContext, res: Resource, items: tuple[ExpandItem, ...],
                  depth: int) -> dict[str, object]:
    """RFC 3253 §3.8: properties whose hrefs are replaced by the named resources'
    own properties (one level deeper per nesting, at most three)."""
    values = await properties(ctx, res, [i.name for i in items])
    out: dict[str, object] = {}
    for item in items:
        value = values.get(item.name)
        if item.name not in values:
            continue
        if not item.children or depth >= 3:
            out[item.name] = value
            continue
        elems = value if isinstance(value, list) else [value]
        responses = []
        for e in elems:
            if getattr(e, "tag", None) != dav("href") or not e.text:  # type: ignore[union-attr]
                continue
            try:
                target = await resolve(ctx.services, ctx.conn, ctx.actor, e.text)  # type: ignore[union-attr]
            except DavError:
                continue
            if target.kind in ("missing",):
                continue
            sub = await _expand(ctx, target, item.children, depth + 1)
            prop = el(dav("prop"))
            for name, v in sub.items():
                child = el(name)
                _fill(child, v)
                prop.append(child)
            responses.append(el(dav("response"), None, el(dav("href"), target.path),
                                el(dav("propstat"), None, prop,
                                   el(dav("status"), "HTTP/1.1 200 OK"))))
        out[item.name] = responses
    return out


def _fill(elem, value) -> None:  # type: ignore[no-untyped-def]
    if value is None:
        return
    if isinstance(value, str):
        elem.text = value
    elif isinstance(value, list):
        elem.extend(value)
    else:
        elem.append(value)


__all__ = ["report"]
_ = NotFound
