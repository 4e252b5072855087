"""A meeting with 200 internal attendees (congvu.calendar.schedbatch).

Every attendee gets the invitation in their calendar (NEEDS-ACTION, a
Schedule-Tag) and exactly one REQUEST in their schedule inbox; the organizer's
copy says 1.2 (delivered) for each of them, 1.1 for the external attendee and
3.7 for the unknown one. When the organizer moves the meeting, every copy and
inbox follows, while an attendee's own answer (same SEQUENCE) and alarm
survive, as they do one attendee at a time (schedplan.attendee_copy). No
timing here: bench/caldav_load.py --attendees 200 prints the figures.
"""

from __future__ import annotations

from icalendar import Calendar

from congvu.calendar import schedbatch
from congvu.directory.service import Directory, NewAccount
from congvu.services import Services
from congvu.store import calendars as repo
from tests.caldav.sched_helpers import AN, DOMAIN, attendee, copy, inbox, object_url, put

N = 200
PEOPLE = [f"dai-bieu-{i}@{DOMAIN}" for i in range(N)]
EXTERNAL = "chuyen-gia@example.org"
UNKNOWN = f"khong-co@{DOMAIN}"
UID = "hoi-nghi-200@hanoi.gov.vn"


def meeting(start: str, end: str, seq: int = 0) -> bytes:
    lines = [f"ATTENDEE;CN=Đại biểu {i};PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{a}"
             for i, a in enumerate([*PEOPLE, EXTERNAL, UNKNOWN])]
    return ("\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", f"UID:{UID}",
        "DTSTAMP:20260301T000000Z", f"DTSTART:{start}", f"DTEND:{end}", f"SEQUENCE:{seq}",
        "SUMMARY:Hội nghị tổng kết năm", "ORGANIZER;CN=Tổ chức:mailto:" + AN,
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{AN}", *lines, "END:VEVENT", "END:VCALENDAR",
        ""])).encode()


async def _check_everyone(services: Services, start: str, skip: set[str] = frozenset()) -> None:
    async with services.db.connection() as conn:
        counts = {r[0]: (r[1], r[2]) for r in await conn.fetch(
            """SELECT a.address, count(*) FILTER (WHERE c.kind = 'calendar'),
                      count(*) FILTER (WHERE c.kind = 'schedule-inbox')
               FROM calendar_objects o
               JOIN calendars c ON c.owner_id = o.owner_id AND c.id = o.calendar_id
               JOIN accounts a ON a.id = o.owner_id AND c.owner_kind = 'account'
               WHERE o.uid = $1 GROUP BY a.address""", UID)}
    for person in PEOPLE:
        assert counts.get(person) == (1, 1), person
        if person in skip:
            continue
        obj, cal = await copy(services, person, UID)  # type: ignore[misc]
        ev = cal.walk("VEVENT")[0]
        assert ev["DTSTART"].to_ical().decode() == start, person
        assert attendee(cal, person)["PARTSTAT"] == "NEEDS-ACTION"
        assert "METHOD" not in cal and obj.schedule_tag
        messages = [m for m in await inbox(services, person) if UID in m]
        assert len(messages) == 1, person
        msg = Calendar.from_ical(messages[0])
        assert str(msg["METHOD"]) == "REQUEST"
        assert msg.walk("VEVENT")[0]["DTSTART"].to_ical().decode() == start


