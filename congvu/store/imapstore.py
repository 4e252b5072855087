"""IMAP mailboxes: listing, creation, deletion, renaming, subscriptions, STATUS.

All SQL of the IMAP server about *mailboxes* lives here; messages are in
:mod:`.imap_messages` and SEARCH/SORT in :mod:`.imap_search`. Every function
takes the owning ``account_id`` first (DESIGN §4); authorization (which
principal may reach which owner) is decided by the caller through
``congvu.directory.authz`` before these are called.

Names use ``/`` as the hierarchy delimiter and are stored decoded (Unicode);
modified UTF-7 is a wire matter (RFC 3501 §5.1.3).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass

import asyncpg

from .errors import Conflict, Forbidden, Invalid, NotFound
from .uidruns import UidRuns, unpack_uids

__all__ = [
    "NOTIFY_CHANNEL",
    "Mailbox",
    "MailboxStatus",
    "SelectState",
    "UidCache",
    "create_mailbox",
    "delete_mailbox",
    "get_mailbox",
    "get_mailbox_by_id",
    "list_mailboxes",
    "notify",
    "other_subscriptions",
    "rename_mailbox",
    "select_state",
    "set_other_subscription",
    "set_subscribed",
    "status",
]

#: LISTEN/NOTIFY channel shared with SMTP delivery: payload JSON with
#: ``account_id`` and ``mailbox_id`` (and ``modseq`` when known).
NOTIFY_CHANNEL = "congvu_mail"

SEEN = "\\Seen"
DELETED = "\\Deleted"


@dataclass(frozen=True, slots=True)
class Mailbox:
    account_id: int
    id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """RFC 3501 §6.3.10 STATUS items (and RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE)."""

    messages: int
    unseen: int
    deleted: int
    size: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int
    deleted_size: int = 0  # octets of the \Deleted messages (RFC 9208 DELETED-STORAGE)


@dataclass(frozen=True, slots=True)
class SelectState:
    """What SELECT needs: the mailbox row, visible UIDs in order, first unseen UID."""

    mailbox: Mailbox
    uids: UidRuns  # visible UIDs, ascending (the session's own copy)
    first_unseen_uid: int | None


_MB_COLS = "account_id, id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed"


def _mailbox(r: asyncpg.Record) -> Mailbox:
    return Mailbox(r["account_id"], r["id"], r["name"], r["special_use"], r["uidvalidity"],
                   r["uidnext"], r["highestmodseq"], r["subscribed"])


async def notify(conn: asyncpg.Connection, account_id: int, mailbox_id: int,
                 modseq: int | None = None) -> None:
    """Announce a change (delivered when the transaction commits)."""
    payload = {"account_id": account_id, "mailbox_id": mailbox_id}
    if modseq is not None:
        payload["modseq"] = modseq
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, json.dumps(payload))


async def get_mailbox(conn: asyncpg.Connection, account_id: int, name: str) -> Mailbox:
    row = await conn.fetchrow(
        "SELECT " + _MB_COLS + " FROM mailboxes WHERE account_id = $1 AND name = $2",
        account_id, name,
    )
    if row is None:
        raise NotFound(f"no mailbox {name}")
    return _mailbox(row)


async def get_mailbox_by_id(conn: asyncpg.Connection, account_id: int, mailbox_id: int) -> Mailbox:
    row = await conn.fetchrow(
        "SELECT " + _MB_COLS + " FROM mailboxes WHERE account_id = $1 AND id = $2",
        account_id, mailbox_id,
    )
    if row is None:
        raise NotFound("the mailbox no longer exists")
    return _mailbox(row)


async def list_mailboxes(conn: asyncpg.Connection, account_id: int) -> list[Mailbox]:
    rows = await conn.fetch(
        "SELECT " + _MB_COLS + " FROM mailboxes WHERE account_id = $1 ORDER BY name", account_id
    )
    return [_mailbox(r) for r in rows]


def check_name(name: str) -> str:
    """Reject names IMAP cannot address: empty levels, wildcards, control characters."""
    if not name or name.startswith("/") or name.endswith("/") or "//" in name:
        raise Invalid("invalid mailbox name")
    if any(ch in name for ch in "*%") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise Invalid("mailbox names may not contain wildcards or control characters")
    if len(name) > 1000:
        raise Invalid("mailbox name too long")
    return name


async def create_mailbox(conn: asyncpg.Connection, account_id: int, name: str,
                         special_use: str | None = None) -> Mailbox:
    """RFC 3501 §6.3.3; RFC 6154 §3 CREATE-SPECIAL-USE (one attribute per mailbox)."""
    check_name(name)
    if name.upper() == "INBOX":
        raise Conflict("INBOX already exists")
    row = await conn.fetchrow(
        "INSERT INTO mailboxes (account_id, name, special_use) VALUES ($1, $2, $3) "
        "ON CONFLICT (account_id, name) DO NOTHING RETURNING " + _MB_COLS,
        account_id, name, special_use,
    )
    if row is None:
        raise Conflict(f"mailbox {name} already exists")
    # A name still subscribed from a mailbox deleted earlier (see delete_mailbox)
    # is subscribed again, now as the mailbox's own flag.
    if await conn.fetchval(
        "DELETE FROM imap_subscriptions WHERE account_id = $1 AND owner_id = $1 AND name = $2"
        " RETURNING 1", account_id, name,
    ):
        row = await conn.fetchrow(
            "UPDATE mailboxes SET subscribed = TRUE WHERE account_id = $1 AND name = $2"
            " RETURNING " + _MB_COLS, account_id, name,
        )
    return _mailbox(row)


async def delete_mailbox(conn: asyncpg.Connection, account_id: int, name: str) -> Mailbox:
    """RFC 3501 §6.3.4. Inferior mailboxes stay (they keep their own names)."""
    if name == "INBOX":
        raise Forbidden("INBOX cannot be deleted")
    inbox = await get_mailbox(conn, account_id, "INBOX")
    target = await get_mailbox(conn, account_id, name)
    # Both rows locked in key order (as COPY/MOVE do), so no deadlock with them.
    for mailbox_id in sorted((inbox.id, target.id)):
        await conn.execute("SELECT 1 FROM mailboxes WHERE account_id = $1 AND id = $2 FOR UPDATE",
                           account_id, mailbox_id)
    # Official mail is a record: the messages of a deleted mailbox are not
    # dropped with it but kept, expunged, in INBOX (the one mailbox that cannot
    # be deleted) under new UIDs, where `congvu admin mail restore` finds them
    # and the retention purge removes them after retention_days. The visible
    # ones give their bytes back to the quota now, as EXPUNGE does.
    n = await conn.fetchval("SELECT count(*) FROM mailbox_messages WHERE account_id = $1"
                            " AND mailbox_id = $2", account_id, target.id)
    if n:
        bump = await conn.fetchrow(
            "UPDATE mailboxes SET uidnext = uidnext + $3, highestmodseq = highestmodseq + 1"
            " WHERE account_id = $1 AND id = $2 RETURNING uidnext - $3 AS first, highestmodseq",
            account_id, inbox.id, n,
        )
        freed = await conn.fetchval(
            "WITH kept AS (INSERT INTO mailbox_messages (account_id, mailbox_id, uid, sha256,"
            " size, internal_date, flags, modseq, expunged_at, expunge_reason)"
            " SELECT account_id, $3, $4 + row_number() OVER (ORDER BY uid) - 1, sha256, size,"
            " internal_date, flags, $5, coalesce(expunged_at, now()),"
            " CASE WHEN expunged_at IS NULL THEN 'delete' ELSE expunge_reason END"
            " FROM mailbox_messages WHERE account_id = $1 AND mailbox_id = $2 RETURNING 1)"
            " SELECT coalesce(sum(size), 0) FROM mailbox_messages"
            " WHERE account_id = $1 AND mailbox_id = $2 AND expunged_at IS NULL",
            account_id, target.id, inbox.id, bump["first"], bump["highestmodseq"],
        )
        if freed:
            await conn.execute(
                "UPDATE accounts SET used_bytes = greatest(used_bytes - $2, 0) WHERE id = $1",
                account_id, int(freed),
            )
    if target.subscribed:
        # RFC 3501 §6.3.4/§6.3.6: the subscription outlives the mailbox (a row
        # of one's own name space: owner_id = account_id) until UNSUBSCRIBE.
        await conn.execute(
            "INSERT INTO imap_subscriptions (account_id, owner_id, name) VALUES ($1, $1, $2)"
            " ON CONFLICT DO NOTHING", account_id, target.name,
        )
    row = await conn.fetchrow(
        "DELETE FROM mailboxes WHERE account_id = $1 AND id = $2 RETURNING " + _MB_COLS,
        account_id, target.id,
    )
    mb = _mailbox(row)
    await notify(conn, account_id, mb.id)
    return mb


async def rename_mailbox(conn: asyncpg.Connection, account_id: int, old: str,
                         new: str) -> Mailbox:
    """RFC 3501 §6.3.5: inferiors follow; renaming INBOX moves its messages.

    UIDVALIDITY is kept for a renamed mailbox (its UIDs did not change).
    """
    check_name(new)
    if new.upper() == "INBOX":
        raise Conflict("INBOX already exists")
    src = await get_mailbox(conn, account_id, old)
    exists = await conn.fetchval(
        "SELECT 1 FROM mailboxes WHERE account_id = $1 AND (name = $2 OR name LIKE $3)",
        account_id, new, _like_prefix(new),
    )
    if exists:
        raise Conflict(f"mailbox {new} already exists")
    if old == "INBOX":
        # "all messages in INBOX are moved to a new mailbox with the given
        # name, leaving INBOX empty" (RFC 3501 §6.3.5).
        dest = await create_mailbox(conn, account_id, new)
        from .imap_messages import move_all  # local import: modules are siblings

        await move_all(conn, account_id, src.id, dest.id)
        return await get_mailbox_by_id(conn, account_id, dest.id)
    if new.startswith(old + "/"):
        raise Invalid("cannot move a mailbox into itself")
    await conn.execute(
        "UPDATE mailboxes SET name = $3 || substr(name, length($2) + 1) "
        "WHERE account_id = $1 AND name LIKE $4",
        account_id, old, new, _like_prefix(old),
    )
    row = await conn.fetchrow(
        "UPDATE mailboxes SET name = $3 WHERE account_id = $1 AND name = $2 RETURNING " + _MB_COLS,
        account_id, old, new,
    )
    await conn.execute(
        "UPDATE imap_subscriptions SET name = $3 || substr(name, length($2) + 1) "
        "WHERE owner_id = $1 AND account_id <> $1 AND (name = $2 OR name LIKE $4)",
        account_id, old, new, _like_prefix(old),
    )
    return _mailbox(row)


def _like_prefix(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


async def set_subscribed(conn: asyncpg.Connection, account_id: int, name: str, on: bool) -> None:
    """RFC 3501 §6.3.6/§6.3.7 for one's own mailboxes."""
    done = await conn.fetchval(
        "UPDATE mailboxes SET subscribed = $3 WHERE account_id = $1 AND name = $2 RETURNING 1",
        account_id, name, on,
    )
    if not done and on:
        raise NotFound(f"no mailbox {name}")
    if not done:  # the subscription of a deleted mailbox (see delete_mailbox)
        await conn.execute(
            "DELETE FROM imap_subscriptions WHERE account_id = $1 AND owner_id = $1 AND name = $2",
            account_id, name,
        )


