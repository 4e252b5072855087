"""Implicit scheduling decisions (RFC 6638 §3.2): who gets which iTIP message.

Pure code over iCalendar bytes: the old and new version of a calendar object
and the addresses of the calendar's owner go in; a `Plan` comes out — the
iTIP messages to deliver (REQUEST/CANCEL per attendee when the owner
organizes, a REPLY to the organizer when the owner attends) and, when the
server must change what the client sent, the bytes to store instead.
:mod:`congvu.calendar.scheduling` does the delivering; :mod:`.itip` builds
the messages.

Also here: merging an incoming REQUEST/CANCEL/REPLY into the recipient's
copy, and the room/resource booking decision over busy periods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from icalendar import Calendar, Component, vCalAddress

from congvu.calendar import itip
from congvu.calendar.freebusy import BusyPeriod
from congvu.calendar.ical import load_calendar
from congvu.calendar.icaltime import event_span, instances, prop_dt, to_utc

__all__ = [
    "Outgoing",
    "Plan",
    "apply_cancel",
    "apply_reply",
    "attendee_copy",
    "attendees_of",
    "booking_conflicts",
    "email_of",
    "organizer_of",
    "plan",
    "set_partstat",
    "set_schedule_status",
]

Now = Callable[[], datetime]
OBJECT_TYPES = ("VEVENT", "VTODO", "VJOURNAL")
# RFC 6638 §7.1: only SERVER (the default) lets the server schedule.
_CLIENT_AGENTS = ("CLIENT", "NONE")
# RFC 5545 §3.2.12 (VTODO): what an assignee's STATUS says about their part.
_TODO_STATUS_PARTSTAT = {"COMPLETED": "COMPLETED", "IN-PROCESS": "IN-PROCESS",
                         "CANCELLED": "DECLINED"}
# Properties whose change is not worth a new REQUEST (RFC 6638 §3.2.1.2 leaves
# "significant" to the server): stamps and per-attendee reply state. A higher
# SEQUENCE is significant: the organizer's client asks for a re-send (RFC 5546 §2.1.4).
_NOISE = ("DTSTAMP", "LAST-MODIFIED", "CREATED")
_REPLY_PARAMS = ("PARTSTAT", "SCHEDULE-STATUS", "RSVP", "SCHEDULE-FORCE-SEND")
# How far a recurring booking is checked for room conflicts.
BOOKING_HORIZON = timedelta(days=366)


def _default_now() -> datetime:
    return datetime.now(UTC)


def email_of(address: object) -> str:
    """``mailto:An.Nv@X`` → ``an.nv@x`` (the form the directory stores)."""
    a = str(address).strip()
    if a[:7].lower() == "mailto:":
        a = a[7:]
    return a.lower()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One iTIP message for one calendar user (RFC 5546)."""

    method: str  # REQUEST | CANCEL | REPLY
    recipient: str  # lower-case address without mailto:
    ics: bytes  # with METHOD
    address: str = ""  # the address as the organizer wrote it (for SCHEDULE-STATUS)
    uid: str = ""  # the object's UID (saves the deliverer a parse)
    whole: bool = False  # a REQUEST with every component (same index as the organizer's)


@dataclass(frozen=True, slots=True)
class Plan:
    """What implicit scheduling does for one PUT or DELETE.

    ``role`` is ``organizer``, ``attendee`` or ``none`` (not a scheduling
    object resource, or SCHEDULE-AGENT=CLIENT). ``stored`` is what to store
    instead of the client's body, or None.
    """

    role: str
    organizer: str | None = None
    messages: tuple[Outgoing, ...] = ()
    stored: bytes | None = None
    notes: tuple[str, ...] = field(default=())


def _objects(cal: Calendar) -> list[Component]:
    return [c for c in cal.subcomponents if c.name in OBJECT_TYPES]


def _as_list(value: object) -> list[vCalAddress]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]  # type: ignore[list-item]


def attendees_of(comp: Component) -> list[vCalAddress]:
    """The ATTENDEE properties of one component, in order."""
    return _as_list(comp.get("ATTENDEE"))


