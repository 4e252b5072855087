"""Implicit scheduling decisions (congvu.calendar.schedplan), bytes in, plans out."""

from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar

from congvu.calendar import schedplan
from congvu.calendar.freebusy import BusyPeriod

NOW = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
AN = "an.nv@hanoi.gov.vn"
BINH = "binh.tq@hanoi.gov.vn"
HOA = "hoa.nt@hanoi.gov.vn"
ROOM = "phong-hop@hanoi.gov.vn"


def ics(body: str) -> bytes:
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + body.strip() + "\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def event(attendees: list[str], *, summary: str = "Họp giao ban", start: str = "20260305T020000Z",
          end: str = "20260305T030000Z", seq: int = 0, extra: str = "",
          organizer: str = AN, comp: str = "VEVENT") -> bytes:
    lines = "\n".join(attendees)
    when = f"DTSTART:{start}\nDTEND:{end}" if comp == "VEVENT" else f"DUE:{end}"
    return ics(f"""
BEGIN:{comp}
UID:hop-1@hanoi.gov.vn
DTSTAMP:20260301T000000Z
{when}
SEQUENCE:{seq}
SUMMARY:{summary}
ORGANIZER;CN=Nguyễn Văn An:mailto:{organizer}
ATTENDEE;PARTSTAT=ACCEPTED:mailto:{organizer}
{lines}
{extra}
END:{comp}
""".replace("\n\n", "\n"))


def att(addr: str, partstat: str = "NEEDS-ACTION", extra: str = "") -> str:
    return f"ATTENDEE;PARTSTAT={partstat}{extra}:mailto:{addr}"


def methods(p: schedplan.Plan) -> set[tuple[str, str]]:
    return {(m.method, m.recipient) for m in p.messages}


def test_new_event_requests_every_attendee_but_the_organizer() -> None:
    p = schedplan.plan(None, event([att(BINH), att(HOA)]), [AN], now=lambda: NOW)
    assert p.role == "organizer"
    assert methods(p) == {("REQUEST", BINH), ("REQUEST", HOA)}
    cal = Calendar.from_ical(p.messages[0].ics)
    assert str(cal["METHOD"]) == "REQUEST"


