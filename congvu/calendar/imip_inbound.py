"""Invitations from organizers elsewhere: iMIP REQUEST and CANCEL over SMTP.

An official invited by someone at another organisation receives the iTIP
message as email (RFC 6047 §2.4: ``text/calendar; method=REQUEST``). The
mail is delivered as usual; :class:`ImipRequestHook` (a delivery hook, run
inside the delivery transaction under a savepoint, like the REPLY hook of
:mod:`congvu.calendar.imip`) also puts the scheduling message into each
invited local attendee's schedule inbox (RFC 6638 §4) so calendar clients
show the invitation, and — only when the message is authenticated for the
ORGANIZER's domain — their copy into the default calendar with
PARTSTAT=NEEDS-ACTION, as an internal invitation would be (RFC 6638 §3.2.1).
Their answer then goes back by iMIP REPLY through implicit scheduling.

Authenticated means (RFC 6047 §2.3 leaves it to the implementation; RFC
5546 §6.1 asks for the organizer to be verified) our own
Authentication-Results field says ``dmarc=pass`` for the From: domain, or
``spf=pass`` for the MAIL FROM domain, or ``dkim=pass`` for a ``d=`` domain,
with that domain the ORGANIZER's domain or its parent or a subdomain
(DMARC relaxed alignment, without a public-suffix list). The ORGANIZER (or
its SENT-BY) must also be the envelope sender, From: or Sender:.

Kept out, whatever the authentication:
- organizers in domains we host (they schedule through CalDAV; a copy by
  mail is only mail);
- mail quarantined by DMARC (delivered to Junk);
- a REQUEST or CANCEL for a UID the attendee already has from a different
  organizer (no hijacking of someone else's meeting), and a CANCEL unless it
  is from the organizer of the stored copy;
- a REQUEST older (SEQUENCE) than the stored copy (RFC 5546 §2.1.5);
- rooms and resources (no booking by outside organizers) and recipients who
  are not attendees (a forwarded invitation).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email import message_from_bytes
from email import policy as email_policy
from typing import TYPE_CHECKING, Any

import asyncpg

from congvu.calendar import itip, objects, schedplan, scheduling
from congvu.calendar.ical import InvalidCalendarData, load_calendar
from congvu.calendar.imip import _senders, add_delivery_hook, carries_calendar, trusted_imip
from congvu.calendar.schedplan import email_of
from congvu.store import accounts as accounts_repo
from congvu.store import audit as audit_repo
from congvu.store import calendars as cal_repo
from congvu.store import scheduling as sched_repo
from congvu.store.accounts import Account

if TYPE_CHECKING:
    from congvu.services import Services

log = logging.getLogger(__name__)

__all__ = ["ImipRequestHook", "aligned", "authenticated_domains", "register"]


def authenticated_domains(raw: bytes, authserv_id: str) -> set[str]:
    """Domains our own Authentication-Results field (RFC 8601) says passed:
    DMARC's header.from, SPF's smtp.mailfrom, DKIM's header.d. Fields of
    other servers are ignored (the SMTP server strips forged ones of ours)."""
    end = raw.find(b"\r\n\r\n")
    head = message_from_bytes(raw if end < 0 else raw[:end + 4], policy=email_policy.compat32)
    for value in head.get_all("Authentication-Results", []):
        text = " ".join(str(value).split())
        ident, _, rest = text.partition(";")
        if ident.strip().lower() != authserv_id.lower():
            continue
        out = set()
        for clause in rest.split(";"):
            words = clause.split()
            if not words:
                continue
            method, _, result = words[0].lower().partition("=")
            if result != "pass":
                continue
            props = dict(w.lower().split("=", 1) for w in words[1:] if "=" in w)
            key = {"dmarc": "header.from", "spf": "smtp.mailfrom", "dkim": "header.d"}.get(method)
            domain = props.get(key, "") if key else ""
            domain = domain.rpartition("@")[2].strip("<>.")
            if domain and domain != "unknown":
                out.add(domain)
        return out
    return set()


def aligned(domains: set[str], organizer: str) -> bool:
    """Is one of ``domains`` the organizer's domain, a parent or a subdomain of it?"""
    org = organizer.rpartition("@")[2].lower()
    return any("." in d and (d == org or org.endswith("." + d) or d.endswith("." + org))
               for d in domains)


def _me(cal: Any, own: Sequence[str]) -> str | None:
    """The ATTENDEE value (as written) naming one of ``own``, or None."""
    for comp in cal.subcomponents:
        if comp.name in itip.OBJECT_TYPES:
            for a in schedplan.attendees_of(comp):
                if email_of(a) in own:
                    return str(a)
    return None