def organizer_of(cal: Calendar) -> vCalAddress | None:
    """The ORGANIZER of the first component that has one."""
    for comp in _objects(cal):
        if "ORGANIZER" in comp:
            org = comp["ORGANIZER"]
            return org[0] if isinstance(org, list) else org  # type: ignore[no-any-return,return-value]
    return None


def _agent(prop: object) -> str:
    params = getattr(prop, "params", {}) or {}
    return str(params.get("SCHEDULE-AGENT", "SERVER")).upper()


def _rid_key(comp: Component) -> str:
    rid = prop_dt(comp, "RECURRENCE-ID")
    return "" if rid is None else to_utc(rid).isoformat()


def _mine(comp: Component, me: Iterable[str]) -> vCalAddress | None:
    mine = set(me)
    for a in _as_list(comp.get("ATTENDEE")):
        if email_of(a) in mine:
            return a
    return None


def _partstat(prop: vCalAddress | None) -> str:
    if prop is None:
        return ""
    return str(prop.params.get("PARTSTAT", "NEEDS-ACTION")).upper()


def plan(
    old: bytes | None,
    new: bytes | None,
    own: Sequence[str],
    *,
    sent_by: str | None = None,
    now: Now = _default_now,
) -> Plan:
    """The implicit-scheduling plan for a change of the owner's object.

    ``own`` are the owner's addresses (lower case, no ``mailto:``); the owner
    organizes when ORGANIZER is one of them (RFC 6638 §3.2.1), attends when
    an ATTENDEE is (§3.2.2). ``sent_by`` is the delegate acting for the
    organizer (RFC 5545 §3.2.18), written into ORGANIZER;SENT-BY.
    """
    current = new if new is not None else old
    if current is None:
        return Plan("none")
    cal = load_calendar(current)
    org = organizer_of(cal)
    if org is None:
        return Plan("none")
    organizer = email_of(org)
    if organizer in own:
        if _agent(org) in _CLIENT_AGENTS:
            return Plan("none", organizer)  # RFC 6638 §7.1: the client schedules
        return _organizer_plan(old, new, organizer, sent_by=sent_by, now=now)
    if any(_mine(c, own) is not None for c in _objects(cal)):
        return _attendee_plan(old, new, organizer, own, now=now)
    return Plan("none", organizer)


# --- organizer side (RFC 6638 §3.2.1) ------------------------------------------


def _scheduled_attendees(ics: bytes | Calendar | None, organizer: str) -> dict[str, str]:
    """Attendees the server schedules: lower-case address → address as written."""
    if ics is None:
        return {}
    found: dict[str, str] = {}
    for comp in _objects(load_calendar(ics)):
        for a in _as_list(comp.get("ATTENDEE")):
            key = email_of(a)
            if key == organizer or _agent(a) in _CLIENT_AGENTS:
                continue
            found.setdefault(key, str(a))
    return found


def _skeleton(ics: bytes) -> bytes:
    """The object without what does not make a change significant."""
    cal = load_calendar(ics)
    for comp in _objects(cal):
        for name in _NOISE:
            comp.pop(name, None)
        comp.subcomponents = [c for c in comp.subcomponents if c.name != "VALARM"]
        for a in _as_list(comp.get("ATTENDEE")):
            for p in _REPLY_PARAMS:
                a.params.pop(p, None)
        if "ORGANIZER" in comp:
            for org in _as_list(comp["ORGANIZER"]):
                org.params.pop("SCHEDULE-STATUS", None)
    return cal.to_ical()


def _is_cancelled(ics: bytes | Calendar) -> bool:
    return any("RECURRENCE-ID" not in c and str(c.get("STATUS", "")).upper() == "CANCELLED"
               for c in _objects(load_calendar(ics)))


def _forced(ics: bytes | Calendar, organizer: str) -> set[str]:
    """RFC 6638 §7.2: SCHEDULE-FORCE-SEND=REQUEST sends even without a change."""
    out = set()
    for comp in _objects(load_calendar(ics)):
        for a in _as_list(comp.get("ATTENDEE")):
            if str(a.params.get("SCHEDULE-FORCE-SEND", "")).upper() == "REQUEST":
                out.add(email_of(a))
    out.discard(organizer)
    return out


