"""FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2; RFC 7162 CHANGEDSINCE/VANISHED).

ENVELOPE, BODY and BODYSTRUCTURE are the wire bytes stored at delivery;
``BODY[section]<partial>`` slices the stored message with its part map
(``mime.section_bytes``): nothing is parsed again here (DESIGN principle 3).
Rows stream from a server-side cursor in batches and each batch is written
and drained before the next is read, so ``FETCH 1:* (FLAGS)`` over 100,000
messages needs neither a giant list nor a giant string.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from functools import partial
from typing import Any, TypeVar

from congvu.mailserver.mime import section_bytes
from congvu.store import flagcache
from congvu.store import imap_messages as msgs

from . import commands as c
from . import responses as r
from .state import SELECTED, allowed_in

__all__ = ["FetchCommands"]

_U = TypeVar("_U", bound=Sequence[int])
_V = TypeVar("_V")

_COLUMNS = {
    "INTERNALDATE": ("internal_date",),
    "RFC822.SIZE": ("size",),
    "ENVELOPE": ("envelope",),
    "BODYSTRUCTURE": ("bodystructure",),
    "MODSEQ": ("modseq",),
    "RFC822": ("raw", "part_map"),
    "RFC822.HEADER": ("raw", "part_map"),
    "RFC822.TEXT": ("raw", "part_map"),
    "BINARY": ("raw", "part_map"),
    "BINARY.SIZE": ("raw", "part_map"),
}


#: Rows in the first and in later batches of ``FETCH (FLAGS)``: the first
#: small so output starts early, the later ones large (one round trip each).
_FLAG_FIRST_BATCH = 2000
_FLAG_BATCH = 20000
#: Rows in the first and in later batches of FETCH (ENVELOPE).
_COLUMN_FIRST_BATCH = 500
_COLUMN_BATCH = 4000
#: Lines per write when FETCH (FLAGS) is answered from the node's flag copy.
_FLAG_CHUNK = 2500
#: A FETCH (FLAGS) of at least this many messages makes the node copy a
#: mailbox's flags (smaller ones use a copy only when there is one).
_FLAG_CACHE_FROM = 500


async def _pipelined(fetch: Callable[[int, int], Awaitable[tuple[_U, _V]]], first: int,
                     later: int) -> AsyncGenerator[tuple[_U, _V], None]:
    """Batches ``(uids, values)`` of ``fetch(after_uid, limit)``, the next asked
    for before this one is yielded, so PostgreSQL works on it while the caller
    formats and sends this one (two cores).

    The first batch holds at most *first* rows (the client reads at once),
    later ones *later*. Use it under :func:`contextlib.aclosing` inside the
    connection's ``async with``: closing waits for a statement in flight, so
    a connection never goes back to the pool with one.
    """
    limit = first
    nxt: asyncio.Future[tuple[_U, _V]] | None = asyncio.ensure_future(fetch(0, limit))
    try:
        while nxt is not None:
            batch = await nxt
            got = batch[0]
            if len(got) == limit:  # maybe more: ask now, format while it runs
                limit = later
                nxt = asyncio.ensure_future(fetch(got[-1], limit))
                await asyncio.sleep(0)  # let it send the statement
            else:
                nxt = None
            yield batch
    finally:
        if nxt is not None and not nxt.done():
            # Never hand a connection with a statement in flight back to the pool.
            await asyncio.wait([nxt])
        if nxt is not None and nxt.done() and not nxt.cancelled():
            nxt.exception()  # retrieved: no "never retrieved" warning


def _merged(ranges: Any) -> list[tuple[int, int]]:
    """Inclusive ranges sorted, overlapping or touching ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


class _NilIfNone(dict[Any, bytes]):
    """Stored ENVELOPE bytes as they are; NIL for a row without one."""

    def __getitem__(self, value: Any) -> bytes:
        return b"NIL" if value is None else value


_NIL = _NilIfNone()

# Attribute lists streamed straight from two arrays: (column, line format, with UID).
_FAST: dict[tuple[str, ...], tuple[str, bytes, bool]] = {
    ("UID", "ENVELOPE"): ("envelope", b"* %d FETCH (UID %d ENVELOPE %s)\r\n", True),
    ("ENVELOPE",): ("envelope", b"* %d FETCH (ENVELOPE %s)\r\n", False),
}


