"""UidRuns: a session's UIDs as runs, checked against a plain list of the same UIDs."""

from __future__ import annotations

import random
from array import array

import pytest

from congvu.store.uidruns import UidRuns


def _check(runs: UidRuns, uids: list[int]) -> None:
    assert len(runs) == len(uids)
    assert list(runs) == uids
    for i, u in enumerate(uids):
        assert runs[i] == u and runs.position(u) == i and u in runs
    if uids:
        assert runs[-1] == uids[-1] and runs[-len(uids)] == uids[0]
    held = set(uids)
    for u in range(0, (uids[-1] if uids else 0) + 3):
        if u not in held:
            assert runs.position(u) == -1 and u not in runs
    for bad in (len(uids), -len(uids) - 1):
        with pytest.raises(IndexError):
            runs[bad]


@pytest.mark.parametrize("seed", range(8))
def test_runs_agree_with_a_list(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([0, 1, 5, 40, 300, 3000])
    keep = rng.choice([1.0, 0.97, 0.5, 0.1])
    uids = [u for u in range(1, n + 1) if rng.random() < keep]
    runs = UidRuns.from_sorted(array("Q", uids))
    assert runs == UidRuns(uids)
    _check(runs, uids)
    # Every position and length: matches() only for exactly the view's stretch.
    for pos in range(0, len(uids) + 1, max(1, len(uids) // 17)):
        for k in (0, 1, 2, 7, 100, len(uids)):
            part = uids[pos:pos + k]
            assert runs.matches(pos, array("Q", part))
            if part:
                shifted = [u + 1 for u in part]
                assert runs.matches(pos, array("Q", shifted)) == (shifted == part)
                if pos + len(part) < len(uids):
                    # the next UID in place of the last one
                    other = [*part[:-1], uids[pos + len(part)]]
                    assert not runs.matches(pos, array("Q", other))
    assert not runs.matches(len(uids), array("Q", [10**9]))
    for u in range(0, (uids[-1] if uids else 0) + 3):
        assert runs.below(u) == sum(1 for x in uids if x < u)
    for a in range(0, len(uids) + 2, max(1, len(uids) // 13)):
        for b in (a, a + 1, a + 5, a + 333, len(uids) + 1):
            assert list(runs.between(a, b)) == uids[a:b]
    # Expunges and new mail.
    gone = [u for u in uids if rng.random() < 0.2] + [10**9]
    rest = [u for u in uids if u not in set(gone)]
    smaller = runs.without(gone)
    _check(smaller, rest)
    assert smaller == UidRuns(rest)
    new = [(rest[-1] if rest else 0) + d for d in (1, 2, 5, 6, 7)]
    smaller.extend(new)
    _check(smaller, [*rest, *new])
    with pytest.raises(ValueError):
        smaller.extend([new[-1]])
    copy = smaller.copy()
    copy.extend([new[-1] + 1])
    assert len(copy) == len(smaller) + 1


def test_a_dense_mailbox_is_one_run() -> None:
    runs = UidRuns.from_sorted(array("Q", range(7, 100_007)))
    assert runs.runs == 1 and runs.nbytes == 16 and len(runs) == 100_000
    assert runs[99_999] == 100_006 and runs.position(50_006) == 49_999
    holes = runs.without([10, 500, 501])
    assert holes.runs == 3 and len(holes) == 99_997
    assert holes.position(502) == 502 - 7 - 3 and holes.position(500) == -1
