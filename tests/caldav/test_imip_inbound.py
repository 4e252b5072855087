"""iMIP REQUEST/CANCEL from organizers elsewhere (RFC 6047 / RFC 6638 §4), over SMTP.

An invitation mailed to a local official by an organizer at another domain
lands in their schedule inbox; when the mail is authenticated for the
ORGANIZER's domain (SPF/DKIM/DMARC, our Authentication-Results) it also lands
in their default calendar as NEEDS-ACTION, and their answer goes back by
iMIP. Forged, unauthenticated, quarantined and hijacking messages change no
calendar; the mail itself is always delivered.
"""

from __future__ import annotations

import asyncio
import smtplib


from congvu.calendar import itip, schedplan
from congvu.calendar.imip_inbound import aligned, authenticated_domains
from congvu.mailserver.smtp.dnsresolve import StaticResolver
from congvu.mailserver.smtp.service import SmtpServer
from congvu.services import Services
from tests.caldav.sched_helpers import AN, THU, attendee, copy, ics, inbox

GUEST = "khach@example.org"
OTHER = "nguoi-khac@example.com"


def spf_passes(resolver: StaticResolver, domain: str = "example.org") -> None:
    resolver.add(domain, "TXT", "v=spf1 ip4:127.0.0.0/8 -all")


def mail(method: str, uid: str, *, organizer: str = GUEST, sender: str | None = None,
         seq: int = 0, to: tuple[str, ...] = (AN,), partstat: str = "NEEDS-ACTION",
         summary: str = "Hội thảo chuyển đổi số") -> bytes:
    body = ics(uid, [f"{a}={partstat}" for a in to], organizer=organizer, seq=seq,
               summary=summary)
    body = body.replace(b"VERSION:2.0\r\n", f"VERSION:2.0\r\nMETHOD:{method}\r\n".encode())
    if method == "CANCEL":
        body = body.replace(b"SEQUENCE:", b"STATUS:CANCELLED\r\nSEQUENCE:")
    return itip.imip_message(sender or organizer, to[0], method, body, summary).as_bytes()


def send(port: int, sender: str, rcpts: list[str], raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail(sender, rcpts, raw)


async def deliver(mx: SmtpServer, raw: bytes, sender: str = GUEST,
                  rcpts: tuple[str, ...] = (AN,)) -> None:
    await asyncio.to_thread(send, mx.ports["mx"], sender, list(rcpts), raw)


async def mail_count(services: Services, who: str) -> int:
    async with services.db.connection() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM mailbox_messages m JOIN accounts a ON a.id = m.account_id"
            " WHERE a.address = $1", who))


async def test_authenticated_request_reaches_inbox_and_calendar(
        services: Services, mx: SmtpServer, resolver: StaticResolver, dav) -> None:
    spf_passes(resolver)
    # the organizer's program marks nobody as answered... or claims an answer
    await deliver(mx, mail("REQUEST", "ngoai-req-1", to=(AN, THU), partstat="ACCEPTED"),
                  rcpts=(AN, THU))
    for who in (AN, THU):
        assert [m for m in await inbox(services, who) if "METHOD:REQUEST" in m]
        obj, cal = await copy(services, who, "ngoai-req-1")  # type: ignore[misc]
        assert attendee(cal, who)["PARTSTAT"] == "NEEDS-ACTION"
        assert "METHOD" not in obj.ics and obj.schedule_tag
        assert await mail_count(services, who) == 1  # and the mail itself
    # an update (SEQUENCE 1) moves the copy; an older one does not come back
    await deliver(mx, mail("REQUEST", "ngoai-req-1", seq=1, summary="Hội thảo (đổi giờ)"))
    _, cal = await copy(services, AN, "ngoai-req-1")  # type: ignore[misc]
    assert "đổi giờ" in str(cal.walk("VEVENT")[0]["SUMMARY"])
    await deliver(mx, mail("REQUEST", "ngoai-req-1", seq=0, summary="Cũ"))
    _, cal = await copy(services, AN, "ngoai-req-1")  # type: ignore[misc]
    assert "đổi giờ" in str(cal.walk("VEVENT")[0]["SUMMARY"])
    # AN accepts in the calendar program: an iMIP REPLY goes to the organizer
    obj, _ = await copy(services, AN, "ngoai-req-1")  # type: ignore[misc]
    accepted = schedplan.set_partstat(obj.ics.encode(), AN, "ACCEPTED")
    r = await dav.request("PUT", f"/dav/calendars/users/{AN}/calendar/{obj.href}",
                          body=accepted)
    assert r.status_code == 204, r.text
    async with services.db.connection() as conn:
        raw = await conn.fetchval(
            "SELECT m.raw FROM outbound_messages m JOIN outbound_recipients r"
            " ON r.message_id = m.id WHERE r.rcpt = $1", GUEST)
    assert raw is not None and b"REPLY" in raw


async def test_unauthenticated_request_only_in_the_inbox(services: Services,
                                                         mx: SmtpServer) -> None:
    await deliver(mx, mail("REQUEST", "ngoai-req-2"))  # no SPF/DKIM/DMARC anywhere
    assert [m for m in await inbox(services, AN) if "ngoai-req-2" in m]
    assert await copy(services, AN, "ngoai-req-2") is None
    assert await mail_count(services, AN) == 1


