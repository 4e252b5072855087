"""Sequence sets: resolution of "*", ranges instead of lists, compaction."""

from __future__ import annotations

import pytest

from congvu.mailserver.imap.sequence import STAR, SequenceSet


def test_resolve_star_and_reversed() -> None:
    s = SequenceSet.parse("1,3:5,*:8")
    assert s.resolve(10) == ((1, 1), (3, 5), (8, 10))
    assert SequenceSet.parse("*:4").resolve(6) == ((4, 6),)
    assert SequenceSet.parse("5:3").resolve(10) == ((3, 5),)


def test_resolve_merges_and_clips() -> None:
    assert SequenceSet.parse("7,1:3,2:5,6").resolve(100) == ((1, 7),)
    assert SequenceSet.parse("1:*").resolve(0) == ()
    # RFC 9051 §6.4.9: UID 559:* includes the last UID even when it is below 559
    assert SequenceSet.parse("559:*").resolve(500) == ((500, 500),)
    assert SequenceSet.parse("600:700").resolve(500) == ()


def test_large_set_is_ranges_not_lists() -> None:
    s = SequenceSet.all()
    assert s.resolve(100_000) == ((1, 100_000),)
    assert s.count(100_000) == 100_000
    member = s.matcher(100_000)
    assert member(1) and member(100_000) and not member(100_001)


def test_matcher_many_ranges() -> None:
    s = SequenceSet.parse("2,4:6,10:*")
    member = s.matcher(12)
    assert [n for n in range(1, 14) if member(n)] == [2, 4, 5, 6, 10, 11, 12]
    assert [n for n in range(1, 14) if s.contains(n, 12)] == [2, 4, 5, 6, 10, 11, 12]
    assert list(s.iter_numbers(12)) == [2, 4, 5, 6, 10, 11, 12]


def test_from_numbers_and_wire() -> None:
    s = SequenceSet.from_numbers([9, 1, 2, 3, 5, 7, 8])
    assert str(s) == "1:3,5,7:9"
    assert s.to_bytes() == b"1:3,5,7:9"
    assert SequenceSet.parse("1:*").to_bytes() == b"1:*"
    assert SequenceSet.parse("*:4,3").resolved_bytes(6) == b"3:6"
    with pytest.raises(ValueError):
        SequenceSet.from_numbers([0])


def test_highest_explicit_and_star() -> None:
    s = SequenceSet.parse("3:7,*")
    assert s.highest_explicit == 7 and s.uses_star
    assert s.ranges == ((3, 7), (STAR, STAR))


def test_saved() -> None:
    s = SequenceSet.parse("$")
    assert s.saved and str(s) == "$"
    with pytest.raises(ValueError):
        s.resolve(5)


@pytest.mark.parametrize("text", ["", "0", "0:3", "1:", ":1", "1,,2", "-1", "1:2:3", "x", "01",
                                  "$,1", "4294967296"])
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(text)
