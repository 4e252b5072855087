"""Local delivery: one stored copy of a message, one mailbox row per recipient.

Used by SMTP (MX and submission to local recipients) and by the outbound
queue (bounces and delay notices). Every statement is set-based over all the
recipients at once, so a notice to a 5,000-member group costs a handful of
statements, not thousands:

1. the bytes and their parse-once columns go into ``message_blobs`` once per
   SHA-256 (``ON CONFLICT DO NOTHING``; an existing row is share-locked so the
   IMAP retention purge cannot delete it under us);
2. the target mailbox of every recipient is locked, with its account row, in
   ``account_id`` order — the same order on every node and the same
   mailbox-then-account order as IMAP's APPEND/COPY, so concurrent deliveries
   serialise instead of deadlocking;
3. one statement allocates each mailbox's next UID and modseq
   (``UPDATE mailboxes ... RETURNING``: strictly increasing, in commit order,
   RFC 3501 §2.3.1.1 and RFC 7162 §3.1.1), inserts the mailbox rows, adds to
   ``accounts.used_bytes`` and announces every new message on
   :data:`NOTIFY_CHANNEL`; IDLE sessions on every node hear it when the
   transaction commits.

Callers run :func:`deliver` inside a transaction and acknowledge (``250``)
only after it committed (DESIGN principle 2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from . import groups as groups_repo
from . import mailboxes as mailboxes_repo
from .imapstore import NOTIFY_CHANNEL

__all__ = [
    "NOTIFY_CHANNEL",
    "NOTIFY_PAYLOAD_KEYS",
    "Delivered",
    "LocalAddress",
    "ParsedLike",
    "deliver",
    "is_local_domain",
    "over_quota",
    "resolve_address",
]

#: Every delivered message is announced with
#: ``pg_notify('congvu_mail', '{"account_id": a, "mailbox_id": m, "uid": u, "modseq": s}')``
#: (the channel is the IMAP store's; ``uid`` is what SMTP adds).
NOTIFY_PAYLOAD_KEYS = ("account_id", "mailbox_id", "uid", "modseq")


class ParsedLike(Protocol):
    """What :func:`congvu.mailserver.mime.parse_message` returns (the parts used here)."""

    def to_row(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Delivered:
    account_id: int
    mailbox_id: int
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class LocalAddress:
    """What an address means here, for the RCPT decision.

    ``kind`` is ``"foreign"`` (a domain we do not host), ``"unknown"`` (a
    hosted domain but no such address), ``"account"``/``"alias"`` (one
    account: see ``enabled``) or ``"group"`` (``account_ids`` are the enabled
    members, expanded recursively, each once).
    """

    kind: str
    account_ids: tuple[int, ...] = ()
    enabled: bool = True
    group_id: int | None = None


async def is_local_domain(conn: asyncpg.Connection, domain: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM domains WHERE name = $1", domain))


async def resolve_address(conn: asyncpg.Connection, address: str) -> LocalAddress:
    """Look a (normalized) address up in the one address namespace."""
    domain = address.rpartition("@")[2]
    row = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM domains WHERE name = $2) AS local,"
        " x.kind, x.account_id, x.group_id, a.enabled "
        "FROM (SELECT 1) one LEFT JOIN addresses x ON x.address = $1"
        " LEFT JOIN accounts a ON a.id = x.account_id",
        address, domain,
    )
    assert row is not None
    if row["kind"] is None:
        return LocalAddress("foreign" if not row["local"] else "unknown")
    if row["kind"] == "group":
        members = await groups_repo.expand(conn, [row["group_id"]])
        return LocalAddress("group", tuple(m.account_id for m in members if m.enabled),
                            True, row["group_id"])
    return LocalAddress(row["kind"], (row["account_id"],), bool(row["enabled"]))


async def over_quota(conn: asyncpg.Connection, account_ids: Sequence[int],
                     default_quota: int, incoming: int = 0) -> set[int]:
    """Accounts that are full, or that ``incoming`` more bytes would overfill.

    ``quota_bytes`` NULL means the installation default.
    """
    if not account_ids:
        return set()
    rows = await conn.fetch(
        "SELECT id FROM accounts WHERE id = ANY($1::int[])"
        " AND (used_bytes >= coalesce(quota_bytes, $2)"
        "      OR used_bytes + $3 > coalesce(quota_bytes, $2))",
        list(account_ids), default_quota, incoming,
    )
    return {r["id"] for r in rows}


_BLOB_COLUMNS = (
    "size", "envelope", "body", "bodystructure", "part_map", "sent_date", "subject",
    "from_text", "to_text", "cc_text", "message_id", "sort_subject", "sort_from", "sort_to",
    "sort_cc", "search_headers", "search_body", "preview", "has_attachments",
)
_INSERT_BLOB = (
    "INSERT INTO message_blobs (sha256, raw, " + ", ".join(_BLOB_COLUMNS) + ") VALUES ("
    + ", ".join("$%d" % i for i in range(1, len(_BLOB_COLUMNS) + 3))
    + ") ON CONFLICT (sha256) DO NOTHING RETURNING 1"
)

# Target mailbox per recipient: the named one, else the special-use one, else
# INBOX; locked with the account row, in account order (see module docstring).
_LOCK_TARGETS = """
SELECT b.account_id, b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id
WHERE (b.account_id, b.id) IN (
    SELECT DISTINCT ON (m.account_id) m.account_id, m.id FROM mailboxes m
    WHERE m.account_id = ANY($1::int[])
      AND (m.name = 'INBOX' OR m.name = $2 OR m.special_use = $3)
    ORDER BY m.account_id,
             CASE WHEN m.name = $2 THEN 0 WHEN m.special_use = $3 THEN 1 ELSE 2 END
)
ORDER BY b.account_id
FOR UPDATE OF b, a
"""

_WRITE = """
WITH t AS (
    SELECT unnest($1::int[]) AS account_id, unnest($2::bigint[]) AS mailbox_id
), upd AS (
    UPDATE mailboxes b SET uidnext = b.uidnext + 1, highestmodseq = b.highestmodseq + 1
    FROM t WHERE b.account_id = t.account_id AND b.id = t.mailbox_id
    RETURNING b.account_id, b.id AS mailbox_id, b.uidnext - 1 AS uid, b.highestmodseq AS modseq
), ins AS (
    INSERT INTO mailbox_messages
        (account_id, mailbox_id, uid, sha256, size, internal_date, flags, modseq)
    SELECT account_id, mailbox_id, uid, $3, $4, $5, $6::text[], modseq FROM upd
    RETURNING account_id, mailbox_id, uid, modseq
), used AS (
    UPDATE accounts a SET used_bytes = a.used_bytes + $4 FROM t WHERE a.id = t.account_id
)
SELECT account_id, mailbox_id, uid, modseq,
       pg_notify($7, json_build_object('account_id', account_id, 'mailbox_id', mailbox_id,
                                       'uid', uid, 'modseq', modseq)::text) AS notified
