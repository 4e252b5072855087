"""One node's copy of recently fetched mailboxes' flags, for ``UID FETCH 1:* (FLAGS)``.

Thunderbird, Apple Mail and mbsync resynchronise by asking for the flags of
every message, again and again, of a mailbox that has mostly not changed.
Dovecot answers from its index file; this is the same idea kept in memory:
each entry holds a mailbox's visible UIDs (:class:`.uidruns.UidRuns`) and,
per message, the number of its flag set (a mailbox has few distinct sets),
as of one HIGHESTMODSEQ.

Never trusted blindly (DESIGN principle 4, like :class:`.imapstore.UidCache`):
:func:`flag_state` reads the mailbox row and every row changed since the
entry's modseq in one statement (one snapshot): every change to flags or to
which messages are visible raises the mailbox's highestmodseq in its own
transaction (delivery, APPEND, STORE, EXPUNGE, COPY/MOVE, restore), so the
entry brought up to that modseq is exactly the mailbox at that snapshot. Only
the owner's flags are kept (a delegate's ``\\Seen`` is their own: those
FETCHes read the database). Least recently used entries go first beyond
``max_messages`` messages in all, and none is used ``max_age`` seconds after
it was last brought up to date: the retention purge deletes expunged rows
outright after ``retention_days``, which no modseq records (as in UidCache).
"""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field

import asyncpg

from .errors import NotFound
from .uidruns import UidRuns, unpack_uids

__all__ = ["FlagCache", "FlagState", "flag_state"]

#: Caught up from the changed rows below this many; else read afresh.
_CATCH_UP_LIMIT = 5000

_FULL = (
    "SELECT b.uidvalidity, b.highestmodseq, x.u, x.f, NULL AS g FROM mailboxes b"
    " LEFT JOIN LATERAL (SELECT string_agg(int8send(m.uid), ''::bytea ORDER BY m.uid) AS u,"
    " string_agg(array_to_string(m.flags, ' '), E'\\n' ORDER BY m.uid) AS f"
    " FROM mailbox_messages m WHERE m.account_id = b.account_id AND m.mailbox_id = b.id"
    " AND m.expunged_at IS NULL) AS x ON TRUE"
    " WHERE b.account_id = $1 AND b.id = $2"
)

_CHANGES = (
    "SELECT b.uidvalidity, b.highestmodseq, x.u, x.f, x.g FROM mailboxes b"
    " LEFT JOIN LATERAL (SELECT string_agg(int8send(c.uid), ''::bytea ORDER BY c.uid) AS u,"
    " string_agg(array_to_string(c.flags, ' '), E'\\n' ORDER BY c.uid) AS f,"
    " string_agg(CASE WHEN c.expunged_at IS NULL THEN '0' ELSE '1' END, '' ORDER BY c.uid) AS g"
    " FROM (SELECT m.uid, m.flags, m.expunged_at FROM mailbox_messages m"
    " WHERE m.account_id = b.account_id AND m.mailbox_id = b.id AND m.modseq > $3"
    " LIMIT $4) AS c) AS x ON TRUE"
    " WHERE b.account_id = $1 AND b.id = $2"
)


@dataclass(slots=True)
class FlagState:
    """A mailbox's visible UIDs and their flag sets at ``modseq``."""

    uidvalidity: int
    modseq: int
    uids: UidRuns
    set_of: array  # array('I'): the flag set number of each message, in UID order
    sets: list[bytes] = field(default_factory=list)  # flag text of each set number
    _numbers: dict[bytes, int] = field(default_factory=dict)

    def number(self, text: bytes) -> int:
        n = self._numbers.get(text)
        if n is None:
            n = self._numbers[text] = len(self.sets)
            self.sets.append(text)
        return n


def _unpack(packed: bytes | None, text: str | None) -> tuple[array, list[bytes]]:
    if packed is None or text is None:
        return array("Q"), []
    uids = unpack_uids(packed)
    flags = text.encode("utf-8").split(b"\n")
    if len(flags) != len(uids):  # a newline inside a flag after all
        raise ValueError("flag texts do not line up with UIDs")
    return uids, flags


def _fresh(uidvalidity: int, modseq: int, uids: array, flags: list[bytes]) -> FlagState:
    st = FlagState(uidvalidity, modseq, UidRuns.from_sorted(uids), array("I"))
    number = st.number
    st.set_of = array("I", map(number, flags))
    return st


