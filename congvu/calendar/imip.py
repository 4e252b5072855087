"""iMIP (RFC 6047): scheduling messages to and from calendar users by email.

Outbound: attendees (or organizers) in domains we do not host get the
iTIP message as ``text/calendar; method=...`` through the outbound queue,
DKIM-signed with the key of the sender's domain, in the caller's
transaction (the CalDAV PUT that caused it commits both or neither).

Inbound: :class:`ImipReplyHook` is registered with the SMTP delivery
(:data:`congvu.mailserver.smtp.policy.DELIVERY_HOOKS`). A message delivered
to a local organizer that carries a ``METHOD:REPLY`` from the attendee it
names (the envelope sender or a ``From:`` address must be that attendee,
RFC 6047 §3) updates the organizer's copy of the event. It runs inside the
delivery transaction under a savepoint: SMTP still answers ``250`` only
after the commit, and a REPLY that cannot be applied never costs the
message — it is delivered to the mailbox either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from email.utils import formataddr, getaddresses
from email import message_from_bytes, policy as email_policy
from typing import TYPE_CHECKING, Any

import asyncpg

from congvu.calendar import itip
from congvu.calendar.ical import load_calendar
from congvu.calendar.schedplan import Outgoing, email_of
from congvu.mailserver.smtp.dkimsign import sign
from congvu.store import outqueue

if TYPE_CHECKING:
    from congvu.services import Services

log = logging.getLogger(__name__)

__all__ = ["ImipReplyHook", "carries_calendar", "describe", "queue_imip"]

_LABELS = {"REQUEST": "Kính mời tham dự", "CANCEL": "Đã hủy", "REPLY": "Trả lời lời mời"}
_PARTSTATS = {"ACCEPTED": "đồng ý tham dự", "DECLINED": "từ chối", "TENTATIVE": "có thể tham dự",
              "COMPLETED": "đã hoàn thành", "IN-PROCESS": "đang thực hiện",
              "DELEGATED": "đã ủy quyền", "NEEDS-ACTION": "chưa trả lời"}


def describe(method: str, ics: bytes, sender_name: str) -> str:
    """The human-readable part of an iMIP message (RFC 6047 §2.4 text/plain)."""
    cal = load_calendar(ics)
    comp = next((c for c in cal.subcomponents if c.name in ("VEVENT", "VTODO")), None)
    lines = [f"{_LABELS.get(method, method)}: {comp.get('SUMMARY', '') if comp else ''}"]
    if comp is not None:
        for name, label in (("DTSTART", "Bắt đầu"), ("DTEND", "Kết thúc"), ("DUE", "Hạn"),
                            ("LOCATION", "Địa điểm")):
            if name in comp:
                value = comp[name]
                text = getattr(value, "dt", value)
                lines.append(f"{label}: {text}")
        if method == "REPLY":
            for a in itip._attendees(comp):
                state = str(a.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
                lines.append(f"{email_of(a)}: {_PARTSTATS.get(state, state)}")
    lines.append(f"Gửi bởi {sender_name}.")
    return "\r\n".join(lines) + "\r\n"


async def queue_imip(conn: asyncpg.Connection, services: Services, *, account_id: int,
                     from_address: str, from_name: str, message: Outgoing,
                     sent_by: str | None = None) -> int:
    """Queue one iMIP message for a remote calendar user; return the queue id.

    ``sent_by`` (a delegate organizing for a leader) becomes ``Sender:``
    (RFC 5322 §3.6.2) while ``From:`` stays the organizer.
    """
    msg = itip.imip_message(formataddr((from_name, from_address)), message.recipient,
                            message.method, message.ics,
                            describe(message.method, message.ics, from_name), now=services.now)
    if sent_by:
        msg["Sender"] = sent_by
    raw = msg.as_bytes()
    domain = from_address.rpartition("@")[2]
    key = await outqueue.active_dkim_key(conn, domain)
    if key is not None:
        raw = await asyncio.to_thread(sign, raw, key.domain, key.selector, key.private_key)
    return await outqueue.enqueue(
        conn, account_id=account_id, mail_from=from_address, recipients=[message.recipient],
        raw=raw, smtputf8=False, now=services.now(),
        lifetime=timedelta(hours=services.settings.queue_lifetime_hours))


def _senders(envelope_sender: str, raw: bytes) -> set[str]:
    msg = message_from_bytes(raw, policy=email_policy.compat32)
    found = {envelope_sender.lower()} if envelope_sender else set()
    for _, addr in getaddresses(msg.get_all("From", []) + msg.get_all("Sender", [])):
        if addr:
            found.add(addr.lower())
    return found


def carries_calendar(raw: bytes) -> bool:
    """Might this email hold an iTIP message (a delivery hook's cheap ``matches``)?"""
    head = raw[:200_000].lower()
    return b"text/calendar" in head or b"application/ics" in head


def trusted_imip(raw: bytes, trusted: bool, methods: tuple[str, ...]) -> tuple[str, bytes] | None:
    """(METHOD, iTIP message) of an email a delivery hook acts on: one that
    passed DMARC (a failed one is moved to Junk and never changes a calendar)
    and carries one of ``methods``; None otherwise."""
    if not trusted:
        return None
    found = itip.extract_imip(raw)
    return found if found is not None and found[0] in methods else None


def add_delivery_hook(hook: Any) -> None:
    """Add ``hook`` to SMTP delivery unless one of its class is there already."""
    from congvu.mailserver.smtp import policy

    if not any(isinstance(h, type(hook)) for h in policy.DELIVERY_HOOKS):
        policy.DELIVERY_HOOKS.append(hook)


class ImipReplyHook:
    """Apply iMIP REPLYs delivered to local organizers (RFC 6047 §3, RFC 5546 §3.2.3)."""

    name = "imip-reply"

    def matches(self, raw: bytes) -> bool:
        return carries_calendar(raw)

    async def run(self, conn: asyncpg.Connection, services: Services, envelope_sender: str,
                  raw: bytes, account_ids: Sequence[int], trusted: bool) -> int:
        """Apply the REPLY for every local organizer among ``account_ids``; count them."""
        from congvu.calendar import scheduling  # imports the store of calendars

        found = trusted_imip(raw, trusted, ("REPLY",))
        if found is None:
            return 0
        reply = found[1]
        senders = _senders(envelope_sender, raw)
        attendees = {email_of(a) for c in load_calendar(reply).subcomponents
                     if c.name in itip.OBJECT_TYPES for a in itip._attendees(c)}
        if not attendees or not attendees <= senders:
            log.info("iMIP REPLY ignored: attendee %s is not the sender %s",
                     sorted(attendees), sorted(senders))
            return 0
        applied = 0
        for account_id in account_ids:
            if await scheduling.receive_reply(conn, services, account_id, reply,
                                              via="imip"):
                applied += 1
        return applied


def register() -> None:
    """Add the iMIP REPLY hook to SMTP delivery (once)."""
    add_delivery_hook(ImipReplyHook())
