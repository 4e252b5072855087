"""RFC 6638 implicit scheduling on the calendar store, and iMIP for the rest.

Registered as an object hook (:mod:`congvu.calendar.hooks`): every PUT or
DELETE of an object in an account's calendar runs :func:`schedule_hook`
inside the request's transaction, so the object, every attendee's copy,
every schedule-inbox message and every queued iMIP email commit together
(or not at all) before ``201``/``204`` is sent.

- The organizer's change (:mod:`.schedplan` decides what is sent) puts a
  REQUEST or CANCEL into each internal attendee's schedule inbox and updates
  their copy in their default calendar (PARTSTAT=NEEDS-ACTION); attendees in
  domains we do not host get an iMIP email through the outbound queue
  (:mod:`.imip`). SCHEDULE-STATUS on the organizer's copy says what happened
  (RFC 6638 §7.3: 1.1 sent, 1.2 delivered, 3.7 unknown user).
- Rooms and resources answer at once: ACCEPTED when free, DECLINED when the
  slot is taken, decided under a per-room lock (no double booking).
- An attendee's change of PARTSTAT (or a task's STATUS) sends a REPLY that
  updates the organizer's copy — internal or by iMIP to an external one.
- A delegate with ``calendar-write`` organizing in the leader's calendar:
  ORGANIZER stays the leader, SENT-BY names the delegate; it is audited.
- Schedule-Tag (RFC 6638 §3.2.10): changes on the organizer's own changes
  and on the attendee's copy when the organizer's update arrives, but not
  when a REPLY is merged or an attendee only answers.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import asyncpg

from congvu.calendar import caltz, imip, objects, schedbatch, schedplan
from congvu.calendar.freebusy import BusyPeriod, busy_periods
from congvu.calendar.hooks import (HookResult, register_object_hook, schedule_reply,
                                   scheduling_only)
from congvu.calendar.ical import InvalidCalendarData, load_calendar
from congvu.calendar.itip import ItipError, reply_from
from congvu.calendar.schedplan import Outgoing, email_of
from congvu.store import accounts as accounts_repo
from congvu.store import audit as audit_repo
from congvu.store import calendar_batch as batch_repo
from congvu.store import calendars as cal_repo
from congvu.store import delivery as delivery_repo
from congvu.store import scheduling as sched_repo
from congvu.store.accounts import Account

log = logging.getLogger(__name__)

__all__ = ["Recipient", "attendee_addresses", "lock_for_attendee_write",
           "lock_for_organizer_write", "new_schedule_tag", "receive_reply", "resolve",
           "schedule_hook", "scheduling_role"]

# RFC 6638 §7.3 / RFC 5545 §3.8.8.3 request-status codes.
SENT = "1.1"  # handed to the outbound queue (iMIP)
DELIVERED = "1.2"  # in the recipient's schedule inbox and calendar
UNKNOWN = "3.7"  # invalid calendar user
NO_AUTHORITY = "3.8"
FAILED = "5.1"
BOOKABLE = ("room", "resource")
_SAFE_HREF = re.compile(r"^[A-Za-z0-9@._~-]{1,150}$")
_METHOD_LINE = b"\r\nMETHOD:REQUEST\r\n"


def new_schedule_tag() -> str:
    """An opaque Schedule-Tag value, quoted like an entity tag (RFC 6638 §8.3)."""
    return f'"{secrets.token_hex(8)}"'


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where a calendar user address leads: ``local`` (an account here),
    ``remote`` (a domain we do not host) or ``unknown``."""

    kind: str
    address: str
    account: Account | None = None


async def resolve(conn: asyncpg.Connection, address: str) -> Recipient:
    email = email_of(address)
    if "@" not in email:
        return Recipient("unknown", email)
    found = await delivery_repo.resolve_address(conn, email)
    if found.kind == "foreign":
        return Recipient("remote", email)
    if found.kind in ("account", "alias") and found.enabled and found.account_ids:
        acct = await accounts_repo.get_by_id(conn, found.account_ids[0])
        return Recipient("local", email, acct)
    return Recipient("unknown", email)  # unknown, disabled, or a group address