def _columns(attrs: tuple[c.FetchAttr, ...]) -> set[str]:
    cols: set[str] = set()
    for a in attrs:
        if a.name == "BODY":
            cols.update(("raw", "part_map") if a.section is not None else ("body",))
        else:
            cols.update(_COLUMNS.get(a.name, ()))
    return cols


def _section(row: msgs.FetchRow, a: c.FetchAttr) -> bytes:
    assert row.raw is not None
    sec = a.section
    spec = sec.spec() if sec is not None else ""
    fields = list(sec.headers) if sec is not None and sec.headers else None
    data = section_bytes(row.raw, row.part_map or [], spec, fields)
    if a.partial is not None:  # RFC 3501 §6.4.5 <origin.octets>
        origin, length = a.partial
        data = data[origin:origin + length]
    return data


def render_item(row: msgs.FetchRow, a: c.FetchAttr) -> bytes:
    name = a.name
    if name == "FLAGS":
        return r.fetch_flags(row.flags)
    if name == "UID":
        return r.fetch_uid(row.uid)
    if name == "INTERNALDATE":
        assert row.internal_date is not None
        return r.fetch_internaldate(row.internal_date)
    if name == "RFC822.SIZE":
        return r.fetch_size(row.size)
    if name == "ENVELOPE":
        return r.fetch_raw(b"ENVELOPE", row.envelope or b"NIL")
    if name == "BODYSTRUCTURE":
        return r.fetch_raw(b"BODYSTRUCTURE", row.bodystructure or b"NIL")
    if name == "MODSEQ":
        return r.fetch_modseq(row.modseq)
    if name == "BODY" and a.section is None:
        return r.fetch_raw(b"BODY", row.body or b"NIL")
    if name == "RFC822":
        return r.fetch_data(b"RFC822", row.raw)
    if name == "RFC822.HEADER":
        return r.fetch_data(b"RFC822.HEADER", section_bytes(row.raw or b"", row.part_map, "HEADER"))
    if name == "RFC822.TEXT":
        return r.fetch_data(b"RFC822.TEXT", section_bytes(row.raw or b"", row.part_map, "TEXT"))
    if name == "BINARY.SIZE":
        return a.key + b" %d" % len(_section(row, a))
    return r.fetch_data(a.key, _section(row, a))  # BODY[...] / BINARY[...]