FROM ins
"""


async def _store_blob(conn: asyncpg.Connection, sha: bytes, raw: bytes,
                      parsed: ParsedLike) -> None:
    row = parsed.to_row()
    values: list[Any] = [row[c] for c in _BLOB_COLUMNS]
    pm = _BLOB_COLUMNS.index("part_map")
    if isinstance(values[pm], str):  # to_row gives JSON text; the codec encodes itself
        import json

        values[pm] = json.loads(values[pm])
    for _ in range(3):
        if await conn.fetchval(_INSERT_BLOB, sha, raw, *values):
            return
        # Already stored: share-lock it so a concurrent retention purge waits for us.
        if await conn.fetchval(
            "SELECT 1 FROM message_blobs WHERE sha256 = $1 FOR KEY SHARE", sha
        ):
            return
    raise RuntimeError("message blob vanished three times while delivering")


async def deliver(
    conn: asyncpg.Connection,
    parsed: ParsedLike,
    raw: bytes,
    recipients: Sequence[int],
    *,
    internal_date: datetime,
    mailbox: str = "INBOX",
    special_use: str | None = None,
    flags: Sequence[str] = (),
) -> list[Delivered]:
    """Deliver ``raw`` to each account in ``recipients`` (duplicates ignored).

    The message goes to the mailbox named ``mailbox`` if the account has it,
    else to the one with ``special_use`` (e.g. ``\\Junk``), else to INBOX.
    Must run inside a transaction.
    """
    ids = sorted(set(recipients))
    if not ids:
        return []
    sha = hashlib.sha256(raw).digest()
    await _store_blob(conn, sha, raw, parsed)
    targets = await conn.fetch(_LOCK_TARGETS, ids, mailbox, special_use)
    if len(targets) < len(ids):
        # An account without INBOX (created outside the directory): give it one.
        have = {r["account_id"] for r in targets}
        for account_id in ids:
            if account_id not in have:
                await mailboxes_repo.create_defaults(conn, account_id)
        targets = await conn.fetch(_LOCK_TARGETS, ids, mailbox, special_use)
    rows = await conn.fetch(
        _WRITE,
        [r["account_id"] for r in targets], [r["id"] for r in targets],
        sha, len(raw), internal_date, list(flags), NOTIFY_CHANNEL,
    )
    return [Delivered(r["account_id"], r["mailbox_id"], r["uid"], r["modseq"]) for r in rows]
