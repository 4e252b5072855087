"""The outbound queue (mail for domains we do not host) and the DKIM signing keys.

Every node runs queue workers against the same tables (DESIGN §4). A worker
*claims* due messages with ``FOR UPDATE SKIP LOCKED`` and, in the same
statement, leases them by moving ``next_attempt`` a few minutes ahead; the
delivery attempt then runs outside any transaction. If the node dies the
lease runs out and another node retries: a message can be delayed, never
lost. Time is passed in (``now``) so tests control it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from .errors import Conflict, NotFound

__all__ = [
    "DkimKey",
    "QueuedMessage",
    "QueuedRecipient",
    "RecipientResult",
    "active_dkim_key",
    "add_dkim_key",
    "claim",
    "enqueue",
    "finish_attempt",
    "list_dkim_keys",
    "list_queue",
    "remove",
]


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    rcpt: str
    domain: str
    status: str  # pending | delivered | failed
    last_code: int | None = None
    last_status: str | None = None
    last_reply: str | None = None
    remote_mta: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    account_id: int | None
    mail_from: str
    smtputf8: bool
    raw: bytes
    size: int
    created_at: datetime
    expires_at: datetime
    next_attempt: datetime
    attempts: int
    delay_notified: bool
    last_error: str | None
    recipients: tuple[QueuedRecipient, ...]

    @property
    def pending(self) -> tuple[QueuedRecipient, ...]:
        return tuple(r for r in self.recipients if r.status == "pending")


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The outcome of one attempt for one recipient."""

    rcpt: str
    status: str  # pending (temporary failure) | delivered | failed
    code: int | None
    enhanced: str | None
    reply: str
    remote_mta: str | None = None


async def enqueue(conn: asyncpg.Connection, *, account_id: int | None, mail_from: str,
                  recipients: Sequence[str], raw: bytes, smtputf8: bool, now: datetime,
                  lifetime: timedelta) -> int:
    """Queue one message for its remote recipients (one copy of the bytes)."""
    rcpts = sorted(set(recipients))
    if not rcpts:
        raise ValueError("nothing to queue: no recipients")
    msg_id = await conn.fetchval(
        "INSERT INTO outbound_messages (account_id, mail_from, smtputf8, raw, size, created_at,"
        " expires_at, next_attempt) VALUES ($1, $2, $3, $4, $5, $6, $7, $6) RETURNING id",
        account_id, mail_from, smtputf8, raw, len(raw), now, now + lifetime,
    )
    await conn.execute(
        "INSERT INTO outbound_recipients (message_id, rcpt, domain)"
        " SELECT $1, r, lower(substring(r from '[^@]*$')) FROM unnest($2::text[]) AS r",
        msg_id, rcpts,
    )
    return int(msg_id)


_CLAIM = """
UPDATE outbound_messages o SET next_attempt = $2, attempts = o.attempts + 1
WHERE o.id IN (
    SELECT id FROM outbound_messages WHERE next_attempt <= $1
    ORDER BY next_attempt LIMIT $3 FOR UPDATE SKIP LOCKED
)
RETURNING o.*
"""


def _recipient(r: asyncpg.Record) -> QueuedRecipient:
    return QueuedRecipient(r["rcpt"], r["domain"], r["status"], r["last_code"],
                           r["last_status"], r["last_reply"], r["remote_mta"])


async def _with_recipients(conn: asyncpg.Connection,
                           rows: Sequence[asyncpg.Record]) -> list[QueuedMessage]:
    if not rows:
        return []
    rcpts = await conn.fetch(
        "SELECT * FROM outbound_recipients WHERE message_id = ANY($1::bigint[])"
        " ORDER BY message_id, rcpt",
        [r["id"] for r in rows],
    )
    by_msg: dict[int, list[QueuedRecipient]] = {}
    for r in rcpts:
        by_msg.setdefault(r["message_id"], []).append(_recipient(r))
    return [
        QueuedMessage(r["id"], r["account_id"], r["mail_from"], r["smtputf8"], bytes(r["raw"]),
                      r["size"], r["created_at"], r["expires_at"], r["next_attempt"],
                      r["attempts"], r["delay_notified"], r["last_error"],
                      tuple(by_msg.get(r["id"], ())))
        for r in rows
    ]


