"""Delivering one organizer's REQUEST to many internal attendees at once.

`congvu.calendar.scheduling` delivers a REQUEST to a person attendee by
putting the message in their schedule inbox and creating or updating their
copy in their calendar (RFC 6638 §3.2.1, §4). For a meeting of hundreds done
one attendee at a time that is about ten statements and a few iCalendar
parses of the whole meeting each (every attendee's copy lists every
attendee): seconds. `deliver_requests` does the same for all of them with a
fixed number of statements (`congvu.store.calendar_batch`) and, in the
common case, without parsing anything per attendee:

- a first invitation, or an update of a copy that holds nothing of the
  attendee's own (no VALARM; no answer that the merge would keep, RFC 6638
  §3.2.2: an unchanged SEQUENCE and a PARTSTAT other than NEEDS-ACTION), is
  the REQUEST without its METHOD line, with the organizer's index;
- any other copy goes through `schedplan.attendee_copy` as before.

Rooms and resources (who answer under a booking lock), CANCELs and REPLYs stay
with the one-at-a-time path. The caller holds the scheduling locks of every
account (``congvu.store.scheduling.lock_accounts``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from congvu.calendar import caltz, objects, schedplan
from congvu.calendar.schedplan import Outgoing
from congvu.store import calendar_batch as batch_repo
from congvu.store import calendars as cal_repo
from congvu.store.accounts import Account
from congvu.store.calendar_batch import PutItem
from congvu.store.calendars import Calendar, ObjectIndex, StoredObject

__all__ = ["deliver_requests", "plain_update", "sequences"]

_METHOD_LINE = b"\r\nMETHOD:REQUEST\r\n"
_SAFE_HREF = re.compile(r"^[A-Za-z0-9@._~-]{1,150}$")
_FOLD = re.compile(rb"\r?\n[ \t]")
_COMPONENT = re.compile(rb"^BEGIN:(VEVENT|VTODO|VJOURNAL)\s*$", re.I | re.M)
_SEQUENCE = re.compile(rb"^SEQUENCE(?:;[^:\r\n]*)?:\s*(\d+)\s*$", re.I | re.M)
_PARTSTAT = re.compile(rb";PARTSTAT=\"?([^;:\",\r\n]*)", re.I)
_ATTENDEE = re.compile(rb"^ATTENDEE[;:].*$", re.I | re.M)


def sequences(ics: bytes) -> list[int]:
    """The SEQUENCE of every component that has one, read as leniently as
    icalendar does (folded lines, parameters, any case, blanks)."""
    return [int(n) for n in _SEQUENCE.findall(_FOLD.sub(b"", ics))]


def _facts(ics: bytes) -> tuple[int, bytes | None, list[bytes]]:
    """(number of components, their SEQUENCE, every ATTENDEE's PARTSTAT) from the text."""
    text = _FOLD.sub(b"", ics)
    seqs = _SEQUENCE.findall(text)
    partstats = [p.upper() for line in _ATTENDEE.findall(text) for p in _PARTSTAT.findall(line)]
    return len(_COMPONENT.findall(text)), (seqs[0] if len(seqs) == 1 else None), partstats


def plain_update(existing: bytes, request: bytes) -> bool:
    """Would `schedplan.attendee_copy(request, existing)` be the request itself?

    True when the attendee's copy has no alarm to carry over and no answer to
    keep: one component on each side, and either a new SEQUENCE (answers are
    asked again, RFC 5546 §2.1.4) or no PARTSTAT but NEEDS-ACTION in the copy.
    Read from the text without parsing; anything unclear says False.
    """
    if b"VALARM" in existing.upper() or b"RECURRENCE-ID" in existing.upper():
        return False
    n_old, seq_old, answers = _facts(existing)
    n_new, seq_new, _ = _facts(request)
    if n_old != 1 or n_new != 1 or b"RECURRENCE-ID" in request.upper():
        return False
    if all(a == b"NEEDS-ACTION" for a in answers):
        return True
    return seq_old is not None and seq_new is not None and int(seq_old) != int(seq_new)


def _b(text: str | bytes) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else text


async def deliver_requests(
    conn: asyncpg.Connection,
    pending: Sequence[tuple[Outgoing, Account]],
    shared: ObjectIndex | None,
    new_tag: Callable[[], str],
    message_key: Callable[[bytes | str], Any],
    supersedes: Callable[[Any, Any], bool],
) -> None:
    """Inbox message and calendar copy for every (REQUEST, person account) pair.

    ``shared`` is the organizer's object's index (used for copies that are the
    whole REQUEST); ``new_tag`` makes a Schedule-Tag per copy. Older inbox
    messages that the new one supersedes (``supersedes(key of new, key of
    old)``, keys from ``message_key``) go, the newest of them giving its href,
    as in ``congvu.calendar.scheduling._to_inbox``.
    """
    if not pending:
        return
    ids = [acct.id for _, acct in pending]
    if len({m.uid for m, _ in pending}) != 1 or len(set(ids)) != len(ids) or not pending[0][0].uid:
        raise ValueError("deliver_requests takes one UID and one message per account")
    uid = pending[0][0].uid
    cals = await batch_repo.collections_of(conn, ids)
    defaults = _defaults(cals)
    if any((i, k) not in defaults for i in ids for k in ("calendar", "schedule-inbox")):
        await batch_repo.ensure_defaults(conn, ids, "calendar")
        await batch_repo.ensure_defaults(conn, ids, "schedule-inbox")
        cals = await batch_repo.collections_of(conn, ids)
        defaults = _defaults(cals)
    by_id = {(c.owner_id, c.id): c for c in cals}
    copies: dict[int, tuple[Calendar, StoredObject]] = {}
    inbox_msgs: dict[int, list[StoredObject]] = {}
    for obj in sorted(await batch_repo.objects_with_uid(conn, ids, uid),
                      key=lambda o: (o.owner_id, o.calendar_id, o.modseq)):
        cal = by_id.get((obj.owner_id, obj.calendar_id))
        if cal is None:
            continue
        if cal.kind == "schedule-inbox":
            inbox_msgs.setdefault(obj.owner_id, []).append(obj)
            continue
        best = copies.get(obj.owner_id)
        # the copy congvu.store.calendars.find_uid would pick: default calendar first
        if best is None or (cal.is_default, -cal.id) > (best[0].is_default, -best[0].id):
            copies[obj.owner_id] = (cal, obj)
    # A new copy goes to the default calendar at <uid>.ics unless that is taken.
    targets: dict[int, Calendar] = {}
    for _, acct in pending:
        if acct.id in copies:
            continue
        cal = defaults.get((acct.id, "calendar"))
        if cal is None:  # a user collection holds the default's name: make it one by one
            cal = await cal_repo.default_calendar(conn, cal_repo.account_owner(acct))
        targets[acct.id] = cal
    plain_href = f"{uid}.ics" if _SAFE_HREF.match(uid) else None
    taken = (await batch_repo.taken_hrefs(conn, list(targets.values()), plain_href)
             if plain_href and targets else set())
    keys: dict[str, Any] = {}

    def key_of(text: bytes | str) -> Any:
        # messages are mostly the same bytes in every inbox: one parse per text
        k = text if isinstance(text, str) else text.decode("utf-8", "replace")
        if k not in keys:
            keys[k] = message_key(text)
        return keys[k]

    plains: dict[tuple[str, bytes], bool] = {}  # copies are mostly the same text too
    puts: list[PutItem] = []
    for msg, acct in pending:
        found = copies.get(acct.id)
        if found is not None:
            cal, href = found[0], found[1].href
            pair = (found[1].ics, msg.ics)
            plain = plains.get(pair)
            if plain is None:
                plain = plains[pair] = plain_update(_b(found[1].ics), msg.ics)
            copy = msg.ics if plain else schedplan.attendee_copy(msg.ics, _b(found[1].ics))
        else:
            cal = targets[acct.id]
            href = (plain_href if plain_href and (cal.owner_id, cal.id) not in taken
                    else f"{uuid.uuid4().hex}.ics")
            plain, copy = True, msg.ics
        if (plain and shared is not None and msg.whole and shared.component in cal.components
                and _METHOD_LINE in copy
                and shared.floating_tz in (None, caltz.calendar_zone(cal).key)):
            # RFC 4791 §4.1: the stored copy is the REQUEST without its METHOD line.
            index, data = shared, copy.replace(_METHOD_LINE, b"\r\n", 1)
        else:
            parsed = objects.parse_for(copy, cal)
            index, data = objects.index_of(parsed), parsed.data
        inbox = defaults.get((acct.id, "schedule-inbox"))
        if inbox is None:
            inbox = await cal_repo.special_collection(conn, cal_repo.account_owner(acct),
                                                      "schedule-inbox")
        inbox_index: ObjectIndex | None = index
        if index.floating_tz not in (None, caltz.calendar_zone(inbox).key):
            inbox_index = None
        if inbox_index is None:
            inbox_index = objects.index_of(objects.parse(
                msg.ics, ("VEVENT", "VTODO", "VJOURNAL"), caltz.calendar_zone(inbox)))
        inbox_href = f"{uuid.uuid4().hex}.ics"
        older = inbox_msgs.get(acct.id, [])  # in change order
        if older:
            mine = key_of(msg.ics)
            stale = [o for o in older if supersedes(mine, key_of(o.ics))]
            if stale:
                inbox_href = stale[-1].href  # the newest keeps its href; older ones go
                for obj in stale[:-1]:
                    await cal_repo.delete_object(conn, inbox, obj.href)
        puts.append(PutItem(inbox, inbox_href, inbox_index, msg.ics))
        puts.append(PutItem(cal, href, index, data, new_tag()))
    await batch_repo.put_objects(conn, puts)


def _defaults(cals: Sequence[Calendar]) -> dict[tuple[int, str], Calendar]:
    """(account id, kind) → the default collection of that kind."""
    return {(c.owner_id, c.kind): c for c in cals if c.is_default}
