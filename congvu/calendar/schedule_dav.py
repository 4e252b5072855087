"""The scheduling parts of the DAV surface (RFC 6638): outbox POST and properties.

- ``POST`` to a schedule outbox with a ``VFREEBUSY`` ``METHOD:REQUEST``
  (RFC 6638 §5): busy time of every internal attendee across the
  organisation, as ``CALDAV:schedule-response``. Only busy periods leave the
  server — never a title, location or attendee — so anyone may look up
  anyone's free/busy, private events included (as busy). The requester must
  own the outbox or hold ``calendar-write`` on its owner (a delegate
  planning for a leader).
- :func:`principal_properties` / :func:`collection_properties`: the
  ``schedule-inbox-URL``, ``schedule-outbox-URL`` and
  ``schedule-default-calendar-URL`` properties and the resourcetypes of the
  inbox and outbox (RFC 6638 §2.1-2.3, §9.2).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from icalendar import Calendar
from starlette.requests import Request
from starlette.responses import Response

from congvu.calendar import caltz, reqdb
from congvu.calendar.davxml import DavError, PropValue, caldav, dav, el
from congvu.calendar.freebusy import BusyPeriod, vfreebusy_response
from congvu.calendar.ical import InvalidCalendarData, load_calendar
from congvu.calendar.icaltime import prop_dt, to_utc
from congvu.calendar.schedplan import email_of
from congvu.calendar.scheduling import account_busy, resolve
from congvu.store import accounts as accounts_repo
from congvu.store import calendars as cal_repo
from congvu.store.accounts import Account
from congvu.store.errors import NotFound

__all__ = ["MAX_FREEBUSY_DAYS", "MAX_RECIPIENTS", "check_schedule_tag", "collection_properties",
           "freebusy_for", "outbox_post", "principal_properties"]

PREFIX = "/dav"
# Bounds on one free/busy lookup (each recipient costs one indexed query).
MAX_RECIPIENTS = 200
MAX_FREEBUSY_DAYS = 400
Want = Callable[[str], bool]


def _floating(services: Any) -> tzinfo:
    """Floating DTSTART/DTEND of a free/busy request: the organisation's zone."""
    return caltz.default_zone().tz


def inbox_path(account: Account) -> str:
    return f"{PREFIX}/calendars/users/{account.address}/inbox/"


def outbox_path(account: Account) -> str:
    return f"{PREFIX}/calendars/users/{account.address}/outbox/"


def default_calendar_path(account: Account, cal: cal_repo.Calendar) -> str:
    return f"{PREFIX}/calendars/users/{account.address}/{cal.name}/"


async def principal_properties(conn: Any, account: Account, want: Want,
                               out: dict[str, PropValue]) -> None:
    """RFC 6638 §2.2-2.3 on an account principal (creates the collections on first use)."""
    owner = cal_repo.account_owner(account)
    if want(caldav("schedule-inbox-URL")):
        await cal_repo.special_collection(conn, owner, "schedule-inbox")
        out[caldav("schedule-inbox-URL")] = el(dav("href"), inbox_path(account))
    if want(caldav("schedule-outbox-URL")):
        await cal_repo.special_collection(conn, owner, "schedule-outbox")
        out[caldav("schedule-outbox-URL")] = el(dav("href"), outbox_path(account))
    if want(caldav("schedule-default-calendar-URL")):
        cal = await cal_repo.default_calendar(conn, owner)
        out[caldav("schedule-default-calendar-URL")] = el(
            dav("href"), default_calendar_path(account, cal))


async def collection_properties(conn: Any, account: Account | None, cal: cal_repo.Calendar,
                                want: Want, out: dict[str, PropValue]) -> None:
    """Resourcetype of a schedule inbox/outbox (RFC 6638 §2.1-2.2), the inbox's
    default calendar (§9.2), and calendar-free-busy-set's successor (§9.1)."""
    if cal.kind == "calendar":
        return
    if want(dav("resourcetype")):
        out[dav("resourcetype")] = [el(dav("collection")), el(caldav(cal.kind))]
    if cal.kind == "schedule-inbox" and account is not None and want(
            caldav("schedule-default-calendar-URL")):
        default = await cal_repo.default_calendar(conn, cal_repo.account_owner(account))
        out[caldav("schedule-default-calendar-URL")] = el(
            dav("href"), default_calendar_path(account, default))


def check_schedule_tag(headers: Any, current: cal_repo.StoredObject | None) -> None:
    """RFC 6638 §8.3 If-Schedule-Tag-Match: 412 unless the object's tag matches.

    An attendee's client sends the tag it last saw; if the organizer's update
    arrived in between (a new tag), its PUT would overwrite it, so it fails
    and the client refetches. A merged REPLY does not change the tag, so the
    organizer's own edits are not refused because of attendees' answers.
    """
    wanted = headers.get("if-schedule-tag-match")
    if wanted is None:
        return
    have = current.schedule_tag if current is not None else None
    if have is None or wanted.strip().strip('"') != have.strip('"'):
        raise DavError(412, None, "If-Schedule-Tag-Match failed")


