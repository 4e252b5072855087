"""SEARCH and SORT in SQL over one mailbox (RFC 3501 §6.4.4, RFC 5256, RFC 7162 §3.1.5).

Takes the *normalized* key tree of ``congvu.mailserver.imap.search.normalize``
(text already folded, sequence numbers already turned into UID ranges).
The store imports no protocol package (DESIGN "Layers"), so nodes are
recognised by their class name and attributes, not imported.

Text keys are RFC 3501 substring matches, case- and diacritic-insensitive:
the needle is folded like the stored ``search_headers``/``search_body`` and
compared with ``strpos``. Field keys (FROM, SUBJECT, HEADER x) are anchored
to their line of ``search_headers`` (one ``name: value`` line per field; read
from its copy per placement in ``mailbox_message_texts``, migration 008)
with a regular expression, after ``strpos`` has cheaply ruled out rows that
do not contain the needle at all. Rows are narrowed to the one mailbox by
the (account_id, mailbox_id, uid) index before any text is looked at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import asyncpg

from .imap_messages import Params, flags_expr

__all__ = ["SORT_KEYS", "max_modseq", "search_uids"]

#: RFC 5256 §3 sort keys and their columns (ties broken by UID, i.e. arrival).
#: Text keys compare octets (COLLATE "C"), as the i;ascii-casemap comparator
#: does on the case-folded keys stored at delivery.
SORT_KEYS = {
    "ARRIVAL": "m.internal_date",
    "DATE": "coalesce(b.sent_date, m.internal_date)",
    "FROM": 'b.sort_from COLLATE "C"',
    "SUBJECT": 'b.sort_subject COLLATE "C"',
    "SIZE": "m.size",
    "TO": 'b.sort_to COLLATE "C"',
    "CC": 'b.sort_cc COLLATE "C"',
}

# The blob columns SEARCH and SORT read (only these are carried per row).
_BLOB_COLUMNS = ("b.search_headers, b.search_body, b.sent_date, b.sort_subject, b.sort_from,"
                 " b.sort_to, b.sort_cc")

_REGEX_SPECIAL = re.compile(r"([^0-9A-Za-z \u0080-\U0010ffff])")


def _regex_literal(text: str) -> str:
    """Escape for a PostgreSQL ARE: backslash before every ASCII non-alphanumeric."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


class _Builder:
    def __init__(self, p: Params, reader_id: int | None, tz: str, *,
                 headers_in: str = "h") -> None:
        self.p = p
        self.reader_id = reader_id
        self.tz = tz
        # Where header text is: "h" (mailbox_message_texts joined as h) or
        # "m" (brought into the mailbox rows' subquery as m.hs).
        self.headers_in = headers_in
        self.needs_blob = False
        self.needs_headers = False
        self._flags: str | None = None

    def flags(self) -> str:
        if self._flags is None:
            self._flags = flags_expr(self.p, self.reader_id)
        return self._flags

    def header_line(self, field: str, needle: str) -> str:
        """The folded ``field: value`` line contains ``needle``.

        Reads the per-placement copy of ``search_headers`` (migration 008):
        the text up to 2000 octets is in the primary key's index
        (``headers_short``, from an index-only scan over this mailbox's
        stretch of it); a longer text is read from the row for that message
        only.
        """
        self.needs_headers = True
        pattern = self.p.add("(^|\n)" + _regex_literal(field) + ":[^\n]*"
                             + _regex_literal(needle))
        n = self.p.add(needle) if needle else None

        def test(text: str) -> str:
            if n is None:
                return text + " ~ " + pattern
            # CASE fixes the order: PostgreSQL may evaluate AND-ed quals of equal
            # cost in any order, and the regex on every row is what strpos avoids.
            return ("CASE WHEN strpos(" + text + ", " + n + ") > 0 THEN " + text + " ~ "
                    + pattern + " ELSE FALSE END")

        t = self.headers_in
        short = "h.headers_short" if t == "h" else "m.hs"
        long = ("(SELECT x.headers_long FROM mailbox_message_texts x"
                f" WHERE x.account_id = {t}.account_id AND x.mailbox_id = {t}.mailbox_id"
                f" AND x.uid = {t}.uid)")
        return ("(CASE WHEN " + short + " IS NOT NULL THEN " + test(short) + " ELSE "
                + test(long) + " END)")

    def build(self, k: Any) -> str:
        kind = type(k).__name__
        p = self.p
        if kind == "All":
            return "TRUE"
        if kind == "And":
            return "(" + " AND ".join(self.build(s) for s in k.keys) + ")"
        if kind == "Or":
            return "(" + self.build(k.left) + " OR " + self.build(k.right) + ")"
        if kind == "Not":
            return "NOT " + self.build(k.key)
        if kind == "Flag":
            if k.flag == "\\Recent":  # never set: RFC 9051 dropped \Recent
                return "FALSE" if k.present else "TRUE"
            if k.flag.startswith("\\"):  # a system flag, in canonical case
                test = p.add(k.flag) + " = ANY(" + self.flags() + ")"
            else:  # keywords compare case-insensitively (RFC 9051 §2.3.2), as in search.py
                test = ("EXISTS (SELECT 1 FROM unnest(" + self.flags() + ") AS kw(f)"
                        " WHERE lower(kw.f) = lower(" + p.add(k.flag) + "))")
            return test if k.present else "NOT " + test
        if kind == "Size":
            return "m.size " + (">" if k.op == "larger" else "<") + " " + p.add(k.size)
        if kind == "ModSeq":
            return "m.modseq >= " + p.add(k.modseq)
        if kind == "UidSet":
            ranges = k.seqset.resolve(2**32 - 1)
            if not ranges:
                return "FALSE"
            lo = p.add([a for a, _ in ranges])
            hi = p.add([b for _, b in ranges])
            return (f"EXISTS (SELECT 1 FROM unnest({lo}::bigint[], {hi}::bigint[]) AS r(lo, hi)"
                    " WHERE m.uid BETWEEN r.lo AND r.hi)")
        if kind == "DateKey":
            # RFC 3501 §6.4.4: dates "disregarding time and timezone"; we take
            # the organisation's local date (settings.timezone).
            if k.field == "sent":
                self.needs_blob = True
                col = "coalesce(b.sent_date, m.internal_date)"
            else:
                col = "m.internal_date"
            day = "(" + col + " AT TIME ZONE " + p.add(self.tz) + ")::date"
            op = {"before": "<", "on": "=", "since": ">="}[k.op]
            return day + " " + op + " " + p.add(k.date)
        if kind == "Text":
            needle = k.value
            if not needle:
                return "TRUE"
            if k.field == "body":
                self.needs_blob = True
                return f"strpos(b.search_body, {p.add(needle)}) > 0"
            if k.field == "text":
                self.needs_blob = True
                n = p.add(needle)
                return (f"(strpos(b.search_headers, {n}) > 0 OR strpos(b.search_body, {n}) > 0)")
            return self.header_line(k.field, needle)
        if kind == "Header":
            return self.header_line(k.name.lower(), k.value)
        if kind == "SeqSet":  # normalize() turns these into UidSet; be safe
            raise ValueError("sequence numbers must be converted to UIDs first")
        raise ValueError(f"unknown search key {kind}")


