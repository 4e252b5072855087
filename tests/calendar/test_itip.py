"""iTIP messages and iMIP email (congvu.calendar.itip)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from icalendar import Calendar

from congvu.calendar import itip

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def ics(body: str) -> bytes:
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + body.strip() + "\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


ORGANIZER_COPY = ics("""
BEGIN:VEVENT
UID:giao-ban@hanoi.gov.vn
DTSTAMP:20240101T000000Z
DTSTART:20240105T020000Z
DTEND:20240105T030000Z
RRULE:FREQ=WEEKLY;COUNT=4
SEQUENCE:2
SUMMARY:Giao ban tuần
ORGANIZER;CN=Chánh Văn phòng;SCHEDULE-STATUS=1.2:mailto:chanh@hanoi.gov.vn
ATTENDEE;CN=Chánh Văn phòng;PARTSTAT=ACCEPTED:mailto:chanh@hanoi.gov.vn
ATTENDEE;CN=Nguyễn Văn An;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;SCHEDULE-STATUS=1.2:mailto:An.Nguyen@Hanoi.gov.vn
ATTENDEE;CN=Khách;PARTSTAT=NEEDS-ACTION;SCHEDULE-AGENT=SERVER:mailto:guest@example.com
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT15M
DESCRIPTION:Nhắc họp
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:giao-ban@hanoi.gov.vn
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240119T020000Z
DTSTART:20240119T070000Z
DTEND:20240119T080000Z
SEQUENCE:2
SUMMARY:Giao ban tuần (mở rộng)
ORGANIZER;CN=Chánh Văn phòng:mailto:chanh@hanoi.gov.vn
ATTENDEE;CN=Nguyễn Văn An;PARTSTAT=NEEDS-ACTION:mailto:An.Nguyen@Hanoi.gov.vn
ATTENDEE;CN=Trần Bình;PARTSTAT=NEEDS-ACTION:mailto:binh@hanoi.gov.vn
END:VEVENT
""")


def parse(data: bytes) -> Calendar:
    return Calendar.from_ical(data)


def attendee(comp: object, address: str) -> object:
    values = comp["ATTENDEE"]  # type: ignore[index]
    values = values if isinstance(values, list) else [values]
    return next(a for a in values if itip.same_address(a, address))


def test_request_for_attendee_strips_alarms_and_server_params() -> None:
    cal = parse(itip.request_for(ORGANIZER_COPY, "mailto:an.nguyen@hanoi.gov.vn"))
    assert str(cal["METHOD"]) == "REQUEST"
    events = cal.walk("VEVENT")
    assert len(events) == 2
    assert not cal.walk("VALARM")
    text = cal.to_ical().decode()
    assert "SCHEDULE-STATUS" not in text and "SCHEDULE-AGENT" not in text
    assert "mailto:An.Nguyen@Hanoi.gov.vn" in text.replace("\r\n ", "")  # case kept


def test_request_for_someone_invited_to_one_instance_only() -> None:
    cal = parse(itip.request_for(ORGANIZER_COPY, "mailto:binh@hanoi.gov.vn"))
    (event,) = cal.walk("VEVENT")
    assert "RECURRENCE-ID" in event
    with pytest.raises(itip.ItipError):
        itip.request_for(ORGANIZER_COPY, "mailto:nobody@hanoi.gov.vn")


def test_reply_from_contains_only_the_replying_attendee() -> None:
    request = itip.request_for(ORGANIZER_COPY, "mailto:An.Nguyen@Hanoi.gov.vn")
    accepted = request.replace(b"PARTSTAT=NEEDS-ACTION;RSVP=TRUE", b"PARTSTAT=ACCEPTED;RSVP=TRUE")
    cal = parse(itip.reply_from(accepted, "mailto:an.nguyen@hanoi.gov.vn", now=lambda: NOW))
    assert str(cal["METHOD"]) == "REPLY"
    master = next(e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e)
    att = master["ATTENDEE"]
    assert not isinstance(att, list)
    assert str(att) == "mailto:An.Nguyen@Hanoi.gov.vn"
    assert att.params["PARTSTAT"] == "ACCEPTED"
    assert master["DTSTAMP"].dt == NOW
    assert str(master["UID"]) == "giao-ban@hanoi.gov.vn" and "ORGANIZER" in master


def test_apply_reply_updates_partstat_and_schedule_status() -> None:
    request = itip.request_for(ORGANIZER_COPY, "mailto:An.Nguyen@Hanoi.gov.vn")
    accepted = request.replace(b"PARTSTAT=NEEDS-ACTION;RSVP=TRUE", b"PARTSTAT=ACCEPTED;RSVP=TRUE")
    reply = itip.reply_from(accepted, "mailto:An.Nguyen@Hanoi.gov.vn", now=lambda: NOW)
    updated = parse(itip.apply_reply(ORGANIZER_COPY, reply))
    master = next(e for e in updated.walk("VEVENT") if "RECURRENCE-ID" not in e)
    an = attendee(master, "mailto:an.nguyen@hanoi.gov.vn")
    assert an.params["PARTSTAT"] == "ACCEPTED"  # type: ignore[attr-defined]
    assert an.params["SCHEDULE-STATUS"] == "2.0"  # type: ignore[attr-defined]
    assert str(an) == "mailto:An.Nguyen@Hanoi.gov.vn"
    guest = attendee(master, "mailto:guest@example.com")
    assert guest.params["PARTSTAT"] == "NEEDS-ACTION"  # type: ignore[attr-defined]
    assert updated.walk("VALARM")  # the organizer's own alarm stays


def test_apply_reply_for_an_unoverridden_instance_creates_override() -> None:
    reply = ics("""