async def resolve_all(conn: asyncpg.Connection, addresses: Sequence[str]) -> list[Recipient]:
    """`resolve` for many addresses in two statements (a meeting's attendees)."""
    emails = [email_of(a) for a in addresses]
    found = await batch_repo.accounts_by_address(conn, [e for e in emails if "@" in e])
    out = []
    for email in emails:
        hit = found.get(email)
        out.append(Recipient(hit.kind, email, hit.account) if hit is not None
                   else Recipient("unknown", email))
    return out


def _own(account: Account) -> list[str]:
    return [account.address.lower(), *(a.lower() for a in account.aliases)]


def _uid(ics: bytes) -> str:
    cal = load_calendar(ics)
    for comp in cal.subcomponents:
        if "UID" in comp:
            return str(comp["UID"])
    raise ItipError("no UID")


def _b(text: str | bytes) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else text


async def _free_href(conn: asyncpg.Connection, cal: cal_repo.Calendar, uid: str) -> str:
    href = f"{uid}.ics" if _SAFE_HREF.match(uid) else f"{uuid.uuid4().hex}.ics"
    if await cal_repo.find_object(conn, cal, href) is not None:
        href = f"{uuid.uuid4().hex}.ics"
    return href


def _message_key(ics: bytes | str) -> tuple[str, str, frozenset[str]] | None:
    """(METHOD, sender, instances) of a scheduling message: the sender is the
    organizer, or for a REPLY its attendee; instances are RECURRENCE-IDs ("" for
    the master). None when it cannot be told (then it is never superseded)."""
    try:
        cal = load_calendar(_b(ics))
    except InvalidCalendarData:
        return None
    method = str(cal.get("METHOD", "")).upper()
    comps = [c for c in cal.subcomponents if c.name in schedplan.OBJECT_TYPES]
    if not comps:
        return None
    if method == "REPLY":
        senders = {email_of(a) for c in comps for a in schedplan.attendees_of(c)[:1]}
    else:
        org = schedplan.organizer_of(cal)
        senders = {email_of(org)} if org is not None else set()
    if len(senders) != 1:
        return None
    rids = frozenset(_b(c["RECURRENCE-ID"].to_ical()).decode() if "RECURRENCE-ID" in c else ""
                     for c in comps)
    return (method, senders.pop(), rids)


def _supersedes(new: tuple[str, str, frozenset[str]] | None,
                old: tuple[str, str, frozenset[str]] | None) -> bool:
    """RFC 5546 §2.1.5: a newer message of the same METHOD from the same sender
    covering at least the same instances makes the older one obsolete."""
    return (new is not None and old is not None and new[:2] == old[:2]
            and old[2] <= new[2])


async def _to_inbox(conn: asyncpg.Connection, account: Account, message: bytes,
                    index: cal_repo.ObjectIndex | None = None) -> None:
    """RFC 6638 §4: the scheduling message itself, METHOD kept, in the inbox.

    Every message is a resource of its own (RFC 6638 §4.1 allows several per
    UID): the REPLYs of each attendee, a REQUEST and its CANCEL stay side by
    side for the client to show. Only a message superseded by a newer one of
    the same METHOD from the same sender for (at least) the same instances is
    replaced, which bounds the inbox of a user whose clients never empty it.
    ``index`` is the message's (the calendar copy's, when there is one).
    """
    inbox = await cal_repo.special_collection(conn, cal_repo.account_owner(account),
                                              "schedule-inbox")
    if index is not None and index.floating_tz not in (None, caltz.calendar_zone(inbox).key):
        index = None
    if index is None:
        index = objects.index_of(objects.parse(message, ("VEVENT", "VTODO", "VJOURNAL"),
                                               caltz.calendar_zone(inbox)))
    href = f"{uuid.uuid4().hex}.ics"
    older = await cal_repo.find_all_by_uid(conn, inbox, index.uid)
    if older:
        key = _message_key(message)
        stale = [o for o in older if _supersedes(key, _message_key(o.ics))]
        if stale:
            href = stale[-1].href  # the newest keeps its href; older ones go
            for obj in stale[:-1]:
                await cal_repo.delete_object(conn, inbox, obj.href)
    await cal_repo.put_object(conn, inbox, href, index, message)