# A delegate's subscriptions to an owner's mailboxes. Until the delegate
# subscribes or unsubscribes one of them, every mailbox the grants show counts
# as subscribed: Thunderbird and Apple Mail list subscribed folders only, and
# a secretary given the leader's mail expects to see it without hunting for it
# in a Subscribe dialog (what Exchange calls automapping). The first explicit
# choice writes a marker row with the empty name (never a mailbox name) and the
# owner's current mailboxes, and from then on the rows are the subscriptions.
_CHOSEN = ""


async def set_other_subscription(conn: asyncpg.Connection, account_id: int, owner_id: int,
                                 name: str, on: bool) -> None:
    async with conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO imap_subscriptions (account_id, owner_id, name) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING 1", account_id, owner_id, _CHOSEN,
        )
        if first:
            await conn.execute(
                "INSERT INTO imap_subscriptions (account_id, owner_id, name) "
                "SELECT $1, $2, name FROM mailboxes WHERE account_id = $2 "
                "ON CONFLICT DO NOTHING", account_id, owner_id,
            )
        if on:
            await conn.execute(
                "INSERT INTO imap_subscriptions (account_id, owner_id, name) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING", account_id, owner_id, name,
            )
        else:
            await conn.execute(
                "DELETE FROM imap_subscriptions "
                "WHERE account_id = $1 AND owner_id = $2 AND name = $3",
                account_id, owner_id, name,
            )