def _answered(cal: Any, me: str) -> bool:
    """Does the message give ``me`` a PARTSTAT other than NEEDS-ACTION?"""
    return any(str(a.params.get("PARTSTAT", "NEEDS-ACTION")).upper() != "NEEDS-ACTION"
               for comp in cal.subcomponents if comp.name in itip.OBJECT_TYPES
               for a in schedplan.attendees_of(comp) if email_of(a) == email_of(me))


def _sequence(cal: Any) -> int:
    return max((int(c.get("SEQUENCE", 0)) for c in cal.subcomponents
                if c.name in itip.OBJECT_TYPES), default=0)


class ImipRequestHook:
    """iMIP REQUEST/CANCEL from external organizers to local attendees."""

    name = "imip-request"

    def matches(self, raw: bytes) -> bool:
        return carries_calendar(raw)

    async def run(self, conn: asyncpg.Connection, services: Services, envelope_sender: str,
                  raw: bytes, account_ids: Sequence[int], trusted: bool) -> int:
        """Deliver to every invited local attendee among ``account_ids``; count them."""
        found = trusted_imip(raw, trusted, ("REQUEST", "CANCEL"))
        if found is None:
            return 0
        method, message = found
        try:
            cal = load_calendar(message)
            uid = scheduling._uid(message)
        except (InvalidCalendarData, itip.ItipError, ValueError):
            return 0
        org = schedplan.organizer_of(cal)
        if org is None:
            return 0
        organizer = email_of(org)
        if (await scheduling.resolve(conn, organizer)).kind != "remote":
            return 0  # ours schedule through CalDAV
        senders = _senders(envelope_sender, raw)
        sent_by = org.params.get("SENT-BY")
        if organizer not in senders and not (sent_by and email_of(sent_by) in senders):
            log.info("iMIP %s ignored: organizer %s is not the sender %s", method, organizer,
                     sorted(senders))
            return 0
        authentic = aligned(authenticated_domains(raw, services.settings.hostname), organizer)
        done = 0
        for account_id in account_ids:
            account = await accounts_repo.get_by_id(conn, account_id)
            if account.kind in scheduling.BOOKABLE or not account.enabled:
                continue
            me = _me(cal, scheduling._own(account))
            if me is None:
                continue  # not invited (a forwarded invitation): mail only
            # the lock every scheduling write into this account's calendars holds
            await sched_repo.lock_accounts(conn, [account.id])
            if await self._deliver(conn, account, method, message, cal, uid, organizer, me,
                                   authentic):
                done += 1
                await audit_repo.record(conn, organizer, f"calendar.imip-{method.lower()}",
                                        account.address, {"uid": uid, "calendar": authentic})
        return done

    async def _deliver(self, conn: asyncpg.Connection, account: Account, method: str,
                       message: bytes, cal: Any, uid: str, organizer: str, me: str,
                       authentic: bool) -> bool:
        existing = await scheduling._copy_of(conn, account, uid)
        if existing is not None:
            stored = load_calendar(existing[1].ics)
            org = schedplan.organizer_of(stored)
            if org is None or email_of(org) != organizer:
                log.info("iMIP %s for %s ignored: %s is not its organizer", method, uid,
                         organizer)
                return False
        if method == "CANCEL":
            await scheduling._to_inbox(conn, account, message)
            if authentic and existing is not None:
                cancelled = schedplan.apply_cancel(existing[1].ics.encode(), message)
                await objects.write_object(conn, existing[0], existing[1].href, cancelled,
                                           schedule_tag=scheduling.new_schedule_tag())
            return True
        if existing is not None and _sequence(cal) < _sequence(stored):
            return False  # RFC 5546 §2.1.5: an older version than the one kept
        await scheduling._to_inbox(conn, account, message)
        if not authentic:
            return True
        copy = schedplan.attendee_copy(message, existing[1].ics.encode() if existing else None)
        if existing is None:
            # RFC 6638 §3.2.1: the attendee has not answered yet, whatever it says.
            if _answered(cal, me):
                copy = schedplan.set_partstat(copy, me, "NEEDS-ACTION")
            target = await cal_repo.default_calendar(conn, cal_repo.account_owner(account))
            href = await scheduling._free_href(conn, target, uid)
        else:
            target, href = existing[0], existing[1].href
        await objects.write_object(conn, target, href, copy,
                                   schedule_tag=scheduling.new_schedule_tag())
        return True


def register() -> None:
    """Add the hook to SMTP delivery (once)."""
    add_delivery_hook(ImipRequestHook())