async def _copy_of(conn: asyncpg.Connection, account: Account,
                   uid: str) -> tuple[cal_repo.Calendar, cal_repo.StoredObject] | None:
    found = await cal_repo.find_uid(conn, cal_repo.account_owner(account), uid)
    return found[0] if found else None


async def scheduling_role(conn: asyncpg.Connection, owner: Any, ics: bytes | str) -> str:
    """RFC 6638 §3.1: is this object of ``owner`` an ``organizer`` or ``attendee``
    scheduling object resource, or ``none``? (Unit schedules never schedule.)"""
    data = _b(ics)
    if owner.kind != "account" or b"ORGANIZER" not in data.upper():
        return "none"
    try:
        cal = load_calendar(data)
    except InvalidCalendarData:
        return "none"
    org = schedplan.organizer_of(cal)
    if org is None:
        return "none"
    own = _own(await accounts_repo.get_by_id(conn, owner.id))
    if email_of(org) in own:
        return "organizer"
    if any(email_of(a) in own for c in cal.subcomponents if c.name in schedplan.OBJECT_TYPES
           for a in schedplan.attendees_of(c)):
        return "attendee"
    return "none"


async def lock_for_attendee_write(conn: asyncpg.Connection, owner: Any,
                                  organizer: str) -> bool:
    """Before an owner's PUT of an object someone else organizes reads what is
    stored: take the scheduling locks of the owner and the organizer (in id
    order, as every scheduling operation does), so an organizer's update
    running at the same time is wholly before or wholly after this write.
    Nothing for the owner's own events (their hook locks all it touches).
    True when someone else (here or elsewhere) organizes it."""
    if owner.kind != "account":
        return False
    rcpt = await resolve(conn, organizer)
    if rcpt.account is not None and rcpt.account.id == owner.id:
        return False
    await sched_repo.lock_accounts(conn, [owner.id, *([rcpt.account.id] if rcpt.account else [])])
    return True


# ATTENDEE property values in unfolded iCalendar text (a quoted parameter may hold ":").
_ATTENDEE_LINE = re.compile(rb'^ATTENDEE(?:"[^"]*"|[^":\r\n])*:([^\r\n]*)', re.M | re.I)


def attendee_addresses(ics: bytes | str) -> list[str]:
    """Every ATTENDEE address of an object (lower case, no ``mailto:``), read
    from the text without parsing it (for locking: a miss only costs order)."""
    data = _b(ics).replace(b"\r\n ", b"").replace(b"\r\n\t", b"")
    return sorted({email_of(m.decode("utf-8", "replace")) for m in _ATTENDEE_LINE.findall(data)})


async def lock_for_organizer_write(conn: asyncpg.Connection, owner: Any,
                                   bodies: Sequence[bytes | str]) -> None:
    """Before an organizer's PUT reads its stored copy: take the scheduling
    locks of the owner and of every attendee in ``bodies`` (the new body and
    the stored one) in ascending id order, as the hook will. A REPLY merges
    into the organizer's copy only under the organizer's lock, so it is
    wholly before this read (and seen by it) or after this write (and merged
    into the new version): the organizer's client never overwrites it."""
    if owner.kind != "account":
        return
    addresses = sorted({a for body in bodies for a in attendee_addresses(body)})
    await sched_repo.lock_accounts_by_address(conn, owner.id, addresses)


# --- delivering to one internal calendar user --------------------------------------


