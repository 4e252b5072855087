"""RFC 4791 §9.7 calendar-query filters: the model and its evaluation.

`congvu.calendar.davreport` parses a ``<C:filter>`` into these frozen
dataclasses; `matches` decides whether one stored calendar object passes.
`index_prefilter` extracts what the store can answer from its indexed
columns (component type, first_start/last_end) so that the exact test runs
in Python only on the few candidates:

    SELECT ... WHERE component = $type
      AND first_start <= $end                         -- if end is given
      AND (last_end IS NULL OR last_end >= $start)    -- if start is given

Both comparisons are inclusive on purpose: zero-length events and the VTODO
rows of §9.9 match on equal instants, and the index only has to return a
superset.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import NamedTuple

from icalendar import Calendar, Component

from congvu.calendar.icaltime import component_overlaps, instances, prop_dt, to_utc

__all__ = [
    "COLLATIONS",
    "CompFilter",
    "IndexRange",
    "ParamFilter",
    "PropFilter",
    "TextMatch",
    "TimeRange",
    "index_may_match",
    "index_prefilter",
    "matches",
    "text_matches",
]

# RFC 4791 §7.5.1: i;ascii-casemap and i;octet are mandatory; RFC 5051
# i;unicode-casemap is what Vietnamese text needs ("Họp" vs "HỌP").
COLLATIONS = ("i;ascii-casemap", "i;octet", "i;unicode-casemap")
MATCH_TYPES = ("equals", "contains", "starts-with", "ends-with")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """RFC 4791 §9.9 ``time-range``; either bound may be open (None)."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class TextMatch:
    """RFC 4791 §9.7.5 ``text-match`` (match-type from RFC 5689 / 6352 §10.5.4)."""

    text: str
    collation: str = "i;ascii-casemap"
    negate: bool = False
    match_type: str = "contains"


@dataclass(frozen=True, slots=True)
class ParamFilter:
    """RFC 4791 §9.7.3 ``param-filter``."""

    name: str
    is_not_defined: bool = False
    text_match: TextMatch | None = None


