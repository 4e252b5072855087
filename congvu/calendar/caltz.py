"""The time zone floating times are read in (RFC 4791 §9.9, last paragraph).

A DATE-TIME without ``Z`` or TZID, a TZID that names no known zone, and an
all-day DATE value are "floating": they mean the same wall-clock time
wherever the reader is. To index and query them the server reads them in the
calendar's ``CALDAV:calendar-timezone`` (RFC 4791 §5.2.2) or, when a
calendar-query carries one, its ``CALDAV:timezone`` (§9.8); without either,
in the organisation's configured zone (``settings.timezone``, Vietnam:
Asia/Ho_Chi_Minh, UTC+7), never in UTC.

`Zone.key` is what ``calendar_objects.floating_tz`` records for an object
with floating values: the zone its indexed columns were computed in. When
the calendar's zone changes (PROPPATCH) or the configured default does,
objects whose key differs are indexed again (`congvu.calendar.objects`).
The key is the configured zone name for a calendar without a timezone
property, else ``vtz:`` + the MD5 of the property text — computable in SQL
(`congvu.store.calendars.stale_floating`) without parsing anything.

Pure code; the default is set once from the settings when the CalDAV app is
built (`configure`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["DEFAULT_TIMEZONE", "Zone", "calendar_zone", "configure", "default_zone",
           "parse_timezone", "zone_for_query"]

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
_default = DEFAULT_TIMEZONE


@dataclass(frozen=True, slots=True)
class Zone:
    """A zone for floating times and the key recorded with what it indexed."""

    key: str
    tz: tzinfo

    def same(self, other: Zone) -> bool:
        return self.key == other.key or self.tz is other.tz


def configure(name: str) -> None:
    """Set the organisation's zone (``settings.timezone``); unknown names keep UTC+7."""
    global _default
    try:
        _iana(name)
    except Exception:
        log.warning("unknown time zone %r in the settings; using %s", name, DEFAULT_TIMEZONE)
        name = DEFAULT_TIMEZONE
    _default = name


@lru_cache(maxsize=64)
def _iana(name: str) -> tzinfo:
    return ZoneInfo(name)


def default_zone() -> Zone:
    return Zone(_default, _iana(_default))


def _clean_tzid(tzid: str) -> str:
    # Older Thunderbird/Lightning: "/mozilla.org/20070129_1/Asia/Ho_Chi_Minh".
    tzid = tzid.strip().strip('"')
    if tzid.startswith("/mozilla.org/"):
        tzid = tzid.split("/", 3)[-1]
    return tzid.lstrip("/")


def _by_name(tzid: str) -> tzinfo | None:
    name = _clean_tzid(tzid)
    if not name or name.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return UTC if name else None
    try:
        return _iana(name)
    except Exception:
        return None


@lru_cache(maxsize=256)
def parse_timezone(text: str) -> tzinfo | None:
    """The zone of a ``calendar-timezone`` / ``CALDAV:timezone`` value, or None.

    The value is a VCALENDAR with one VTIMEZONE (RFC 4791 §5.2.2); its TZID
    is used when it names an IANA zone (the rules are then current), else the
    VTIMEZONE's own rules. A bare IANA name (RFC 7809 ``timezone-id``) works too.
    """
    text = (text or "").strip()
    if not text:
        return None
    if "BEGIN:" not in text.upper():
        return _by_name(text)
    from icalendar import Calendar

    try:
        cal = Calendar.from_ical(text)
    except Exception:
        return None
    vtzs: list[Any] = [c for c in cal.walk("VTIMEZONE")]
    if len(vtzs) != 1:
        return None
    tz = _by_name(str(vtzs[0].get("TZID", "")))
    if tz is not None:
        return tz
    try:
        return vtzs[0].to_tz()  # type: ignore[no-any-return]
    except Exception:
        return None


def key_for(timezone_text: str) -> str:
    """``calendar_objects.floating_tz`` for a calendar with this timezone property."""
    if not timezone_text:
        return _default
    return "vtz:" + hashlib.md5(timezone_text.encode("utf-8"), usedforsecurity=False).hexdigest()


def calendar_zone(cal: Any) -> Zone:
    """The zone a calendar's floating times are read in (``cal.timezone`` or the default)."""
    text = getattr(cal, "timezone", "") or ""
    if text:
        tz = parse_timezone(text)
        if tz is not None:
            return Zone(key_for(text), tz)
        # An unusable property reads as the default (still keyed by its text,
        # so fixing it re-indexes).
        return Zone(key_for(text), default_zone().tz)
    return default_zone()


def zone_for_query(text: str | None, cal: Any) -> Zone | None:
    """The zone a calendar-query's ``CALDAV:timezone`` names; None when it names none."""
    if text is None or not text.strip():
        return None
    tz = parse_timezone(text)
    if tz is None:
        return None
    own = calendar_zone(cal)
    return own if own.tz is tz else Zone("query:" + key_for(text.strip()), tz)