async def account_busy(conn: asyncpg.Connection, account: Account, start: datetime,
                       end: datetime, mask_uid: str | None = None) -> list[BusyPeriod]:
    """Busy time of one account over [start, end) in all its calendars, each
    object's floating times read in its calendar's zone (RFC 4791 §9.9)."""
    owner = cal_repo.account_owner(account)
    objs = await cal_repo.busy_objects(conn, owner, start, end)
    if not objs:
        return []
    zones = {c.id: caltz.calendar_zone(c).tz
             for c in await cal_repo.list_calendars(conn, owner, ("calendar",))}
    default = caltz.default_zone().tz
    found: list[BusyPeriod] = []
    for obj in objs:
        if mask_uid is None or obj.uid != mask_uid:
            found.extend(busy_periods(obj.ics, start, end, zones.get(obj.calendar_id, default)))
    return found


async def _room_busy(conn: asyncpg.Connection, room: Account, ics: bytes,
                     uid: str, tz: tzinfo) -> list[BusyPeriod]:
    window = schedplan.booking_window(ics, tz)
    if window is None:
        return []
    return await account_busy(conn, room, window[0], window[1], mask_uid=uid)


async def _deliver_request(conn: asyncpg.Connection, services: Any, account: Account,
                           msg: Outgoing, shared: cal_repo.ObjectIndex | None = None,
                           ) -> bytes | None:
    """REQUEST to a local attendee: inbox, calendar copy; a room answers (the REPLY).

    ``shared`` is the index of the organizer's object: a first invitation with
    every component has the same one, and is stored without parsing it again.
    """
    uid = msg.uid or _uid(msg.ics)
    bookable = account.kind in BOOKABLE
    if bookable:
        await sched_repo.lock_bookings(conn, account.id)
    existing = await _copy_of(conn, account, uid)
    # A first invitation is the REQUEST without METHOD, which parsing drops
    # (one parse per attendee: this is the cost of a meeting with many).
    copy = (schedplan.attendee_copy(msg.ics, _b(existing[1].ics)) if existing is not None
            else msg.ics)
    reply = None
    if bookable:
        # the booking's floating times in the room's calendar zone (RFC 4791 §9.9)
        room_cal = (existing[0] if existing is not None else
                    await cal_repo.default_calendar(conn, cal_repo.account_owner(account)))
        tz = caltz.calendar_zone(room_cal).tz
        busy = await _room_busy(conn, account, copy, uid, tz)
        answer = "DECLINED" if schedplan.booking_conflicts(copy, busy, tz) else "ACCEPTED"
        copy = schedplan.set_partstat(copy, account.address, answer)
        reply = reply_from(copy, msg.address or account.address, now=services.now)
        if answer == "DECLINED":
            if existing is not None:  # a moved booking that no longer fits
                await objects.remove_object(conn, existing[0], existing[1].href)
            return reply
    if existing is not None:
        cal, href = existing[0], existing[1].href
    else:
        cal = await cal_repo.default_calendar(conn, cal_repo.account_owner(account))
        href = await _free_href(conn, cal, uid)
    if (shared is not None and existing is None and not bookable and msg.whole
            and shared.component in cal.components and _METHOD_LINE in copy
            and shared.floating_tz in (None, caltz.calendar_zone(cal).key)):
        # RFC 4791 §4.1: the stored copy is the REQUEST without its METHOD line.
        index, data = shared, copy.replace(_METHOD_LINE, b"\r\n", 1)
    else:
        parsed = objects.parse_for(copy, cal)
        index, data = objects.index_of(parsed), parsed.data
    if not bookable:
        await _to_inbox(conn, account, msg.ics, index)
    await cal_repo.put_object(conn, cal, href, index, data, new_schedule_tag())
    return reply


async def _deliver_cancel(conn: asyncpg.Connection, account: Account, msg: Outgoing) -> None:
    uid = msg.uid or _uid(msg.ics)
    existing = await _copy_of(conn, account, uid)
    if account.kind in BOOKABLE:
        await sched_repo.lock_bookings(conn, account.id)
        if existing is not None:  # free the slot
            await objects.remove_object(conn, existing[0], existing[1].href)
        return
    await _to_inbox(conn, account, msg.ics)
    if existing is not None:
        cancelled = schedplan.apply_cancel(_b(existing[1].ics), msg.ics)
        await objects.write_object(conn, existing[0], existing[1].href, cancelled,
                                   schedule_tag=new_schedule_tag())


