"""REPORT request bodies (RFC 4791 §7, RFC 6578, RFC 3744 §9, RFC 3253 §3.8).

`parse_report` dispatches on the root element to one parser per report and
returns a frozen dataclass; unknown reports raise ``403 DAV:supported-report``
(RFC 3253 §3.6). calendar-query filters become the `congvu.calendar.filters`
model, checked here for the preconditions RFC 4791 §7.8 names
(``valid-filter``, ``supported-collation``, ``supported-filter``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from congvu.calendar.davxml import (
    DAV,
    DavError,
    PropfindRequest,
    caldav,
    cs,
    dav,
    href_to_path,
    parse_xml,
    propfind_from_element,
)
from congvu.calendar.filters import (
    COLLATIONS,
    MATCH_TYPES,
    CompFilter,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
)

__all__ = [
    "CalendarMultiget",
    "CalendarQuery",
    "CalendarServerPrincipalSearch",
    "ExpandItem",
    "ExpandProperty",
    "FreeBusyQuery",
    "PrincipalPropertySearch",
    "PrincipalSearchPropertySet",
    "PropertySearch",
    "Report",
    "SyncCollection",
    "parse_filter",
    "parse_report",
    "parse_time_range",
    "parse_utc",
]

VALID_FILTER = caldav("valid-filter")


@dataclass(frozen=True, slots=True)
class CalendarQuery:
    """RFC 4791 §7.8 calendar-query. ``timezone`` is the ``<C:timezone>``
    VCALENDAR text or the RFC 7809 ``<C:timezone-id>``, for floating times."""

    props: PropfindRequest
    filter: CompFilter
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class CalendarMultiget:
    """RFC 4791 §7.9 calendar-multiget; ``paths`` are decoded href paths."""

    props: PropfindRequest
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SyncCollection:
    """RFC 6578 §3.2 sync-collection. ``sync_token`` is "" on a first sync."""

    props: PropfindRequest
    sync_token: str
    sync_level: Literal["1", "infinite"] = "1"
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class FreeBusyQuery:
    """RFC 4791 §7.10 free-busy-query over [start, end)."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class PropertySearch:
    """One ``<D:property-search>``: any of ``props`` matches ``match``."""

    props: tuple[str, ...]
    match: str
    match_type: str = "contains"


@dataclass(frozen=True, slots=True)
class PrincipalPropertySearch:
    """RFC 3744 §9.4 principal-property-search (Apple adds match-type)."""

    searches: tuple[PropertySearch, ...]
    props: PropfindRequest
    test: Literal["anyof", "allof"] = "allof"
    apply_to_principal_collection_set: bool = False
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class CalendarServerPrincipalSearch:
    """Apple's CS:calendarserver-principal-search: every token matches a name or
    an address of a principal of the ``context``'s kinds (None: every kind)."""

    tokens: tuple[str, ...]
    context: str | None
    props: PropfindRequest
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class PrincipalSearchPropertySet:
    """RFC 3744 §9.5: which properties principal-property-search supports."""


