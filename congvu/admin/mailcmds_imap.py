"""``congvu admin mail restore ADDRESS --since WHEN [--mailbox NAME]``.

Expunged mail is kept for ``retention_days`` (official mail is a record);
this gives it back to its mailbox with new UIDs, so every IMAP client sees
it as new mail (see ``congvu.store.imap_retention``). Sources of MOVEs are
not restored: those messages live on in their destination.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import Settings
from ..directory.service import Directory
from ..store import imap_retention

__all__ = ["add_mail_restore_parser", "mail_restore"]


def add_mail_restore_parser(sub: Any) -> None:
    """Add ``mail restore`` to the admin areas (sharing ``mail`` with other commands)."""
    mail = sub.choices.get("mail") or sub.add_parser("mail", help="mail stores")
    actions = getattr(mail, "congvu_actions", None)
    if actions is None:
        actions = mail.add_subparsers(dest="action", required=True)
        mail.congvu_actions = actions
    p = actions.add_parser("restore", help="bring back expunged messages (retention)")
    p.add_argument("address")
    p.add_argument("--since", required=True, help="YYYY-MM-DD or ISO date-time (local time)")
    p.add_argument("--mailbox", help="only this mailbox (default: all)")


async def mail_restore(args: argparse.Namespace, d: Directory, settings: Settings,
                       actor: str) -> None:
    from zoneinfo import ZoneInfo

    from .commands import parse_when  # the admin tool's one date parser

    since = parse_when(args.since, ZoneInfo(settings.timezone), end_of_day=False)
    account = await d.get_account(args.address)
    async with d.db.transaction() as conn:
        res = await imap_retention.restore(conn, account.id, since, args.mailbox)
    await d.record(actor, "mail.restore", account.address,
                   {"since": since.isoformat(), "mailbox": args.mailbox,
                    "restored": res.restored})
    where = ", ".join(res.mailboxes) or "-"
    print(f"restored {res.restored} messages of {account.address} ({where})")