class FetchCommands:
    """Mixin: see :class:`.session.Session` for the attributes used."""

    @allowed_in(SELECTED)
    async def do_fetch(self: Any, cmd: c.Fetch) -> None:
        sel = self.selected
        ref = sel.ref
        attrs = list(cmd.attributes)
        names = {a.name for a in attrs}
        if cmd.changedsince is not None or "MODSEQ" in names:
            self.enabled.add("CONDSTORE")  # RFC 7162 §3.1
        if cmd.vanished and not (cmd.uid and self.qresync and cmd.changedsince is not None):
            # RFC 7162 §3.2.6: VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE.
            raise r.ImapBad("VANISHED requires UID FETCH with CHANGEDSINCE after ENABLE QRESYNC")
        # RFC 3501 §6.4.8: UID FETCH always returns UID; RFC 7162 §3.1.4.1 MODSEQ
        # with CHANGEDSINCE.
        if cmd.uid and "UID" not in names:
            attrs.insert(0, c.FetchAttr("UID"))
        if cmd.changedsince is not None and "MODSEQ" not in names:
            attrs.append(c.FetchAttr("MODSEQ"))
        ranges = sel.uid_ranges(cmd.seqset, cmd.uid)
        if cmd.vanished and ranges:
            await self._vanished_earlier(ranges, cmd.changedsince)
        sets_seen = cmd.sets_seen and not sel.readonly and "s" in ref.rights
        if sets_seen and ranges:
            # RFC 3501 §6.4.5: fetching a body section sets \Seen implicitly.
            async with self.services.db.transaction() as conn:
                changes, _ = await msgs.store_flags(conn, ref.owner_id, ref.mailbox_id, ranges,
                                                    "+", ["\\Seen"], ref.reader_id)
            for ch in changes:
                sel.own_changes[ch.uid] = ch.modseq
            if changes and "FLAGS" not in names:
                attrs.append(c.FetchAttr("FLAGS"))
        if ranges:
            await self._stream(sel, ranges, tuple(attrs), cmd.changedsince)
        await self.report_updates(allow_expunge=cmd.uid, with_uid=cmd.uid)
        self.ok(cmd.tag, ("UID " if cmd.uid else "") + "FETCH completed")

    async def _stream(self: Any, sel: Any, ranges: Any, attrs: tuple[c.FetchAttr, ...],
                      changedsince: int | None) -> None:
        ref = sel.ref
        cols = _columns(attrs)
        uids = sel.uids
        simple = tuple(a.name for a in attrs)
        if simple in (("UID", "FLAGS"), ("FLAGS",)):
            await self._stream_flags(sel, ranges, simple[0] == "UID")
            return
        fast = _FAST.get(simple)
        if fast is not None:
            await self._stream_column(sel, ranges, fast, changedsince)
            return
        async with (self.services.db.connection() as conn,
                    conn.transaction(isolation="repeatable_read", readonly=True)):
            async for batch in msgs.fetch_rows(conn, ref.owner_id, ref.mailbox_id, ranges,
                                               cols, ref.reader_id,
                                               changedsince=changedsince):
                out = self._out
                for row in batch:
                    i = uids.position(row.uid)
                    if i < 0:
                        continue  # not (yet) in this session's view
                    out.append(r.fetch_response(i + 1, [render_item(row, a) for a in attrs]))
                await self.flush()

    async def _stream_column(self: Any, sel: Any, ranges: Any, fast: tuple[str, bytes, bool],
                             changedsince: int | None) -> None:
        """FETCH 1:* (ENVELOPE): two arrays per batch, one ``%`` per line, no row objects.

        The first batch is small, so the client has lines to read at once;
        each next batch is asked for before this one is formatted and sent
        (PostgreSQL and Python at work on two cores).
        """
        ref = sel.ref
        uids = sel.uids
        what, fmt, with_uid = fast
        env = _NIL
        query = msgs.ColumnBatches(ref.owner_id, ref.mailbox_id, ranges, ref.reader_id, what,
                                   changedsince=changedsince)
        pos = 0
        async with (self.services.db.connection() as conn,
                    aclosing(_pipelined(partial(query.fetch, conn), _COLUMN_FIRST_BATCH,
                                        _COLUMN_BATCH)) as batches):
            async for ulist, vals in batches:
                k = len(ulist)
                out = self._out
                if k and uids.matches(pos, array("Q", ulist)):
                    # The usual case: the batch is exactly the view's next k
                    # messages, so sequence numbers simply count on.
                    seqs = range(pos + 1, pos + k + 1)
                    if with_uid:
                        out.extend(map(fmt.__mod__, zip(seqs, ulist,
                                                        map(env.__getitem__, vals))))
                    else:
                        out.extend(map(fmt.__mod__, zip(seqs, map(env.__getitem__, vals))))
                    pos += k
                else:
                    for uid, val in zip(ulist, vals):
                        i = uids.position(uid)
                        if i < 0:
                            continue  # not (yet) in this session's view
                        out.append(fmt % (i + 1, uid, env[val]) if with_uid
                                   else fmt % (i + 1, env[val]))
                        pos = i + 1
                await self.flush()

    async def _stream_flags(self: Any, sel: Any, ranges: Any, with_uid: bool) -> None:
        """``UID FETCH 1:* (FLAGS)``, the resync favourite (Thunderbird, mbsync).

        Rows come in a few large batches (:class:`~congvu.store.imap_messages.FlagBatches`);
        the next batch is asked for before this one is formatted, so
        PostgreSQL works on it while Python formats (two cores). When a batch
        is exactly the view's next messages, as it usually is, each line is
        one ``%`` and the batch one join.
        """
        ref = sel.ref
        view = sel.uids
        # UIDs above the view's last are messages this session has not been
        # told of yet (RFC 3501 §7.3.1): not fetched.
        top = view[-1] if len(view) else 0
        ranges = [(lo, min(hi, top)) for lo, hi in ranges if lo <= top]
        if not ranges:
            return
        fmt = b"* %d FETCH (UID %d FLAGS (%s))\r\n" if with_uid else b"* %d FETCH (FLAGS (%s))\r\n"
        warm = False
        if ref.reader_id is None:
            if self.hub.flag_cache.get(ref.owner_id, ref.mailbox_id) is not None:
                # The owner's flags from this node's copy, brought up to date in
                # one statement; used when the session's view is the mailbox as
                # it is now (nothing new or expunged it has not been told of).
                async with self.services.db.connection() as conn:
                    st = await flagcache.flag_state(conn, ref.owner_id, ref.mailbox_id,
                                                    self.hub.flag_cache)
                if st is not None and st.uids == view:
                    await self._flags_from(st, ranges, fmt, with_uid)
                    return
            elif (sum(view.below(hi + 1) - view.below(lo) for lo, hi in _merged(ranges))
                  >= _FLAG_CACHE_FROM):
                # A resync of a mailbox this node has no copy of: answered from
                # the database below, the copy made in the background after it.
                warm = True
        query = msgs.FlagBatches(ref.owner_id, ref.mailbox_id, ranges, ref.reader_id,
                                 seen_modseq=sel.known_modseq, keep=sorted(sel.pending))
        pos = 0
        async with (self.services.db.connection() as conn,
                    aclosing(_pipelined(partial(query.fetch, conn), _FLAG_FIRST_BATCH,
                                        _FLAG_BATCH)) as batches):
            async for got, flags in batches:
                k = len(got)
                if k and view.matches(pos, got):
                    # The usual case: sequence numbers simply count on.
                    seqs = range(pos + 1, pos + k + 1)
                    self.send(b"".join(map(fmt.__mod__, zip(seqs, got, flags) if with_uid
                                           else zip(seqs, flags))))
                    pos += k
                else:
                    out = self._out
                    for uid, text in sorted(zip(got, flags)):
                        i = view.position(uid)
                        if i < 0:
                            continue  # not in this session's view
                        out.append(fmt % (i + 1, uid, text) if with_uid
                                   else fmt % (i + 1, text))
                        pos = i + 1
                await self.flush()
        if warm:
            self.hub.warm_flags(ref.owner_id, ref.mailbox_id)

    async def _flags_from(self: Any, st: flagcache.FlagState, ranges: Any, fmt: bytes,
                          with_uid: bool) -> None:
        """FETCH (FLAGS) lines from a :class:`~congvu.store.flagcache.FlagState`
        equal to the session's view: sequence number *n* is position *n*."""
        sets = st.sets
        for lo, hi in _merged(ranges):
            a, b = st.uids.below(lo), st.uids.below(hi + 1)
            while a < b:
                # In pieces, so the client reads the first while the rest is made.
                end = min(b, a + _FLAG_CHUNK)
                seqs = range(a + 1, end + 1)
                texts = map(sets.__getitem__, st.set_of[a:end])
                self.send(b"".join(map(fmt.__mod__, zip(seqs, st.uids.between(a, end), texts)
                                       if with_uid else zip(seqs, texts))))
                await self.flush()
                a = end

    async def _vanished_earlier(self: Any, ranges: Any, modseq: int | None) -> None:
        """RFC 7162 §3.2.6: ``* VANISHED (EARLIER)`` for expunged UIDs in the set."""
        sel = self.selected
        ref = sel.ref
        async with self.services.db.connection() as conn:
            changes = await msgs.changes_since(conn, ref.owner_id, ref.mailbox_id, modseq or 0,
                                               ref.reader_id)
        gone = []
        for ch in changes:
            if ch.expunged and any(lo <= ch.uid <= hi for lo, hi in ranges):
                gone.append(ch.uid)
        if gone:
            from .sequence import SequenceSet

            self.send(r.vanished(SequenceSet.from_numbers(gone), earlier=True))
