"""Local delivery: one stored copy of a message, one mailbox row per recipient.

Used by SMTP (MX and submission to local recipients) and by the outbound
queue (bounces and delay notices). Every statement is set-based over all the
recipients at once, so a notice to a 5,000-member group costs a handful of
statements, not thousands:

1. the bytes and their parse-once columns go into ``message_blobs`` once per
   SHA-256 (``ON CONFLICT DO NOTHING``; the foreign key from the new mailbox
   rows share-locks an existing blob, so the IMAP retention purge cannot
   delete it under us — it fails and retries later instead; if the purge
   deleted it just before that lock, the delivery fails on the foreign key
   having written nothing, and stores it again);
2. with several recipients, the target mailbox of every recipient is locked,
   with its account row, in ``account_id`` order — the same order on every
   node and the same mailbox-then-account order as IMAP's APPEND/COPY, so
   concurrent deliveries serialise instead of deadlocking;
3. one statement stores the blob, allocates each mailbox's next UID and
   modseq (``UPDATE mailboxes ... RETURNING``: strictly increasing, in commit
   order, RFC 3501 §2.3.1.1 and RFC 7162 §3.1.1), inserts the mailbox rows,
   adds to ``accounts.used_bytes`` and announces every new message on
   :data:`NOTIFY_CHANNEL`; IDLE sessions on every node hear it when the
   transaction commits. A single recipient needs nothing else: the one
   statement is atomic without an explicit transaction.

Callers acknowledge (``250``) only after :func:`deliver` returned, i.e.
after the statement or their transaction committed (DESIGN principle 2).
"""

from __future__ import annotations

import hashlib
import json
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
    "postmaster",
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
    full: bool = False  # an account over its quota (with ``incoming`` bytes more)


async def is_local_domain(conn: asyncpg.Connection, domain: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM domains WHERE name = $1", domain))


async def resolve_address(conn: asyncpg.Connection, address: str, default_quota: int = 0,
                          incoming: int = 0) -> LocalAddress:
    """Look a (normalized) address up in the one address namespace, in one query.

    For an account, ``full`` tells whether it is over quota (see
    :func:`over_quota`; ``default_quota`` applies where ``quota_bytes`` is NULL).
    """
    domain = address.rpartition("@")[2]
    row = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM domains WHERE name = $2) AS local,"
        " x.kind, x.account_id, x.group_id, a.enabled,"
        " (a.used_bytes >= coalesce(a.quota_bytes, $3)"
        "  OR a.used_bytes + $4 > coalesce(a.quota_bytes, $3)) AS full "
        "FROM (SELECT 1) one LEFT JOIN addresses x ON x.address = $1"
        " LEFT JOIN accounts a ON a.id = x.account_id",
        address, domain, default_quota or 2**62, incoming,
    )
    assert row is not None
    if row["kind"] is None:
        return LocalAddress("foreign" if not row["local"] else "unknown")
    if row["kind"] == "group":
        members = await groups_repo.expand(conn, [row["group_id"]])
        return LocalAddress("group", tuple(m.account_id for m in members if m.enabled),
                            True, row["group_id"])
    return LocalAddress(row["kind"], (row["account_id"],), bool(row["enabled"]),
                        full=bool(row["full"]))


async def postmaster(conn: asyncpg.Connection, configured: str | None) -> LocalAddress:
    """Who gets mail for ``<postmaster>`` (RFC 5321 §4.5.1), as kind ``"postmaster"``.

    The configured address (account, alias or group) if it names enabled
    accounts here, else every enabled account with the global admin role.
    ``account_ids`` is empty when there is nobody.
    """
    if configured:
        found = await resolve_address(conn, configured)
        ids = found.account_ids if found.kind == "group" or found.enabled else ()
        if found.kind in ("account", "alias", "group") and ids:
            return LocalAddress("postmaster", ids)
    rows = await conn.fetch(
        "SELECT DISTINCT a.id FROM accounts a JOIN account_roles r ON r.account_id = a.id"
        " WHERE r.role = 'admin' AND r.unit_id IS NULL AND a.enabled ORDER BY a.id")
    return LocalAddress("postmaster", tuple(r["id"] for r in rows))


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
_N = len(_BLOB_COLUMNS)

# Target mailbox per recipient: the named one, else the special-use one, else INBOX.
_TARGETS = """
    SELECT DISTINCT ON (m.account_id) m.account_id, m.id FROM mailboxes m
    WHERE m.account_id = ANY($1::int[])
      AND (m.name = 'INBOX' OR m.name = $2 OR m.special_use = $3)
    ORDER BY m.account_id,
             CASE WHEN m.name = $2 THEN 0 WHEN m.special_use = $3 THEN 1 ELSE 2 END
"""