async def other_subscriptions(conn: asyncpg.Connection, account_id: int,
                              owner_id: int) -> frozenset[str] | None:
    """Names subscribed in ``owner_id``'s mailboxes; None: all of them (see above).

    For the account's own ``owner_id`` these are the subscriptions that
    outlived their deleted mailboxes (RFC 3501 §6.3.6), never None.
    """
    rows = await conn.fetch(
        "SELECT name FROM imap_subscriptions WHERE account_id = $1 AND owner_id = $2",
        account_id, owner_id,
    )
    names = {r["name"] for r in rows}
    if owner_id != account_id and _CHOSEN not in names:
        return None
    names.discard(_CHOSEN)
    return frozenset(names)


class UidCache:
    """One node's copy of recently selected mailboxes' visible UIDs.

    Never trusted blindly (DESIGN principle 4): each entry carries the
    UIDVALIDITY and HIGHESTMODSEQ it was read at, and :func:`select_state`
    compares them with the mailbox row read in the same snapshot. Every
    change to which messages are visible (delivery, APPEND, COPY/MOVE,
    EXPUNGE, restore, DELETE's hand-over) raises the mailbox's highestmodseq
    in the same transaction, so an equal modseq means an equal UID set, and
    a higher one is caught up from the rows changed since (the modseq index).
    Least recently used entries go first beyond ``max_runs`` runs of
    consecutive UIDs in all (:class:`.uidruns.UidRuns`; a mailbox without
    holes is one run), and none is used after ``max_age`` seconds: the retention purge deletes
    expunged rows outright after ``retention_days``, which no modseq records.
    """

    def __init__(self, max_runs: int = 1_000_000, max_age: float = 3600.0) -> None:
        self.max_runs = max_runs
        self.max_age = max_age
        self._entries: OrderedDict[tuple[int, int], tuple[int, int, UidRuns, float, str]] = (
            OrderedDict())
        self._names: dict[tuple[int, str], int] = {}
        self._total = 0

    def get(self, account_id: int, mailbox_id: int) -> tuple[int, int, UidRuns] | None:
        """(uidvalidity, modseq, uids) as last read, or None."""
        entry = self._entries.get((account_id, mailbox_id))
        if entry is None:
            return None
        if time.monotonic() - entry[3] > self.max_age:
            self._drop((account_id, mailbox_id))
            return None
        self._entries.move_to_end((account_id, mailbox_id))
        return entry[0], entry[1], entry[2]

    def has_name(self, account_id: int, name: str) -> bool:
        """Whether a mailbox of that name was cached (a hint: names change)."""
        return (account_id, name) in self._names

    def put(self, account_id: int, mailbox_id: int, uidvalidity: int, modseq: int,
            uids: UidRuns, name: str = "") -> None:
        key = (account_id, mailbox_id)
        old = self._entries.get(key)
        if old is not None and old[0] == uidvalidity and old[1] == modseq and old[4] == name:
            return  # already this state (keeps its age: it was read from the database then)
        self._drop(key)
        if uids.runs > self.max_runs:
            return
        self._entries[key] = (uidvalidity, modseq, uids.copy(), time.monotonic(), name)
        self._names[(account_id, name)] = mailbox_id
        self._total += uids.runs
        while self._total > self.max_runs:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple[int, int]) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._total -= old[2].runs
            if self._names.get((key[0], old[4])) == key[1]:
                del self._names[(key[0], old[4])]