# --- free/busy ---------------------------------------------------------------------


async def freebusy_for(conn: Any, account: Account, start: datetime, end: datetime, *,
                       mask_uid: str | None = None) -> list[BusyPeriod]:
    """Busy time of one account over [start, end), all its calendars (each
    calendar's floating times in its own zone, RFC 4791 §9.9)."""
    return await account_busy(conn, account, start, end, mask_uid)


def _request(body: bytes) -> tuple[Calendar, Any]:
    try:
        cal = load_calendar(body)
    except InvalidCalendarData as exc:
        raise DavError(400, caldav("valid-calendar-data"), exc.message) from None
    fbs = [c for c in cal.subcomponents if c.name == "VFREEBUSY"]
    if str(cal.get("METHOD", "")).upper() != "REQUEST" or len(fbs) != 1:
        # RFC 6638 §5: the outbox takes free/busy requests; everything else is
        # scheduled implicitly by PUT.
        raise DavError(400, caldav("valid-scheduling-message"),
                       "only a VFREEBUSY REQUEST can be POSTed to the outbox")
    return cal, fbs[0]


def _response(recipient: str, status: str, data: bytes | None) -> ET.Element:
    resp = el(caldav("response"), None,
              el(caldav("recipient"), None, el(dav("href"), recipient)),
              el(caldav("request-status"), status))
    if data is not None:
        resp.append(el(caldav("calendar-data"), data.decode("utf-8")))
    return resp


async def _outbox_owner(services: Any, conn: Any, actor: Account, path: str) -> Account:
    segs = [s for s in path[len(PREFIX):].split("/") if s]
    if len(segs) != 4 or segs[:2] != ["calendars", "users"] or segs[3] != "outbox":
        raise DavError(405, None, "POST is only allowed on a schedule outbox")
    try:
        owner = await accounts_repo.get(conn, segs[2].lower())
    except NotFound:
        raise DavError(404) from None
    if owner.id != actor.id:
        scopes = await services.authz.scopes(actor.id, owner.id, conn)
        if "calendar-write" not in scopes or not actor.enabled:
            raise DavError(403, dav("need-privileges"), "not your outbox")
    return owner


async def outbox_post(services: Any, request: Request, actor: Account, path: str) -> Response:
    """RFC 6638 §5: free/busy lookup through the outbox."""
    body = await request.body()
    async with reqdb.connection(services, request) as conn:
        owner = await _outbox_owner(services, conn, actor, path)
        _, fb = _request(body)
        organizer = fb.get("ORGANIZER")
        own = {owner.address.lower(), *(a.lower() for a in owner.aliases)}
        if organizer is None or email_of(organizer) not in own:
            raise DavError(403, caldav("organizer-allowed"),
                           "ORGANIZER must be the outbox owner")
        start, end = prop_dt(fb, "DTSTART"), prop_dt(fb, "DTEND")
        if start is None or end is None:
            raise DavError(400, caldav("valid-scheduling-message"), "DTSTART and DTEND needed")
        floating = _floating(services)
        lo, hi = to_utc(start, floating), to_utc(end, floating)
        if hi <= lo or hi - lo > timedelta(days=MAX_FREEBUSY_DAYS):
            raise DavError(400, caldav("valid-scheduling-message"), "bad time range")
        attendees = fb.get("ATTENDEE")
        attendees = list(attendees) if isinstance(attendees, list) else (
            [attendees] if attendees is not None else [])
        if not attendees or len(attendees) > MAX_RECIPIENTS:
            raise DavError(400, caldav("valid-scheduling-message"), "1 to 200 ATTENDEEs")
        uid = str(fb.get("UID", "")) or None
        mask = fb.get("X-CALENDARSERVER-MASK-UID")  # Apple: the event being edited
        root = el(caldav("schedule-response"))
        for a in attendees:
            rcpt = await resolve(conn, str(a))
            if rcpt.kind == "local" and rcpt.account is not None:
                periods = await freebusy_for(conn, rcpt.account, lo, hi,
                                             mask_uid=str(mask) if mask else None)
                data = vfreebusy_response(periods, lo, hi, dtstamp=services.now(),
                                          organizer=str(organizer), attendee=str(a), uid=uid,
                                          method="REPLY")
                root.append(_response(str(a), "2.0;Success", data))
            elif rcpt.kind == "remote":
                root.append(_response(str(a), "5.3;No scheduling support for user", None))
            else:
                root.append(_response(str(a), "3.7;Invalid calendar user", None))
    return Response(ET.tostring(root, encoding="utf-8", xml_declaration=True), status_code=200,
                    media_type="application/xml; charset=utf-8")