@dataclass(frozen=True, slots=True)
class ExpandItem:
    """One ``<D:property>`` of expand-property and what to expand within it."""

    name: str
    children: tuple[ExpandItem, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpandProperty:
    """RFC 3253 §3.8 expand-property."""

    items: tuple[ExpandItem, ...]


Report = (
    CalendarQuery | CalendarMultiget | SyncCollection | FreeBusyQuery
    | PrincipalPropertySearch | PrincipalSearchPropertySet | ExpandProperty
    | CalendarServerPrincipalSearch
)

_UTC_RE = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")


def parse_utc(value: str, precondition: str = VALID_FILTER) -> datetime:
    """``20240101T000000Z`` → aware UTC datetime (RFC 4791 §9.9).

    Lenient: a missing ``Z`` or a bare date is read as UTC.
    """
    m = _UTC_RE.match(value.strip())
    if not m:
        raise DavError(403, precondition, f"bad UTC date-time {value!r}")
    date_part, time_part = m.group(1), m.group(2) or "000000"
    try:  # the regex checked the digits: no strptime (slow) needed
        return datetime(int(date_part[:4]), int(date_part[4:6]), int(date_part[6:]),
                        int(time_part[:2]), int(time_part[2:4]), int(time_part[4:]),
                        tzinfo=UTC)
    except ValueError as exc:
        raise DavError(403, precondition, f"bad UTC date-time {value!r}") from exc


def parse_time_range(elem: ET.Element, precondition: str = VALID_FILTER) -> TimeRange:
    """``<C:time-range start=.. end=..>``; one bound may be missing (§9.9)."""
    start, end = elem.get("start"), elem.get("end")
    if start is None and end is None:
        raise DavError(403, precondition, "time-range needs start or end")
    tr = TimeRange(
        parse_utc(start, precondition) if start else None,
        parse_utc(end, precondition) if end else None,
    )
    if tr.start is not None and tr.end is not None and tr.end <= tr.start:
        raise DavError(403, precondition, "time-range end must be after start")
    return tr


def _text_match(elem: ET.Element) -> TextMatch:
    collation = elem.get("collation", "i;ascii-casemap")
    if collation not in COLLATIONS:
        # RFC 4791 §7.5.1 / §9.7.5
        raise DavError(403, caldav("supported-collation"), f"collation {collation}")
    match_type = elem.get("match-type", "contains")
    if match_type not in MATCH_TYPES:
        raise DavError(403, caldav("supported-filter"), f"match-type {match_type}")
    negate = elem.get("negate-condition", "no").strip().lower() == "yes"
    return TextMatch(elem.text or "", collation, negate, match_type)


def _name(elem: ET.Element) -> str:
    name = elem.get("name")
    if not name:
        raise DavError(403, VALID_FILTER, f"{elem.tag} without name")
    return name.upper()


def _param_filter(elem: ET.Element) -> ParamFilter:
    tm = elem.find(caldav("text-match"))
    return ParamFilter(
        name=_name(elem),
        is_not_defined=elem.find(caldav("is-not-defined")) is not None,
        text_match=_text_match(tm) if tm is not None else None,
    )


def _prop_filter(elem: ET.Element) -> PropFilter:
    tr, tm = elem.find(caldav("time-range")), elem.find(caldav("text-match"))
    return PropFilter(
        name=_name(elem),
        is_not_defined=elem.find(caldav("is-not-defined")) is not None,
        time_range=parse_time_range(tr) if tr is not None else None,
        text_match=_text_match(tm) if tm is not None else None,
        param_filters=tuple(_param_filter(p) for p in elem.findall(caldav("param-filter"))),
    )


def _comp_filter(elem: ET.Element) -> CompFilter:
    tr = elem.find(caldav("time-range"))
    return CompFilter(
        name=_name(elem),
        is_not_defined=elem.find(caldav("is-not-defined")) is not None,
        time_range=parse_time_range(tr) if tr is not None else None,
        comp_filters=tuple(_comp_filter(c) for c in elem.findall(caldav("comp-filter"))),
        prop_filters=tuple(_prop_filter(p) for p in elem.findall(caldav("prop-filter"))),
    )


def parse_filter(elem: ET.Element | None) -> CompFilter:
    """``<C:filter>`` → root `CompFilter` (must name VCALENDAR, §9.7)."""
    if elem is None:
        raise DavError(403, VALID_FILTER, "calendar-query without filter")
    comps = elem.findall(caldav("comp-filter"))
    if len(comps) != 1:
        raise DavError(403, VALID_FILTER, "filter needs exactly one comp-filter")
    root = _comp_filter(comps[0])
    if root.name != "VCALENDAR":
        raise DavError(403, VALID_FILTER, "top comp-filter must be VCALENDAR")
    return root


def _props(root: ET.Element) -> PropfindRequest:
    return propfind_from_element(root)


def _calendar_query(root: ET.Element) -> CalendarQuery:
    tz = root.find(caldav("timezone"))
    tzid = root.find(caldav("timezone-id"))
    timezone = tz.text if tz is not None else (tzid.text if tzid is not None else None)
    return CalendarQuery(_props(root), parse_filter(root.find(caldav("filter"))), timezone)


def _calendar_multiget(root: ET.Element) -> CalendarMultiget:
    paths = tuple(href_to_path(h.text or "") for h in root.findall(dav("href")))
    return CalendarMultiget(_props(root), paths)


def _int_text(elem: ET.Element | None, what: str) -> int | None:
    if elem is None or not (elem.text or "").strip():
        return None
    try:
        value = int((elem.text or "").strip())
    except ValueError as exc:
        raise DavError(400, None, f"bad {what}") from exc
    if value < 1:
        raise DavError(400, None, f"bad {what}")
    return value


def _sync_collection(root: ET.Element) -> SyncCollection:
    token_el = root.find(dav("sync-token"))
    level = (root.findtext(dav("sync-level")) or "1").strip().lower()
    if level not in ("1", "infinite"):
        raise DavError(400, None, f"bad sync-level {level!r}")
    limit = root.find(dav("limit"))
    return SyncCollection(
        props=_props(root),
        # RFC 6578 §3.4: an empty sync-token asks for the initial listing.
        sync_token=(token_el.text or "").strip() if token_el is not None else "",
        sync_level="infinite" if level == "infinite" else "1",
        limit=_int_text(limit.find(dav("nresults")) if limit is not None else None, "nresults"),
    )


def _free_busy_query(root: ET.Element) -> FreeBusyQuery:
    tr_el = root.find(caldav("time-range"))
    if tr_el is None:
        raise DavError(400, None, "free-busy-query needs a time-range")
    tr = parse_time_range(tr_el)
    if tr.start is None or tr.end is None:
        raise DavError(400, None, "free-busy-query time-range needs start and end")
    return FreeBusyQuery(tr.start, tr.end)


_SEARCH_PARTS = {dav("property-search"), dav("prop"), dav("limit"),
                 dav("apply-to-principal-collection-set")}


def _principal_property_search(root: ET.Element) -> PrincipalPropertySearch:
    searches = []
    for ps in root.findall(dav("property-search")):
        prop = ps.find(dav("prop"))
        match = ps.find(dav("match"))
        if prop is None or match is None:
            raise DavError(400, None, "property-search needs prop and match")
        searches.append(PropertySearch(
            props=tuple(c.tag for c in prop),
            match=(match.text or "").strip(),
            match_type=match.get("match-type", "contains"),
        ))
    prop = root.find(dav("prop"))
    limit = root.find(dav("limit"))
    props = _props(root) if prop is not None else PropfindRequest("prop")
    if not props.props:
        # The caldav (Python) library 3.x writes the properties it wants beside
        # an empty DAV:prop instead of inside it: read them there.
        stray = tuple(c.tag for c in root if c.tag not in _SEARCH_PARTS)
        if stray:
            props = PropfindRequest("prop", stray)
    return PrincipalPropertySearch(
        searches=tuple(searches),
        props=props,
        test="anyof" if root.get("test", "allof") == "anyof" else "allof",
        apply_to_principal_collection_set=(
            root.find(dav("apply-to-principal-collection-set")) is not None),
        limit=_int_text(limit.find(dav("nresults")) if limit is not None else None, "nresults"),
    )


def _cs_principal_search(root: ET.Element) -> CalendarServerPrincipalSearch:
    tokens = tuple(t.text.strip() for t in root.findall(cs("search-token"))
                   if t.text and t.text.strip())
    if not tokens:
        raise DavError(400, None, "calendarserver-principal-search needs a search-token")
    limit = root.find(cs("limit"))
    if limit is None:
        limit = root.find(dav("limit"))
    nresults = None
    if limit is not None:
        nresults = limit.find(cs("nresults"))
        if nresults is None:
            nresults = limit.find(dav("nresults"))
    prop = root.find(dav("prop"))
    return CalendarServerPrincipalSearch(
        tokens=tokens, context=root.get("context") or None,
        props=_props(root) if prop is not None else PropfindRequest("prop"),
        limit=_int_text(nresults, "nresults"),
    )


def _expand_items(parent: ET.Element) -> tuple[ExpandItem, ...]:
    items = []
    for p in parent.findall(dav("property")):
        name, ns = p.get("name"), p.get("namespace", DAV)
        if not name:
            raise DavError(400, None, "expand-property property without name")
        items.append(ExpandItem(f"{{{ns}}}{name}", _expand_items(p)))
    return tuple(items)


_PARSERS: dict[str, Callable[[ET.Element], Report]] = {
    caldav("calendar-query"): _calendar_query,
    caldav("calendar-multiget"): _calendar_multiget,
    caldav("free-busy-query"): _free_busy_query,
    dav("sync-collection"): _sync_collection,
    dav("principal-property-search"): _principal_property_search,
    dav("principal-search-property-set"): lambda _root: PrincipalSearchPropertySet(),
    dav("expand-property"): lambda root: ExpandProperty(_expand_items(root)),
    cs("calendarserver-principal-search"): _cs_principal_search,
}

SUPPORTED_REPORTS = tuple(_PARSERS)
"""Clark names for the DAV:supported-report-set property (RFC 3253 §3.1.5)."""


def parse_report(body: bytes | str | None) -> Report:
    """Parse a REPORT body into its dataclass (dispatch by root element)."""
    root = parse_xml(body)
    if root is None:
        raise DavError(400, None, "REPORT needs a body")
    parser = _PARSERS.get(root.tag)
    if parser is None:
        raise DavError(403, dav("supported-report"), f"unsupported report {root.tag}")
    return parser(root)