def _organizer_plan(old: bytes | None, new: bytes | None, organizer: str, *,
                    sent_by: str | None, now: Now) -> Plan:
    if new is None:
        # RFC 6638 §3.2.1.3: deleting the organizer's copy cancels for everyone.
        assert old is not None
        old_cal = load_calendar(old)  # parsed once; the builders below only read it
        people = _scheduled_attendees(old_cal, organizer)
        uid = _uid_of(old_cal)
        return Plan("organizer", organizer, tuple(
            Outgoing("CANCEL", k, itip.cancel_for(old_cal, v, now=now), v, uid)
            for k, v in people.items()))
    stored = None
    if sent_by is not None:
        new = stored = itip.set_sent_by(new, sent_by)
    new_cal = load_calendar(new)
    uid = _uid_of(new_cal)
    prev = load_calendar(old) if old is not None else None
    before = _scheduled_attendees(prev, organizer)
    after = _scheduled_attendees(new_cal, organizer)
    msgs: list[Outgoing] = []
    if _is_cancelled(new_cal) and (prev is None or not _is_cancelled(prev)):
        msgs = [Outgoing("CANCEL", k, itip.cancel_for(new_cal, v, now=now, bump_sequence=False),
                         v, uid) for k, v in after.items()]
        return Plan("organizer", organizer, tuple(msgs), stored)
    significant = old is None or _skeleton(old) != _skeleton(new)
    forced = _forced(new_cal, organizer)
    listed = [{email_of(a) for a in attendees_of(c)} for c in _objects(new_cal)]
    everyone: bytes | None = None
    for key, addr in after.items():
        if key not in before or significant or key in forced:
            whole = all(key in people for people in listed)
            if whole:
                # Listed in every component: the same REQUEST for each of them
                # (built once, not once per attendee of a large meeting).
                if everyone is None:
                    everyone = itip.request_for(new_cal, addr)
                ics = everyone
            else:
                ics = itip.request_for(new_cal, addr)
            msgs.append(Outgoing("REQUEST", key, ics, addr, uid, whole))
    for key, addr in before.items():
        if key not in after:
            # RFC 6638 §3.2.1.2: an attendee taken off the list gets a CANCEL.
            assert prev is not None
            msgs.append(Outgoing("CANCEL", key, itip.cancel_for(prev, addr, now=now,
                                                                 bump_sequence=True), addr, uid))
    if forced:
        stored = _drop_param(stored or new, "SCHEDULE-FORCE-SEND")
    if old is not None:
        stored = _keep_answers(stored or new, old, organizer, significant) or stored
    return Plan("organizer", organizer, tuple(msgs), stored)


def _keep_answers(new: bytes, old: bytes, organizer: str,
                  significant: bool = False) -> bytes | None:
    """Attendees' answers the organizer's client had not seen yet survive its PUT.

    RFC 6638 §3.2.10: a client saving with If-Schedule-Tag-Match may hold a
    copy from before a REPLY was merged; when nothing significant changed,
    the stored PARTSTAT and SCHEDULE-STATUS of each attendee win. After a
    significant change that kept the component's SEQUENCE, an answer the
    body shows as NEEDS-ACTION is kept too: the attendee's copy keeps it in
    that case (`attendee_copy`), so both sides go on agreeing; a new
    SEQUENCE asks everyone again.
    """
    prev = {_rid_key(c): c for c in _objects(load_calendar(old))}
    cal = load_calendar(new)
    changed = False
    for comp in _objects(cal):
        before = prev.get(_rid_key(comp))
        if before is None:
            continue
        if significant and str(before.get("SEQUENCE", 0)) != str(comp.get("SEQUENCE", 0)):
            continue
        for a in _as_list(comp.get("ATTENDEE")):
            if email_of(a) == organizer:
                continue
            b = _mine(before, [email_of(a)])
            if b is None:
                continue
            if significant:
                if _partstat(a) == "NEEDS-ACTION" and _partstat(b) not in ("NEEDS-ACTION", ""):
                    a.params["PARTSTAT"] = b.params["PARTSTAT"]
                    changed = True
                continue
            for param in ("PARTSTAT", "SCHEDULE-STATUS"):
                if param in b.params and a.params.get(param) != b.params[param]:
                    a.params[param] = b.params[param]
                    changed = True
    return cal.to_ical() if changed else None