def test_change_requests_kept_and_cancels_removed() -> None:
    old = event([att(BINH), att(HOA)])
    new = event([att(BINH)], start="20260305T030000Z", end="20260305T040000Z", seq=1)
    p = schedplan.plan(old, new, [AN], now=lambda: NOW)
    assert methods(p) == {("REQUEST", BINH), ("CANCEL", HOA)}
    cancel = Calendar.from_ical(next(m.ics for m in p.messages if m.method == "CANCEL"))
    assert str(cancel["METHOD"]) == "CANCEL"
    assert str(cancel.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"


def test_insignificant_change_sends_nothing_to_kept_attendees() -> None:
    old = event([att(BINH)])
    # Only the reply state changed (a client re-saving after a REPLY was merged).
    new = event([att(BINH, "ACCEPTED", ";SCHEDULE-STATUS=2.0")])
    assert schedplan.plan(old, new, [AN]).messages == ()


def test_delete_and_status_cancelled_cancel_everyone() -> None:
    old = event([att(BINH), att(HOA)])
    assert methods(schedplan.plan(old, None, [AN])) == {("CANCEL", BINH), ("CANCEL", HOA)}
    new = event([att(BINH), att(HOA)], extra="STATUS:CANCELLED", seq=1)
    assert methods(schedplan.plan(old, new, [AN])) == {("CANCEL", BINH), ("CANCEL", HOA)}


def test_schedule_agent_client_is_left_alone() -> None:
    p = schedplan.plan(None, event([att(BINH, extra=";SCHEDULE-AGENT=CLIENT"), att(HOA)]), [AN])
    assert methods(p) == {("REQUEST", HOA)}
    whole = event([att(BINH)]).replace(b"ORGANIZER;", b"ORGANIZER;SCHEDULE-AGENT=CLIENT;")
    assert schedplan.plan(None, whole, [AN]).role == "none"


def test_delegate_organizing_sets_sent_by() -> None:
    p = schedplan.plan(None, event([att(BINH)]), [AN], sent_by="thu.lt@hanoi.gov.vn")
    assert p.stored is not None
    org = Calendar.from_ical(p.stored).walk("VEVENT")[0]["ORGANIZER"]
    assert org.params["SENT-BY"] == "mailto:thu.lt@hanoi.gov.vn"
    req = Calendar.from_ical(p.messages[0].ics).walk("VEVENT")[0]["ORGANIZER"]
    assert req.params["SENT-BY"] == "mailto:thu.lt@hanoi.gov.vn"


def test_attendee_partstat_change_replies_to_organizer() -> None:
    old = event([att(BINH), att(HOA)])
    new = event([att(BINH, "ACCEPTED"), att(HOA)])
    p = schedplan.plan(old, new, [BINH], now=lambda: NOW)
    assert p.role == "attendee" and methods(p) == {("REPLY", AN)}
    reply = Calendar.from_ical(p.messages[0].ics).walk("VEVENT")[0]
    assert [str(a) for a in [reply["ATTENDEE"]]] == [f"mailto:{BINH}"]
    merged = schedplan.apply_reply(old, p.messages[0].ics)
    attendees = Calendar.from_ical(merged).walk("VEVENT")[0]["ATTENDEE"]
    binh = next(a for a in attendees if BINH in str(a))
    assert binh.params["PARTSTAT"] == "ACCEPTED" and binh.params["SCHEDULE-STATUS"] == "2.0"
    # Nothing changed for the attendee: no reply.
    assert schedplan.plan(new, new, [BINH]).messages == ()


def test_attendee_delete_declines() -> None:
    old = event([att(BINH, "ACCEPTED")])
    p = schedplan.plan(old, None, [BINH])
    assert methods(p) == {("REPLY", AN)}
    assert b"PARTSTAT=DECLINED" in p.messages[0].ics
    assert schedplan.plan(event([att(BINH, "DECLINED")]), None, [BINH]).messages == ()


def test_task_status_flows_back_to_assigner() -> None:
    old = event([att(BINH), att(HOA)], comp="VTODO", extra="STATUS:NEEDS-ACTION")
    # Bình marks the task done without touching PARTSTAT (what task apps do).
    new = event([att(BINH), att(HOA)], comp="VTODO",
                extra="STATUS:COMPLETED\nPERCENT-COMPLETE:100\nCOMPLETED:20260304T100000Z")
    p = schedplan.plan(old, new, [BINH], now=lambda: NOW)
    assert methods(p) == {("REPLY", AN)}
    assert p.stored is not None and b"PARTSTAT=COMPLETED" in p.stored
    merged = schedplan.apply_reply(old, p.messages[0].ics, now=lambda: NOW)
    todo = Calendar.from_ical(merged).walk("VTODO")[0]
    assert str(todo["STATUS"]) == "IN-PROCESS"  # Hoa has not finished yet
    hoa_done = schedplan.set_partstat(event([att(BINH), att(HOA, "COMPLETED")], comp="VTODO"),
                                      HOA, "COMPLETED")
    reply = schedplan.plan(event([att(BINH), att(HOA)], comp="VTODO"), hoa_done, [HOA])
    merged = schedplan.apply_reply(merged, reply.messages[0].ics, now=lambda: NOW)
    todo = Calendar.from_ical(merged).walk("VTODO")[0]
    assert str(todo["STATUS"]) == "COMPLETED" and int(todo["PERCENT-COMPLETE"]) == 100


def test_attendee_copy_keeps_acceptance_on_resend() -> None:
    req = schedplan.plan(None, event([att(BINH)]), [AN]).messages[0].ics
    mine = schedplan.attendee_copy(req, None)
    assert b"METHOD" not in mine
    accepted = schedplan.set_partstat(mine, BINH, "ACCEPTED")
    again = schedplan.attendee_copy(req, accepted)
    assert b"PARTSTAT=ACCEPTED:mailto:" + BINH.encode() in again.replace(b"\r\n ", b"")
    moved = schedplan.plan(None, event([att(BINH)], seq=1), [AN]).messages[0].ics
    assert b"PARTSTAT=NEEDS-ACTION:mailto:" + BINH.encode() in schedplan.attendee_copy(
        moved, accepted).replace(b"\r\n ", b"")


def test_cancel_marks_the_copy_cancelled() -> None:
    old = event([att(BINH)])
    cancel = schedplan.plan(old, None, [AN]).messages[0].ics
    out = Calendar.from_ical(schedplan.apply_cancel(old, cancel)).walk("VEVENT")[0]
    assert str(out["STATUS"]) == "CANCELLED"


def test_room_conflicts() -> None:
    booking = event([att(ROOM)])
    busy = [BusyPeriod(datetime(2026, 3, 5, 2, 30, tzinfo=UTC),
                       datetime(2026, 3, 5, 4, 0, tzinfo=UTC))]
    assert schedplan.booking_conflicts(booking, busy)
    later = event([att(ROOM)], start="20260305T040000Z", end="20260305T050000Z")
    assert not schedplan.booking_conflicts(later, busy)  # back to back is fine
    weekly = event([att(ROOM)], start="20260226T023000Z", end="20260226T033000Z",
                   extra="RRULE:FREQ=WEEKLY;COUNT=3")
    assert schedplan.booking_conflicts(weekly, busy)  # the second instance collides
    assert not schedplan.booking_conflicts(booking, [])


def test_stale_organizer_copy_keeps_merged_answers() -> None:
    stored = schedplan.apply_reply(event([att(BINH)]), schedplan.plan(
        event([att(BINH)]), event([att(BINH, "ACCEPTED")]), [BINH]).messages[0].ics)
    # The organizer's client adds an alarm to the copy it had before the REPLY.
    stale = event([att(BINH)], extra="BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\n"
                                     "DESCRIPTION:Nhắc\nEND:VALARM")
    p = schedplan.plan(stored, stale, [AN])
    assert p.messages == () and p.stored is not None
    assert b"PARTSTAT=ACCEPTED" in p.stored and b"VALARM" in p.stored
    # A real change (new time): the organizer's version wins, attendees are asked again.
    moved = event([att(BINH)], start="20260306T020000Z", end="20260306T030000Z", seq=1)
    p = schedplan.plan(stored, moved, [AN])
    assert methods(p) == {("REQUEST", BINH)} and p.stored is None


def test_reply_cannot_answer_for_a_colleague() -> None:
    organizer_copy = event([att(BINH), att(HOA)])
    forged = ics(f"""
METHOD:REPLY
BEGIN:VEVENT
UID:hop-1@hanoi.gov.vn
DTSTAMP:20260301T000000Z
SEQUENCE:0
ORGANIZER:mailto:{AN}
ATTENDEE;PARTSTAT=ACCEPTED:mailto:{BINH}
ATTENDEE;PARTSTAT=DECLINED;DELEGATED-FROM="mailto:{BINH}":mailto:{HOA}
END:VEVENT
""")
    merged = Calendar.from_ical(schedplan.apply_reply(organizer_copy, forged)).walk("VEVENT")[0]
    states = {str(a).removeprefix("mailto:"): a.params["PARTSTAT"] for a in merged["ATTENDEE"]}
    assert states[BINH] == "ACCEPTED" and states[HOA] == "NEEDS-ACTION"
