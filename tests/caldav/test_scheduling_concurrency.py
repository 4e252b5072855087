"""Thunderbird's duplicate-UID PUT racing the organizer's update (issue 5, stop 7).

Thunderbird may PUT an invitation it accepted under a new href (the server
moves the existing copy there). Before, that PUT removed the old copy (a row
lock on the attendee's calendar) before the scheduling hook took the
scheduling locks, while the organizer's update took the scheduling locks and
then wrote the attendee's calendar: PostgreSQL aborted one with a deadlock and
the client got a 500. Now every write comes after the scheduling locks, and
a transaction PostgreSQL still aborts (deadlock, serialization) is retried.

The race is made certain with an object hook that holds the attendee's
request between its first reads and its scheduling.
"""

from __future__ import annotations

import asyncio

import pytest

from congvu.calendar import hooks
from congvu.services import Services
from tests.caldav.sched_helpers import AN, THU, attendee, copy, ics


def url(owner: str, href: str) -> str:
    return f"/dav/calendars/users/{owner}/calendar/{href}"


async def assert_agree(services: Services, uid: str) -> None:
    _, an_cal = await copy(services, AN, uid)  # type: ignore[misc]
    _, thu_cal = await copy(services, THU, uid)  # type: ignore[misc]
    an_ev, thu_ev = an_cal.walk("VEVENT")[0], thu_cal.walk("VEVENT")[0]
    for prop in ("DTSTART", "SEQUENCE", "SUMMARY"):
        assert str(an_ev.get(prop).to_ical()) == str(thu_ev.get(prop).to_ical()), prop
    assert attendee(an_cal, THU)["PARTSTAT"] == attendee(thu_cal, THU)["PARTSTAT"]


@pytest.fixture
def slow_thunderbird(monkeypatch):
    entered = asyncio.Event()

    async def pause(tx, services, actor, owner, calendar, href, old, new):
        if href == "tb.ics" and new is not None:
            entered.set()
            await asyncio.sleep(0.4)
        return None

    monkeypatch.setattr(hooks, "OBJECT_HOOKS", [pause, *hooks.OBJECT_HOOKS])
    return entered


async def test_duplicate_uid_put_racing_organizer_update(dav, services: Services,
                                                         slow_thunderbird) -> None:
    assert (await dav.request("PUT", url(AN, "hop.ics"), body=ics("race-1", [THU]))
            ).status_code == 201
    accepted = ics("race-1", [f"{THU}=ACCEPTED"], extra="")

    async def thunderbird():
        return await dav.request("PUT", url(THU, "tb.ics"), user=THU, body=accepted)

    async def organizer():
        await slow_thunderbird.wait()
        return await dav.request("PUT", url(AN, "hop.ics"), body=ics(
            "race-1", [THU], seq=1, start="20260305T040000Z", end="20260305T050000Z"))

    tb, org = await asyncio.gather(thunderbird(), organizer())
    assert tb.status_code in (201, 204), tb.text
    assert org.status_code == 204, org.text
    # one copy for THU, at Thunderbird's href; the organizer has THU's answer
    async with services.db.connection() as conn:
        hrefs = [r[0] for r in await conn.fetch(
            "SELECT o.href FROM calendar_objects o JOIN calendars c"
            " ON c.owner_id = o.owner_id AND c.id = o.calendar_id"
            " WHERE o.uid = 'race-1' AND c.kind = 'calendar'"
            " AND o.owner_id = (SELECT id FROM accounts WHERE address = $1)", THU)]
    assert hrefs == ["tb.ics"]
    # and both sides agree: the organizer's update reached THU's copy (taken
    # after THU's answer, it asks THU again), THU's answer is what AN has
    await assert_agree(services, "race-1")


async def test_many_racing_pairs_never_500(dav, services: Services) -> None:
    """Without the pause: a few rounds of both requests at once, all answered."""
    for i in range(6):
        uid = f"race-{i + 10}"
        assert (await dav.request("PUT", url(AN, f"{uid}.ics"), body=ics(uid, [THU]))
                ).status_code == 201
        results = await asyncio.gather(
            dav.request("PUT", url(THU, f"tb-{uid}.ics"), user=THU,
                        body=ics(uid, [f"{THU}=ACCEPTED"])),
            dav.request("PUT", url(AN, f"{uid}.ics"), body=ics(uid, [THU], seq=1,
                                                               summary="Đổi")))
        assert all(r.status_code in (201, 204) for r in results), [r.text for r in results]
        async with services.db.connection() as conn:
            n = await conn.fetchval(
                "SELECT count(*) FROM calendar_objects o JOIN calendars c"
                " ON c.owner_id = o.owner_id AND c.id = o.calendar_id"
                " WHERE o.uid = $2 AND c.kind = 'calendar'"
                " AND o.owner_id = (SELECT id FROM accounts WHERE address = $1)", THU, uid)
        assert n == 1
        await assert_agree(services, uid)


