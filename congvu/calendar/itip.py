"""iTIP (RFC 5546) messages from stored objects, and iMIP (RFC 6047) email.

Implicit scheduling (RFC 6638) turns an organizer's PUT into REQUEST and
CANCEL messages for attendees and an attendee's PUT into a REPLY; this
module builds those messages and applies a REPLY to the organizer's copy.
The store and the delivery code decide *who* gets what; everything here is
pure: bytes in, bytes (or an `EmailMessage`) out.

Attendee addresses are matched case-insensitively but always written back
in the case the organizer used (Thunderbird compares them byte for byte).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from icalendar import Calendar, Component, vCalAddress

from congvu.calendar.ical import PRODID, load_calendar
from congvu.calendar.icaltime import event_span, prop_dt, to_utc

__all__ = [
    "AttendeeDiff",
    "ItipError",
    "apply_reply",
    "cancel_for",
    "diff_attendees",
    "extract_imip",
    "imip_message",
    "reply_from",
    "request_for",
    "same_address",
    "set_sent_by",
]

OBJECT_TYPES = ("VEVENT", "VTODO", "VJOURNAL")
# RFC 6638 §7.1, §7.3, §7.4: server-side parameters never sent in iTIP.
_SERVER_PARAMS = ("SCHEDULE-AGENT", "SCHEDULE-STATUS", "SCHEDULE-FORCE-SEND")
Now = Callable[[], datetime]


class ItipError(ValueError):
    """The scheduling message cannot be built or applied (answer 400/403)."""


def _norm(address: str) -> str:
    a = str(address).strip()
    if a[:7].lower() == "mailto:":
        a = a[7:]
    return a.lower()


def same_address(a: str, b: str) -> bool:
    """Calendar user addresses equal, ignoring ``mailto:`` and case."""
    return _norm(a) == _norm(b)


def _default_now() -> datetime:
    return datetime.now(UTC)


def _stamp(now: Now) -> datetime:
    return now().astimezone(UTC).replace(microsecond=0)


def _attendees(comp: Component) -> list[vCalAddress]:
    value = comp.get("ATTENDEE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _set_attendees(comp: Component, attendees: Iterable[vCalAddress]) -> None:
    comp.pop("ATTENDEE", None)
    for a in attendees:
        comp.add("ATTENDEE", a, encode=False)


def _strip_server_params(comp: Component) -> None:
    for name in ("ATTENDEE", "ORGANIZER"):
        value = comp.get(name)
        for prop in value if isinstance(value, list) else ([value] if value is not None else []):
            for param in _SERVER_PARAMS:
                prop.params.pop(param, None)


def _message(method: str, source: Calendar) -> Calendar:
    out = Calendar()
    out.add("PRODID", PRODID)
    out.add("VERSION", "2.0")
    if "CALSCALE" in source:
        out.add("CALSCALE", source["CALSCALE"])
    out.add("METHOD", method)
    return out


def _timezones(cal: Calendar) -> list[Component]:
    return [c for c in cal.subcomponents if c.name == "VTIMEZONE"]


def _objects(cal: Calendar) -> list[Component]:
    return [c for c in cal.subcomponents if c.name in OBJECT_TYPES]


def _clone_address(a: object) -> vCalAddress:
    out = vCalAddress(str(a))
    out.params.update(getattr(a, "params", {}))
    return out


def _copy(comp: Component, alarms: bool = False) -> Component:
    """Copy with private ATTENDEE/ORGANIZER values (their params get edited)."""
    out = comp.copy()
    # RFC 5546 §2.1.5 leaves alarms to the recipient: never impose ours.
    out.subcomponents = [c for c in comp.subcomponents if alarms or c.name != "VALARM"]
    _set_attendees(out, [_clone_address(a) for a in _attendees(comp)])
    if "ORGANIZER" in comp:
        out.pop("ORGANIZER")
        out.add("ORGANIZER", _clone_address(comp["ORGANIZER"]), encode=False)
    return out


def _listed(comp: Component, address: str) -> vCalAddress | None:
    for a in _attendees(comp):
        if same_address(a, address):
            return a
    return None


def request_for(ics: bytes | str | Calendar, attendee: str) -> bytes:
    """METHOD:REQUEST for one attendee (RFC 5546 §3.2.2).

    Only the components that list the attendee are sent (someone invited to
    one occurrence gets just that override). Alarms and the RFC 6638
    server-only parameters are removed.
    """
    cal = load_calendar(ics)
    comps = [c for c in _objects(cal) if _listed(c, attendee) is not None]
    if not comps:
        raise ItipError(f"{attendee} is not an attendee")
    out = _message("REQUEST", cal)
    for tz in _timezones(cal):
        out.add_component(tz)
    for comp in comps:
        copy = _copy(comp)
        _strip_server_params(copy)
        out.add_component(copy)
    return out.to_ical()


def cancel_for(
    ics: bytes | str | Calendar,
    attendees: str | Iterable[str] | None = None,
    *,
    now: Now = _default_now,
    bump_sequence: bool = True,
) -> bytes:
    """METHOD:CANCEL (RFC 5546 §3.2.5) for the given attendees (None: all).

    Used when the organizer deletes the object (everyone) or removes an
    attendee (just them). Each component keeps its identity (UID,
    RECURRENCE-ID, times, SUMMARY) with STATUS:CANCELLED and SEQUENCE
    incremented unless ``bump_sequence`` is False (the caller already did).
    """
    cal = load_calendar(ics)
    wanted = [attendees] if isinstance(attendees, str) else attendees
    out = _message("CANCEL", cal)
    for tz in _timezones(cal):
        out.add_component(tz)
    stamp = _stamp(now)
    added = 0
    for comp in _objects(cal):
        copy = _copy(comp)
        keep = _attendees(comp)
        if wanted is not None:
            keep = [a for a in keep if any(same_address(a, w) for w in wanted)]
            if not keep:
                continue
        _set_attendees(copy, keep)
        _strip_server_params(copy)
        copy.pop("STATUS", None)
        copy.add("STATUS", "CANCELLED")
        seq = int(str(comp.get("SEQUENCE", 0)) or 0)
        copy.pop("SEQUENCE", None)
        copy.add("SEQUENCE", seq + 1 if bump_sequence else seq)
        copy.pop("DTSTAMP", None)
        copy.add("DTSTAMP", stamp)
        out.add_component(copy)
        added += 1
    if not added:
        raise ItipError("no component to cancel for these attendees")
    return out.to_ical()


# RFC 5546 §3.2.3: a REPLY carries these plus the replying ATTENDEE.
_REPLY_KEEP = ("UID", "SEQUENCE", "RECURRENCE-ID", "DTSTART", "DTEND", "DURATION",
               "DUE", "SUMMARY", "ORGANIZER", "RRULE", "STATUS", "COMMENT", "REQUEST-STATUS")


def reply_from(
    attendee_copy: bytes | str | Calendar, attendee_address: str, *, now: Now = _default_now
) -> bytes:
    """METHOD:REPLY from an attendee's copy: only that ATTENDEE and PARTSTAT.

    Components that do not list the attendee are skipped; DELEGATED-TO and
    the delegatee's ATTENDEE line are kept (RFC 5546 §3.2.2.3).
    """
    cal = load_calendar(attendee_copy)
    out = _message("REPLY", cal)
    stamp = _stamp(now)
    comps = 0
    for comp in _objects(cal):
        me = _listed(comp, attendee_address)
        if me is None:
            continue
        reply = type(comp)()  # Event/Todo/Journal: same component name
        for name in _REPLY_KEEP:
            if name in comp:
                reply.add(name, comp[name], encode=False)
        reply.add("DTSTAMP", stamp)
        delegates = [a for a in _attendees(comp)
                     if same_address(str(a.params.get("DELEGATED-FROM", "")), attendee_address)]
        _set_attendees(reply, [me, *delegates])
        _strip_server_params(reply)
        out.add_component(reply)
        comps += 1
    if not comps:
        raise ItipError(f"{attendee_address} is not an attendee")
    for tz in _timezones(cal):
        out.subcomponents.insert(0, tz)
    return out.to_ical()


def _override_from_master(master: Component, rid: date | datetime) -> Component:
    """Materialize one instance of the series as an override (RFC 5545 §3.8.4.4)."""
    inst = _copy(master, alarms=True)
    for name in ("RRULE", "RDATE", "EXDATE", "EXRULE", "DTSTART", "DTEND", "DUE"):
        inst.pop(name, None)
    span = event_span(master) if master.name == "VEVENT" else None
    dtstart = prop_dt(master, "DTSTART")
    inst.add("DTSTART", rid)
    inst.add("RECURRENCE-ID", rid)
    if span is not None and "DURATION" not in master and "DTEND" in master:
        inst.add("DURATION", span.end - span.start)
    elif master.name == "VTODO" and "DUE" in master and dtstart is not None:
        due = prop_dt(master, "DUE")
        if due is not None:
            inst.add("DUE", rid + (due - dtstart))  # type: ignore[operator]
    return inst


def _component_for(cal: Calendar, reply: Component) -> Component | None:
    rid = prop_dt(reply, "RECURRENCE-ID")
    master = None
    for comp in _objects(cal):
        if comp.name != reply.name:
            continue
        c_rid = prop_dt(comp, "RECURRENCE-ID")
        if rid is None and c_rid is None:
            return comp
        if rid is not None and c_rid is not None and _same_instant(rid, c_rid):
            return comp
        if c_rid is None:
            master = comp
    if rid is None or master is None:
        return None
    override = _override_from_master(master, rid)
    cal.add_component(override)
    return override


def _same_instant(a: date | datetime, b: date | datetime) -> bool:
    return to_utc(a) == to_utc(b)


def apply_reply(
    organizer_ics: bytes | str | Calendar,
    reply_ics: bytes | str | Calendar,
    *,
    schedule_status: str = "2.0",
) -> bytes:
    """Apply an iTIP REPLY to the organizer's copy; return the new copy.

    RFC 5546 §3.2.3 / RFC 6638 §3.2.2: the replying attendee's PARTSTAT
    (and DELEGATED-TO) is copied over, SCHEDULE-STATUS set; delegatees
    named in the reply are added. A reply for an instance the organizer has
    not overridden creates the override. Replies with an older SEQUENCE, or
    from someone who is not an attendee, raise `ItipError`.
    """
    cal = load_calendar(organizer_ics)
    reply = load_calendar(reply_ics)
    if str(reply.get("METHOD", "REPLY")).upper() != "REPLY":
        raise ItipError("not a REPLY")
    for rcomp in _objects(reply):
        answers = _attendees(rcomp)
        if not answers:
            raise ItipError("REPLY without ATTENDEE")
        target = _component_for(cal, rcomp)
        if target is None:
            raise ItipError("REPLY for an unknown instance")
        if str(rcomp.get("UID")) != str(target.get("UID")):
            raise ItipError("REPLY for another UID")
        if int(str(rcomp.get("SEQUENCE", 0))) < int(str(target.get("SEQUENCE", 0))):
            raise ItipError("stale REPLY (older SEQUENCE)")  # RFC 5546 §2.1.5
        current = _attendees(target)
        for answer in answers:
            mine = next((a for a in current if same_address(a, answer)), None)
            if mine is None:
                if "DELEGATED-FROM" not in answer.params:
                    raise ItipError(f"{answer} is not an attendee")
                new = vCalAddress(str(answer))
                new.params.update(answer.params)
                new.params["SCHEDULE-STATUS"] = schedule_status
                current.append(new)
                continue
            for param in ("PARTSTAT", "DELEGATED-TO"):
                if param in answer.params:
                    mine.params[param] = answer.params[param]
            mine.params.pop("RSVP", None)
            mine.params["SCHEDULE-STATUS"] = schedule_status
        _set_attendees(target, current)
    return cal.to_ical()


@dataclass(frozen=True, slots=True)
class AttendeeDiff:
    """Attendee addresses across all components, old versus new version."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    kept: tuple[str, ...]