# Several recipients: lock every target mailbox with its account row, in
# account order (see the module docstring), before the write.
_LOCK_TARGETS = (
    "SELECT b.account_id, b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id"
    " WHERE (b.account_id, b.id) IN (" + _TARGETS + ") ORDER BY b.account_id FOR UPDATE OF b, a"
)

# One statement stores the blob (once per SHA-256), allocates UIDs and modseqs,
# inserts the mailbox rows, counts the bytes and announces each message. The
# foreign key from mailbox_messages share-locks an existing blob, so the
# retention purge cannot take it away in between (it would fail instead).
# PostgreSQL runs the unreferenced ``used`` update after the main query, so a
# single recipient's mailbox row is locked before its account row, the same
# order as IMAP's APPEND.
_WRITE = (
    "WITH blob AS (INSERT INTO message_blobs (sha256, raw, " + ", ".join(_BLOB_COLUMNS) + ")"
    " VALUES ($4, $5, " + ", ".join(f"${i + 10}" for i in range(_N)) + ")"
    " ON CONFLICT (sha256) DO NOTHING"
    "), t AS (" + _TARGETS + "), upd AS ("
    " UPDATE mailboxes b SET uidnext = b.uidnext + 1, highestmodseq = b.highestmodseq + 1"
    " FROM t WHERE b.account_id = t.account_id AND b.id = t.id"
    " RETURNING b.account_id, b.id AS mailbox_id, b.uidnext - 1 AS uid,"
    " b.highestmodseq AS modseq"
    "), ins AS ("
    " INSERT INTO mailbox_messages"
    " (account_id, mailbox_id, uid, sha256, size, internal_date, flags, modseq)"
    " SELECT account_id, mailbox_id, uid, $4, $6, $7, $8::text[], modseq FROM upd"
    " RETURNING account_id, mailbox_id, uid, modseq"
    "), used AS ("
    " UPDATE accounts a SET used_bytes = a.used_bytes + $6 FROM t WHERE a.id = t.account_id"
    ") SELECT account_id, mailbox_id, uid, modseq,"
    " pg_notify($9, json_build_object('account_id', account_id, 'mailbox_id', mailbox_id,"
    " 'uid', uid, 'modseq', modseq)::text) AS notified FROM ins"
)


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
    Atomic: one statement for a single recipient, else a transaction of its
    own (or the caller's, when ``conn`` is in one).
    """
    ids = sorted(set(recipients))
    if not ids:
        return []
    sha = hashlib.sha256(raw).digest()
    row = parsed.to_row()
    values: list[Any] = [row[c] for c in _BLOB_COLUMNS]
    pm = _BLOB_COLUMNS.index("part_map")
    if isinstance(values[pm], str):  # to_row gives JSON text; the codec encodes itself
        values[pm] = json.loads(values[pm])
    args = (ids, mailbox, special_use, sha, raw, len(raw), internal_date, list(flags),
            NOTIFY_CHANNEL, *values)
    for attempt in range(_ATTEMPTS):
        try:
            rows = await _write(conn, ids, args)
            break
        except asyncpg.ForeignKeyViolationError as exc:
            # The retention purge deleted this (unreferenced) blob after our
            # INSERT ... ON CONFLICT DO NOTHING saw it and before our mailbox
            # row referenced it. Nothing was written: store it afresh.
            if exc.constraint_name != _BLOB_FK or attempt == _ATTEMPTS - 1:
                raise
    return [Delivered(r["account_id"], r["mailbox_id"], r["uid"], r["modseq"]) for r in rows]


_BLOB_FK = "mailbox_messages_sha256_fkey"
_ATTEMPTS = 3


async def _write(conn: asyncpg.Connection, ids: list[int],
                 args: tuple[Any, ...]) -> list[asyncpg.Record]:
    if len(ids) == 1 and not conn.is_in_transaction():
        rows = await conn.fetch(_WRITE, *args)  # one statement: atomic by itself
        if not rows:
            async with conn.transaction():
                rows = await _locked_write(conn, ids, args)
        return rows
    # In the caller's transaction this is a savepoint, so a retry after a
    # purge race does not abort the caller's work.
    async with conn.transaction():
        return await _locked_write(conn, ids, args)


async def _locked_write(conn: asyncpg.Connection, ids: list[int],
                        args: tuple[Any, ...]) -> list[asyncpg.Record]:
    targets = await conn.fetch(_LOCK_TARGETS, ids, args[1], args[2])
    if len(targets) < len(ids):
        # An account without INBOX (created outside the directory): give it one.
        have = {r["account_id"] for r in targets}
        for account_id in ids:
            if account_id not in have:
                await mailboxes_repo.create_defaults(conn, account_id)
        await conn.fetch(_LOCK_TARGETS, ids, args[1], args[2])
    return await conn.fetch(_WRITE, *args)
