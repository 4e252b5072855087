"""The append-only audit log, and the authentication-failure record used for throttling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    remote_addr: str | None


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, target, details, remote_addr)"
        " VALUES ($1, $2, $3, $4, $5)",
        actor,
        action,
        target,
        details or {},
        remote_addr,
    )


async def recent(
    conn: asyncpg.Connection,
    *,
    limit: int = 50,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
) -> list[AuditEntry]:
    """Newest first. ``action`` matches a prefix (``auth`` finds ``auth.fail``)."""
    rows = await conn.fetch(
        """SELECT * FROM audit_log
           WHERE ($1::text IS NULL OR actor = $1)
             AND ($2::text IS NULL OR action LIKE $2 || '%')
             AND ($3::text IS NULL OR target = $3)
             AND ($4::timestamptz IS NULL OR at >= $4)
           ORDER BY id DESC LIMIT $5""",
        actor,
        action,
        target,
        since,
        limit,
    )
    return [
        AuditEntry(r["id"], r["at"], r["actor"], r["action"], r["target"], r["details"],
                   r["remote_addr"])
        for r in rows
    ]


async def add_auth_failure(conn: asyncpg.Connection, address: str, remote_ip: str | None) -> None:
    await conn.execute(
        "INSERT INTO auth_failures (address, remote_ip) VALUES ($1, $2)", address, remote_ip
    )


async def auth_failure_counts(
    conn: asyncpg.Connection, address: str, remote_ip: str | None, window_seconds: int
) -> tuple[int, int]:
    """Failures in the window for this address and for this remote address."""
    row = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM auth_failures
               WHERE address = $1 AND at > now() - make_interval(secs => $3)) AS by_address,
             (SELECT count(*) FROM auth_failures
               WHERE $2::text IS NOT NULL AND remote_ip = $2
                 AND at > now() - make_interval(secs => $3)) AS by_ip""",
        address,
        remote_ip,
        float(window_seconds),
    )
    return int(row["by_address"]), int(row["by_ip"])


async def clear_auth_failures(conn: asyncpg.Connection, address: str) -> None:
    await conn.execute("DELETE FROM auth_failures WHERE address = $1", address)


async def prune_auth_failures(conn: asyncpg.Connection, older_than_seconds: int) -> None:
    await conn.execute(
        "DELETE FROM auth_failures WHERE at < now() - make_interval(secs => $1)",
        float(older_than_seconds),
    )
