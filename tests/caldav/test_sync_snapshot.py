"""RFC 6578 tokens as snapshots (migration 011): change numbers are the writing
transaction's id, handed out in start order, so a write that commits after a
later-started one must still reach every client that synced in between."""

from __future__ import annotations

import pytest

from congvu.calendar.objects import write_object
from congvu.store import calendars as repo
from tests.caldav.test_caldav_store import DOMAIN, event


async def _calendar(org) -> repo.Calendar:  # type: ignore[no-untyped-def]
    an = await org.get_account(f"an.nv@{DOMAIN}")
    async with org.db.transaction() as conn:
        return await repo.default_calendar(conn, repo.account_owner(an))


async def _sync(org, cal: repo.Calendar, token: str, **kw) -> repo.Changes:  # type: ignore[no-untyped-def]
    async with org.db.connection() as conn:
        return await repo.changes_since(conn, cal, token, **kw)


def _hrefs(changes: repo.Changes) -> set[str]:
    return {o.href for o in changes.changed}


async def test_a_write_committing_late_is_not_missed(org) -> None:
    cal = await _calendar(org)
    first = await _sync(org, cal, "")
    async with org.db.connection() as slow_conn:
        slow = slow_conn.transaction()
        await slow.start()
        # The slow writer starts first: its change number is the lower one.
        await write_object(slow_conn, cal, "slow.ics", event("slow", "20260105T020000Z",
                                                               "20260105T030000Z"))
        async with org.db.transaction() as conn:
            await write_object(conn, cal, "fast.ics", event("fast", "20260106T020000Z",
                                                             "20260106T030000Z"))
        seen = await _sync(org, cal, first.token)
        assert _hrefs(seen) == {"fast.ics"}
        await slow.commit()
    late = await _sync(org, cal, seen.token)
    assert _hrefs(late) == {"slow.ics"}  # numbered below what the client had, yet reported
    assert _hrefs(await _sync(org, cal, late.token)) == set()


async def test_token_is_stable_while_nothing_changes(org) -> None:
    cal = await _calendar(org)
    async with org.db.transaction() as conn:
        await write_object(conn, cal, "a.ics", event("a", "20260105T020000Z",
                                                     "20260105T030000Z"))
    async with org.db.connection() as conn:
        one = repo.sync_token(await repo.get_calendar_by_id(conn, cal.owner_id, cal.id))
        two = repo.sync_token(await repo.get_calendar_by_id(conn, cal.owner_id, cal.id))
    assert one == two  # getctag: clients poll it
    async with org.db.transaction() as conn:
        await repo.delete_object(conn, cal, "a.ics")
    async with org.db.connection() as conn:
        three = repo.sync_token(await repo.get_calendar_by_id(conn, cal.owner_id, cal.id))
    assert three != two
    assert (await _sync(org, cal, two)).removed == ["a.ics"]


async def test_limit_pages_through_one_transactions_changes(org) -> None:
    """DAV:limit cuts among changes that share one number (one transaction wrote
    them all); the pages together hold each change exactly once."""
    cal = await _calendar(org)
    start = (await _sync(org, cal, "")).token
    names = [f"e{i:02}.ics" for i in range(7)]
    async with org.db.transaction() as conn:
        for i, name in enumerate(names):
            await write_object(conn, cal, name, event(f"e{i}", "20260105T020000Z",
                                                      "20260105T030000Z"))
    token, pages = start, []
    for _ in range(10):
        page = await _sync(org, cal, token, limit=3)
        pages.append(sorted(_hrefs(page)))
        token = page.token
        if not page.truncated:
            break
    assert pages == [names[0:3], names[3:6], names[6:7]]
    assert _hrefs(await _sync(org, cal, token)) == set()


async def test_limit_page_then_a_late_commit(org) -> None:
    """A page cut while a writer with a lower number is still running: that
    writer's change comes in a later sync."""
    cal = await _calendar(org)
    start = (await _sync(org, cal, "")).token
    async with org.db.connection() as slow_conn:
        slow = slow_conn.transaction()
        await slow.start()
        await write_object(slow_conn, cal, "slow.ics", event("slow", "20260105T020000Z",
                                                               "20260105T030000Z"))
        for i in range(3):
            async with org.db.transaction() as conn:
                await write_object(conn, cal, f"f{i}.ics", event(f"f{i}", "20260106T020000Z",
                                                                 "20260106T030000Z"))
        page = await _sync(org, cal, start, limit=2)
        assert page.truncated and _hrefs(page) == {"f0.ics", "f1.ics"}
        await slow.commit()
    rest = await _sync(org, cal, page.token)
    assert _hrefs(rest) == {"f2.ics", "slow.ics"}


async def test_change_numbers_follow_a_restore_into_a_new_cluster(org) -> None:
    """A dump restored into another PostgreSQL cluster may count transaction
    ids from below the stored change numbers; the next start renumbers them,
    old tokens are refused (clients sync afresh) and new changes show again."""
    from congvu.store.migrate import apply_migrations

    cal = await _calendar(org)
    async with org.db.transaction() as conn:
        await write_object(conn, cal, "a.ics", event("a", "20260105T020000Z",
                                                     "20260105T030000Z"))
    old = (await _sync(org, cal, "")).token
    far = 2**40  # what the old cluster's ids looked like
    async with org.db.transaction() as conn:
        await conn.execute("UPDATE calendar_objects SET modseq = $1", far)
    stuck = (await _sync(org, cal, "")).token
    assert await apply_migrations(org.db) == []  # a node starts
    fresh = await _sync(org, cal, "")
    assert fresh.token != stuck and {o.href for o in fresh.changed} == {"a.ics"}
    async with org.db.connection() as conn:
        assert await conn.fetchval("SELECT max(modseq) FROM calendar_objects") < far
        with pytest.raises(repo.InvalidSyncToken):  # numbered in the old cluster
            await repo.changes_since(conn, cal, stuck)
    # a token from before, numbered below everything now: all of it again
    assert _hrefs(await _sync(org, cal, old)) == {"a.ics"}
    async with org.db.transaction() as conn:
        await write_object(conn, cal, "b.ics", event("b", "20260106T020000Z",
                                                     "20260106T030000Z"))
    assert _hrefs(await _sync(org, cal, fresh.token)) == {"b.ics"}
    assert await apply_migrations(org.db) == []  # and a normal start changes nothing
    assert _hrefs(await _sync(org, cal, fresh.token)) == {"b.ics"}
