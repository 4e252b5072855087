"""FlagCache bookkeeping: sizes, least recently used first out, and age."""

from __future__ import annotations

from array import array

from congvu.store import flagcache
from congvu.store.flagcache import FlagCache, FlagState
from congvu.store.uidruns import UidRuns


def _state(n: int, modseq: int = 1) -> FlagState:
    uids = array("Q", range(1, n + 1))
    return FlagState(7, modseq, UidRuns.from_sorted(uids), array("I", [0] * n), [b""])


def test_least_recently_used_go_first_beyond_max_messages() -> None:
    cache = FlagCache(max_messages=10)
    cache.put(1, 1, _state(4))
    cache.put(1, 2, _state(4))
    assert cache.get(1, 1) is not None  # now the most recently used
    cache.put(1, 3, _state(4))  # 12 > 10: mailbox 2 goes
    assert cache.get(1, 2) is None
    assert cache.get(1, 1) is not None and cache.get(1, 3) is not None
    cache.put(1, 1, _state(6, 2))  # replaced, not counted twice: 6 + 4
    st = cache.get(1, 1)
    assert st is not None and st.modseq == 2 and cache.get(1, 3) is not None
    cache.put(1, 4, _state(11))  # larger than the whole cache: not kept
    assert cache.get(1, 4) is None and cache.get(1, 1) is not None


def test_an_entry_not_brought_up_to_date_within_max_age_is_not_used(monkeypatch) -> None:
    # The retention purge deletes expunged rows without a modseq: an entry
    # must not be caught up across it.
    now = [1000.0]
    monkeypatch.setattr(flagcache.time, "monotonic", lambda: now[0])
    cache = FlagCache(max_age=3600.0)
    cache.put(1, 1, _state(3))
    now[0] += 3000.0
    assert cache.get(1, 1) is not None
    cache.put(1, 1, _state(3, 2))  # brought up to date: its age starts again
    now[0] += 3000.0
    assert cache.get(1, 1) is not None
    now[0] += 601.0
    assert cache.get(1, 1) is None
    cache.put(1, 2, _state(5))  # the expired entry no longer counts
    assert cache._total == 5
