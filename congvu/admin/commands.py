"""``congvu admin``: provisioning from the command line.

Works on the same data directory or database URL as the server, also while
it runs. Passwords come from standard input (``--password-stdin``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from datetime import datetime, time, timedelta
from typing import Any
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import Settings
from ..directory.service import BadRows, Directory, NewAccount
from ..store.db import open_database
from ..store.errors import StoreError
from .csvimport import read_accounts_csv
from .mailcmds import SMTP_AREAS, add_smtp_parsers, smtp_command
from .calcmds import add_schedule_parsers, schedule_command
from .mailcmds_imap import add_mail_restore_parser, mail_restore
from .output import print_account, print_table, print_unit_tree, progress_printer


class UsageError(Exception):
    """Bad arguments that argparse could not catch; exit status 2."""


def add_admin_parser(admin: argparse.ArgumentParser) -> None:
    sub = admin.add_subparsers(dest="area", required=True)

    domain = sub.add_parser("domain", help="domains served").add_subparsers(dest="action", required=True)
    p = domain.add_parser("add", help="serve a new domain")
    p.add_argument("name")
    domain.add_parser("list", help="list domains")

    unit = sub.add_parser("unit", help="the unit tree").add_subparsers(dest="action", required=True)
    p = unit.add_parser("add", help="add a unit")
    p.add_argument("slug")
    p.add_argument("--name", required=True, help="display name (Vietnamese)")
    p.add_argument("--parent", help="parent unit slug (none: top level)")
    unit.add_parser("list", help="draw the tree")
    p = unit.add_parser("move", help="move a unit and its subtree")
    p.add_argument("slug")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--parent", help="new parent slug")
    g.add_argument("--top", action="store_true", help="move to the top level")
    p = unit.add_parser("rename", help="change a unit's display name")
    p.add_argument("slug")
    p.add_argument("--name", required=True)

    acc = sub.add_parser("account", help="accounts").add_subparsers(dest="action", required=True)
    p = acc.add_parser("add", help="create an account")
    p.add_argument("address")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--unit", help="unit slug")
    p.add_argument("--title", default="", help="position or title")
    p.add_argument("--kind", default="person", choices=["person", "room", "resource"])
    p.add_argument("--quota", help="e.g. 2G, 500M, none")
    p.add_argument("--role", action="append", default=[],
                   help="admin | unit-admin:UNIT | schedule-manager:UNIT (repeatable)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = acc.add_parser("list", help="list accounts")
    p.add_argument("--unit", help="only this unit (and its sub-units)")
    p.add_argument("--no-subunits", action="store_true")
    p.add_argument("--search", help="name or address, diacritics optional")
    p = acc.add_parser("show", help="show one account")
    p.add_argument("address")
    p = acc.add_parser("passwd", help="set a password")
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    for name in ("disable", "enable", "remove"):
        p = acc.add_parser(name, help=f"{name} an account")
        p.add_argument("address")
    p = acc.add_parser("quota", help="set the mail quota")
    p.add_argument("address")
    p.add_argument("size", help="e.g. 2G, 500M, or none for the default")
    p = acc.add_parser("update", help="change name, title or unit")
    p.add_argument("address")
    p.add_argument("--name")
    p.add_argument("--title")
    p.add_argument("--unit")
    p = acc.add_parser("role", help="grant or take away a role")
    p.add_argument("address")
    p.add_argument("--add", action="append", default=[])
    p.add_argument("--remove", action="append", default=[])

    alias = sub.add_parser("alias", help="aliases").add_subparsers(dest="action", required=True)
    p = alias.add_parser("add", help="add an alias for an account")
    p.add_argument("alias")
    p.add_argument("address")
    p = alias.add_parser("remove")
    p.add_argument("alias")

    grp = sub.add_parser("group", help="distribution groups").add_subparsers(dest="action", required=True)
    p = grp.add_parser("add", help="create a group")
    p.add_argument("address")
    p.add_argument("--name", required=True)
    grp.add_parser("list")
    p = grp.add_parser("members", help="list direct members")
    p.add_argument("address")
    for name in ("add-member", "remove-member"):
        p = grp.add_parser(name, help="MEMBER: an address, unit:SLUG or unit:SLUG+sub")
        p.add_argument("address")
        p.add_argument("member")
    p = grp.add_parser("expand", help="every account the group reaches, once each")
    p.add_argument("address")

    dele = sub.add_parser("delegate", help="delegation grants").add_subparsers(dest="action", required=True)
    p = dele.add_parser("grant", help="let --to act for OWNER")
    p.add_argument("owner")
    p.add_argument("--to", required=True, dest="delegate")
    p.add_argument("--scope", required=True,
                   help="comma-separated: mail-read, mail-manage, mail-send-on-behalf, "
                        "mail-send-as, calendar-read, calendar-write")
    p.add_argument("--from", dest="valid_from", help="first day (YYYY-MM-DD) or date-time")
    p.add_argument("--until", help="last day (YYYY-MM-DD, inclusive) or date-time")
    p = dele.add_parser("revoke")
    p.add_argument("owner")
    p.add_argument("--to", required=True, dest="delegate")
    p = dele.add_parser("list")
    p.add_argument("--owner")
    p.add_argument("--delegate")

    imp = sub.add_parser("import", help="bulk import").add_subparsers(dest="action", required=True)
    p = imp.add_parser("accounts", help="accounts from a CSV file (all or nothing)")
    p.add_argument("csv")

    p = sub.add_parser("audit", help="recent audit log entries")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--actor")
    p.add_argument("--action", dest="audit_action", help="action prefix, e.g. auth or account.")
    p.add_argument("--target")
    p.add_argument("--since", help="YYYY-MM-DD or ISO date-time")
    add_mail_restore_parser(sub)
    add_smtp_parsers(sub)
    add_schedule_parsers(sub)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.I)


def parse_size(text: str) -> int | None:
    if text.strip().lower() in ("none", "default", ""):
        return None
    m = _SIZE.match(text)
    if not m:
        raise UsageError(f"malformed size {text!r} (examples: 500M, 2G, none)")
    factor = 1024 ** " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * factor)


def parse_when(text: str, tz: ZoneInfo, *, end_of_day: bool) -> datetime:
    """A date means local midnight (the next one for an inclusive end)."""
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            if end_of_day:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), tz)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"malformed date {text!r} (use YYYY-MM-DD or an ISO date-time)") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def read_password(args: argparse.Namespace, required: bool) -> str | None:
    if not getattr(args, "password_stdin", False):
        if required:
            raise UsageError("give the password on standard input with --password-stdin")
        return None
    data = sys.stdin.readline()
    password = data[:-1] if data.endswith("\n") else data
    password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise UsageError("no password on standard input")
    return password


def actor_name() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = str(os.getuid())
    return f"cli:{user}"


async def _dispatch(args: argparse.Namespace, d: Directory, settings: Settings) -> int:
    actor = actor_name()
    try:
        tz = ZoneInfo(settings.timezone)
    except ZoneInfoNotFoundError:
        raise UsageError(f"unknown time zone {settings.timezone!r}") from None
    area, action = args.area, str(getattr(args, "action", None) or "")

    if area == "domain":
        if action == "add":
            dom = await d.add_domain(args.name, actor)
            print(f"domain {dom.name} added")
        else:
            for dom in await d.list_domains():
                print(dom.name)
    elif area == "unit":
        if action == "add":
            u = await d.add_unit(args.slug, args.name, args.parent, actor)
            print(f"unit {u.slug} added ({d.level_name(u.depth)})")
        elif action == "list":
            print_unit_tree(await d.list_units(), d.level_name)
        elif action == "move":
            u = await d.move_unit(args.slug, None if args.top else args.parent, actor)
            print(f"unit {u.slug} moved ({d.level_name(u.depth)})")
        elif action == "rename":
            u = await d.rename_unit(args.slug, args.name, actor)
            print(f"unit {u.slug} renamed to {u.name}")
    elif area == "account":
        await _account(args, action, d, actor)
    elif area == "alias":
        if action == "add":
            await d.add_alias(args.alias, args.address, actor)
            print(f"alias {args.alias} -> {args.address} added")
        else:
            await d.remove_alias(args.alias, actor)
            print(f"alias {args.alias} removed")
    elif area == "group":
        await _group(args, action, d, actor)
    elif area == "delegate":
        if action == "grant":
            vf = parse_when(args.valid_from, tz, end_of_day=False) if args.valid_from else None
            vu = parse_when(args.until, tz, end_of_day=True) if args.until else None
            g = await d.grant(args.owner, args.delegate, args.scope, actor,
                              valid_from=vf, valid_until=vu)
            until = f" until {g.valid_until.astimezone(tz):%Y-%m-%d %H:%M}" if g.valid_until else ""
            print(f"{g.delegate} may now act for {g.owner}: {', '.join(g.scopes)}{until}")
        elif action == "revoke":
            g = await d.revoke(args.owner, args.delegate, actor)
            print(f"delegation {g.owner} -> {g.delegate} revoked")
        else:
            now = d.now()
            rows = [
                (g.owner, g.delegate, ",".join(g.scopes),
                 g.valid_from.astimezone(tz).strftime("%Y-%m-%d %H:%M") if g.valid_from else "-",
                 g.valid_until.astimezone(tz).strftime("%Y-%m-%d %H:%M") if g.valid_until else "-",
                 "active" if g.active(now) else "inactive", g.granted_by)
                for g in await d.list_grants(owner=args.owner, delegate=args.delegate)
            ]
            print_table(("OWNER", "DELEGATE", "SCOPES", "FROM", "UNTIL", "STATE", "BY"), rows)
    elif area == "import":
        new_accounts = read_accounts_csv(args.csv)
        count = await d.add_accounts(new_accounts, actor,
                                     progress=progress_printer(len(new_accounts)))
        print(f"imported {count} accounts")
    elif area == "audit":
        since = parse_when(args.since, tz, end_of_day=False) if args.since else None
        entries = await d.audit(limit=args.limit, actor=args.actor, action=args.audit_action,
                                target=args.target, since=since)
        print_table(
            ("TIME", "ACTOR", "ACTION", "TARGET", "FROM", "DETAILS"),
            [(e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.target,
              e.remote_addr or "", _details(e.details)) for e in entries],
        )
    elif area == "mail" and action == "restore":
        await mail_restore(args, d, settings, actor)
    elif area in SMTP_AREAS:
        await smtp_command(args, d, settings, actor)
    elif area == "schedule":
        await schedule_command(args, d, settings, actor)
    return 0


def _details(details: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in details.items() if v not in (None, "", []))


async def _account(args: argparse.Namespace, action: str, d: Directory, actor: str) -> None:
    if action == "add":
        password = read_password(args, required=False)
        quota = parse_size(args.quota) if args.quota else None
        a = await d.add_account(
            NewAccount(args.address, args.name, args.unit, args.title, password, args.kind,
                       quota, tuple(args.role)),
            actor,
        )
        print(f"account {a.address} added" + ("" if password else " (no password: cannot log in yet)"))
    elif action == "list":
        accounts = await d.list_accounts(unit=args.unit, subtree=not args.no_subunits,
                                         search=args.search)
        print_table(
            ("ADDRESS", "NAME", "UNIT", "TITLE", "STATE"),
            [(a.address, a.display_name, a.unit_slug or "-", a.title,
              ("enabled" if a.enabled else "disabled") + ("" if a.kind == "person" else f" {a.kind}"))
             for a in accounts],
        )
    elif action == "show":
        print_account(await d.get_account(args.address), await d.list_grants(owner=args.address),
                      await d.list_grants(delegate=args.address))
    elif action == "passwd":
        password = read_password(args, required=True)
        assert password is not None
        a = await d.set_password(args.address, password, actor)
        print(f"password of {a.address} changed")
    elif action in ("disable", "enable"):
        a = await d.set_enabled(args.address, action == "enable", actor)
        print(f"account {a.address} {action}d")
    elif action == "remove":
        await d.remove_account(args.address, actor)
        print(f"account {args.address} removed")
    elif action == "quota":
        a = await d.set_quota(args.address, parse_size(args.size), actor)
        print(f"quota of {a.address}: {a.quota_bytes if a.quota_bytes is not None else 'default'}")
    elif action == "update":
        a = await d.update_account(args.address, actor, display_name=args.name, title=args.title,
                                   unit=args.unit)
        print(f"account {a.address} updated")
    elif action == "role":
        if not args.add and not args.remove:
            raise UsageError("give --add ROLE or --remove ROLE")
        for spec in args.add:
            await d.add_role(args.address, spec, actor)
        for spec in args.remove:
            await d.remove_role(args.address, spec, actor)
        a = await d.get_account(args.address)
        print(f"roles of {a.address}: {', '.join(map(str, a.roles)) or 'none'}")


async def _group(args: argparse.Namespace, action: str, d: Directory, actor: str) -> None:
    if action == "add":
        g = await d.add_group(args.address, args.name, actor)
        print(f"group {g.address} added")
    elif action == "list":
        print_table(("ADDRESS", "NAME"), [(g.address, g.name) for g in await d.list_groups()])
    elif action == "members":
        for m in await d.group_members(args.address):
            print(m)
    elif action == "add-member":
        await d.add_member(args.address, args.member, actor)
        print(f"{args.member} added to {args.address}")
    elif action == "remove-member":
        await d.remove_member(args.address, args.member, actor)
        print(f"{args.member} removed from {args.address}")
    elif action == "expand":
        recipients = await d.expand_group(args.address)
        for r in recipients:
            print(r.address + ("" if r.enabled else " (disabled)"))
        print(f"{len(recipients)} accounts", file=sys.stderr)


async def run_admin(
    args: argparse.Namespace,
    settings: Settings,
    dispatch: Callable[..., Awaitable[int]] = _dispatch,
) -> int:
    try:
        db = await open_database(settings, max_size=2)
    except Exception as exc:  # any connection failure becomes one line
        print(f"congvu: error: cannot open the database: {exc}", file=sys.stderr)
        return 1
    try:
        return await dispatch(args, Directory(db, settings), settings)
    except BadRows as exc:
        for line in exc.problems:
            print(f"congvu: {line}", file=sys.stderr)
        print(f"congvu: error: {exc}", file=sys.stderr)
        return 2
    except (StoreError, UsageError) as exc:
        print(f"congvu: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head(1) or similar
        sys.stderr.close()
        return 0
    except Exception as exc:  # the one catch-all: one line, not a traceback
        print(f"congvu: error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await db.close()