async def test_aborted_transaction_is_retried(dav, services: Services, monkeypatch) -> None:
    """A transaction PostgreSQL aborts (deadlock, serialization failure) is run
    again; nothing of the failed attempt stays; past the attempts, a 500."""
    import asyncpg

    from congvu.calendar import app
    from tests.caldav.conftest import event

    calls: list[str] = []

    async def flaky(tx, services, actor, owner, calendar, href, old, new):
        calls.append(href)
        await tx.execute("SELECT 1")
        if href == "always.ics" or calls.count(href) == 1:
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        return None

    monkeypatch.setattr(hooks, "OBJECT_HOOKS", [flaky, *hooks.OBJECT_HOOKS])
    r = await dav.request("PUT", url(AN, "once.ics"), body=event("once"))
    assert r.status_code == 201 and calls.count("once.ics") == 2
    r = await dav.request("PUT", url(AN, "always.ics"), body=event("always"))
    assert r.status_code == 500 and calls.count("always.ics") == app.TX_ATTEMPTS
    assert (await dav.request("GET", url(AN, "always.ics"))).status_code == 404
    async with services.db.connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM calendar_objects WHERE uid IN ('once', 'always')") == 1


async def test_answer_to_a_replaced_version_keeps_the_newer(dav, services: Services) -> None:
    """RFC 5546 §2.1.5: an attendee's PUT carrying an older SEQUENCE than the
    organizer's current version (its client had not synced yet) does not undo
    the update: the newer version stays, no stale REPLY, no ETag returned."""
    assert (await dav.request("PUT", url(AN, "v.ics"), body=ics("seq-1", [THU]))
            ).status_code == 201
    mine, _ = await copy(services, THU, "seq-1")  # type: ignore[misc]
    await dav.request("PUT", url(AN, "v.ics"), body=ics(
        "seq-1", [THU], seq=1, start="20260305T040000Z", end="20260305T050000Z"))
    r = await dav.request("PUT", url(THU, mine.href), user=THU,
                          body=ics("seq-1", [f"{THU}=ACCEPTED"]))  # SEQUENCE:0
    assert r.status_code == 204 and "etag" not in r.headers
    kept, kept_cal = await copy(services, THU, "seq-1")  # type: ignore[misc]
    assert "20260305T040000Z" in kept.ics and attendee(kept_cal, THU)["PARTSTAT"] == "NEEDS-ACTION"
    _, an_cal = await copy(services, AN, "seq-1")  # type: ignore[misc]
    assert attendee(an_cal, THU)["PARTSTAT"] == "NEEDS-ACTION"
    # answering the current version works
    r = await dav.request("PUT", url(THU, mine.href), user=THU, body=ics(
        "seq-1", [f"{THU}=ACCEPTED"], seq=1, start="20260305T040000Z", end="20260305T050000Z"))
    assert r.status_code == 204
    _, an_cal = await copy(services, AN, "seq-1")  # type: ignore[misc]
    assert attendee(an_cal, THU)["PARTSTAT"] == "ACCEPTED"


async def test_stale_answer_with_sequence_in_another_spelling(dav, services: Services) -> None:
    """The stale-answer check reads SEQUENCE as leniently as the parser does
    (lower case, a parameter): a client's spelling does not let an older
    answer undo the organizer's update."""
    assert (await dav.request("PUT", url(AN, "w.ics"), body=ics("seq-2", [THU]))
            ).status_code == 201
    mine, _ = await copy(services, THU, "seq-2")  # type: ignore[misc]
    await dav.request("PUT", url(AN, "w.ics"), body=ics(
        "seq-2", [THU], seq=3, start="20260305T040000Z", end="20260305T050000Z"))
    stale = ics("seq-2", [f"{THU}=ACCEPTED"], seq=1).replace(b"SEQUENCE:1", b"sequence;X-A=b:1")
    assert b"sequence;X-A=b:1" in stale
    r = await dav.request("PUT", url(THU, mine.href), user=THU, body=stale)
    assert r.status_code == 204 and "etag" not in r.headers
    kept, _ = await copy(services, THU, "seq-2")  # type: ignore[misc]
    assert "20260305T040000Z" in kept.ics