def _all_attendees(ics: bytes | str | Calendar | None) -> dict[str, str]:
    if ics is None:
        return {}
    found: dict[str, str] = {}
    organizer = None
    for comp in _objects(load_calendar(ics)):
        if "ORGANIZER" in comp:
            organizer = _norm(str(comp["ORGANIZER"]))
        for a in _attendees(comp):
            found.setdefault(_norm(a), str(a))
    if organizer is not None:
        found.pop(organizer, None)  # the organizer is not invited by themself
    return found


def diff_attendees(
    old: bytes | str | Calendar | None, new: bytes | str | Calendar | None
) -> AttendeeDiff:
    """Who to send REQUEST (added, kept) and CANCEL (removed) to after a change."""
    before, after = _all_attendees(old), _all_attendees(new)
    return AttendeeDiff(
        added=tuple(after[k] for k in after if k not in before),
        removed=tuple(before[k] for k in before if k not in after),
        kept=tuple(after[k] for k in after if k in before),
    )


def set_sent_by(ics: bytes | str | Calendar, delegate: str) -> bytes:
    """Mark a delegate as acting for the organizer: ORGANIZER;SENT-BY=...

    RFC 5545 §3.2.18; the delegate address gets a ``mailto:`` if missing.
    """
    cal = load_calendar(ics)
    sent_by = delegate if delegate.lower().startswith("mailto:") else f"mailto:{delegate}"
    for comp in _objects(cal):
        organizer = comp.get("ORGANIZER")
        if organizer is not None:
            organizer.params["SENT-BY"] = sent_by
    return cal.to_ical()


