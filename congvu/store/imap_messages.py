"""IMAP messages: FETCH rows, flag changes, EXPUNGE, COPY/MOVE, APPEND, change polling.

Consistency discipline shared with SMTP delivery (``store/delivery.py``):
every change to a mailbox first takes the mailbox row with
``UPDATE mailboxes SET ... highestmodseq = highestmodseq + 1 RETURNING``,
so UIDs and modseqs are allocated in the database, strictly increasing
and in commit order (RFC 3501 §2.3.1.1, RFC 7162 §3.1.1). An expunge sets
``expunged_at`` and a new modseq instead of deleting: the row stays out of
sight for the retention period and other sessions find it with
:func:`changes_since`.

``reader_id`` is the delegate reading someone else's mailbox: their
``\\Seen`` lives in ``imap_seen`` (RFC 4314 §4: ``s`` right, per-user seen),
everything else in ``mailbox_messages.flags``. ``None`` means the owner.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .errors import NotFound
from .imapstore import DELETED, SEEN, notify
from .uidruns import unpack_uids

__all__ = [
    "AppendResult",
    "Change",
    "ColumnBatches",
    "CopyResult",
    "FetchRow",
    "FlagBatches",
    "append_messages",
    "changes_since",
    "copy_messages",
    "expunge",
    "fetch_column_arrays",
    "fetch_rows",
    "move_all",
    "store_flags",
]

_READER_FLAGS = (
    "(array_remove(m.flags, '\\Seen') || CASE WHEN EXISTS (SELECT 1 FROM imap_seen s"
    " WHERE s.owner_id = m.account_id AND s.mailbox_id = m.mailbox_id"
    " AND s.reader_id = {r} AND s.uid = m.uid) THEN ARRAY['\\Seen'] ELSE '{{}}'::text[] END)"
)


class Params:
    """Numbered ``$n`` placeholders for SQL composed from constant fragments."""

    def __init__(self, *values: Any) -> None:
        self.values: list[Any] = list(values)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def flags_expr(p: Params, reader_id: int | None) -> str:
    if reader_id is None:
        return "m.flags"
    return _READER_FLAGS.format(r=p.add(reader_id))


def ranges_join(p: Params, ranges: Sequence[tuple[int, int]]) -> str:
    """Restrict ``m.uid`` to inclusive UID ranges with one index probe per range."""
    lo = p.add([a for a, _ in ranges])
    hi = p.add([b for _, b in ranges])
    return (f" JOIN unnest({lo}::bigint[], {hi}::bigint[]) AS r(lo, hi)"
            " ON m.uid BETWEEN r.lo AND r.hi")


def uid_restriction(p: Params, ranges: Sequence[tuple[int, int]]) -> tuple[str, str]:
    """``(join, condition)`` restricting ``m.uid`` to inclusive UID ranges: one
    range (``1:*`` and the like) is a plain index range scan, a condition to
    AND after the WHERE; several are :func:`ranges_join`."""
    if len(ranges) == 1:
        return "", (f" AND m.uid BETWEEN {p.add(ranges[0][0])}::bigint"
                    f" AND {p.add(ranges[0][1])}::bigint")
    return ranges_join(p, ranges), ""


@dataclass(frozen=True, slots=True)
class Change:
    """A row changed after a modseq: new, flags changed, or expunged."""

    uid: int
    flags: tuple[str, ...]
    modseq: int
    expunged: bool


@dataclass(frozen=True, slots=True)
class FetchRow:
    uid: int
    flags: tuple[str, ...] = ()
    modseq: int = 0
    internal_date: datetime | None = None
    size: int = 0
    envelope: bytes | None = None
    body: bytes | None = None
    bodystructure: bytes | None = None
    raw: bytes | None = None
    part_map: Any = None


@dataclass(frozen=True, slots=True)
class CopyResult:
    uidvalidity: int
    source_uids: tuple[int, ...]
    dest_uids: tuple[int, ...]
    dest_modseq: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    uidvalidity: int
    uids: tuple[int, ...]


async def _bump(conn: asyncpg.Connection, account_id: int, mailbox_id: int,
                uids: int = 0) -> asyncpg.Record:
    """Lock the mailbox row and allocate ``uids`` UIDs and one modseq."""
    row = await conn.fetchrow(
        "UPDATE mailboxes SET uidnext = uidnext + $3, highestmodseq = highestmodseq + 1 "
        "WHERE account_id = $1 AND id = $2 "
        "RETURNING uidnext - $3 AS first_uid, highestmodseq, uidvalidity",
        account_id, mailbox_id, uids,
    )
    if row is None:
        raise NotFound("the mailbox no longer exists")
    return row


async def changes_since(conn: asyncpg.Connection, account_id: int, mailbox_id: int,
                        modseq: int, reader_id: int | None) -> list[Change]:
    """Rows whose modseq is above ``modseq`` (RFC 7162 §3.1; drives IDLE/NOOP updates)."""
    p = Params(account_id, mailbox_id, modseq)
    fl = flags_expr(p, reader_id)
    rows = await conn.fetch(
        "SELECT m.uid, " + fl + " AS flags, m.modseq, m.expunged_at IS NOT NULL AS gone "
        "FROM mailbox_messages m WHERE m.account_id = $1 AND m.mailbox_id = $2 "
        "AND m.modseq > $3 ORDER BY m.uid",
        *p.values,
    )
    return [Change(r["uid"], tuple(r["flags"]), r["modseq"], r["gone"]) for r in rows]


_ROW_ORDER = ("modseq", "internal_date", "size", "envelope", "body", "bodystructure", "raw",
              "part_map")
_FETCH_COLS = {
    "modseq": "m.modseq",
    "internal_date": "m.internal_date",
    "size": "m.size",
    "envelope": "b.envelope",
    "body": "b.body",
    "bodystructure": "b.bodystructure",
    "raw": "b.raw",
    "part_map": "b.part_map",
}


async def fetch_rows(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    ranges: Sequence[tuple[int, int]],
    columns: Iterable[str],
    reader_id: int | None,
    *,
    changedsince: int | None = None,
    batch: int | None = None,
) -> AsyncIterator[list[FetchRow]]:
    """Rows of UIDs in ``ranges`` (expunged-but-unreported ones included) in UID order.

    Streams with a server-side cursor in batches, so ``FETCH 1:*`` over
    100,000 messages never holds them all. Must run inside a transaction.
    """
    wanted = {c for c in columns if c in _FETCH_COLS}
    p = Params(account_id, mailbox_id)
    # Columns in FetchRow's field order (NULL for what was not asked), so each
    # record becomes a FetchRow positionally: no per-row dict on the hot path.
    select = ["m.uid", flags_expr(p, reader_id) + " AS flags"] + [
        _FETCH_COLS[c] if c in wanted else "NULL" for c in _ROW_ORDER
    ]
    blob = any(_FETCH_COLS[c].startswith("b.") for c in wanted)
    join, cond = uid_restriction(p, ranges)
    sql = "SELECT " + ", ".join(select) + " FROM mailbox_messages m" + join
    if blob:
        sql += " JOIN message_blobs b ON b.sha256 = m.sha256"
    sql += " WHERE m.account_id = $1 AND m.mailbox_id = $2" + cond
    if changedsince is not None:  # RFC 7162 §3.1.4.1
        sql += " AND m.modseq > " + p.add(changedsince)
    sql += " ORDER BY m.uid"
    if batch is None:
        # Whole messages can be large: few at a time. Small columns: many.
        batch = 20 if "raw" in wanted else 2000
    cursor = await conn.cursor(sql, *p.values)
    while True:
        # One round trip per batch (not per row): FETCH 1:* over 100,000
        # messages is a few dozen round trips.
        recs = await cursor.fetch(batch)
        if not recs:
            return
        yield [FetchRow(rec[0], tuple(rec[1]), rec[2] or 0, rec[3], rec[4] or 0, *rec[5:])
               for rec in recs]
        if len(recs) < batch:
            return


class ColumnBatches:
    """``(uids, values)`` of one column in UID order, a batch per statement: two arrays.

    ``what`` is ``"flags"`` (space-separated flag text as the reader sees
    it) or ``"envelope"`` (the ENVELOPE stored at delivery, from its
    per-placement copy, migration 008). Batches walk the UID index (keyset:
    ``after`` is the last UID of the batch before), so ``FETCH 1:*`` over
    100,000 messages never holds them all; asyncpg decodes each array in C,
    which is what makes this cheaper than one record per row.
    Expunged-but-unreported rows are included (the caller filters by its
    view); each batch is its own snapshot.
    """

    __slots__ = ("after_i", "limit_i", "sql", "values")

    def __init__(self, account_id: int, mailbox_id: int, ranges: Sequence[tuple[int, int]],
                 reader_id: int | None, what: str, *, changedsince: int | None = None) -> None:
        p = Params(account_id, mailbox_id)
        table = "mailbox_messages m"
        if what == "flags":
            value, blob = "array_to_string(" + flags_expr(p, reader_id) + ", ' ')", ""
        elif what == "envelope" and changedsince is None:
            # The per-placement copy (migration 008): this mailbox's stretch of
            # an index that INCLUDEs it, in UID order; the same rows as
            # mailbox_messages (expunged ones kept for retention too).
            table = "mailbox_message_texts m"
            value, blob = ("CASE WHEN m.envelope_short IS NOT NULL THEN m.envelope_short ELSE"
                           " (SELECT x.envelope_long FROM mailbox_message_texts x"
                           " WHERE x.account_id = m.account_id AND x.mailbox_id = m.mailbox_id"
                           " AND x.uid = m.uid) END"), ""
        elif what == "envelope":
            value, blob = "b.envelope", " JOIN message_blobs b ON b.sha256 = m.sha256"
        else:
            raise ValueError(what)
        self.after_i = len(p.values)
        after = p.add(0)
        self.limit_i = len(p.values)
        limit = p.add(0)
        join, cond = uid_restriction(p, ranges)
        sql = ("SELECT m.uid AS u, " + value + " AS v FROM " + table + join + blob
               + " WHERE m.account_id = $1 AND m.mailbox_id = $2" + cond)
        sql += f" AND m.uid > {after}::bigint"
        if changedsince is not None:  # RFC 7162 §3.1.4.1
            sql += " AND m.modseq > " + p.add(changedsince)
        self.sql = ("SELECT array_agg(u ORDER BY u), array_agg(v ORDER BY u) FROM ("
                    + sql + f" ORDER BY m.uid LIMIT {limit}::bigint) AS s")
        self.values = p.values

    async def fetch(self, conn: asyncpg.Connection, after: int,
                    limit: int) -> tuple[list[int], list[Any]]:
        """UIDs above ``after`` (at most ``limit``) and their values, in UID order."""
        values = list(self.values)
        values[self.after_i] = after
        values[self.limit_i] = limit
        # fetchrow, not prepare(): the connection's statement cache keeps the
        # parsed statement, so a repeated FETCH costs one round trip a batch.
        uids, vals = await conn.fetchrow(self.sql, *values)
        return uids or [], vals or []


async def fetch_column_arrays(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    ranges: Sequence[tuple[int, int]],
    reader_id: int | None,
    what: str,
    *,
    changedsince: int | None = None,
    batch: int | None = None,
) -> AsyncIterator[tuple[list[int], list[Any]]]:
    """:class:`ColumnBatches` one after another (``batch`` rows each)."""
    query = ColumnBatches(account_id, mailbox_id, ranges, reader_id, what,
                          changedsince=changedsince)
    if batch is None:
        batch = 20000 if what == "flags" else 5000
    after = 0
    while True:
        uids, vals = await query.fetch(conn, after, batch)
        if not uids:
            return
        yield uids, vals
        if len(uids) < batch:
            return
        after = uids[-1]


class FlagBatches:
    """``UID FETCH 1:* (FLAGS)`` (the resync favourite) as a few large statements.

    Each batch is one statement returning two values: the UIDs packed as
    big-endian int8s (they become an ``array('Q')`` at C speed) and the flag
    texts (space-separated, as the reader sees them) joined by newlines,
    which never occur in a flag (RFC 3501 §9: flags are atoms). So 10,000
    messages cost one round trip, no record and no Python object per row
    except the flag text the line needs. Batches are keyset-paged on the UID
    index (``after``), each its own snapshot; the caller reads the next
    while it formats this one.

    ``seen_modseq`` narrows the rows to what a session's view can hold:
    visible ones, ones expunged after that modseq (the session has not
    heard of it yet), and ``keep`` (expunges found but not yet reported),
    so expunged rows kept for retention do not break the batch/view match.
    """

    __slots__ = ("after_i", "inner", "limit_i", "sql", "values")

    def __init__(self, account_id: int, mailbox_id: int, ranges: Sequence[tuple[int, int]],
                 reader_id: int | None, *, seen_modseq: int | None = None,
                 keep: Sequence[int] = ()) -> None:
        p = Params(account_id, mailbox_id)
        sql = ("SELECT m.uid, array_to_string(" + flags_expr(p, reader_id)
               + ", ' ') AS f FROM mailbox_messages m")
        join, cond = uid_restriction(p, ranges)
        sql += join + " WHERE m.account_id = $1 AND m.mailbox_id = $2" + cond
        if seen_modseq is not None:
            sql += (" AND (m.expunged_at IS NULL OR m.modseq > " + p.add(seen_modseq)
                    + "::bigint")
            sql += (" OR m.uid = ANY(" + p.add(list(keep)) + "::bigint[]))") if keep else ")"
        self.after_i = len(p.values)
        sql += " AND m.uid > " + p.add(0) + "::bigint"
        self.limit_i = len(p.values)
        sql += " ORDER BY m.uid LIMIT " + p.add(0) + "::bigint"
        self.inner = sql
        # The aggregates' ORDER BY costs no sort: PostgreSQL 16 sees the rows
        # arrive in that order already (the LIMIT subquery's index scan).
        self.sql = ("SELECT string_agg(int8send(uid), ''::bytea ORDER BY uid),"
                    " string_agg(f, E'\\n' ORDER BY uid) FROM (" + sql + ") AS s")
        self.values = p.values

    async def fetch(self, conn: asyncpg.Connection, after: int,
                    limit: int) -> tuple[array, list[bytes]]:
        """UIDs above ``after`` (at most ``limit``) and their flag texts, in UID order."""
        values = list(self.values)
        values[self.after_i] = after
        values[self.limit_i] = limit
        # fetchrow, not prepare(): the connection's statement cache keeps the
        # parsed statement, so a repeated FETCH costs one round trip a batch.
        packed, text = await conn.fetchrow(self.sql, *values)
        uids = unpack_uids(packed)
        if packed is None:
            return uids, []
        flags = text.encode("utf-8").split(b"\n")
        if len(flags) != len(uids):  # a newline in a flag after all: one text per row
            rows = await conn.fetch("SELECT f FROM (" + self.inner + ") AS s ORDER BY uid",
                                    *values)
            flags = [r[0].encode("utf-8") for r in rows]
        return uids, flags


async def store_flags(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    ranges: Sequence[tuple[int, int]],
    mode: str,
    flags: Sequence[str],
    reader_id: int | None,
    *,
    unchangedsince: int | None = None,
) -> tuple[list[Change], list[int]]:
    """RFC 3501 §6.4.6 STORE on visible messages; returns (changes, modified-UIDs).

    ``mode``: ``+`` add, ``-`` remove, ``""`` replace. With ``unchangedsince``
    (RFC 7162 §3.1.3) rows with a higher modseq are left alone and returned
    as the second item (the ``MODIFIED`` response code).
    """
    flags = list(dict.fromkeys(flags))
    bump = await _bump(conn, account_id, mailbox_id)
    ms = bump["highestmodseq"]
    failed: list[int] = []
    p = Params(account_id, mailbox_id)
    where = ranges_join(p, ranges) + " WHERE m.account_id = $1 AND m.mailbox_id = $2" \
        " AND m.expunged_at IS NULL"
    if unchangedsince is not None:
        u = p.add(unchangedsince)
        rows = await conn.fetch("SELECT m.uid FROM mailbox_messages m" + where
                                + " AND m.modseq > " + u, *p.values)
        failed = [r["uid"] for r in rows]
        where += " AND m.modseq <= " + u
    changed: set[int] = set()
    shared_flags = [f for f in flags if f != SEEN] if reader_id is not None else flags
    touch_shared = mode == "" or bool(shared_flags)
    if touch_shared:
        q = Params(*p.values)
        f = q.add(shared_flags)
        if mode == "+":
            new = f"m.flags || ARRAY(SELECT x FROM unnest({f}::text[]) x WHERE x <> ALL(m.flags))"
            differs = f"NOT (m.flags @> {f}::text[])"
        elif mode == "-":
            new = f"ARRAY(SELECT x FROM unnest(m.flags) x WHERE x <> ALL({f}::text[]))"
            differs = f"m.flags && {f}::text[]"
        elif reader_id is None:
            new = f"{f}::text[]"
            differs = f"NOT (m.flags @> {f}::text[] AND m.flags <@ {f}::text[])"
        else:  # replace, keeping the owner's own \Seen (not the delegate's to change)
            new = (f"{f}::text[] || CASE WHEN '\\Seen' = ANY(m.flags) THEN ARRAY['\\Seen']"
                   " ELSE '{}'::text[] END")
            differs = (f"NOT (array_remove(m.flags, '\\Seen') @> {f}::text[]"
                       f" AND array_remove(m.flags, '\\Seen') <@ {f}::text[])")
        rows = await conn.fetch(
            "UPDATE mailbox_messages AS t SET flags = sub.new, modseq = " + q.add(ms)
            + " FROM (SELECT m.uid, " + new + " AS new FROM mailbox_messages m" + where
            + " AND " + differs + ") AS sub"
            " WHERE t.account_id = $1 AND t.mailbox_id = $2 AND t.uid = sub.uid RETURNING t.uid",
            *q.values,
        )
        changed.update(r["uid"] for r in rows)
    if reader_id is not None and (SEEN in flags or mode == ""):
        q = Params(*p.values)
        r_ = q.add(reader_id)
        add = (mode == "+") or (mode == "" and SEEN in flags)
        if add:
            rows = await conn.fetch(
                "INSERT INTO imap_seen (owner_id, mailbox_id, reader_id, uid) "
                "SELECT m.account_id, m.mailbox_id, " + r_ + ", m.uid FROM mailbox_messages m"
                + where + " ON CONFLICT DO NOTHING RETURNING uid", *q.values,
            )
        else:
            rows = await conn.fetch(
                "DELETE FROM imap_seen s USING (SELECT m.uid FROM mailbox_messages m" + where
                + ") AS sub WHERE s.owner_id = $1 AND s.mailbox_id = $2 AND s.reader_id = "
                + r_ + " AND s.uid = sub.uid RETURNING s.uid", *q.values,
            )
        seen_changed = {r["uid"] for r in rows} - changed
        if seen_changed:
            # Bump the row's modseq so the reader's other sessions see the change.
            await conn.execute(
                "UPDATE mailbox_messages SET modseq = $4 WHERE account_id = $1 "
                "AND mailbox_id = $2 AND uid = ANY($3::bigint[])",
                account_id, mailbox_id, sorted(seen_changed), ms,
            )
            changed |= seen_changed
    if not changed:
        return [], failed
    q = Params(account_id, mailbox_id, sorted(changed))
    fl = flags_expr(q, reader_id)
    rows = await conn.fetch(
        "SELECT m.uid, " + fl + " AS flags, m.modseq FROM mailbox_messages m "
        "WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.uid = ANY($3::bigint[]) "
        "ORDER BY m.uid", *q.values,
    )
    await notify(conn, account_id, mailbox_id, ms)
    return [Change(r["uid"], tuple(r["flags"]), r["modseq"], False) for r in rows], failed


async def expunge(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    ranges: Sequence[tuple[int, int]] | None,
    *,
    deleted_only: bool = True,
    reason: str = "expunge",
) -> list[int]:
    """Hide ``\\Deleted`` messages (RFC 3501 §6.4.3; RFC 4315 §2.1 with ``ranges``).

    The rows keep their bytes for ``retention_days`` (see :mod:`.imap_retention`).
    """
    bump = await _bump(conn, account_id, mailbox_id)
    p = Params(account_id, mailbox_id, bump["highestmodseq"], reason)
    sql = ("UPDATE mailbox_messages AS t SET expunged_at = now(), modseq = $3, "
           "expunge_reason = $4 FROM (SELECT m.uid FROM mailbox_messages m")
    if ranges is not None:
        sql += ranges_join(p, ranges)
    sql += " WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.expunged_at IS NULL"
    if deleted_only:
        sql += " AND " + p.add(DELETED) + " = ANY(m.flags)"
    sql += (") AS sub WHERE t.account_id = $1 AND t.mailbox_id = $2 AND t.uid = sub.uid "
            "RETURNING t.uid, t.size")
    rows = await conn.fetch(sql, *p.values)
    if rows:
        await _add_used(conn, account_id, -sum(r["size"] for r in rows))
        await notify(conn, account_id, mailbox_id, bump["highestmodseq"])
    return sorted(r["uid"] for r in rows)


async def _add_used(conn: asyncpg.Connection, account_id: int, delta: int) -> None:
    if delta:
        await conn.execute(
            "UPDATE accounts SET used_bytes = greatest(used_bytes + $2, 0) WHERE id = $1",
            account_id, delta,
        )


async def _lock_pair(conn: asyncpg.Connection, a: tuple[int, int], b: tuple[int, int]) -> None:
    # Lock both mailbox rows in key order so two crossing MOVEs cannot deadlock.
    for acc, mb in sorted({a, b}):
        await conn.execute(
            "SELECT 1 FROM mailboxes WHERE account_id = $1 AND id = $2 FOR UPDATE", acc, mb
        )


async def copy_messages(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    ranges: Sequence[tuple[int, int]],
    dest_account_id: int,
    dest_mailbox_id: int,
    reader_id: int | None,
    *,
    move: bool = False,
) -> CopyResult:
    """RFC 3501 §6.4.7 COPY / RFC 6851 MOVE; new UIDs in source order (RFC 4315 §3)."""
    await _lock_pair(conn, (account_id, mailbox_id), (dest_account_id, dest_mailbox_id))
    p = Params(account_id, mailbox_id)
    # The destination owner keeps the flags they see: a delegate copying into
    # their own mailbox gets their own \Seen.
    view = reader_id if reader_id is not None and reader_id == dest_account_id else None
    fl = flags_expr(p, view)
    rows = await conn.fetch(
        "SELECT m.uid, m.sha256, m.size, m.internal_date, " + fl + " AS flags "
        "FROM mailbox_messages m" + ranges_join(p, ranges)
        + " WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.expunged_at IS NULL "
        "ORDER BY m.uid", *p.values,
    )
    if not rows:
        mb = await _bump(conn, dest_account_id, dest_mailbox_id)
        return CopyResult(mb["uidvalidity"], (), (), mb["highestmodseq"])
    n = len(rows)
    dest = await _bump(conn, dest_account_id, dest_mailbox_id, n)
    first, ms = dest["first_uid"], dest["highestmodseq"]
    new_uids = list(range(first, first + n))
    await conn.execute(
        "INSERT INTO mailbox_messages (account_id, mailbox_id, uid, sha256, size, "
        "internal_date, flags, modseq) "
        "SELECT $1, $2, u, s, z, d, coalesce(string_to_array(f, ' '), '{}'), $3 "
        "FROM unnest($4::bigint[], $5::bytea[], $6::int[], $7::timestamptz[], $8::text[]) "
        "AS x(u, s, z, d, f)",
        dest_account_id, dest_mailbox_id, ms, new_uids, [r["sha256"] for r in rows],
        [r["size"] for r in rows], [r["internal_date"] for r in rows],
        [" ".join(r["flags"]) or None for r in rows],
    )
    size = sum(r["size"] for r in rows)
    await _add_used(conn, dest_account_id, size)
    await notify(conn, dest_account_id, dest_mailbox_id, ms)
    src_uids = [r["uid"] for r in rows]
    if move:
        src = await _bump(conn, account_id, mailbox_id)
        await conn.execute(
            "UPDATE mailbox_messages SET expunged_at = now(), modseq = $4, expunge_reason = 'move'"
            " WHERE account_id = $1 AND mailbox_id = $2 AND uid = ANY($3::bigint[])",
            account_id, mailbox_id, src_uids, src["highestmodseq"],
        )
        await _add_used(conn, account_id, -size)
        await notify(conn, account_id, mailbox_id, src["highestmodseq"])
    return CopyResult(dest["uidvalidity"], tuple(src_uids), tuple(new_uids), ms)


async def move_all(conn: asyncpg.Connection, account_id: int, mailbox_id: int,
                   dest_mailbox_id: int) -> CopyResult:
    """Every visible message of one mailbox into another (RENAME INBOX, RFC 3501 §6.3.5)."""
    return await copy_messages(conn, account_id, mailbox_id, [(1, 2**63 - 1)], account_id,
                               dest_mailbox_id, None, move=True)


async def append_messages(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    messages: Sequence[tuple[bytes, dict[str, Any], Sequence[str], datetime]],
) -> AppendResult:
    """RFC 3501 §6.3.11 APPEND (RFC 3502 MULTIAPPEND: all or nothing).

    Each message is ``(sha256, blob_row, flags, internal_date)`` where
    ``blob_row`` holds ``raw`` and the parse-once columns
    (``ParsedMessage.to_row()``). The blob is stored once per SHA-256.
    """
    dest = await _bump(conn, account_id, mailbox_id, len(messages))
    first, ms = dest["first_uid"], dest["highestmodseq"]
    total = 0
    for i, (sha, row, flags, when) in enumerate(messages):
        row = dict(row)
        if isinstance(row.get("part_map"), str):
            row["part_map"] = json.loads(row["part_map"])
        cols = ["sha256", *row.keys()]
        await conn.execute(
            "INSERT INTO message_blobs (" + ", ".join(cols) + ") VALUES ("
            + ", ".join(f"${k + 1}" for k in range(len(cols)))
            + ") ON CONFLICT (sha256) DO NOTHING",
            sha, *row.values(),
        )
        await conn.execute(
            "INSERT INTO mailbox_messages (account_id, mailbox_id, uid, sha256, size, "
            "internal_date, flags, modseq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            account_id, mailbox_id, first + i, sha, row["size"], when, list(flags), ms,
        )
        total += row["size"]
    await _add_used(conn, account_id, total)
    await notify(conn, account_id, mailbox_id, ms)
    return AppendResult(dest["uidvalidity"], tuple(range(first, first + len(messages))))
