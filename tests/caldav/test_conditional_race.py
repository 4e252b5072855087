"""Conditional writes of one href racing each other (a lost update before).

If-Match / If-None-Match were checked on a read made before the write: two
PUTs with one ``If-Match`` both passed and both got a 2xx (the second
silently overwrote the first), two ``If-None-Match: *`` creates both got
one. Now the write happens only over the version that was checked (the
one-statement PUT: a compare-and-set on the row's change number; the general
path: ``put_object``/``delete_object`` with ``expect``, the request run again
on fresh data when another writer came in between), so exactly one wins and
the other gets 412.

The races are made certain, never timed: a test transaction writes the href
(or locks its row) and stays open; one-statement PUTs started meanwhile read
the version before it and wait for it when they write. The general path is
held in an object hook until the other request has finished.
"""

from __future__ import annotations

import asyncio

import pytest

from congvu.calendar import hooks
from congvu.calendar.objects import index_of, parse
from congvu.services import Services
from congvu.store import calendar_put
from congvu.store import calendars as repo
from tests.caldav.conftest import AN, THU, an_calendar, event
from tests.caldav.sched_helpers import ics

CAL = f"/dav/calendars/users/{AN}/calendar/"


def general(uid: str, **kw: str) -> bytes:
    """An event only the general path stores (floating times: read in the
    calendar's zone there)."""
    return event(uid, "20261201T090000", "20261201T100000", **kw)


async def _waiting(services: Services, n: int) -> None:
    """Until ``n`` one-statement PUTs wait for a lock (a bound, not a timing check)."""
    async with services.db.connection() as conn:
        for _ in range(1500):
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%at_href AS%' AND pid <> pg_backend_pid()")
            if waiting >= n:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(f"{n} PUTs never waited on the test's transaction")


class Held:
    """A test transaction, open until the block ends: what it writes (or
    locks) there, one-statement PUTs started inside the block do not see and
    wait for when they write. ``rollback``: it ends without a trace."""

    def __init__(self, services: Services, rollback: bool = False) -> None:
        self.services, self.rollback = services, rollback

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        self._cm = self.services.db.connection()
        self.conn = await self._cm.__aenter__()
        self._tx = self.conn.transaction()
        await self._tx.start()
        self.seq = await self.conn.fetchval(f"SELECT {repo.STAMP}")
        return self

    async def lock(self, cal: repo.Calendar, href: str) -> None:
        await self.conn.execute(
            "SELECT 1 FROM calendar_objects WHERE owner_id = $1 AND calendar_id = $2"
            " AND href = $3 FOR UPDATE", cal.owner_id, cal.id, href)

    async def copy(self, cal: repo.Calendar, src: str, href: str, uid: str) -> None:
        """A row at ``href``: a copy of ``src`` with UID ``uid``."""
        await self.conn.execute(
            "INSERT INTO calendar_objects (owner_id, calendar_id, href, uid, etag, ics,"
            " component, first_start, last_end, recurring, span_bucket, class, modseq,"
            " size, instances_indexed, floating_tz, in_inbox)"
            " SELECT owner_id, calendar_id, $3, $4, '\"x\"', ics, component,"
            " first_start, last_end, recurring, span_bucket, class, $5, size,"
            " instances_indexed, floating_tz, in_inbox FROM calendar_objects"
            " WHERE owner_id = $1 AND calendar_id = $2 AND href = $6",
            cal.owner_id, cal.id, href, uid, self.seq, src)

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.rollback or exc[0] is not None:
                await self._tx.rollback()
            else:
                await self._tx.commit()
        finally:
            await self._cm.__aexit__(*exc)


def _statuses(*responses) -> list[int]:  # type: ignore[no-untyped-def]
    return sorted(r.status_code for r in responses)


async def _body(dav, name: str) -> str:  # type: ignore[no-untyped-def]
    r = await dav.request("GET", CAL + name)
    assert r.status_code == 200
    return r.text


