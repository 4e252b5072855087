"""Finding people, rooms, units and groups: RFC 3744 §9.4/§9.5 principal search.

This is what Apple Calendar, Thunderbird and Evolution ask when a user types
a name into an invitation's attendee field or looks for a room:
``DAV:principal-property-search`` over ``DAV:displayname``,
``CALDAV:calendar-user-address-set`` and ``CS:email-address-set`` (Apple's
``match-type`` ``starts-with``/``equals``/``contains``, default contains),
optionally narrowed by ``CALDAV:calendar-user-type`` (RFC 6638 §2.4.2:
INDIVIDUAL, GROUP, RESOURCE, ROOM). Names match without case or diacritics
("nguyen van an", "phong hop" find "Nguyễn Văn An", "Phòng họp"); Apple's
``CS:first-name``/``CS:last-name`` match the start of any word of the name
(Vietnamese names have no reliable first/last split).

Principals searched: accounts (INDIVIDUAL, ROOM, RESOURCE), distribution
groups and units (GROUP, as their principals say in PROPFIND). Disabled
accounts are never found. ``test="allof"`` (the default) needs every
property-search to match, ``anyof`` one; inside one property-search any of
its properties may match (RFC 3744 §9.4).

Apple Calendar prefers its own ``CS:calendarserver-principal-search`` when a
server lists it in supported-report-set: search tokens (each must match a
name or an address, anywhere) and a ``context`` (user, group, location,
resource, attendee) choosing the kinds of principal.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from starlette.responses import Response

from congvu.calendar.davreport import (CalendarServerPrincipalSearch, PrincipalPropertySearch,
                                       PropertySearch)
from congvu.calendar.davxml import Multistatus, caldav, cs, dav
from congvu.calendar.methods import XML, multistatus
from congvu.calendar.props import USER_TYPES, PropContext, properties
from congvu.calendar.resources import (Resource, group_principal_path, principal_path,
                                       unit_principal_path)
from congvu.store import principals as principals_repo
from congvu.textfold import fold

__all__ = ["calendarserver_search", "principal_search", "search_property_set"]

TYPE = caldav("calendar-user-type")
_NAME = dav("displayname")
_WORD_PROPS = (cs("first-name"), cs("last-name"))
_ADDRESS_PROPS = (caldav("calendar-user-address-set"), cs("email-address-set"))
# What principal-search-property-set offers (RFC 3744 §9.5), with a label.
SEARCHABLE = ((_NAME, "Tên"), (caldav("calendar-user-address-set"), "Địa chỉ"),
              (cs("email-address-set"), "Email"), (TYPE, "Loại"))
_KINDS = {t: k for k, t in USER_TYPES.items()}  # INDIVIDUAL -> person, ...
DEFAULT_LIMIT = 100  # answers without a DAV:limit (RFC 3744 leaves it to the server)
_CANDIDATES = 1000  # accounts read per SQL narrowing


@dataclass(frozen=True, slots=True)
class Candidate:
    """One principal as the search sees it: type, folded name, addresses."""

    resource: Resource
    user_type: str
    name: str
    addresses: tuple[str, ...]


def _text_matches(value: str, term: str, match_type: str, words: bool = False) -> bool:
    if match_type == "equals":
        return value == term
    if match_type == "starts-with":
        # of a name: from the start of any of its words ("van p" in "nguyen van phong")
        return value.startswith(term) or (words and f" {term}" in f" {value}")
    if match_type == "ends-with":
        return value.endswith(term)
    return term in value


def _address_term(match: str) -> str:
    term = match.strip()
    return fold(term[7:] if term[:7].lower() == "mailto:" else term)


def satisfies(c: Candidate, search: PropertySearch) -> bool:
    """Does one ``<D:property-search>`` match (any of its properties)?"""
    match_type = search.match_type.lower()
    for prop in search.props:
        if prop == TYPE:
            if search.match.strip().upper() == c.user_type:
                return True
        elif prop == _NAME or prop in _WORD_PROPS:
            term = fold(search.match)
            if term and _text_matches(c.name, term, "starts-with" if prop in _WORD_PROPS
                                      and match_type == "contains" else match_type,
                                      words=True):
                return True
        elif prop in _ADDRESS_PROPS:
            term = _address_term(search.match)
            if term and any(_text_matches(a, term, match_type) for a in c.addresses):
                return True
    return False


def _sql_narrowing(search: PropertySearch) -> list[tuple[str | None, list[str] | None]]:
    """(term, kinds) account queries whose union holds every account this
    property-search can match; [] when it can match no account."""
    out: list[tuple[str | None, list[str] | None]] = []
    for prop in search.props:
        if prop == TYPE:
            kind = _KINDS.get(search.match.strip().upper())
            if kind is not None:
                out.append((None, [kind]))
        elif prop == _NAME or prop in _WORD_PROPS:
            if fold(search.match):
                out.append((fold(search.match), None))
        elif prop in _ADDRESS_PROPS and _address_term(search.match):
            out.append((_address_term(search.match), None))
    return out


async def _accounts(conn: asyncpg.Connection,
                    narrowing: list[tuple[str | None, list[str] | None]]) -> list[Candidate]:
    found = {}
    for term, kinds in narrowing:
        for acc in await principals_repo.search_accounts(conn, term=term, kinds=kinds,
                                                         limit=_CANDIDATES):
            found[acc.id] = acc
    return [Candidate(Resource("principal", principal_path(a), account=a),
                      USER_TYPES.get(a.kind, "UNKNOWN"), fold(a.display_name or a.address),
                      (a.address.lower(), *(x.lower() for x in a.aliases)))
            for a in found.values()]


async def _groups(conn: asyncpg.Connection) -> list[Candidate]:
    out = []
    for g in await principals_repo.all_groups(conn):
        out.append(Candidate(Resource("principal", group_principal_path(g), group=g),
                             "GROUP", fold(g.name), (g.address.lower(),)))
    for u in await principals_repo.all_units(conn):
        out.append(Candidate(Resource("principal", unit_principal_path(u), unit=u),
                             "GROUP", fold(u.name), (u.slug.lower(),)))
    return out


async def candidates(conn: asyncpg.Connection, rep: PrincipalPropertySearch) -> list[Candidate]:
    """Every principal that may match ``rep`` (a superset; `satisfies` decides)."""
    if not rep.searches:
        return []
    # allof: every match satisfies the first search, so its narrowing is enough
    # (the most selective is a text search); anyof: the union of them all.
    if rep.test == "allof":
        texts = [s for s in rep.searches if any(t for t, _ in _sql_narrowing(s))]
        chosen = [texts[0] if texts else rep.searches[0]]
    else:
        chosen = list(rep.searches)
    narrowing = [n for search in chosen for n in _sql_narrowing(search)]
    return await _accounts(conn, narrowing) + await _groups(conn)


async def _answer(ctx: PropContext, matched: list[Candidate], limit: int | None,
                  names: tuple[str, ...], path: str, minimal: bool) -> Response:
    """The multistatus of the matches, sorted by name. More than the client's
    limit (or ours): the first ones and a 507 ``number-of-matches-within-limits``
    on the request URL, as RFC 5323 §5.17 does for a truncated search."""
    matched.sort(key=lambda c: (c.name, c.resource.path))
    limit = limit or DEFAULT_LIMIT
    ms = Multistatus(minimal=minimal)
    names = names or (_NAME,)
    for c in matched[:limit]:
        found_props = await properties(ctx, c.resource, names)
        ms.add(c.resource.path, found_props, [n for n in names if n not in found_props])
    if len(matched) > limit:
        ms.add_status(path, 507, dav("number-of-matches-within-limits"))
    return multistatus(ms)


async def principal_search(ctx: PropContext, rep: PrincipalPropertySearch, path: str,
                           minimal: bool) -> Response:
    """RFC 3744 §9.4 DAV:principal-property-search."""
    matched = [c for c in await candidates(ctx.conn, rep) if rep.searches and (
        all(satisfies(c, s) for s in rep.searches) if rep.test == "allof"
        else any(satisfies(c, s) for s in rep.searches))]
    return await _answer(ctx, matched, rep.limit, rep.props.props, path, minimal)


# Apple's search contexts and the calendar-user-types they cover (as Apple's
# CalendarServer answers them: an attendee is a person, a group or a resource;
# rooms are looked up as locations).
CONTEXTS = {"user": ("INDIVIDUAL",), "group": ("GROUP",), "location": ("ROOM",),
            "resource": ("RESOURCE",), "attendee": ("INDIVIDUAL", "GROUP", "RESOURCE")}


def token_matches(c: Candidate, token: str) -> bool:
    """A token matches a folded name or address anywhere (as CalendarServer's
    "contains"): "hop", "phong hop" and "phong-hop-1@" all find Phòng họp."""
    term = _address_term(token)
    return bool(term) and (term in c.name or any(term in a for a in c.addresses))


async def calendarserver_search(ctx: PropContext, rep: CalendarServerPrincipalSearch,
                                path: str, minimal: bool) -> Response:
    """Apple's CS:calendarserver-principal-search (what Apple Calendar sends as
    the user types an attendee or a location): every search-token matches."""
    types = CONTEXTS.get(rep.context or "", ("INDIVIDUAL", "ROOM", "RESOURCE", "GROUP"))
    kinds = [_KINDS[t] for t in types if t in _KINDS]
    # every match contains the first token: the SQL narrowing by it is enough
    found = await _accounts(ctx.conn, [(_address_term(rep.tokens[0]), kinds)]) if kinds else []
    if "GROUP" in types:
        found += await _groups(ctx.conn)
    matched = [c for c in found if c.user_type in types
               and all(token_matches(c, t) for t in rep.tokens)]
    return await _answer(ctx, matched, rep.limit, rep.props.props, path, minimal)


def search_property_set() -> Response:
    """RFC 3744 §9.5: the properties principal-property-search matches."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<D:principal-search-property-set '
             'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" '
             'xmlns:CS="http://calendarserver.org/ns/">']
    prefix = {"DAV:": "D", "urn:ietf:params:xml:ns:caldav": "C",
              "http://calendarserver.org/ns/": "CS"}
    for name, label in SEARCHABLE:
        ns, local = name[1:].split("}")
        parts.append(f'<D:principal-search-property><D:prop><{prefix[ns]}:{local}/></D:prop>'
                     f'<D:description xml:lang="vi">{label}</D:description>'
                     "</D:principal-search-property>")
    parts.append("</D:principal-search-property-set>")
    return Response("".join(parts).encode(), media_type=XML)