def _uid_of(cal: Calendar) -> str:
    return next((str(c["UID"]) for c in _objects(cal) if "UID" in c), "")


def _drop_param(ics: bytes, param: str) -> bytes:
    cal = load_calendar(ics)
    for comp in _objects(cal):
        for a in _as_list(comp.get("ATTENDEE")):
            a.params.pop(param, None)
    return cal.to_ical()


def set_schedule_status(ics: bytes, statuses: dict[str, str]) -> bytes:
    """Write SCHEDULE-STATUS (RFC 6638 §7.3) on the organizer's ATTENDEE lines."""
    if not statuses:
        return ics
    cal = load_calendar(ics)
    for comp in _objects(cal):
        for a in _as_list(comp.get("ATTENDEE")):
            code = statuses.get(email_of(a))
            if code is not None:
                a.params["SCHEDULE-STATUS"] = code
    return cal.to_ical()


def set_partstat(ics: bytes, address: str, partstat: str) -> bytes:
    """Set one attendee's PARTSTAT in every component listing them."""
    cal = load_calendar(ics)
    for comp in _objects(cal):
        a = _mine(comp, [email_of(address)])
        if a is not None:
            a.params["PARTSTAT"] = partstat
            a.params.pop("RSVP", None)
    return cal.to_ical()


# --- attendee side (RFC 6638 §3.2.2) --------------------------------------------


def _todo_sync(new: bytes, old: bytes | None, own: Sequence[str]) -> bytes | None:
    """An assignee who only changed STATUS also changed their PARTSTAT."""
    cal = load_calendar(new)
    prev = {_rid_key(c): c for c in _objects(load_calendar(old))} if old else {}
    changed = False
    for comp in _objects(cal):
        if comp.name != "VTODO":
            continue
        me = _mine(comp, own)
        status = str(comp.get("STATUS", "")).upper()
        target = _TODO_STATUS_PARTSTAT.get(status)
        if me is None or target is None:
            continue
        before = prev.get(_rid_key(comp))
        old_status = str(before.get("STATUS", "")).upper() if before is not None else ""
        old_part = _partstat(_mine(before, own)) if before is not None else "NEEDS-ACTION"
        if status != old_status and _partstat(me) == old_part and _partstat(me) != target:
            me.params["PARTSTAT"] = target
            changed = True
    return cal.to_ical() if changed else None


def _answer(comp: Component | None, own: Sequence[str]) -> tuple[str, str, str]:
    if comp is None:
        return ("", "", "")
    return (_partstat(_mine(comp, own)), str(comp.get("STATUS", "")).upper(),
            str(comp.get("PERCENT-COMPLETE", "")))


def _attendee_plan(old: bytes | None, new: bytes | None, organizer: str,
                   own: Sequence[str], *, now: Now) -> Plan:
    source = new if new is not None else old
    assert source is not None
    cal = load_calendar(source)
    me_prop = next(m for c in _objects(cal) if (m := _mine(c, own)) is not None)
    me = str(me_prop)
    if _agent(me_prop) in _CLIENT_AGENTS or _agent(organizer_of(cal)) in _CLIENT_AGENTS:
        return Plan("none", organizer)  # RFC 6638 §7.1: the client replies itself
    if new is None:
        # RFC 6638 §3.2.2.3: an attendee deleting the event declines it.
        assert old is not None
        if all(_partstat(_mine(c, own)) in ("DECLINED", "") for c in _objects(cal)):
            return Plan("attendee", organizer)
        declined = set_partstat(old, me, "DECLINED")
        return Plan("attendee", organizer,
                    (Outgoing("REPLY", organizer, _reply(declined, me, now), organizer),))
    stored = _todo_sync(new, old, own)
    if stored is not None:
        new = stored
    prev = {_rid_key(c): c for c in _objects(load_calendar(old))} if old else {}
    changed = False
    for comp in _objects(load_calendar(new)):
        if _mine(comp, own) is None:
            continue
        answer = _answer(comp, own)
        # A new override of the series compares with the master.
        before = prev.get(_rid_key(comp)) or prev.get("")
        if before is None:
            changed |= answer[0] != "NEEDS-ACTION"
        else:
            was = _answer(before, own)
            changed |= answer[0] != was[0] or (comp.name == "VTODO" and answer != was)
    if not changed:
        return Plan("attendee", organizer, (), stored)
    return Plan("attendee", organizer,
                (Outgoing("REPLY", organizer, _reply(new, me, now), organizer),), stored)