async def claim(conn: asyncpg.Connection, now: datetime, lease: timedelta,
                limit: int = 10) -> list[QueuedMessage]:
    """Take up to ``limit`` due messages for this worker until ``now + lease``."""
    async with conn.transaction():
        rows = await conn.fetch(_CLAIM, now, now + lease, limit)
        return await _with_recipients(conn, rows)


async def finish_attempt(conn: asyncpg.Connection, message_id: int,
                         results: Sequence[RecipientResult], *, now: datetime,
                         next_attempt: datetime | None, error: str | None,
                         delay_notified: bool | None = None) -> None:
    """Record per-recipient outcomes; reschedule (or, with no next attempt, keep
    the row for :func:`remove` once notices are sent)."""
    if results:
        await conn.execute(
            "UPDATE outbound_recipients r SET status = v.status, last_code = v.code,"
            " last_status = v.enhanced, last_reply = v.reply, remote_mta = v.mta,"
            " updated_at = $2 "
            "FROM unnest($3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[])"
            " AS v(rcpt, status, code, enhanced, reply, mta) "
            "WHERE r.message_id = $1 AND r.rcpt = v.rcpt AND r.status = 'pending'",
            message_id, now, [r.rcpt for r in results], [r.status for r in results],
            [r.code for r in results], [r.enhanced for r in results],
            [r.reply for r in results], [r.remote_mta for r in results],
        )
    await conn.execute(
        "UPDATE outbound_messages SET next_attempt = coalesce($2, next_attempt),"
        " last_error = $3, delay_notified = coalesce($4, delay_notified) WHERE id = $1",
        message_id, next_attempt, error, delay_notified,
    )


async def remove(conn: asyncpg.Connection, message_id: int) -> None:
    await conn.execute("DELETE FROM outbound_messages WHERE id = $1", message_id)


async def list_queue(conn: asyncpg.Connection) -> list[QueuedMessage]:
    rows = await conn.fetch("SELECT * FROM outbound_messages ORDER BY id")
    return await _with_recipients(conn, rows)


# -- DKIM keys (RFC 6376 §3.6) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: str
    public_key: str
    active: bool
    created_at: datetime
    # PEM: kept out of repr so it never lands in a log line
    private_key: str = ""

    def __repr__(self) -> str:
        return (f"DkimKey(domain={self.domain!r}, selector={self.selector!r}, "
                f"algorithm={self.algorithm!r}, active={self.active})")


def _key(r: asyncpg.Record) -> DkimKey:
    return DkimKey(r["domain"], r["selector"], r["algorithm"], r["public_key"], r["active"],
                   r["created_at"], r["private_key"])


_KEY_SELECT = ("SELECT d.name AS domain, k.* FROM dkim_keys k "
               "JOIN domains d ON d.id = k.domain_id")


async def add_dkim_key(conn: asyncpg.Connection, domain: str, selector: str, private_pem: str,
                       public_b64: str, algorithm: str = "rsa-sha256") -> DkimKey:
    """Store a key and make it the domain's only active one (older keys stay
    published until the operator removes their DNS records)."""
    domain_id = await conn.fetchval("SELECT id FROM domains WHERE name = $1", domain)
    if domain_id is None:
        raise NotFound(f"domain {domain} is not served here")
    await conn.execute("UPDATE dkim_keys SET active = false WHERE domain_id = $1", domain_id)
    try:
        await conn.execute(
            "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, public_key)"
            " VALUES ($1, $2, $3, $4, $5)",
            domain_id, selector, algorithm, private_pem, public_b64,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"selector {selector} already exists for {domain}") from None
    row = await conn.fetchrow(_KEY_SELECT + " WHERE k.domain_id = $1 AND k.selector = $2",
                              domain_id, selector)
    assert row is not None
    return _key(row)


async def active_dkim_key(conn: asyncpg.Connection, domain: str) -> DkimKey | None:
    row = await conn.fetchrow(
        _KEY_SELECT + " WHERE d.name = $1 AND k.active ORDER BY k.created_at DESC LIMIT 1",
        domain,
    )
    return _key(row) if row else None


async def list_dkim_keys(conn: asyncpg.Connection, domain: str) -> list[DkimKey]:
    rows = await conn.fetch(_KEY_SELECT + " WHERE d.name = $1 ORDER BY k.created_at", domain)
    return [_key(r) for r in rows]