async def receive_reply(conn: asyncpg.Connection, services: Any, organizer_id: int,
                        reply: bytes, *, via: str = "caldav") -> bool:
    """Merge a REPLY into the organizer's copy (RFC 6638 §3.2.2, RFC 6047 §3).

    The organizer's Schedule-Tag is kept (RFC 6638 §3.2.10: an attendee's
    reply is not a change by the organizer). False when the organizer has no
    such event or the reply does not apply (stale, not an attendee).
    """
    try:
        uid = _uid(reply)
    except (ItipError, InvalidCalendarData):
        return False
    # The organizer's lock before its copy is read: an organizer's update
    # running meanwhile (which holds it from before its own read) is wholly
    # before this merge, never overwritten by it nor overwriting it. Taken
    # again when the caller holds it already (a CalDAV attendee's PUT).
    await sched_repo.lock_accounts(conn, [organizer_id])
    organizer = await accounts_repo.get_by_id(conn, organizer_id)
    found = await _copy_of(conn, organizer, uid)
    if found is None:
        return False
    cal, obj = found
    # The organizer's copy must name this account as ORGANIZER.
    org = schedplan.organizer_of(load_calendar(obj.ics))
    if org is None or email_of(org) not in _own(organizer):
        return False
    try:
        merged = schedplan.apply_reply(_b(obj.ics), reply, now=services.now)
    except (ItipError, InvalidCalendarData) as exc:
        log.info("REPLY for %s not applied: %s", uid, exc)
        return False
    await objects.write_object(conn, cal, obj.href, merged, schedule_tag=obj.schedule_tag)
    await _to_inbox(conn, organizer, reply)
    who = next((email_of(a) for c in load_calendar(reply).subcomponents
                if c.name in ("VEVENT", "VTODO") for a in schedplan.attendees_of(c)), via)
    await audit_repo.record(conn, who, "calendar.reply", organizer.address,
                            {"uid": uid, "via": via})
    return True


# --- the hook -----------------------------------------------------------------------


async def _send(conn: asyncpg.Connection, services: Any, sender: Account,
                messages: Sequence[Outgoing], sent_by: Account | None,
                from_address: str, body: bytes | None = None,
                ) -> tuple[dict[str, str], list[bytes]]:
    """Deliver every message; SCHEDULE-STATUS per recipient and rooms' replies.

    ``body`` is the organizer's object the REQUESTs were built from.
    """
    shared = None
    if body is not None and any(m.whole for m in messages):
        shared = objects.index_of(objects.parse(body, ("VEVENT", "VTODO", "VJOURNAL")))
    statuses: dict[str, str] = {}
    replies: list[bytes] = []
    recipients = await resolve_all(conn, [msg.recipient for msg in messages])
    await sched_repo.lock_accounts(conn, [sender.id, *(r.account.id for r in recipients
                                                      if r.account is not None)])
    # REQUESTs to people are delivered all at once (a fixed number of
    # statements for a meeting of any size, congvu.calendar.schedbatch).
    people = [(msg, rcpt.account) for msg, rcpt in zip(messages, recipients)
              if msg.method == "REQUEST" and msg.uid and rcpt.kind == "local"
              and rcpt.account is not None and rcpt.account.kind not in BOOKABLE]
    batched: set[int] = set()
    if people and len({a.id for _, a in people}) == len(people):
        await schedbatch.deliver_requests(conn, people, shared, new_schedule_tag,
                                          _message_key, _supersedes)
        batched = {id(msg) for msg, _ in people}
    for msg, rcpt in zip(messages, recipients):
        if id(msg) in batched:
            statuses[msg.recipient] = DELIVERED
            continue
        if rcpt.kind == "remote":
            await imip.queue_imip(conn, services, account_id=sender.id,
                                  from_address=from_address, from_name=sender.display_name,
                                  message=msg, sent_by=sent_by.address if sent_by else None)
            statuses[msg.recipient] = SENT
        elif rcpt.kind == "local" and rcpt.account is not None:
            acct = rcpt.account
            if msg.method == "REQUEST":
                answer = await _deliver_request(conn, services, acct, msg, shared)
                if answer is not None:  # a room answered: its REPLY sets 2.0
                    replies.append(answer)
                    continue
            elif msg.method == "CANCEL":
                await _deliver_cancel(conn, acct, msg)
            elif msg.method == "REPLY" and not await receive_reply(conn, services, acct.id,
                                                                   msg.ics):
                statuses[msg.recipient] = FAILED
                continue
            statuses[msg.recipient] = DELIVERED
        else:
            statuses[msg.recipient] = UNKNOWN
    return statuses, replies