_TODO_REPLY_EXTRA = ("PERCENT-COMPLETE", "COMPLETED")


def _reply(ics: bytes, me: str, now: Now) -> bytes:
    """itip.reply_from, plus a task's progress (RFC 5546 §3.4.3 VTODO REPLY)."""
    reply = itip.reply_from(ics, me, now=now)
    source = {_rid_key(c): c for c in _objects(load_calendar(ics)) if c.name == "VTODO"}
    if not source:
        return reply
    cal = load_calendar(reply)
    for comp in _objects(cal):
        src = source.get(_rid_key(comp))
        if src is None:
            continue
        for name in _TODO_REPLY_EXTRA:
            if name in src and name not in comp:
                comp.add(name, src[name], encode=False)
    return cal.to_ical()


# --- merging incoming messages --------------------------------------------------


def attendee_copy(request: bytes, existing: bytes | None) -> bytes:
    """The attendee's stored copy after an incoming REQUEST (RFC 6638 §4.1).

    The organizer's version wins; the attendee keeps their alarms, and their
    PARTSTAT where the organizer left it at NEEDS-ACTION for an unchanged
    SEQUENCE (a re-sent invitation does not undo an acceptance).
    """
    cal = load_calendar(request)
    cal.pop("METHOD", None)
    if existing is not None:
        mine = {_rid_key(c): c for c in _objects(load_calendar(existing))}
        for comp in _objects(cal):
            before = mine.get(_rid_key(comp)) or mine.get("")
            if before is None:
                continue
            comp.subcomponents.extend(c for c in before.subcomponents if c.name == "VALARM")
            if _rid_key(comp) in mine and str(before.get("SEQUENCE", 0)) == str(
                    comp.get("SEQUENCE", 0)):
                answers: dict[str, vCalAddress] = {}
                for b in attendees_of(before):
                    answers.setdefault(email_of(b), b)
                for a in _as_list(comp.get("ATTENDEE")):
                    old_a = answers.get(email_of(a))
                    if old_a is not None and _partstat(a) == "NEEDS-ACTION":
                        a.params["PARTSTAT"] = _partstat(old_a)
    return cal.to_ical()


def apply_cancel(existing: bytes, cancel: bytes) -> bytes:
    """The attendee's copy after a CANCEL (RFC 5546 §3.2.5): STATUS:CANCELLED.

    A CANCEL of the whole object cancels every component; a CANCEL with a
    RECURRENCE-ID cancels (or adds as cancelled) that one instance.
    """
    cal = load_calendar(existing)
    msg = load_calendar(cancel)
    comps = {_rid_key(c): c for c in _objects(cal)}
    for comp in _objects(msg):
        key = _rid_key(comp)
        if key == "":
            for c in _objects(cal):
                c.pop("STATUS", None)
                c.add("STATUS", "CANCELLED")
                c.pop("SEQUENCE", None)
                c.add("SEQUENCE", comp.get("SEQUENCE", 0))
            continue
        target = comps.get(key)
        if target is None:
            copy = comp.copy()
            cal.add_component(copy)
        else:
            target.pop("STATUS", None)
            target.add("STATUS", "CANCELLED")
    return cal.to_ical()


