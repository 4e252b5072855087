"""WebDAV/CalDAV XML: namespaces, safe request parsing, multistatus replies.

Request bodies are parsed with ``defusedxml`` and any DTD, entity
declaration or external reference is refused (XML bombs, XXE) with a
`DavError` that renders its own reply. PROPFIND, PROPPATCH and MKCALENDAR
bodies become frozen dataclasses here; REPORT bodies are in
`congvu.calendar.davreport` (re-exported as `parse_report`).

Property names are Clark notation strings (``"{DAV:}getetag"``); build them
with `dav`, `caldav`, `cs`, `ical`. Replies are written by `Multistatus`,
which serializes directly to bytes: a Depth-1 PROPFIND over 10,000 items
takes a few tens of milliseconds instead of the ~150 ms of building and
serializing an ElementTree. Property values may still be ElementTree
elements (prefixes D, C, CS and ICAL are registered with ElementTree too).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, unquote, urlsplit

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

if TYPE_CHECKING:
    from congvu.calendar.davreport import Report

__all__ = [
    "CALDAV",
    "CS",
    "DAV",
    "ICAL",
    "PREFIXES",
    "CalendarDataRequest",
    "DavError",
    "MkcalendarRequest",
    "Multistatus",
    "PropPatchOp",
    "PropValue",
    "PropfindRequest",
    "ProppatchRequest",
    "caldav",
    "cs",
    "dav",
    "el",
    "error_body",
    "href_to_path",
    "ical",
    "parse_mkcalendar",
    "parse_propfind",
    "parse_proppatch",
    "parse_report",
    "parse_xml",
    "prop_text",
    "quote_href",
    "status_line",
    "sync_token_element",
    "wants_minimal",
]

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CS = "http://calendarserver.org/ns/"
ICAL = "http://apple.com/ns/ical/"
PREFIXES: dict[str, str] = {DAV: "D", CALDAV: "C", CS: "CS", ICAL: "ICAL"}
for _ns, _prefix in PREFIXES.items():
    ET.register_namespace(_prefix, _ns)


def dav(local: str) -> str:
    """Clark name in the DAV: namespace."""
    return "{DAV:}" + local


def caldav(local: str) -> str:
    """Clark name in the CalDAV namespace (RFC 4791)."""
    return f"{{{CALDAV}}}{local}"


def cs(local: str) -> str:
    """Clark name in the calendarserver.org namespace (getctag, proxies)."""
    return f"{{{CS}}}{local}"


def ical(local: str) -> str:
    """Clark name in Apple's iCal namespace (calendar-color, calendar-order)."""
    return f"{{{ICAL}}}{local}"


def el(name: str, text: str | None = None, *children: ET.Element, **attrib: str) -> ET.Element:
    """Build an element: ``el(dav("href"), "/dav/x/")``."""
    elem = ET.Element(name, attrib)
    elem.text = text
    elem.extend(children)
    return elem