METHOD:REPLY
BEGIN:VEVENT
UID:giao-ban@hanoi.gov.vn
DTSTAMP:20240103T000000Z
RECURRENCE-ID:20240112T020000Z
SEQUENCE:2
ORGANIZER:mailto:chanh@hanoi.gov.vn
ATTENDEE;PARTSTAT=DECLINED:mailto:guest@example.com
END:VEVENT
""")
    updated = parse(itip.apply_reply(ORGANIZER_COPY, reply))
    events = updated.walk("VEVENT")
    assert len(events) == 3
    override = next(e for e in events if "RECURRENCE-ID" in e
                    and e["RECURRENCE-ID"].dt == datetime(2024, 1, 12, 2, tzinfo=UTC))
    assert "RRULE" not in override
    assert attendee(override, "guest@example.com").params["PARTSTAT"] == "DECLINED"  # type: ignore
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    assert attendee(master, "guest@example.com").params["PARTSTAT"] == "NEEDS-ACTION"  # type: ignore


def test_apply_reply_rejects_strangers_and_stale_sequence() -> None:
    stranger = ics("""
METHOD:REPLY
BEGIN:VEVENT
UID:giao-ban@hanoi.gov.vn
DTSTAMP:20240103T000000Z
SEQUENCE:2
ATTENDEE;PARTSTAT=ACCEPTED:mailto:crasher@example.com
END:VEVENT
""")
    with pytest.raises(itip.ItipError):
        itip.apply_reply(ORGANIZER_COPY, stranger)
    stale = stranger.replace(b"crasher@example.com", b"guest@example.com").replace(
        b"SEQUENCE:2", b"SEQUENCE:1")
    with pytest.raises(itip.ItipError):
        itip.apply_reply(ORGANIZER_COPY, stale)


def test_cancel_for_removed_attendee_only() -> None:
    cal = parse(itip.cancel_for(ORGANIZER_COPY, "mailto:guest@example.com", now=lambda: NOW))
    assert str(cal["METHOD"]) == "CANCEL"
    (event,) = cal.walk("VEVENT")  # the guest is not in the override
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 3
    assert str(event["ATTENDEE"]) == "mailto:guest@example.com"
    everyone = parse(itip.cancel_for(ORGANIZER_COPY, now=lambda: NOW))
    assert len(everyone.walk("VEVENT")) == 2


def test_diff_attendees_preserves_case_and_ignores_organizer() -> None:
    new = ORGANIZER_COPY.replace(b"mailto:guest@example.com", b"mailto:Le.Cuong@hanoi.gov.vn")
    diff = itip.diff_attendees(ORGANIZER_COPY, new)
    assert diff.added == ("mailto:Le.Cuong@hanoi.gov.vn",)
    assert diff.removed == ("mailto:guest@example.com",)
    assert set(diff.kept) == {"mailto:An.Nguyen@Hanoi.gov.vn", "mailto:binh@hanoi.gov.vn"}
    first = itip.diff_attendees(None, ORGANIZER_COPY)
    assert len(first.added) == 3 and not first.removed


def test_set_sent_by_for_delegate() -> None:
    cal = parse(itip.set_sent_by(ORGANIZER_COPY, "thuky@hanoi.gov.vn"))
    for event in cal.walk("VEVENT"):
        assert event["ORGANIZER"].params["SENT-BY"] == "mailto:thuky@hanoi.gov.vn"
        assert str(event["ORGANIZER"]) == "mailto:chanh@hanoi.gov.vn"


def test_imip_message_roundtrip_keeps_vietnamese() -> None:
    request = itip.request_for(ORGANIZER_COPY, "mailto:guest@example.com")
    msg = itip.imip_message("Chánh Văn phòng <chanh@hanoi.gov.vn>", "guest@example.com",
                            "REQUEST", request, "Kính mời ông/bà dự họp giao ban tuần.",
                            now=lambda: NOW)
    raw = msg.as_bytes()
    assert max(raw) < 128  # 7-bit clean on the wire
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Lời mời: Giao ban tuần"
    plain = parsed.get_body(("plain",))
    assert plain is not None and "Kính mời ông/bà" in plain.get_content()
    cal_part = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    assert cal_part.get_param("method") == "REQUEST"
    assert (cal_part.get_content_charset() or "").lower() == "utf-8"
    found = itip.extract_imip(raw)
    assert found is not None
    method, data = found
    assert method == "REQUEST"
    assert "Giao ban tuần" in data.decode("utf-8")


def test_extract_imip_reply_from_outlook_style_mail() -> None:
    reply = itip.reply_from(
        itip.request_for(ORGANIZER_COPY, "mailto:guest@example.com").replace(
            b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=TENTATIVE"),
        "mailto:guest@example.com")
    raw = (b"From: guest@example.com\r\nTo: chanh@hanoi.gov.vn\r\nSubject: Tentative\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
           b"--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nok\r\n"
           b"--XX\r\nContent-Type: text/calendar; charset=utf-8; method=REPLY\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           + __import__("base64").encodebytes(reply) + b"--XX--\r\n")
    found = itip.extract_imip(raw)
    assert found is not None and found[0] == "REPLY"
    updated = parse(itip.apply_reply(ORGANIZER_COPY, found[1]))
    master = next(e for e in updated.walk("VEVENT") if "RECURRENCE-ID" not in e)
    assert attendee(master, "guest@example.com").params["PARTSTAT"] == "TENTATIVE"  # type: ignore
    assert itip.extract_imip(b"From: a@b\r\nSubject: hi\r\n\r\nplain text\r\n") is None