#: Caught up from the changed rows below this many; else read afresh.
_CATCH_UP_LIMIT = 5000


async def _visible_uids(conn: asyncpg.Connection, account_id: int, mailbox_id: int,
                        mb: Mailbox, cache: UidCache | None) -> UidRuns:
    entry = cache.get(account_id, mailbox_id) if cache is not None else None
    if entry is not None and entry[0] == mb.uidvalidity and entry[1] <= mb.highestmodseq:
        _v, modseq, cached = entry
        if modseq == mb.highestmodseq:
            return cached.copy()
        rows = await conn.fetch(
            "SELECT uid, expunged_at IS NOT NULL AS gone FROM mailbox_messages"
            " WHERE account_id = $1 AND mailbox_id = $2 AND modseq > $3 LIMIT $4",
            account_id, mailbox_id, modseq, _CATCH_UP_LIMIT + 1,
        )
        if len(rows) <= _CATCH_UP_LIMIT:
            last = cached[-1] if len(cached) else 0
            gone = {r["uid"] for r in rows if r["gone"]}
            # UIDs only grow (RFC 3501 §2.3.1.1): a visible row the cache has
            # not seen is above its last UID; others changed only their flags.
            new = sorted(r["uid"] for r in rows if not r["gone"] and r["uid"] > last)
            runs = cached.without(gone) if gone else cached.copy()
            runs.extend(new)
            return runs
    # The UIDs as one bytea of big-endian int8s: 100,000 of them arrive as
    # 800 KB that become an array at C speed, not 100,000 Python ints.
    packed = await conn.fetchval(
        "SELECT string_agg(int8send(uid), ''::bytea ORDER BY uid) FROM mailbox_messages "
        "WHERE account_id = $1 AND mailbox_id = $2 AND expunged_at IS NULL",
        account_id, mailbox_id,
    )
    return UidRuns.from_sorted(unpack_uids(packed))