async def flag_state(conn: asyncpg.Connection, account_id: int, mailbox_id: int,
                     cache: FlagCache) -> FlagState | None:
    """The owner's flags of the mailbox's visible messages, now; one round trip usually.

    None when they cannot be kept this way (a flag with a newline in it,
    which this server never writes): the caller reads the database instead.
    """
    old = cache.get(account_id, mailbox_id)
    row = None
    if old is not None:
        row = await conn.fetchrow(_CHANGES, account_id, mailbox_id, old.modseq,
                                  _CATCH_UP_LIMIT + 1)
        if row is None:
            raise NotFound("the mailbox no longer exists")
        if row["uidvalidity"] == old.uidvalidity and row["highestmodseq"] >= old.modseq:
            try:
                uids, flags = _unpack(row["u"], row["f"])
            except ValueError:
                uids = None
            if uids is not None and len(uids) <= _CATCH_UP_LIMIT:
                if len(uids):
                    st = _caught_up(old, row["highestmodseq"], uids, flags, row["g"])
                else:  # nothing changed (an EXPUNGE of nothing also raises the modseq)
                    st = FlagState(old.uidvalidity, row["highestmodseq"], old.uids,
                                   old.set_of, old.sets, old._numbers)
                cache.put(account_id, mailbox_id, st)
                return st
    row = await conn.fetchrow(_FULL, account_id, mailbox_id)
    if row is None:
        raise NotFound("the mailbox no longer exists")
    try:
        uids, flags = _unpack(row["u"], row["f"])
    except ValueError:
        cache.drop(account_id, mailbox_id)
        return None
    st = _fresh(row["uidvalidity"], row["highestmodseq"], uids, flags)
    cache.put(account_id, mailbox_id, st)
    return st


def _caught_up(old: FlagState, modseq: int, uids: array, flags: list[bytes],
               gone: str) -> FlagState:
    """A new state: ``old`` with the rows changed since its modseq applied.

    Entries are never changed once made (copy on write): a session may be
    streaming from one while another brings it up to date. The flag set
    list only grows, so the two share it.
    """
    held = old.uids
    last = held[-1] if len(held) else 0
    expunged = {u for u, g in zip(uids, gone) if g == "1"}
    if expunged and any(u in held for u in expunged):
        # Rare (an expunge): rebuild the per-message numbers without them.
        pairs = [(u, old.sets[n]) for u, n in zip(held, old.set_of) if u not in expunged]
        st = _fresh(old.uidvalidity, modseq, array("Q", [u for u, _ in pairs]),
                    [f for _, f in pairs])
    else:
        st = FlagState(old.uidvalidity, modseq, held.copy(), array("I", old.set_of),
                       old.sets, old._numbers)
    held = st.uids
    new_uids: list[int] = []
    new_sets: list[int] = []
    number = st.number
    for u, g, text in zip(uids, gone, flags):
        if g == "1":
            continue
        if u > last:  # UIDs only grow (RFC 3501 §2.3.1.1): new mail
            new_uids.append(u)
            new_sets.append(number(text))
            continue
        i = held.position(u)
        if i >= 0:
            st.set_of[i] = number(text)
    if new_uids:
        held.extend(new_uids)
        st.set_of.extend(new_sets)
    return st


class FlagCache:
    def __init__(self, max_messages: int = 2_000_000, max_age: float = 3600.0) -> None:
        self.max_messages = max_messages
        self.max_age = max_age
        # Entries are never changed once put (see _caught_up), so an entry's
        # size is len(st.set_of) for as long as it is held. With the time put.
        self._entries: OrderedDict[tuple[int, int], tuple[FlagState, float]] = OrderedDict()
        self._total = 0

    def get(self, account_id: int, mailbox_id: int) -> FlagState | None:
        key = (account_id, mailbox_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[1] > self.max_age:
            self.drop(account_id, mailbox_id)
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, account_id: int, mailbox_id: int, st: FlagState) -> None:
        key = (account_id, mailbox_id)
        self.drop(account_id, mailbox_id)
        size = len(st.set_of)
        if size > self.max_messages:
            return
        self._entries[key] = (st, time.monotonic())
        self._total += size
        while self._total > self.max_messages:
            first = next(iter(self._entries))
            self.drop(*first)

    def drop(self, account_id: int, mailbox_id: int) -> None:
        key = (account_id, mailbox_id)
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._total -= len(entry[0].set_of)