def status_line(status: int) -> str:
    """``HTTP/1.1 404 Not Found`` for a DAV:status element."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}".rstrip()


# --- errors ------------------------------------------------------------------


class DavError(Exception):
    """An HTTP error that knows its reply (RFC 4918 §16 precondition body).

    ``precondition`` is a Clark name such as ``caldav("valid-calendar-data")``
    or None for a plain error. `body` and `content_type` give the response.
    """

    def __init__(self, status: int, precondition: str | None = None, message: str = "") -> None:
        super().__init__(message or precondition or status_line(status))
        self.status = status
        self.precondition = precondition
        self.message = message

    @property
    def body(self) -> bytes:
        if self.precondition:
            return error_body(self.precondition, self.message or None)
        return (self.message or status_line(self.status)).encode("utf-8")

    @property
    def content_type(self) -> str:
        if self.precondition:
            return "application/xml; charset=utf-8"
        return "text/plain; charset=utf-8"

    def __repr__(self) -> str:
        return f"DavError({self.status}, {self.precondition!r}, {self.message!r})"


def error_body(precondition: str | ET.Element, description: str | None = None) -> bytes:
    """``<D:error><C:valid-calendar-data/></D:error>`` (RFC 4918 §16).

    ``description`` goes into ``<D:responsedescription>``-like text of a
    CalendarServer-style ``<CS:error-description>`` for humans.
    """
    root = ET.Element(dav("error"))
    root.append(precondition if isinstance(precondition, ET.Element) else ET.Element(precondition))
    if description:
        el_desc = ET.SubElement(root, cs("error-description"))
        el_desc.text = description
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --- request parsing ---------------------------------------------------------


def parse_xml(body: bytes | str | None) -> ET.Element | None:
    """Parse a request body safely; None for an empty body.

    DTDs, entities and external references are refused outright (no
    legitimate DAV client sends them): ``DavError(400)``. Malformed XML is
    a plain 400 too.
    """
    if body is None:
        return None
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body.strip():
        return None
    try:
        return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as exc:
        raise DavError(400, None, f"forbidden XML construct: {type(exc).__name__}") from exc
    except ET.ParseError as exc:
        raise DavError(400, None, f"malformed XML: {exc}") from exc


def _expect_root(root: ET.Element | None, name: str) -> ET.Element:
    if root is None or root.tag != name:
        got = "empty body" if root is None else root.tag
        raise DavError(400, None, f"expected {name}, got {got}")
    return root


def prop_text(elem: ET.Element | None) -> str:
    """All text inside a property value element (for displayname etc.)."""
    return "" if elem is None else "".join(elem.itertext()).strip()


@dataclass(frozen=True, slots=True)
class CalendarDataRequest:
    """Options of a requested ``<C:calendar-data>`` (RFC 4791 §9.6).

    ``expand`` and ``limit_recurrence_set`` are (start, end) UTC pairs.
    Partial retrieval (``<C:comp>``/``<C:prop>``) is parsed but full data is
    returned, which RFC 4791 §9.6.1 allows clients to cope with.
    """

    expand: tuple[datetime, datetime] | None = None
    limit_recurrence_set: tuple[datetime, datetime] | None = None
    limit_freebusy_set: tuple[datetime, datetime] | None = None
    content_type: str = "text/calendar"


@dataclass(frozen=True, slots=True)
class PropfindRequest:
    """A PROPFIND (RFC 4918 §9.1) or the ``<D:prop>`` part of a REPORT."""

    kind: Literal["prop", "allprop", "propname"] = "allprop"
    props: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    calendar_data: CalendarDataRequest | None = None

    def wants(self, name: str) -> bool:
        return self.kind != "prop" or name in self.props or name in self.include


def _calendar_data(elem: ET.Element) -> CalendarDataRequest:
    from congvu.calendar.davreport import parse_time_range

    def pair(child: ET.Element | None) -> tuple[datetime, datetime] | None:
        if child is None:
            return None
        tr = parse_time_range(child, precondition=caldav("valid-calendar-data"))
        if tr.start is None or tr.end is None:
            raise DavError(400, None, f"{child.tag} needs start and end")
        return tr.start, tr.end

    return CalendarDataRequest(
        expand=pair(elem.find(caldav("expand"))),
        limit_recurrence_set=pair(elem.find(caldav("limit-recurrence-set"))),
        limit_freebusy_set=pair(elem.find(caldav("limit-freebusy-set"))),
        content_type=elem.get("content-type", "text/calendar"),
    )


def parse_prop_list(prop: ET.Element) -> PropfindRequest:
    """``<D:prop>`` with child names (and ``<C:calendar-data>`` options)."""
    data = prop.find(caldav("calendar-data"))
    return PropfindRequest(
        kind="prop",
        props=tuple(child.tag for child in prop if isinstance(child.tag, str)),
        calendar_data=_calendar_data(data) if data is not None else None,
    )


def parse_propfind(body: bytes | str | None) -> PropfindRequest:
    """RFC 4918 §9.1: an empty body means allprop."""
    root = parse_xml(body)
    if root is None:
        return PropfindRequest("allprop")
    return propfind_from_element(_expect_root(root, dav("propfind")))


def propfind_from_element(root: ET.Element) -> PropfindRequest:
    """The prop/allprop/propname choice inside a propfind-like element."""
    prop = root.find(dav("prop"))
    if prop is not None:
        return parse_prop_list(prop)
    if root.find(dav("propname")) is not None:
        return PropfindRequest("propname")
    if root.find(dav("allprop")) is not None:
        include = root.find(dav("include"))
        names = tuple(c.tag for c in include) if include is not None else ()
        return PropfindRequest("allprop", include=names)
    if root.tag == dav("propfind"):
        raise DavError(400, None, "propfind needs prop, allprop or propname")
    return PropfindRequest("allprop")


@dataclass(frozen=True, slots=True)
class PropPatchOp:
    """One ``set``/``remove`` of a property; ``value`` is the property element."""

    action: Literal["set", "remove"]
    name: str
    value: ET.Element | None = None

    @property
    def text(self) -> str:
        return prop_text(self.value)


@dataclass(frozen=True, slots=True)
class ProppatchRequest:
    """RFC 4918 §9.2: operations in document order, applied atomically."""

    ops: tuple[PropPatchOp, ...] = ()


def _ops(container: ET.Element, action: Literal["set", "remove"]) -> list[PropPatchOp]:
    out = []
    for prop in container.findall(dav("prop")):
        for child in prop:
            out.append(PropPatchOp(action, child.tag, child if action == "set" else None))
    return out


def parse_proppatch(body: bytes | str | None) -> ProppatchRequest:
    """Parse a ``<D:propertyupdate>`` body."""
    root = _expect_root(parse_xml(body), dav("propertyupdate"))
    ops: list[PropPatchOp] = []
    for child in root:
        if child.tag == dav("set"):
            ops.extend(_ops(child, "set"))
        elif child.tag == dav("remove"):
            ops.extend(_ops(child, "remove"))
    return ProppatchRequest(tuple(ops))


@dataclass(frozen=True, slots=True)
class MkcalendarRequest:
    """RFC 4791 §5.3.1 MKCALENDAR (or RFC 5689 extended MKCOL) properties."""

    props: tuple[PropPatchOp, ...] = ()
    resourcetype: tuple[str, ...] = field(default=())


def parse_mkcalendar(body: bytes | str | None) -> MkcalendarRequest:
    """Body is optional; ``<C:mkcalendar>`` or ``<D:mkcol>`` with ``<D:set>``."""
    root = parse_xml(body)
    if root is None:
        return MkcalendarRequest()
    if root.tag not in (caldav("mkcalendar"), dav("mkcol")):
        raise DavError(400, None, f"unexpected {root.tag}")
    ops: list[PropPatchOp] = []
    for child in root.findall(dav("set")):
        ops.extend(_ops(child, "set"))
    rtype: tuple[str, ...] = ()
    for op in ops:
        if op.name == dav("resourcetype") and op.value is not None:
            rtype = tuple(c.tag for c in op.value)
    return MkcalendarRequest(tuple(o for o in ops if o.name != dav("resourcetype")), rtype)


def parse_report(body: bytes | str | None) -> Report:
    """Parse a REPORT body; see `congvu.calendar.davreport.parse_report`."""
    from congvu.calendar.davreport import parse_report as _parse

    return _parse(body)


# --- replies -----------------------------------------------------------------

PropValue = None | str | ET.Element | Sequence[ET.Element]
"""A property value: None (empty element), text, or child element(s)."""

_HREF_SAFE = "/:@!$&'()*+,;=-._~"


def quote_href(path: str) -> str:
    """Percent-encode a decoded path for a DAV:href (RFC 4918 §8.3)."""
    return quote(path, safe=_HREF_SAFE)


def href_to_path(href: str) -> str:
    """Decoded path of an href, dropping scheme and host of absolute URLs."""
    return unquote(urlsplit(href.strip()).path)


def wants_minimal(headers: Mapping[str, str]) -> bool:
    """``Brief: t`` (Apple) or ``Prefer: return-minimal`` (RFC 7240 §4.2)."""
    get = headers.get
    brief = (get("brief") or get("Brief") or "").strip().lower()
    prefer = (get("prefer") or get("Prefer") or "").lower()
    return brief in ("t", "true") or "return-minimal" in prefer


def sync_token_element(token: str) -> ET.Element:
    """``<D:sync-token>`` (RFC 6578 §6.2)."""
    return el(dav("sync-token"), token)


def _esc(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _esc_attr(text: str) -> str:
    return _esc(text).replace('"', "&quot;").replace("\n", "&#10;")


class Multistatus:
    """Builder of a 207 ``<D:multistatus>`` body (RFC 4918 §13).

    ``minimal=True`` (see `wants_minimal`) drops the 404 propstat blocks.
    Hrefs are decoded paths and are quoted here.
    """

    def __init__(self, minimal: bool = False) -> None:
        self.minimal = minimal
        self._parts: list[str] = []
        self._prefixes = dict(PREFIXES)
        self._tags: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._parts)

    def _tag(self, name: str) -> str:
        tag = self._tags.get(name)
        if tag is None:
            if name[:1] == "{":
                ns, local = name[1:].split("}", 1)
                prefix = self._prefixes.get(ns)
                if prefix is None:
                    prefix = f"x{len(self._prefixes)}"
                    self._prefixes[ns] = prefix
                tag = f"{prefix}:{local}"
            else:
                tag = name
            self._tags[name] = tag
        return tag

    def _element(self, elem: ET.Element, out: list[str]) -> None:
        tag = self._tag(elem.tag)
        attrs = "".join(f' {self._tag(k)}="{_esc_attr(v)}"' for k, v in elem.attrib.items())
        if elem.text is None and len(elem) == 0:
            out.append(f"<{tag}{attrs}/>")
        else:
            out.append(f"<{tag}{attrs}>")
            if elem.text:
                out.append(_esc(elem.text))
            for child in elem:
                self._element(child, out)
                if child.tail:
                    out.append(_esc(child.tail))
            out.append(f"</{tag}>")

    def _prop(self, name: str, value: PropValue, out: list[str]) -> None:
        tag = self._tag(name)
        if value is None or value == "":
            out.append(f"<{tag}/>")
        elif isinstance(value, str):
            out.append(f"<{tag}>{_esc(value)}</{tag}>")
        elif isinstance(value, ET.Element):
            out.append(f"<{tag}>")
            self._element(value, out)
            out.append(f"</{tag}>")
        else:
            out.append(f"<{tag}>")
            for child in value:
                self._element(child, out)
            out.append(f"</{tag}>")

    def add(
        self,
        href: str,
        found: Mapping[str, PropValue] | None = None,
        not_found: Iterable[str] = (),
        forbidden: Iterable[str] = (),
        other: Mapping[int, Iterable[str]] | None = None,
    ) -> None:
        """One ``<D:response>`` with propstats grouped by status (200/404/403...)."""
        out = [f"<D:response><D:href>{_esc(quote_href(href))}</D:href>"]
        blocks = 0
        if found:
            out.append("<D:propstat><D:prop>")
            for name, value in found.items():
                self._prop(name, value, out)
            out.append("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>")
            blocks += 1
        groups: list[tuple[int, Iterable[str]]] = [(403, forbidden)]
        if not self.minimal:
            groups.insert(0, (404, not_found))
        groups.extend((other or {}).items())
        for status, names in groups:
            names = list(names)
            if not names:
                continue
            out.append("<D:propstat><D:prop>")
            out.extend(f"<{self._tag(n)}/>" for n in names)
            out.append(f"</D:prop><D:status>{status_line(status)}</D:status></D:propstat>")
            blocks += 1
        if not blocks:  # keep the response valid: DAV:response needs a propstat
            out.append("<D:propstat><D:prop/><D:status>HTTP/1.1 200 OK</D:status></D:propstat>")
        out.append("</D:response>")
        self._parts.append("".join(out))

    def add_raw(self, fragment: str) -> None:
        """Append a pre-rendered ``<D:response>`` (fast paths over many objects;
        it must use the D/C/CS/ICAL prefixes of `PREFIXES`)."""
        self._parts.append(fragment)

    def add_status(self, href: str, status: int, error: str | None = None) -> None:
        """A ``<D:response>`` with a bare status: a multiget miss, a sync removal."""
        err = f"<D:error><{self._tag(error)}/></D:error>" if error else ""
        self._parts.append(
            f"<D:response><D:href>{_esc(quote_href(href))}</D:href>"
            f"<D:status>{status_line(status)}</D:status>{err}</D:response>"
        )

    def to_bytes(self, sync_token: str | None = None) -> bytes:
        """The whole body; ``sync_token`` adds RFC 6578 ``<D:sync-token>``."""
        tail = f"<D:sync-token>{_esc(sync_token)}</D:sync-token>" if sync_token is not None else ""
        decls = " ".join(f'xmlns:{p}="{_esc_attr(ns)}"' for ns, p in self._prefixes.items())
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f"<D:multistatus {decls}>" + "".join(self._parts) + tail + "</D:multistatus>"
        ).encode("utf-8")
