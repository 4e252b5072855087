"""Retention of expunged mail: purge after ``retention_days``, restore on request.

Official mail is a record: EXPUNGE only sets ``expunged_at``. The purge
runs on any one node at a time (``pg_try_advisory_lock``), deletes rows
expunged before the cut-off and then the blobs no row refers to any more.
``restore`` (``congvu admin mail restore``) gives expunged messages back to
their mailbox under new UIDs (RFC 3501 §2.3.1.1: UIDs never go back), so
every client sees them as new mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .db import Database
from .imapstore import notify
from .periodic import node_lock

__all__ = ["PURGE_LOCK", "RestoreResult", "purge", "restore"]

#: Advisory lock key naming "the IMAP retention purge".
PURGE_LOCK = 0x436F6E70  # "Conp"
BATCH = 5000


@dataclass(frozen=True)
class RestoreResult:
    restored: int
    mailboxes: tuple[str, ...]


async def purge(db: Database, retention_days: int) -> int:
    """Delete what has been expunged for longer than the retention period."""
    total = 0
    async with db.connection() as conn, node_lock(conn, PURGE_LOCK) as mine:
        if not mine:
            return 0  # another node is purging
        while True:
            async with conn.transaction():
                rows = await conn.fetch(
                    "DELETE FROM mailbox_messages WHERE ctid = ANY(ARRAY("
                    " SELECT ctid FROM mailbox_messages WHERE expunged_at IS NOT NULL"
                    " AND expunged_at < now() - make_interval(days => $1) LIMIT $2))"
                    " RETURNING sha256",
                    retention_days, BATCH,
                )
                if not rows:
                    break
                total += len(rows)
                shas = list({r["sha256"] for r in rows})
                # A blob goes when no row refers to it; the lock on the row
                # makes a concurrent delivery of the same bytes wait or retry.
                await conn.execute(
                    "DELETE FROM message_blobs b WHERE b.sha256 = ANY($1::bytea[])"
                    " AND NOT EXISTS (SELECT 1 FROM mailbox_messages m"
                    " WHERE m.sha256 = b.sha256)", shas,
                )
    return total


async def restore(conn: asyncpg.Connection, account_id: int, since: datetime,
                  mailbox: str | None = None) -> RestoreResult:
    """Bring back messages expunged at or after ``since`` (not the sources of MOVEs)."""
    rows = await conn.fetch(
        "SELECT m.mailbox_id, b.name, m.uid FROM mailbox_messages m"
        " JOIN mailboxes b ON b.account_id = m.account_id AND b.id = m.mailbox_id"
        " WHERE m.account_id = $1 AND m.expunged_at >= $2"
        " AND coalesce(m.expunge_reason, 'expunge') <> 'move'"
        " AND ($3::text IS NULL OR b.name = $3) ORDER BY m.mailbox_id, m.uid",
        account_id, since, mailbox,
    )
    by_box: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for r in rows:
        by_box.setdefault(r["mailbox_id"], []).append(r["uid"])
        names[r["mailbox_id"]] = r["name"]
    total = 0
    for mailbox_id, uids in by_box.items():
        mb = await conn.fetchrow(
            "UPDATE mailboxes SET uidnext = uidnext + $3, highestmodseq = highestmodseq + 1"
            " WHERE account_id = $1 AND id = $2 RETURNING uidnext - $3 AS first, highestmodseq",
            account_id, mailbox_id, len(uids),
        )
        first, ms = mb["first"], mb["highestmodseq"]
        # A new row per message (new UID); the old expunged row is dropped so
        # clients that saw it vanish never see that UID again.
        await conn.execute(
            "INSERT INTO mailbox_messages (account_id, mailbox_id, uid, sha256, size,"
            " internal_date, flags, modseq)"
            " SELECT m.account_id, m.mailbox_id, $3 + o.n - 1, m.sha256, m.size,"
            " m.internal_date, array_remove(m.flags, '\\Deleted'), $4"
            " FROM mailbox_messages m JOIN unnest($5::bigint[]) WITH ORDINALITY AS o(uid, n)"
            " ON m.uid = o.uid WHERE m.account_id = $1 AND m.mailbox_id = $2",
            account_id, mailbox_id, first, ms, uids,
        )
        await conn.execute(
            "DELETE FROM mailbox_messages WHERE account_id = $1 AND mailbox_id = $2"
            " AND uid = ANY($3::bigint[])", account_id, mailbox_id, uids,
        )
        size = await conn.fetchval(
            "SELECT coalesce(sum(size), 0) FROM mailbox_messages WHERE account_id = $1"
            " AND mailbox_id = $2 AND modseq = $3 AND uid >= $4",
            account_id, mailbox_id, ms, first,
        )
        await conn.execute("UPDATE accounts SET used_bytes = used_bytes + $2 WHERE id = $1",
                           account_id, int(size))
        await notify(conn, account_id, mailbox_id, ms)
        total += len(uids)
    return RestoreResult(total, tuple(sorted(set(names[m] for m in by_box))))