@dataclass(frozen=True, slots=True)
class PropFilter:
    """RFC 4791 §9.7.2 ``prop-filter``."""

    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    text_match: TextMatch | None = None
    param_filters: tuple[ParamFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class CompFilter:
    """RFC 4791 §9.7.1 ``comp-filter``; the root one names VCALENDAR."""

    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    comp_filters: tuple[CompFilter, ...] = field(default=())
    prop_filters: tuple[PropFilter, ...] = field(default=())


class IndexRange(NamedTuple):
    """What the store can filter on: component type and an open-ended range."""

    comp_type: str
    start: datetime | None
    end: datetime | None


def index_prefilter(flt: CompFilter) -> IndexRange | None:
    """Top-level component and time-range of a filter, or None if unusable.

    None means "every object is a candidate" (e.g. a bare VCALENDAR filter
    or one that asks for an absent component).
    """
    if flt.name.upper() != "VCALENDAR" or flt.is_not_defined:
        return None
    for child in flt.comp_filters:
        if child.is_not_defined:
            continue
        tr = child.time_range
        return IndexRange(child.name.upper(), tr.start if tr else None, tr.end if tr else None)
    return None


def index_may_match(
    rng: IndexRange, first_start: datetime, last_end: datetime | None
) -> bool:
    """Python mirror of the SQL in the module docstring (for tests and caches)."""
    if rng.end is not None and first_start > rng.end:
        return False
    return not (rng.start is not None and last_end is not None and last_end < rng.start)


def matches(
    flt: CompFilter, data: bytes | str | Calendar, floating_tz: tzinfo = UTC
) -> bool:
    """Does the calendar object ``data`` pass the filter (RFC 4791 §9.7)?"""
    cal = data if isinstance(data, Calendar) else Calendar.from_ical(data)
    if flt.name.upper() != cal.name:
        return flt.is_not_defined
    if flt.is_not_defined:
        return False
    return _comp_children_match(flt, cal, floating_tz)


def _comp_children_match(flt: CompFilter, comp: Component, floating_tz: tzinfo) -> bool:
    # §9.7.1: all child filters must match (logical AND).
    return all(_prop_filter(pf, comp, floating_tz) for pf in flt.prop_filters) and all(
        _comp_filter(cf, comp, floating_tz) for cf in flt.comp_filters
    )


def _comp_filter(flt: CompFilter, parent: Component, floating_tz: tzinfo) -> bool:
    name = flt.name.upper()
    children = [c for c in parent.subcomponents if c.name == name]
    if flt.is_not_defined:
        return not children
    if not children:
        return False
    candidates: Iterable[Component]
    if flt.time_range is None:
        candidates = children
    elif name == "VALARM":
        candidates = [c for c in children
                      if _alarm_overlaps(c, parent, flt.time_range, floating_tz)]
    elif parent.name == "VCALENDAR":
        # Recurring components are tested instance by instance: an instance
        # must satisfy the time-range and the other child filters together.
        tr = flt.time_range
        candidates = instances(parent, name, tr.start, tr.end, floating_tz)
    else:
        tr = flt.time_range
        candidates = [c for c in children if component_overlaps(c, tr.start, tr.end, floating_tz)]
    return any(_comp_children_match(flt, c, floating_tz) for c in candidates)


def _alarm_overlaps(alarm: Component, parent: Component, tr: TimeRange,
                    floating_tz: tzinfo = UTC) -> bool:
    """RFC 4791 §9.9 VALARM: some trigger time (with repetitions) in range; a
    relative trigger follows its floating anchor into ``floating_tz``."""
    trigger = alarm.get("TRIGGER")
    value = getattr(trigger, "dt", None)
    if value is None:
        return False
    if isinstance(value, datetime):
        first = to_utc(value)
    else:  # relative trigger, RFC 5545 §3.8.6.3
        related = str(trigger.params.get("RELATED", "START")).upper()
        anchor_name = "DTSTART" if related == "START" else (
            "DUE" if parent.name == "VTODO" else "DTEND")
        anchor = prop_dt(parent, anchor_name)
        if anchor is None:
            return False
        first = to_utc(anchor, floating_tz) + value
    times = [first]
    repeat, duration = alarm.get("REPEAT"), getattr(alarm.get("DURATION"), "dt", None)
    if repeat is not None and duration is not None:
        times += [first + duration * (i + 1) for i in range(min(int(repeat), 1000))]
    return any((tr.start is None or tr.start <= t) and (tr.end is None or t < tr.end)
               for t in times)


def _props(comp: Component, name: str) -> list[object]:
    value = comp.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _prop_filter(flt: PropFilter, comp: Component, floating_tz: tzinfo) -> bool:
    props = _props(comp, flt.name.upper())
    if flt.is_not_defined:
        return not props
    if not props:
        return False
    return any(_prop_matches(flt, p, floating_tz) for p in props)


def _prop_matches(flt: PropFilter, prop: object, floating_tz: tzinfo) -> bool:
    if flt.time_range is not None:
        value = getattr(prop, "dt", None)
        if value is None:
            return False
        # §9.7.2: a DATE-TIME property value in range: start <= value < end.
        when = to_utc(value, floating_tz)
        tr = flt.time_range
        if not ((tr.start is None or tr.start <= when) and (tr.end is None or when < tr.end)):
            return False
    if flt.text_match is not None and not text_matches(flt.text_match, _prop_text(prop)):
        return False
    params = getattr(prop, "params", {}) or {}
    return all(_param_matches(pf, params) for pf in flt.param_filters)


def _param_matches(flt: ParamFilter, params: object) -> bool:
    value = params.get(flt.name.upper()) if hasattr(params, "get") else None
    if flt.is_not_defined:
        return value is None
    if value is None:
        return False
    if flt.text_match is None:
        return True
    values = value if isinstance(value, list) else [value]
    return any(text_matches(flt.text_match, str(v)) for v in values)


def _prop_text(prop: object) -> str:
    to_ical = getattr(prop, "to_ical", None)
    if isinstance(prop, str):
        return str(prop)
    if to_ical is not None:
        raw = to_ical()
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return str(prop)


def _fold(text: str, collation: str) -> str:
    if collation == "i;octet":
        return text
    if collation == "i;unicode-casemap":
        # RFC 5051: case-fold then decompose; comparing decomposed forms
        # keeps "Hợp" and "HỢP" equal regardless of precomposition.
        return unicodedata.normalize("NFKD", text.casefold())
    # i;ascii-casemap (RFC 4790 §9.2): only ASCII letters are folded.
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def text_matches(tm: TextMatch, value: str) -> bool:
    """RFC 4791 §9.7.5 text-match with collation, match-type and negation."""
    needle, hay = _fold(tm.text, tm.collation), _fold(value, tm.collation)
    if tm.match_type == "equals":
        hit = hay == needle
    elif tm.match_type == "starts-with":
        hit = hay.startswith(needle)
    elif tm.match_type == "ends-with":
        hit = hay.endswith(needle)
    else:
        hit = needle in hay
    return hit != tm.negate