async def select_state(conn: asyncpg.Connection, account_id: int, mailbox: int | str,
                       reader_id: int | None, cache: UidCache | None = None) -> SelectState:
    """Mailbox row and visible UIDs in one snapshot (RFC 3501 §6.3.1).

    ``mailbox`` is the mailbox's id or its name (the owner's). Reads only
    this mailbox's index range (account_id, mailbox_id, uid), so the time
    does not depend on the rest of the database; with this node's
    :class:`UidCache`, only the rows changed since it last looked. The
    usual re-SELECT is one statement: the mailbox row (found by name) and
    its first unseen message, the cached UIDs being good while the row's
    UIDVALIDITY and HIGHESTMODSEQ are still theirs.
    """
    if isinstance(mailbox, str):
        key = "name"
        cached = cache is not None and cache.has_name(account_id, mailbox)
    else:
        key = "id"
        cached = cache is not None and cache.get(account_id, mailbox) is not None
    if reader_id is None:
        first_sql = (
            "SELECT min(m.uid) FROM mailbox_messages m WHERE m.account_id = b.account_id"
            " AND m.mailbox_id = b.id AND m.expunged_at IS NULL AND NOT ($3 = ANY(m.flags))")
        third: str | int = SEEN
    else:
        first_sql = (
            "SELECT min(m.uid) FROM mailbox_messages m WHERE m.account_id = b.account_id"
            " AND m.mailbox_id = b.id AND m.expunged_at IS NULL AND NOT EXISTS ("
            " SELECT 1 FROM imap_seen s WHERE s.owner_id = b.account_id AND s.mailbox_id = b.id"
            " AND s.reader_id = $3 AND s.uid = m.uid)")
        third = reader_id
    row_sql = ("SELECT " + _MB_COLS + ", (" + first_sql + ") AS first_unseen FROM mailboxes b"
               " WHERE b.account_id = $1 AND b." + key + " = $2")
    if cache is not None and cached:
        row = await conn.fetchrow(row_sql, account_id, mailbox, third)
        if row is None:
            raise NotFound(f"no mailbox {mailbox}" if key == "name"
                           else "the mailbox no longer exists")
        mb = _mailbox(row)
        entry = cache.get(account_id, mb.id)
        if entry is not None and entry[0] == mb.uidvalidity and entry[1] == mb.highestmodseq:
            return SelectState(mb, entry[2].copy(), row["first_unseen"])
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(row_sql, account_id, mailbox, third)
        if row is None:
            raise NotFound(f"no mailbox {mailbox}" if key == "name"
                           else "the mailbox no longer exists")
        mb = _mailbox(row)
        uids = await _visible_uids(conn, account_id, mb.id, mb, cache)
        if cache is not None:
            cache.put(account_id, mb.id, mb.uidvalidity, mb.highestmodseq, uids, mb.name)
    return SelectState(mb, uids, row["first_unseen"])


