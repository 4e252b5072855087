"""The per-session view of a selected mailbox: sequence numbers, pending expunges, updates.

A session sees the mailbox as an ordered list of UIDs (:class:`UidRuns`:
runs of consecutive UIDs, so a big mailbox with few holes takes a few
hundred bytes); message sequence number *n* is ``uids[n-1]``. Another
session's changes are found by asking the store for rows whose modseq is
above the highest one this view has seen (RFC 7162 §3.1), which covers new
mail, flag changes and expunges made on any node.

RFC 3501 §7.4.1: an EXPUNGE response "MUST NOT be sent when no command is
in progress, nor while responding to a FETCH, STORE, or SEARCH command" —
their UID forms excepted (RFC 3501 §6.4.8). So expunges found at the wrong
moment are kept *pending*: the message keeps its sequence number (and its
data, which the store keeps for the retention period) until a command that
may report it ends. New messages are announced with EXISTS at the end of
any command, flag changes with an untagged FETCH (RFC 3501 §7.4.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from congvu.store.imap_messages import Change
from congvu.store.uidruns import UidRuns

from . import responses as r
from .errors import ImapBad
from .sequence import SequenceSet

__all__ = ["MailboxRef", "SelectedMailbox"]


@dataclass(frozen=True, slots=True)
class MailboxRef:
    """A mailbox as one principal reaches it.

    ``name`` is the owner's name for it; ``display`` is the name the client
    uses (``Other Users/owner@domain/INBOX`` for a delegate). ``reader_id``
    is the delegate's account id (their own ``\\Seen``), None for the owner.
    ``rights`` are RFC 4314 rights letters.
    """

    owner_id: int
    owner_address: str
    mailbox_id: int
    name: str
    display: str
    reader_id: int | None
    rights: str

    @property
    def shared(self) -> bool:
        return self.reader_id is not None


class SelectedMailbox:
    __slots__ = ("dirty", "known_modseq", "max_uid", "own_changes", "pending", "readonly",
                 "ref", "uids", "uidvalidity", "unwatch")

    def __init__(self, ref: MailboxRef, uids: UidRuns, uidvalidity: int, modseq: int,
                 readonly: bool) -> None:
        self.ref = ref
        self.uids = uids
        self.uidvalidity = uidvalidity
        self.known_modseq = modseq
        self.readonly = readonly
        self.max_uid = uids[-1] if len(uids) else 0
        self.pending: set[int] = set()  # expunged, not yet reported
        self.own_changes: dict[int, int] = {}  # uid -> modseq of this session's STORE
        self.dirty = False
        self.unwatch = None

    # -- numbers --------------------------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = self.uids.position(uid)
        return i + 1 if i >= 0 else None

    def uid_ranges(self, seqset: SequenceSet, uid: bool) -> tuple[tuple[int, int], ...]:
        """UID ranges of a sequence set (message numbers or UIDs) within this view.

        RFC 3501 §9: a message number above EXISTS is a protocol error;
        UIDs that do not exist are simply not matched (§6.4.8), and ``*``
        is the highest UID in the view (``n:*`` includes it even if n is larger).
        """
        n = len(self.uids)
        if uid:
            if not n:
                return ()
            return seqset.resolve(max(self.uids[-1], seqset.highest_explicit))
        if seqset.highest_explicit > n:
            raise ImapBad("Invalid message sequence number", code="CLIENTBUG" if n else None)
        return tuple((self.uids[lo - 1], self.uids[hi - 1]) for lo, hi in seqset.resolve(n))

    def seqs_of(self, uids: list[int]) -> list[int]:
        out = []
        for u in uids:
            s = self.seq_of(u)
            if s is not None:
                out.append(s)
        return out

    def in_view(self, uids: list[int]) -> list[int]:
        return [u for u in uids if self.seq_of(u) is not None]

    # -- updates ----------------------------------------------------------------

    def apply(self, changes: list[Change], *, allow_expunge: bool, condstore: bool,
              qresync: bool, with_uid: bool = False) -> list[bytes]:
        """Turn store changes into untagged responses for this view, updating it."""
        out: list[bytes] = []
        new: list[int] = []
        for ch in changes:
            if ch.modseq > self.known_modseq:
                self.known_modseq = ch.modseq
            if ch.uid > self.max_uid:
                if not ch.expunged:
                    new.append(ch.uid)
                continue
            if ch.expunged:
                if ch.uid not in self.pending and self.seq_of(ch.uid) is not None:
                    self.pending.add(ch.uid)
                continue
            if ch.uid in self.pending or self.own_changes.get(ch.uid) == ch.modseq:
                continue
            seq = self.seq_of(ch.uid)
            if seq is None:
                continue
            items = [r.fetch_flags(ch.flags)]
            if with_uid or qresync:
                items.insert(0, r.fetch_uid(ch.uid))
            if condstore:  # RFC 7162 §3.1.4: MODSEQ in unsolicited FETCH
                items.append(r.fetch_modseq(ch.modseq))
            out.append(r.fetch_response(seq, items))
        self.own_changes.clear()
        if allow_expunge:
            out.extend(self.flush_expunges(qresync))
        if new:
            new.sort()
            self.uids.extend(new)
            self.max_uid = new[-1]
            out.append(r.exists(len(self.uids)))
        return out

    def flush_expunges(self, qresync: bool) -> list[bytes]:
        """Report pending expunges and drop them from the view."""
        if not self.pending:
            return []
        gone = sorted(self.pending)
        self.pending.clear()
        out: list[bytes] = []
        if qresync:  # RFC 7162 §3.2.10: VANISHED instead of EXPUNGE once enabled
            out.append(r.vanished(SequenceSet.from_numbers(gone)))
        else:
            seqs = self.seqs_of(gone)
            # Highest first: each EXPUNGE renumbers only the messages after it.
            out.extend(r.expunge(s) for s in sorted(seqs, reverse=True))
        self.uids = self.uids.without(gone)
        return out
