"""IMAP sequence sets (RFC 9051 §9 ``sequence-set``; RFC 5182 ``$``).

A :class:`SequenceSet` keeps the ranges as the client wrote them, with
``*`` unresolved, because ``*`` means "the largest number in use" which
only the session knows (message count for sequence numbers, highest UID for
UIDs). Resolving gives sorted, merged, inclusive ``(lo, hi)`` ranges, so
``1:*`` over 100,000 messages is one tuple, never a list of 100,000 ints.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["STAR", "SequenceSet"]

#: Internal stand-in for ``*`` in :attr:`SequenceSet.ranges` (0 is never a
#: valid sequence number or UID: ``nz-number``).
STAR = 0

_MAX_NUMBER = 0xFFFFFFFF  # RFC 9051 §9: nz-number fits in 32 bits (number64 aside)


def _parse_number(part: str, whole: str) -> int:
    if part == "*":
        return STAR
    # ASCII digits only, no sign, no leading zero (nz-number = digit-nz *DIGIT).
    if not part or not part.isascii() or not part.isdigit() or part[0] == "0":
        raise ValueError(f"invalid sequence set {whole!r}")
    value = int(part)
    if value > _MAX_NUMBER:
        raise ValueError(f"number too large in sequence set {whole!r}")
    return value


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed sequence set or UID set.

    ``ranges`` holds ``(a, b)`` pairs exactly as written (``a`` may exceed
    ``b``; :data:`STAR` stands for ``*``; a single number ``n`` is
    ``(n, n)``). ``saved`` is true for ``$``, the saved search result of
    RFC 5182, whose members the session substitutes.
    """

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False

    # -- construction -------------------------------------------------------

    @classmethod
    def parse(cls, text: str | bytes) -> SequenceSet:
        """Parse ``1,3:5,7:*``; raise :class:`ValueError` when malformed."""
        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        if text == "$":
            return cls((), saved=True)
        if not text:
            raise ValueError("empty sequence set")
        ranges: list[tuple[int, int]] = []
        for item in text.split(","):
            lo, sep, hi = item.partition(":")
            a = _parse_number(lo, text)
            b = _parse_number(hi, text) if sep else a
            ranges.append((a, b))
        return cls(tuple(ranges))

    @classmethod
    def all(cls) -> SequenceSet:
        """``1:*``."""
        return cls(((1, STAR),))

    @classmethod
    def from_numbers(cls, numbers: Iterable[int]) -> SequenceSet:
        """The most compact set holding exactly ``numbers`` (for COPYUID, VANISHED, ESEARCH)."""
        ranges: list[tuple[int, int]] = []
        for n in sorted(set(numbers)):
            if n <= 0:
                raise ValueError(f"not a valid message number: {n}")
            if ranges and ranges[-1][1] == n - 1:
                ranges[-1] = (ranges[-1][0], n)
            else:
                ranges.append((n, n))
        return cls(tuple(ranges))

    @classmethod
    def from_ranges(cls, ranges: Iterable[tuple[int, int]]) -> SequenceSet:
        """A set from inclusive ``(lo, hi)`` ranges (normalized on output)."""
        return cls(tuple((lo, hi) for lo, hi in ranges))

    # -- inspection ---------------------------------------------------------

    @property
    def uses_star(self) -> bool:
        return any(a == STAR or b == STAR for a, b in self.ranges)

    @property
    def highest_explicit(self) -> int:
        """Largest number written explicitly (0 if none): lets the session
        answer ``BAD`` for message sequence numbers beyond the message count
        (RFC 9051 §9 ``seq-number``; UIDs beyond the last are simply ignored).
        """
        return max((max(a, b) for a, b in self.ranges), default=0)

    def resolve(self, max_value: int) -> tuple[tuple[int, int], ...]:
        """Sorted, merged, inclusive ranges within ``1..max_value``.

        ``*`` becomes ``max_value``; ``a:b`` with ``a > b`` is ``b:a``
        (RFC 9051 §9: "the order of the numbers ... is irrelevant"); numbers
        above ``max_value`` are dropped, so ``559:*`` with 500 as the
        largest UID is ``500:500`` as RFC 9051 §6.4.9 requires.
        """
        if self.saved:
            raise ValueError("'$' must be replaced by the saved result first")
        if max_value <= 0:
            return ()
        spans: list[tuple[int, int]] = []
        for a, b in self.ranges:
            a = max_value if a == STAR else a
            b = max_value if b == STAR else b
            if a > b:
                a, b = b, a
            if a > max_value:
                continue
            spans.append((a, min(b, max_value)))
        if len(spans) <= 1:
            return tuple(spans)
        spans.sort()
        merged = [spans[0]]
        for lo, hi in spans[1:]:
            plo, phi = merged[-1]
            if lo <= phi + 1:
                if hi > phi:
                    merged[-1] = (plo, hi)
            else:
                merged.append((lo, hi))
        return tuple(merged)

    def iter_numbers(self, max_value: int) -> Iterator[int]:
        """Each member in ascending order (lazy)."""
        for lo, hi in self.resolve(max_value):
            yield from range(lo, hi + 1)

    def count(self, max_value: int) -> int:
        return sum(hi - lo + 1 for lo, hi in self.resolve(max_value))

    def matcher(self, max_value: int) -> Callable[[int], bool]:
        """A fast membership test for many lookups against one ``max_value``."""
        spans = self.resolve(max_value)
        if not spans:
            return lambda n: False
        if len(spans) == 1:
            lo, hi = spans[0]
            return lambda n: lo <= n <= hi
        starts = [lo for lo, _ in spans]
        ends = [hi for _, hi in spans]

        def member(n: int) -> bool:
            i = bisect.bisect_right(starts, n) - 1
            return i >= 0 and n <= ends[i]

        return member

    def contains(self, n: int, max_value: int) -> bool:
        """Is ``n`` in the set, ``*`` being ``max_value``? (one-off test)."""
        if self.saved:
            raise ValueError("'$' must be replaced by the saved result first")
        for a, b in self.ranges:
            a = max_value if a == STAR else a
            b = max_value if b == STAR else b
            if a > b:
                a, b = b, a
            if a <= n <= b and n <= max_value:
                return True
        return False

    # -- output -------------------------------------------------------------

    def __str__(self) -> str:
        if self.saved:
            return "$"
        parts = []
        for a, b in self.ranges:
            sa = "*" if a == STAR else str(a)
            parts.append(sa if a == b else f"{sa}:{'*' if b == STAR else b}")
        return ",".join(parts)

    def to_bytes(self) -> bytes:
        """Wire form as written (``*`` kept); use :meth:`resolved_bytes` for results."""
        return str(self).encode("ascii")

    def resolved_bytes(self, max_value: int) -> bytes:
        """Normalized wire form within ``1..max_value`` (empty if no members)."""
        return ",".join(
            str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in self.resolve(max_value)
        ).encode("ascii")
