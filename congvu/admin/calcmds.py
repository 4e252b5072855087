"""``congvu admin schedule publish|feed``: unit work schedules (lịch công tác).

``publish UNIT --scope unit|subtree|organisation`` sets who reads the unit's
work-schedule calendar (default: the city level to the whole organisation,
others to their subtree). ``feed UNIT`` prints the read-only ICS feed URL
(made on first use); ``feed UNIT --revoke`` ends every feed URL of it.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import Settings
from ..directory.authz import PUBLICATION_SCOPES, default_publication
from ..directory.service import Directory
from ..store import calendars as cal_repo

__all__ = ["add_schedule_parsers", "schedule_command"]


def add_schedule_parsers(sub: Any) -> None:
    sched = sub.add_parser("schedule", help="unit work schedules").add_subparsers(
        dest="action", required=True)
    p = sched.add_parser("publish", help="who reads a unit's work schedule")
    p.add_argument("unit")
    p.add_argument("--scope", required=True, choices=PUBLICATION_SCOPES)
    p = sched.add_parser("show", help="a unit's publication scope and feed")
    p.add_argument("unit")
    p = sched.add_parser("feed", help="print (or --revoke) the read-only ICS feed URL")
    p.add_argument("unit")
    p.add_argument("--revoke", action="store_true", help="end every feed URL of the schedule")
    p.add_argument("--base-url", help="public URL of the HTTP listener (default from settings)")


def base_url(settings: Settings) -> str:
    """Where clients reach the HTTP app: the TLS port when there is one."""
    lst, host = settings.listeners, settings.hostname
    if lst.https:
        return f"https://{host}" if lst.https == 443 else f"https://{host}:{lst.https}"
    return f"http://{host}" if lst.http == 80 else f"http://{host}:{lst.http}"


async def schedule_command(args: argparse.Namespace, d: Directory, settings: Settings,
                           actor: str) -> None:
    unit = await d.get_unit(args.unit)
    owner = cal_repo.unit_owner(unit)
    if args.action == "publish":
        async with d.db.transaction() as conn:
            await cal_repo.default_calendar(conn, owner, f"Lịch công tác – {unit.name}")
            await cal_repo.set_publication(conn, unit.id, args.scope, actor)
        await d.record(actor, "schedule.publish", f"unit:{unit.slug}", {"scope": args.scope})
        print(f"work schedule of {unit.slug} published to: {args.scope}")
        return
    async with d.db.transaction() as conn:
        cal = await cal_repo.default_calendar(conn, owner, f"Lịch công tác – {unit.name}")
        scope = await cal_repo.get_publication(conn, unit.id)
        if args.action == "show":
            feed = await cal_repo.active_feed(conn, cal)
        elif args.revoke:
            count = await cal_repo.revoke_feeds(conn, cal)
        else:
            feed = await cal_repo.create_feed(conn, cal, actor)
    if args.action == "show":
        print(f"unit: {unit.slug}\nscope: {scope or default_publication(unit) + ' (default)'}\n"
              f"calendar: /dav/calendars/units/{unit.slug}/{cal.name}/\n"
              f"feed: {'active' if feed else 'none'}")
    elif args.revoke:
        await d.record(actor, "schedule.feed.revoke", f"unit:{unit.slug}", {"revoked": count})
        print(f"revoked {count} feed URL(s) of {unit.slug}")
    else:
        await d.record(actor, "schedule.feed", f"unit:{unit.slug}")
        print(f"{(args.base_url or base_url(settings)).rstrip('/')}/dav/feeds/{feed}.ics")