async def status(conn: asyncpg.Connection, account_id: int, mailbox_id: int,
                 reader_id: int | None) -> MailboxStatus:
    """RFC 3501 §6.3.10 in one query over this mailbox's visible rows."""
    if reader_id is None:
        row = await conn.fetchrow(
            "SELECT b.uidnext, b.uidvalidity, b.highestmodseq, count(m.uid) AS messages,"
            " count(m.uid) FILTER (WHERE NOT ($3 = ANY(m.flags))) AS unseen,"
            " count(m.uid) FILTER (WHERE $4 = ANY(m.flags)) AS deleted,"
            " coalesce(sum(m.size) FILTER (WHERE $4 = ANY(m.flags)), 0) AS deleted_size,"
            " coalesce(sum(m.size), 0) AS size "
            "FROM mailboxes b LEFT JOIN mailbox_messages m ON m.account_id = b.account_id"
            " AND m.mailbox_id = b.id AND m.expunged_at IS NULL "
            "WHERE b.account_id = $1 AND b.id = $2 GROUP BY b.account_id, b.id",
            account_id, mailbox_id, SEEN, DELETED,
        )
    else:
        row = await conn.fetchrow(
            "SELECT b.uidnext, b.uidvalidity, b.highestmodseq, count(m.uid) AS messages,"
            " count(m.uid) FILTER (WHERE NOT EXISTS (SELECT 1 FROM imap_seen s"
            "  WHERE s.owner_id = $1 AND s.mailbox_id = $2 AND s.reader_id = $3"
            "  AND s.uid = m.uid)) AS unseen,"
            " count(m.uid) FILTER (WHERE $4 = ANY(m.flags)) AS deleted,"
            " coalesce(sum(m.size) FILTER (WHERE $4 = ANY(m.flags)), 0) AS deleted_size,"
            " coalesce(sum(m.size), 0) AS size "
            "FROM mailboxes b LEFT JOIN mailbox_messages m ON m.account_id = b.account_id"
            " AND m.mailbox_id = b.id AND m.expunged_at IS NULL "
            "WHERE b.account_id = $1 AND b.id = $2 GROUP BY b.account_id, b.id",
            account_id, mailbox_id, reader_id, DELETED,
        )
    if row is None:
        raise NotFound("the mailbox no longer exists")
    return MailboxStatus(row["messages"], row["unseen"], row["deleted"], int(row["size"]),
                         row["uidnext"], row["uidvalidity"], row["highestmodseq"],
                         int(row["deleted_size"]))


async def quota_usage(conn: asyncpg.Connection, account_id: int) -> tuple[int, int | None]:
    """(used_bytes, quota_bytes or None for the default) from the directory."""
    row = await conn.fetchrow(
        "SELECT used_bytes, quota_bytes FROM accounts WHERE id = $1", account_id
    )
    if row is None:
        raise NotFound("no such account")
    return int(row["used_bytes"]), row["quota_bytes"]
