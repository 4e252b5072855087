"""Mailboxes: creation of an account's standard folders (more in the IMAP layer's store)."""

from __future__ import annotations

import asyncpg

# RFC 6154 special-use mailboxes every new account gets, so Apple Mail and
# Thunderbird find Sent/Drafts/Trash/Junk/Archive from the first login.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


async def create_defaults(conn: asyncpg.Connection, account_id: int) -> None:
    await conn.executemany(
        """INSERT INTO mailboxes (account_id, name, special_use) VALUES ($1, $2, $3)
           ON CONFLICT (account_id, name) DO NOTHING""",
        [(account_id, name, use) for name, use in DEFAULT_MAILBOXES],
    )


async def names(conn: asyncpg.Connection, account_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT name FROM mailboxes WHERE account_id = $1 ORDER BY name", account_id
    )
    return [r["name"] for r in rows]
