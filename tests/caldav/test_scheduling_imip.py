"""iMIP REPLY over SMTP (RFC 6047): smtplib to the MX listener updates the organizer's event."""

from __future__ import annotations

import asyncio
import base64
import smtplib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from congvu.calendar import itip, schedplan
from congvu.directory.service import Directory
from congvu.mailserver.smtp.dnsresolve import StaticResolver
from congvu.mailserver.smtp.service import SmtpServer, start_smtp
from congvu.services import Services
from tests.caldav.sched_helpers import AN, BINH, attendee, copy, ics, put
from tests.conftest import PASSWORD

GUEST = "khach@example.org"


def reply_mail(partstat: str, *, sender: str = GUEST, attendee_addr: str = GUEST) -> bytes:
    """What the guest's calendar program sends back: the REQUEST answered."""
    invited = ics("ngoai-1", [attendee_addr])
    answered = schedplan.set_partstat(invited, attendee_addr, partstat)
    reply = itip.reply_from(answered, attendee_addr, now=lambda: datetime(2026, 3, 2, tzinfo=UTC))
    msg = itip.imip_message(sender, AN, "REPLY", reply, f"{attendee_addr}: {partstat}")
    return msg.as_bytes()


def send(port: int, sender: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail(sender, [AN], raw)


async def inbox_count(services: Services) -> int:
    async with services.db.connection() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM mailbox_messages m JOIN mailboxes b ON b.account_id ="
            " m.account_id AND b.id = m.mailbox_id JOIN accounts a ON a.id = m.account_id"
            " WHERE a.address = $1 AND b.name = 'INBOX'", AN))


async def test_imip_reply_updates_the_organizer(services: Services, mx: SmtpServer) -> None:
    await put(services, AN, AN, "ngoai.ics", ics("ngoai-1", [GUEST]))
    port = mx.ports["mx"]
    await asyncio.to_thread(send, port, GUEST, reply_mail("ACCEPTED"))
    _, cal = await copy(services, AN, "ngoai-1")  # type: ignore[misc]
    assert attendee(cal, GUEST)["PARTSTAT"] == "ACCEPTED"
    assert await inbox_count(services) == 1  # the mail is delivered as well
    async with services.db.connection() as conn:
        audited = await conn.fetchrow("SELECT actor, details FROM audit_log"
                                      " WHERE action = 'calendar.reply'")
    assert audited["actor"] == GUEST and audited["details"]["via"] == "imip"


async def test_imip_reply_from_someone_else_changes_nothing(services: Services,
                                                            mx: SmtpServer) -> None:
    await put(services, AN, AN, "ngoai.ics", ics("ngoai-1", [GUEST]))
    forged = reply_mail("DECLINED", sender="mallory@example.net")
    await asyncio.to_thread(send, mx.ports["mx"], "mallory@example.net", forged)
    _, cal = await copy(services, AN, "ngoai-1")  # type: ignore[misc]
    assert attendee(cal, GUEST)["PARTSTAT"] == "NEEDS-ACTION"
    assert await inbox_count(services) == 1


async def test_imip_reply_failing_dmarc_changes_nothing(services: Services, mx: SmtpServer,
                                                        resolver: StaticResolver) -> None:
    resolver.add("example.org", "TXT", "v=spf1 -all")
    resolver.add("_dmarc.example.org", "TXT", "v=DMARC1; p=reject")
    await put(services, AN, AN, "ngoai.ics", ics("ngoai-1", [GUEST]))
    await asyncio.to_thread(send, mx.ports["mx"], GUEST, reply_mail("ACCEPTED"))
    _, cal = await copy(services, AN, "ngoai-1")  # type: ignore[misc]
    assert attendee(cal, GUEST)["PARTSTAT"] == "NEEDS-ACTION"
    async with services.db.connection() as conn:
        junk = await conn.fetchval(
            "SELECT count(*) FROM mailbox_messages m JOIN mailboxes b ON b.account_id ="
            " m.account_id AND b.id = m.mailbox_id WHERE b.name = 'Junk'")
    assert junk == 1


async def test_broken_imip_is_still_delivered(services: Services, mx: SmtpServer) -> None:
    raw = (f"From: {GUEST}\r\nTo: {AN}\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\n"
           "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:khong-co\r\n"
           f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{GUEST}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    await asyncio.to_thread(send, mx.ports["mx"], GUEST, raw)
    assert await inbox_count(services) == 1


@pytest.fixture
async def msa(services: Services, org: Directory, resolver: StaticResolver,
              ) -> AsyncIterator[SmtpServer]:
    srv = await start_smtp(services, submission_port=0, resolver=resolver, queue=False)
    try:
        yield srv
    finally:
        await srv.stop()


def submit(port: int, who: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo()
        # smtplib's login() is ASCII-only; the password is Vietnamese.
        token = base64.b64encode(f"\0{who}\0{PASSWORD}".encode()).decode()
        assert s.docmd("AUTH", "PLAIN " + token)[0] == 235
        s.sendmail(who, [AN], raw)


async def test_thunderbird_email_reply_from_a_colleague(services: Services, msa: SmtpServer) -> None:
    """Thunderbird accepts an invitation from email (SCHEDULE-AGENT=CLIENT): its REPLY
    goes by submission to the organizer, and the organizer's event follows."""
    await put(services, AN, AN, "noi-bo.ics", ics("ngoai-1", [BINH]))
    raw = reply_mail("TENTATIVE", sender=BINH, attendee_addr=BINH)
    await asyncio.to_thread(submit, msa.ports["submission"], BINH, raw)
    _, cal = await copy(services, AN, "ngoai-1")  # type: ignore[misc]
    assert attendee(cal, BINH)["PARTSTAT"] == "TENTATIVE"
