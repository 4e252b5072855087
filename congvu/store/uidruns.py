"""A mailbox's UIDs in ascending order, stored as runs of consecutive numbers.

Message sequence number *n* is the *n*-th UID of a session's view (RFC 3501
§2.3.1.2). UIDs are allocated one after another, so a view is mostly a few
long runs with holes where messages were expunged: a 100,000-message mailbox
takes a few hundred bytes instead of 800 KB per session, and never more than
16 bytes per UID when every other message is gone. Lookups both ways are a
binary search over the runs.

``_first[r]`` is the first UID of run *r*; ``_upto[r]`` the number of UIDs
in runs 0..*r* (so ``_upto[-1]`` is the length). Runs are maximal: two runs
never touch.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from itertools import chain

__all__ = ["UidRuns", "unpack_uids"]

#: Below this many UIDs a slice of the input is split into runs by a plain loop.
_LINEAR = 32


def unpack_uids(packed: bytes | None) -> array:
    """``array('Q')`` of UIDs sent as ``string_agg(int8send(uid), ''::bytea)``
    (big-endian int8s): 100,000 of them become an array at C speed, not
    100,000 Python ints. Empty for None (no rows)."""
    uids = array("Q")
    if packed:
        uids.frombytes(packed)
        if sys.byteorder == "little":
            uids.byteswap()
    return uids


class UidRuns:
    __slots__ = ("_first", "_upto")

    def __init__(self, uids: Iterable[int] = ()) -> None:
        """From ascending UIDs."""
        self._first = array("Q")
        self._upto = array("Q")
        prev = -2
        for u in uids:
            if u == prev + 1:
                self._upto[-1] += 1
            else:
                self._add(u, 1)
            prev = u

    @classmethod
    def from_sorted(cls, uids: array) -> UidRuns:
        """From an ascending ``array``; a dense stretch is one comparison, not a loop."""
        out = cls()
        if uids:
            out._split(uids, 0, len(uids))
        return out

    def _split(self, uids: array, i: int, j: int) -> None:
        while i < j:
            first = uids[i]
            if uids[j - 1] - first == j - 1 - i:  # ascending and distinct: all consecutive
                self._add(first, j - i)
                return
            if j - i <= _LINEAR:
                prev, n = first, 1
                for k in range(i + 1, j):
                    u = uids[k]
                    if u == prev + 1:
                        n += 1
                    else:
                        self._add(first, n)
                        first, n = u, 1
                    prev = u
                self._add(first, n)
                return
            mid = (i + j) // 2
            self._split(uids, i, mid)
            i = mid

    def _add(self, first: int, n: int) -> None:
        """Append ``n`` UIDs from ``first`` (above every UID held)."""
        upto = self._upto
        if upto:
            last_first = self._first[-1]
            if last_first + upto[-1] - (upto[-2] if len(upto) > 1 else 0) == first:
                upto[-1] += n
                return
            self._first.append(first)
            upto.append(upto[-1] + n)
        else:
            self._first.append(first)
            upto.append(n)

    def copy(self) -> UidRuns:
        out = UidRuns()
        out._first = array("Q", self._first)
        out._upto = array("Q", self._upto)
        return out

    # -- reading ---------------------------------------------------------------------

    def __len__(self) -> int:
        return self._upto[-1] if self._upto else 0

    @property
    def runs(self) -> int:
        return len(self._first)

    @property
    def nbytes(self) -> int:
        return (len(self._first) + len(self._upto)) * 8

    def __getitem__(self, i: int) -> int:
        """The UID at 0-based position ``i`` (negative from the end)."""
        upto = self._upto
        n = upto[-1] if upto else 0
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("UID position out of range")
        r = bisect_right(upto, i)
        return self._first[r] + i - (upto[r - 1] if r else 0)

    def position(self, uid: int) -> int:
        """0-based position of ``uid``, or -1 when it is not held."""
        r = bisect_right(self._first, uid) - 1
        if r < 0:
            return -1
        before = self._upto[r - 1] if r else 0
        off = uid - self._first[r]
        return before + off if off < self._upto[r] - before else -1

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.position(uid) >= 0

    def __iter__(self) -> Iterator[int]:
        before = 0
        for first, upto in zip(self._first, self._upto):
            yield from range(first, first + upto - before)
            before = upto

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UidRuns):
            return self._first == other._first and self._upto == other._upto
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"UidRuns({len(self)} UIDs in {self.runs} runs)"

    def below(self, uid: int) -> int:
        """How many UIDs held are below ``uid`` (where it is or would be)."""
        r = bisect_right(self._first, uid) - 1
        if r < 0:
            return 0
        before = self._upto[r - 1] if r else 0
        return before + min(uid - self._first[r], self._upto[r] - before)

    def between(self, a: int, b: int) -> Iterator[int]:
        """The UIDs at positions ``a`` to ``b - 1``, one range per run (no list)."""
        first, upto = self._first, self._upto
        b = min(b, len(self))
        if a >= b:
            return iter(())
        r = bisect_right(upto, a)
        parts = []
        i = a
        while i < b:
            before = upto[r - 1] if r else 0
            end = min(b, upto[r])
            parts.append(range(first[r] + i - before, first[r] + end - before))
            i = end
            r += 1
        return chain.from_iterable(parts)

    def matches(self, pos: int, uids: array) -> bool:
        """Whether ``uids`` (ascending, distinct) are exactly the ones from position ``pos``.

        One comparison per run covered: a stretch of ``k`` distinct ascending
        UIDs whose first and last are those of a run's stretch of ``k`` is it.
        """
        k = len(uids)
        if pos < 0 or pos + k > len(self):
            return False
        if not k:
            return True
        first, upto = self._first, self._upto
        r = bisect_right(upto, pos)
        i, j = pos, 0
        while j < k:
            before = upto[r - 1] if r else 0
            take = min(upto[r] - i, k - j)
            start = first[r] + i - before
            if uids[j] != start or uids[j + take - 1] != start + take - 1:
                return False
            i += take
            j += take
            r += 1
        return True

    # -- changing ----------------------------------------------------------------------

    def extend(self, uids: Iterable[int]) -> None:
        """Append ascending UIDs, each above every UID held (new mail)."""
        last = self[-1] if len(self) else 0
        for u in uids:
            if u <= last:
                raise ValueError("UIDs only grow")
            self._add(u, 1)
            last = u

    def without(self, uids: Iterable[int]) -> UidRuns:
        """A copy without ``uids`` (expunged); ones not held are ignored."""
        gone = sorted(set(uids))
        out = UidRuns()
        g = 0
        before = 0
        for first, upto in zip(self._first, self._upto):
            end = first + upto - before  # one past the run's last UID
            before = upto
            while g < len(gone) and gone[g] < first:
                g += 1
            cur = first
            while g < len(gone) and gone[g] < end:
                if gone[g] > cur:
                    out._add(cur, gone[g] - cur)
                cur = gone[g] + 1
                g += 1
            if cur < end:
                out._add(cur, end - cur)
        return out