def apply_reply(organizer_copy: bytes, reply: bytes, *, schedule_status: str = "2.0",
                now: Now = _default_now) -> bytes:
    """itip.apply_reply, then a task's STATUS from its assignees' answers.

    VTODO (task assignment): COMPLETED when every assignee who did not decline
    completed it, IN-PROCESS once anyone started or finished; PERCENT-COMPLETE
    is the latest reply's.
    """
    merged = itip.apply_reply(organizer_copy, _only_replier(organizer_copy, reply),
                              schedule_status=schedule_status)
    cal = load_calendar(merged)
    todos = [c for c in _objects(cal) if c.name == "VTODO"]
    if not todos:
        return merged
    replied = {_rid_key(c): c for c in _objects(load_calendar(reply))}
    for comp in todos:
        organizer = email_of(comp.get("ORGANIZER", ""))
        states = [_partstat(a) for a in _as_list(comp.get("ATTENDEE"))
                  if email_of(a) != organizer and _partstat(a) != "DECLINED"]
        if not states:
            continue
        status = None
        if all(s == "COMPLETED" for s in states):
            status = "COMPLETED"
        elif any(s in ("IN-PROCESS", "COMPLETED") for s in states):
            status = "IN-PROCESS"
        if status is None:
            continue
        comp.pop("STATUS", None)
        comp.add("STATUS", status)
        src = replied.get(_rid_key(comp))
        if status == "COMPLETED":
            comp.pop("PERCENT-COMPLETE", None)
            comp.add("PERCENT-COMPLETE", 100)
            if "COMPLETED" not in comp:
                done = prop_dt(src, "COMPLETED") if src is not None else None
                comp.add("COMPLETED", to_utc(done) if done is not None
                         else now().astimezone(UTC).replace(microsecond=0))
        elif src is not None and "PERCENT-COMPLETE" in src:
            comp.pop("PERCENT-COMPLETE", None)
            comp.add("PERCENT-COMPLETE", src["PERCENT-COMPLETE"], encode=False)
    return cal.to_ical()


def _only_replier(organizer_copy: bytes, reply: bytes) -> bytes:
    """A REPLY speaks for its first ATTENDEE only (RFC 5546 §3.2.3).

    Further ATTENDEE lines are new delegatees (§3.2.2.3); one naming someone
    already invited is dropped, so nobody can answer for a colleague.
    """
    invited = {_rid_key(c): c for c in _objects(load_calendar(organizer_copy))}
    cal = load_calendar(reply)
    for comp in _objects(cal):
        atts = _as_list(comp.get("ATTENDEE"))
        target = invited.get(_rid_key(comp)) or invited.get("")
        if len(atts) <= 1 or target is None:
            continue
        keep = [atts[0], *(a for a in atts[1:] if _mine(target, [email_of(a)]) is None)]
        comp.pop("ATTENDEE")
        for a in keep:
            comp.add("ATTENDEE", a, encode=False)
    return cal.to_ical()


# --- rooms and resources --------------------------------------------------------


def booking_window(ics: bytes, tz: tzinfo = UTC) -> tuple[datetime, datetime] | None:
    """[start, end) that every instance of a booking falls in (bounded);
    floating times read in ``tz`` (the room's calendar zone, RFC 4791 §9.9)."""
    cal = load_calendar(ics)
    spans = [s for c in _objects(cal) if c.name == "VEVENT"
             if (s := event_span(c, tz)) is not None]
    if not spans:
        return None
    lo = min(s.start for s in spans)
    recurring = any("RRULE" in c or "RDATE" in c for c in _objects(cal))
    hi = lo + BOOKING_HORIZON if recurring else max(s.end for s in spans)
    return lo, max(hi, lo)


def booking_conflicts(ics: bytes, busy: Sequence[BusyPeriod], tz: tzinfo = UTC) -> bool:
    """Does any instance of the booking overlap the room's busy time?

    ``busy`` must not include the booking itself (the same UID). Cancelled
    and transparent instances book nothing.
    """
    window = booking_window(ics, tz)
    if window is None or not busy:
        return False
    cal = load_calendar(ics)
    for inst in instances(cal, "VEVENT", window[0], window[1], tz):
        if str(inst.get("STATUS", "")).upper() == "CANCELLED":
            continue
        if str(inst.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        span = event_span(inst, tz)
        if span is None or span.end <= span.start:
            continue
        if any(p.start < span.end and span.start < p.end for p in busy):
            return True
    return False