@pytest.fixture
def pause(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An object hook that holds the first request reaching it for ``href``
    (after its precondition passed) until ``release`` is set. Declared
    scheduling-only so plain PUTs keep the one-statement path."""

    class Pause:
        href = ""
        entered = asyncio.Event()
        release = asyncio.Event()
        used = False

    async def hook(tx, services, actor, owner, calendar, href, old, new):
        if href == Pause.href and not Pause.used:
            Pause.used = True
            Pause.entered.set()
            await Pause.release.wait()
        return None

    monkeypatch.setattr(hooks, "OBJECT_HOOKS", [hook, *hooks.OBJECT_HOOKS])
    monkeypatch.setattr(hooks, "SCHEDULING_ONLY", {hook, *hooks.SCHEDULING_ONLY})
    yield Pause
    Pause.release.set()  # a failed test must not leave a request held


# --- both on the one-statement path -------------------------------------------------


async def test_if_match_puts_one_wins(dav, services: Services, verdicts) -> None:
    r = await dav.request("PUT", CAL + "m.ics", body=event("m"))
    assert r.status_code == 201
    etag = r.headers["ETag"]
    async with Held(services) as held:
        await held.lock(await an_calendar(services), "m.ics")
        one = asyncio.create_task(dav.request("PUT", CAL + "m.ics", If_Match=etag,
                                              body=event("m", summary="one")))
        two = asyncio.create_task(dav.request("PUT", CAL + "m.ics", If_Match=etag,
                                              body=event("m", summary="two")))
        await _waiting(services, 2)  # both read etag before either writes
    a, b = await one, await two
    assert _statuses(a, b) == [204, 412], (a.text, b.text)
    winner = "one" if a.status_code == 204 else "two"
    assert f"SUMMARY:{winner}" in await _body(dav, "m.ics")
    assert (await dav.request("GET", CAL + "m.ics")).headers["ETag"] == \
        (a if a.status_code == 204 else b).headers["ETag"]
    assert "slow" in verdicts  # the loser was handed to the general path, which said 412


async def test_if_none_match_creates_one_wins(dav, services: Services, verdicts) -> None:
    cal = await an_calendar(services)
    assert (await dav.request("PUT", CAL + "seed.ics", body=event("seed"))).status_code == 201
    async with Held(services, rollback=True) as held:
        await held.copy(cal, "seed.ics", "n.ics", "placeholder")  # gone again at the end
        one = asyncio.create_task(dav.request("PUT", CAL + "n.ics", If_None_Match="*",
                                              body=event("n", summary="one")))
        two = asyncio.create_task(dav.request("PUT", CAL + "n.ics", If_None_Match="*",
                                              body=event("n", summary="two")))
        await _waiting(services, 2)
    a, b = await one, await two
    assert _statuses(a, b) == [201, 412], (a.text, b.text)
    winner = "one" if a.status_code == 201 else "two"
    assert f"SUMMARY:{winner}" in await _body(dav, "n.ics")


async def test_object_becoming_scheduling_object_is_not_overwritten(
        dav, services: Services, verdicts) -> None:
    r = await dav.request("PUT", CAL + "s.ics", body=event("s"))
    etag = r.headers["ETag"]
    cal = await an_calendar(services)
    scheduled = ics("s", [THU]).decode()
    async with Held(services) as held:
        # the object becomes a scheduling object (a new version, not yet committed)
        await held.conn.execute(
            "UPDATE calendar_objects SET ics = $4, etag = '\"sched\"', modseq = $5"
            " WHERE owner_id = $1 AND calendar_id = $2 AND href = $3",
            cal.owner_id, cal.id, "s.ics", scheduled, held.seq)
        put = asyncio.create_task(dav.request("PUT", CAL + "s.ics", If_Match=etag,
                                              body=event("s", summary="plain")))
        await _waiting(services, 1)  # it read the plain object, now waits
    r = await put
    assert r.status_code == 412, r.text
    assert "ORGANIZER" in await _body(dav, "s.ics")
    assert verdicts[-1] == "slow"


async def test_nothing_removed_when_nothing_written(dav, services: Services) -> None:
    """A one-statement PUT that loses removes no tombstone (nor instances) either."""
    cal = await an_calendar(services)
    assert (await dav.request("PUT", CAL + "src.ics", body=event("src"))).status_code == 201
    assert (await dav.request("PUT", CAL + "t.ics", body=event("t"))).status_code == 201
    assert (await dav.request("DELETE", CAL + "t.ics")).status_code == 204
    tombstone = ("SELECT modseq FROM calendar_tombstones"
                 " WHERE owner_id = $1 AND calendar_id = $2 AND href = 't.ics'")
    body = event("t", summary="late")
    async with services.db.connection() as conn:
        before = await conn.fetchval(tombstone, cal.owner_id, cal.id)
        assert before is not None
        # nothing at t.ics on the statement's snapshot (If-None-Match: * passes), but
        # a row is there (committed while it waits) when it writes
        async with Held(services) as held:
            await held.copy(cal, "src.ics", "t.ics", "other")
            task = asyncio.create_task(
                calendar_put.put_plain(conn, cal, "t.ics", _index(body), body, "absent"))
            await _waiting(services, 1)
        put = await task
        assert put.verdict == "slow"
        assert await conn.fetchval(tombstone, cal.owner_id, cal.id) == before
        assert await conn.fetchval(
            "SELECT uid FROM calendar_objects WHERE owner_id = $1 AND calendar_id = $2"
            " AND href = 't.ics'", cal.owner_id, cal.id) == "other"
    # the general path decides on fresh data: 412
    r = await dav.request("PUT", CAL + "t.ics", If_None_Match="*", body=body)
    assert r.status_code == 412


def _index(body: bytes) -> repo.ObjectIndex:
    return index_of(parse(body))


# --- the general path against the one-statement path -----------------------------------


async def test_general_if_match_put_loses_to_plain_put(dav, services: Services, pause,
                                                       verdicts) -> None:
    r = await dav.request("PUT", CAL + "g.ics", body=event("g"))
    etag = r.headers["ETag"]
    pause.href = "g.ics"
    # a scheduling object (general path, hooks) over the plain one, held in the hooks
    general = asyncio.create_task(dav.request("PUT", CAL + "g.ics", If_Match=etag,
                                              body=ics("g", [THU])))
    await asyncio.wait_for(pause.entered.wait(), 60)
    plain = await dav.request("PUT", CAL + "g.ics", If_Match=etag,
                              body=event("g", summary="plain"))
    assert plain.status_code == 204, plain.text
    assert verdicts[-1] == "written"  # the plain PUT took the one statement
    pause.release.set()
    r = await general
    assert r.status_code == 412, r.text  # run again: the etag it matched is gone
    assert "SUMMARY:plain" in await _body(dav, "g.ics")


async def test_general_creates_race(dav, services: Services, pause) -> None:
    await an_calendar(services)  # the default calendar exists before the race
    pause.href = "r.ics"
    first = asyncio.create_task(dav.request("PUT", CAL + "r.ics", If_None_Match="*",
                                            body=general("r", summary="one")))
    await asyncio.wait_for(pause.entered.wait(), 60)
    second = await dav.request("PUT", CAL + "r.ics", If_None_Match="*",
                               body=general("r", summary="two"))
    assert second.status_code == 201, second.text
    pause.release.set()
    r = await first
    assert r.status_code == 412, r.text
    assert "SUMMARY:two" in await _body(dav, "r.ics")


async def test_general_if_match_puts_race(dav, services: Services, pause) -> None:
    r = await dav.request("PUT", CAL + "q.ics", body=general("q"))
    assert r.status_code == 201
    etag = r.headers["ETag"]
    pause.href = "q.ics"
    first = asyncio.create_task(dav.request("PUT", CAL + "q.ics", If_Match=etag,
                                            body=general("q", summary="one")))
    await asyncio.wait_for(pause.entered.wait(), 60)
    second = await dav.request("PUT", CAL + "q.ics", If_Match=etag,
                               body=general("q", summary="two"))
    assert second.status_code == 204, second.text
    pause.release.set()
    r = await first
    assert r.status_code == 412, r.text
    assert "SUMMARY:two" in await _body(dav, "q.ics")


# --- DELETE ----------------------------------------------------------------------------


async def test_if_match_delete_loses_to_put(dav, services: Services, pause) -> None:
    r = await dav.request("PUT", CAL + "d.ics", body=event("d"))
    etag = r.headers["ETag"]
    pause.href = "d.ics"
    delete = asyncio.create_task(dav.request("DELETE", CAL + "d.ics", If_Match=etag))
    await asyncio.wait_for(pause.entered.wait(), 60)  # its If-Match passed; hooks run
    put = await dav.request("PUT", CAL + "d.ics", If_Match=etag, body=event("d", summary="new"))
    assert put.status_code == 204, put.text
    pause.release.set()
    r = await delete
    assert r.status_code == 412, r.text
    assert "SUMMARY:new" in await _body(dav, "d.ics")


async def test_if_match_put_loses_to_delete(dav, services: Services, pause) -> None:
    r = await dav.request("PUT", CAL + "e.ics", body=general("e"))
    etag = r.headers["ETag"]
    pause.href = "e.ics"
    put = asyncio.create_task(dav.request("PUT", CAL + "e.ics", If_Match=etag,
                                          body=general("e", summary="new")))
    await asyncio.wait_for(pause.entered.wait(), 60)
    gone = await dav.request("DELETE", CAL + "e.ics", If_Match=etag)
    assert gone.status_code == 204, gone.text
    pause.release.set()
    r = await put
    assert r.status_code == 412, r.text  # not re-created over the removal
    assert (await dav.request("GET", CAL + "e.ics")).status_code == 404


# --- MOVE ------------------------------------------------------------------------------


async def test_move_of_a_version_no_longer_there(dav, services: Services) -> None:
    """MOVE deletes and re-creates the version it read and indexed: if the
    source changed (or the target filled) meanwhile, ObjectChanged — the
    request is run again on fresh data — and nothing moved."""
    cal = await an_calendar(services)
    assert (await dav.request("PUT", CAL + "mv.ics", body=event("mv"))).status_code == 201
    async with services.db.connection() as conn:
        read = await repo.get_object(conn, cal, "mv.ics")
    assert (await dav.request("PUT", CAL + "mv.ics", body=event("mv", summary="newer"))
            ).status_code == 204
    async with services.db.connection() as conn:
        with pytest.raises(repo.ObjectChanged):
            async with conn.transaction():
                await repo.move_object(conn, cal, "mv.ics", cal, "moved.ics",
                                       _index(event("mv")), expect=read.modseq)
        current = await repo.get_object(conn, cal, "mv.ics")
        # the target filled meanwhile: no silent overwrite either
        assert (await dav.request("PUT", CAL + "moved.ics", body=event("other"))
                ).status_code == 201
        with pytest.raises(repo.ObjectChanged):
            async with conn.transaction():
                await repo.move_object(conn, cal, "mv.ics", cal, "moved.ics",
                                       _index(event("mv")), expect=current.modseq)
    assert "SUMMARY:newer" in await _body(dav, "mv.ics")
    assert "UID:other" in await _body(dav, "moved.ics")
    r = await dav.request("MOVE", CAL + "mv.ics", Destination=CAL + "moved.ics")
    assert r.status_code == 204  # the HTTP MOVE reads both ends itself
    assert "SUMMARY:newer" in await _body(dav, "moved.ics")