async def search_uids(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    key: Any,
    reader_id: int | None,
    *,
    max_uid: int,
    timezone: str = "UTC",
    sort: Sequence[tuple[str, bool]] = (),
    visible_only: bool = True,
) -> list[int]:
    """UIDs (≤ ``max_uid``, the session's view) matching ``key``, in UID or SORT order.

    Expunged-but-unreported rows are included; the session drops what is
    not in its view (``visible_only=False`` when the session still shows
    expunged messages it may not yet report). ``sort``: ``(key, reverse)`` pairs of :data:`SORT_KEYS`.
    """
    p = Params(account_id, mailbox_id, max_uid)
    b = _Builder(p, reader_id, timezone)
    cond = b.build(key)
    order = []
    for name, reverse in sort:
        col = SORT_KEYS[name]
        if col.startswith("b.") or "b." in col:
            b.needs_blob = True
        order.append(col + (" DESC" if reverse else ""))
    order.append("m.uid")
    # The best plan depends on this mailbox's size against the whole store:
    # never reuse a generic plan cached for another mailbox.
    settings = ["SET LOCAL plan_cache_mode = force_custom_plan"]
    where = ("m.account_id = $1 AND m.mailbox_id = $2 AND m.uid <= $3"
             + (" AND m.expunged_at IS NULL" if visible_only else ""))
    if not b.needs_blob:
        # Rows and header text both from this mailbox's stretch of their
        # (account_id, mailbox_id, uid) indexes: whatever the plan (a header
        # test ANDed at the top filters the header rows first; merge, hash or
        # a probe per row), it reads this mailbox only.
        sql = "SELECT m.uid FROM mailbox_messages m"
        if b.needs_headers:
            sql += (" JOIN mailbox_message_texts h ON h.account_id = $1 AND h.mailbox_id = $2"
                    " AND h.uid <= $3 AND h.uid = m.uid")
        sql += " WHERE " + where + " AND (" + cond + ") ORDER BY " + ", ".join(order)
        # The planner cannot tell how many rows a text test keeps; a nested
        # loop on a wrong guess probes one index per message (100,000 probes,
        # a quarter second). A merge or hash join is linear whatever it keeps.
        settings.append("SET LOCAL enable_nestloop = off")
    else:
        if b.needs_headers:  # the header text comes along in the rows' subquery
            p = Params(account_id, mailbox_id, max_uid)
            b = _Builder(p, reader_id, timezone, headers_in="m")
            cond = b.build(key)
        # The mailbox's rows first (with their header text, both in UID order
        # from their indexes), then each one's blob by primary key. OFFSET 0
        # keeps the planner from turning this around into a scan of every blob
        # in the database when it guesses a text condition to be selective:
        # the time depends on this mailbox, not on the rest of the database.
        sql = "SELECT m.uid FROM (SELECT m.*"
        if b.needs_headers:
            sql += (", h.headers_short AS hs FROM mailbox_messages m"
                    " LEFT JOIN mailbox_message_texts h ON h.account_id = $1 AND h.mailbox_id = $2 AND h.uid <= $3"
                    " AND h.uid = m.uid")
        else:
            sql += " FROM mailbox_messages m"
        sql += (" WHERE " + where + " OFFSET 0) m CROSS JOIN LATERAL (SELECT " + _BLOB_COLUMNS
                + " FROM message_blobs b WHERE b.sha256 = m.sha256 OFFSET 0) b"
                " WHERE (" + cond + ") ORDER BY " + ", ".join(order))
    async with conn.transaction():  # (a savepoint if the caller has a transaction)
        await conn.execute("; ".join(settings))
        rows = await conn.fetch(sql, *p.values)
    return [r["uid"] for r in rows]


async def max_modseq(conn: asyncpg.Connection, account_id: int, mailbox_id: int,
                     uids: Sequence[int]) -> int | None:
    """RFC 7162 §3.1.5: the highest modseq among the found messages."""
    return await conn.fetchval(
        "SELECT max(modseq) FROM mailbox_messages WHERE account_id = $1 "
        "AND mailbox_id = $2 AND uid = ANY($3::bigint[])",
        account_id, mailbox_id, list(uids),
    )