async def test_meeting_with_200_attendees(dav, services: Services, org: Directory) -> None:
    await org.add_accounts([(i + 2, NewAccount(a, f"Đại biểu {i}", "q-hk"))
                            for i, a in enumerate(PEOPLE)], "test")
    # one attendee already uses the href a new copy would take
    other = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
             "UID:khac@x\r\nDTSTAMP:20260301T000000Z\r\nDTSTART:20260101T010000Z\r\n"
             "DTEND:20260101T020000Z\r\nSUMMARY:Việc khác\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    await put(services, PEOPLE[3], PEOPLE[3], f"{UID}.ics", other.encode())

    r = await dav.request("PUT", object_url(AN, "hoi-nghi.ics"),
                          body=meeting("20260310T020000Z", "20260310T040000Z"))
    assert r.status_code == 201, r.text
    await _check_everyone(services, "20260310T020000Z")
    _, cal = await copy(services, AN, UID)  # type: ignore[misc]
    for person in PEOPLE:
        assert attendee(cal, person)["SCHEDULE-STATUS"] == "1.2"
    assert attendee(cal, EXTERNAL)["SCHEDULE-STATUS"] == "1.1"
    assert attendee(cal, UNKNOWN)["SCHEDULE-STATUS"] == "3.7"
    found = await copy(services, PEOPLE[3], UID)
    assert found is not None and found[0].href != f"{UID}.ics"  # its own object stayed

    # attendee 7 accepts; attendee 9 adds an alarm to their copy
    o7, c7 = await copy(services, PEOPLE[7], UID)  # type: ignore[misc]
    for a in c7.walk("VEVENT")[0]["ATTENDEE"]:
        if str(a).lower() == f"mailto:{PEOPLE[7]}":
            a.params["PARTSTAT"] = "ACCEPTED"
    await put(services, PEOPLE[7], PEOPLE[7], o7.href, c7.to_ical())
    _, c7 = await copy(services, PEOPLE[7], UID)  # type: ignore[misc]
    assert attendee(c7, PEOPLE[7])["PARTSTAT"] == "ACCEPTED"
    o9, _ = await copy(services, PEOPLE[9], UID)  # type: ignore[misc]
    alarm = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Nhắc\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
    await put(services, PEOPLE[9], PEOPLE[9], o9.href,
              o9.ics.replace("END:VEVENT", alarm + "END:VEVENT").encode())
    _, c9 = await copy(services, PEOPLE[9], UID)  # type: ignore[misc]
    assert c9.walk("VALARM")
    async with services.db.connection() as conn:
        owner = repo.account_owner(await org.get_account(PEOPLE[20]))
        before = (await repo.default_calendar(conn, owner)).sync_token

    # the organizer moves it (same SEQUENCE: answers given so far are kept)
    r = await dav.request("PUT", object_url(AN, "hoi-nghi.ics"),
                          body=meeting("20260311T020000Z", "20260311T040000Z"))
    assert r.status_code == 204, r.text
    await _check_everyone(services, "20260311T020000Z", skip={PEOPLE[7]})
    _, c7 = await copy(services, PEOPLE[7], UID)  # type: ignore[misc]
    assert c7.walk("VEVENT")[0]["DTSTART"].to_ical().decode() == "20260311T020000Z"
    assert attendee(c7, PEOPLE[7])["PARTSTAT"] == "ACCEPTED"
    _, c9 = await copy(services, PEOPLE[9], UID)  # type: ignore[misc]
    assert c9.walk("VALARM"), "the attendee's alarm survives the organizer's update"
    async with services.db.connection() as conn:
        after = await repo.default_calendar(conn, owner)
        changes = await repo.changes_since(conn, after, before)
    assert [o.uid for o in changes.changed] == [UID]  # sync-collection reports the change


def test_plain_update_reads_the_text() -> None:
    request = meeting("20260311T020000Z", "20260311T040000Z", seq=1)
    plain = meeting("20260310T020000Z", "20260310T040000Z")
    assert schedbatch.plain_update(plain, request)
    answered = plain.replace(b"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:dai-bieu-5",
                             b"PARTSTAT=ACCEPTED;RSVP=TRUE:mailto:dai-bieu-5")
    assert schedbatch.plain_update(answered, request)  # a new SEQUENCE asks again
    assert not schedbatch.plain_update(answered, answered.replace(b"ACCEPTED", b"NEEDS-ACTION"))
    folded = answered.replace(b"PARTSTAT=ACCEPTED", b"PARTSTA\r\n T=ACCEPTED")
    assert not schedbatch.plain_update(folded, meeting("20260311T020000Z", "20260311T040000Z"))
    with_alarm = plain.replace(b"END:VEVENT", b"BEGIN:VALARM\r\nEND:VALARM\r\nEND:VEVENT")
    assert not schedbatch.plain_update(with_alarm, request)