# --- iMIP (RFC 6047) --------------------------------------------------------

_SUBJECTS = {
    "REQUEST": "Lời mời",
    "CANCEL": "Đã hủy",
    "REPLY": "Trả lời",
    "COUNTER": "Đề xuất thay đổi",
}


def imip_message(
    from_addr: str,
    to_addr: str,
    method: str,
    ics: bytes | str,
    summary_text: str,
    *,
    subject: str | None = None,
    now: Now = _default_now,
) -> EmailMessage:
    """An iMIP email (RFC 6047 §2): text/plain plus text/calendar; method=...

    ``summary_text`` is the human-readable body; ``subject`` defaults to
    "<Vietnamese method label>: <SUMMARY>". The calendar part is UTF-8 and
    its ``method`` parameter matches METHOD (RFC 6047 §2.4).
    """
    text = ics.decode("utf-8") if isinstance(ics, bytes) else ics
    method = method.upper()
    if subject is None:
        cal = load_calendar(text)
        summary = next((str(c["SUMMARY"]) for c in _objects(cal) if "SUMMARY" in c), "")
        label = _SUBJECTS.get(method, method.title())
        subject = f"{label}: {summary}" if summary else label
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = from_addr
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now().astimezone(UTC))
    domain = from_addr.rsplit("@", 1)[-1].strip(">") if "@" in from_addr else None
    msg["Message-ID"] = make_msgid(domain=domain)
    # Quoted-printable keeps Vietnamese intact through 7-bit relays.
    msg.set_content(summary_text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(text, subtype="calendar", charset="utf-8", cte="quoted-printable",
                        params={"method": method})
    return msg


def extract_imip(raw: bytes) -> tuple[str, bytes] | None:
    """Find the iTIP payload of an incoming email: (METHOD, ics) or None.

    Looks for text/calendar (or application/ics) parts; the METHOD property
    inside the object wins over the Content-Type parameter (RFC 6047 §2.4).
    """
    msg = message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() not in ("text/calendar", "application/ics"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload.strip():
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            data = payload.decode(charset).encode("utf-8")
        except (LookupError, UnicodeDecodeError):
            data = payload
        try:
            cal = load_calendar(data)
        except ValueError:
            continue
        method = str(cal.get("METHOD", "") or part.get_param("method") or "").upper()
        if method:
            return method, data
    return None