async def test_forged_or_internal_organizers_change_nothing(
        services: Services, mx: SmtpServer, resolver: StaticResolver) -> None:
    spf_passes(resolver, "example.net")
    # sent by someone else than the ORGANIZER (authenticated for their own domain)
    await deliver(mx, mail("REQUEST", "gia-1", sender="mallory@example.net"),
                  sender="mallory@example.net")
    # an ORGANIZER we host, by mail from outside
    await deliver(mx, mail("REQUEST", "gia-2", organizer=THU, sender=THU), sender=THU)
    assert await inbox(services, AN) == []
    assert await copy(services, AN, "gia-1") is None and await copy(services, AN, "gia-2") is None
    assert await mail_count(services, AN) == 2


async def test_quarantined_request_changes_nothing(services: Services, mx: SmtpServer,
                                                   resolver: StaticResolver) -> None:
    resolver.add("example.org", "TXT", "v=spf1 -all")
    resolver.add("_dmarc.example.org", "TXT", "v=DMARC1; p=reject")
    await deliver(mx, mail("REQUEST", "ngoai-req-3"))
    assert await inbox(services, AN) == [] and await copy(services, AN, "ngoai-req-3") is None


async def test_cancel_only_from_the_same_organizer(services: Services, mx: SmtpServer,
                                                   resolver: StaticResolver) -> None:
    spf_passes(resolver)
    spf_passes(resolver, "example.com")
    await deliver(mx, mail("REQUEST", "ngoai-huy"))
    # someone else, authenticated for their own domain, cancels GUEST's meeting
    await deliver(mx, mail("CANCEL", "ngoai-huy", organizer=OTHER, seq=1), sender=OTHER)
    _, cal = await copy(services, AN, "ngoai-huy")  # type: ignore[misc]
    assert str(cal.walk("VEVENT")[0].get("STATUS", "")) != "CANCELLED"
    # nor may they re-invite under the same UID
    await deliver(mx, mail("REQUEST", "ngoai-huy", organizer=OTHER, seq=2, summary="Khác"),
                  sender=OTHER)
    _, cal = await copy(services, AN, "ngoai-huy")  # type: ignore[misc]
    assert "Khác" not in str(cal.walk("VEVENT")[0]["SUMMARY"])
    # the organizer's own CANCEL
    await deliver(mx, mail("CANCEL", "ngoai-huy", seq=1))
    _, cal = await copy(services, AN, "ngoai-huy")  # type: ignore[misc]
    assert str(cal.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    assert [m for m in await inbox(services, AN) if "METHOD:CANCEL" in m]


def test_authentication_results_are_ours_and_aligned() -> None:
    raw = (b"Authentication-Results: other.example; spf=pass smtp.mailfrom=evil.example\r\n"
           b"Authentication-Results: mail.hanoi.gov.vn;\r\n\tspf=fail smtp.mailfrom=a.example;\r\n"
           b"\tdkim=pass header.d=mail.example.org header.s=s1;\r\n"
           b"\tdmarc=pass (p=none) header.from=b.example\r\n"
           b"From: x@b.example\r\n\r\nbody\r\n")
    found = authenticated_domains(raw, "mail.hanoi.gov.vn")
    assert found == {"mail.example.org", "b.example"}
    assert aligned(found, "khach@example.org")  # a subdomain signed
    assert aligned({"example.org"}, "x@lich.example.org")  # the parent passed
    assert not aligned(found, "x@a.example") and not aligned({"org"}, "x@example.org")
    assert authenticated_domains(raw, "elsewhere.example") == set()


async def test_thunderbird_accepting_from_email_files_onto_the_copy(
        services: Services, mx: SmtpServer, resolver: StaticResolver, dav) -> None:
    """CLIENT-QUIRKS: Thunderbird accepting the emailed invitation PUTs the UID
    under its own href with SCHEDULE-AGENT=CLIENT (it mails the REPLY itself):
    the server's copy moves there, one copy stays, the server sends nothing."""
    spf_passes(resolver)
    await deliver(mx, mail("REQUEST", "ngoai-tb"))
    assert await copy(services, AN, "ngoai-tb") is not None
    body = ics("ngoai-tb", [f"{AN}=ACCEPTED"], organizer=GUEST).replace(
        f"ORGANIZER;CN=Tổ chức:mailto:{GUEST}".encode(),
        f"ORGANIZER;CN=Tổ chức;SCHEDULE-AGENT=CLIENT:mailto:{GUEST}".encode())
    r = await dav.request("PUT", f"/dav/calendars/users/{AN}/calendar/tb-123.ics", body=body)
    assert r.status_code in (201, 204), r.text
    obj, cal = await copy(services, AN, "ngoai-tb")  # type: ignore[misc]
    assert obj.href == "tb-123.ics" and attendee(cal, AN)["PARTSTAT"] == "ACCEPTED"
    async with services.db.connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM calendar_objects o JOIN accounts a ON a.id = o.owner_id"
            " JOIN calendars c ON c.owner_id = o.owner_id AND c.id = o.calendar_id"
            " WHERE a.address = $1 AND o.uid = 'ngoai-tb' AND c.kind = 'calendar'", AN) == 1
        assert await conn.fetchval("SELECT count(*) FROM outbound_recipients WHERE rcpt = $1",
                                   GUEST) == 0