@register_object_hook
@scheduling_only
async def schedule_hook(tx: asyncpg.Connection, services: Any, actor: Account, owner: Any,
                        calendar: Any, href: str, old_ics: bytes | None,
                        new_ics: bytes | None) -> HookResult | None:
    """Implicit scheduling for a PUT/DELETE in an account's calendar (RFC 6638 §3.2)."""
    if owner.kind != "account" or calendar.kind != "calendar":
        return None
    if not any(b"ORGANIZER" in x.upper() for x in (old_ics, new_ics) if x is not None):
        return None  # not a scheduling object resource (RFC 6638 §3.1): the common case
    account = actor if actor.id == owner.id else await accounts_repo.get_by_id(tx, owner.id)
    delegate = actor if actor.id != account.id else None
    try:
        plan = schedplan.plan(old_ics, new_ics, _own(account),
                              sent_by=delegate.address if delegate else None, now=services.now)
    except (ItipError, InvalidCalendarData) as exc:
        log.info("no implicit scheduling for %s: %s", href, exc)
        return None
    if plan.role == "none":
        return None
    body = plan.stored or new_ics
    if plan.role == "organizer":
        statuses, replies = await _send(tx, services, account, plan.messages, delegate,
                                        account.address, body)
        if delegate is not None:
            await audit_repo.record(tx, delegate.address, "calendar.schedule-on-behalf",
                                    account.address, {"href": href, "messages": len(plan.messages)})
        if body is None:
            return None
        for reply in replies:  # rooms answered at once
            body = schedplan.apply_reply(body, reply, now=services.now)
        body = schedplan.set_schedule_status(body, statuses)
        # RFC 6638 §3.2.10: every change by the organizer gives a new tag.
        return HookResult(body, new_schedule_tag())
    # Attendee: the REPLY goes to the organizer; the attendee's tag stays.
    # RFC 6638 §8.1: with Schedule-Reply: F the change is stored and no REPLY
    # is sent (the client told the organizer itself, or wants silence).
    if schedule_reply():
        await _send(tx, services, account, plan.messages, None, account.address)
    if body is None:
        return None
    stored = await cal_repo.find_object(tx, calendar, href)
    tag = stored.schedule_tag if stored is not None and stored.schedule_tag else None
    return HookResult(body if plan.stored else None, tag or new_schedule_tag())


def _advertise() -> None:
    """RFC 6638 §2: OPTIONS says the server schedules. ``calendar-schedule`` is
    the older draft's token, which Thunderbird still looks for."""
    from congvu.calendar import app

    for token in ("calendar-auto-schedule", "calendar-schedule"):
        if token not in app.DAV_FEATURES:
            app.DAV_FEATURES.append(token)


imip.register()
_advertise()
# What _to_inbox stores expires with every server (congvu serve), one node at a time.
from congvu.calendar import inbox_expiry as _inbox_expiry  # noqa: E402,F401
from congvu.calendar import imip_inbound as _imip_inbound  # noqa: E402

_imip_inbound.register()  # iMIP REQUEST/CANCEL from organizers elsewhere
