"""RFC 6578 §3.6/§3.7: a sync-collection answer cut at DAV:limit.

At most ``nresults`` changes come back, with a 507 for the collection itself
(DAV:number-of-matches-within-limits) and a token from which the client
continues; following the tokens yields every change and removal exactly.
The ``caldav`` library follows such pages (it never sends DAV:limit itself,
so the server's own page size is lowered for that test).
"""

from __future__ import annotations

import asyncio
import re

import caldav
from conftest import AN, PASSWORD, event

from congvu.calendar import reports

CAL = f"/dav/calendars/users/{AN}/calendar/"


def sync_body(token: str, limit: int | None) -> bytes:
    lim = f"<D:limit><D:nresults>{limit}</D:nresults></D:limit>" if limit else ""
    return ('<D:sync-collection xmlns:D="DAV:"><D:sync-token>'
            f"{token}</D:sync-token><D:sync-level>1</D:sync-level>{lim}"
            "<D:prop><D:getetag/></D:prop></D:sync-collection>").encode()


async def sync(dav, token: str, limit: int | None) -> tuple[str, dict[str, str], bool]:
    r = await dav.request("REPORT", CAL, body=sync_body(token, limit))
    assert r.status_code == 207, r.text
    new_token = re.search(r"<D:sync-token>([^<]*)</D:sync-token>", r.text).group(1)
    found: dict[str, str] = {}
    truncated = False
    for resp in re.findall(r"<D:response>(.*?)</D:response>", r.text, re.S):
        href = re.search(r"<D:href>([^<]*)</D:href>", resp).group(1)
        if href.rstrip("/") == CAL.rstrip("/").replace("@", "%40") or href == CAL:
            assert "507" in resp and "number-of-matches-within-limits" in resp, resp
            truncated = True
            continue
        found[href.rsplit("/", 1)[-1]] = "gone" if "404" in resp else "changed"
    if limit is not None:
        assert len(found) <= limit
    return new_token, found, truncated


async def follow(dav, token: str, limit: int | None) -> tuple[str, dict[str, str], int]:
    pages, seen = 0, {}
    while True:
        token, found, truncated = await sync(dav, token, limit)
        seen.update(found)
        pages += 1
        if not truncated:
            return token, seen, pages
        assert pages < 50


async def test_limit_pages_changes_and_removals(dav) -> None:
    for i in range(7):
        assert (await dav.request("PUT", f"{CAL}e{i}.ics", body=event(f"e{i}"))).status_code == 201
    token, first, truncated = await sync(dav, "", 3)
    assert truncated and len(first) == 3
    token, seen, pages = await follow(dav, "", 3)
    assert seen == {f"e{i}.ics": "changed" for i in range(7)} and pages == 3
    # changes after that token: two removals and an update, paged by two
    await dav.request("DELETE", CAL + "e1.ics")
    await dav.request("PUT", CAL + "e2.ics", body=event("e2", summary="đổi"))
    await dav.request("DELETE", CAL + "e5.ics")
    end, seen, pages = await follow(dav, token, 2)
    assert seen == {"e1.ics": "gone", "e2.ics": "changed", "e5.ics": "gone"} and pages == 2
    # the last token is current: nothing more, no 507
    _, nothing, truncated = await sync(dav, end, 2)
    assert nothing == {} and not truncated
    # without a limit everything comes at once
    _, seen, truncated = await sync(dav, token, None)
    assert len(seen) == 3 and not truncated
    # a bad nresults is a 400
    r = await dav.request("REPORT", CAL, body=sync_body("", 3).replace(b">3<", b">x<"))
    assert r.status_code == 400


def _library_sync(url: str) -> tuple[list[str], list[str]]:
    with caldav.DAVClient(url=url + "/.well-known/caldav", username=AN,
                          password=PASSWORD) as client:
        cal = client.principal().calendars()[0]
        for i in range(5):
            cal.save_event(event(f"p{i}").decode())
        objs = cal.objects_by_sync_token(load_objects=True)
        first = sorted(str(o.icalendar_component["UID"]) for o in objs)
        token = objs.sync_token
        cal.save_event(event("p5").decode())
        cal.save_event(event("p6").decode())
        cal.save_event(event("p7").decode())
        later = cal.objects_by_sync_token(sync_token=token, load_objects=True)
        return first, sorted(str(o.icalendar_component["UID"]) for o in later)


async def test_caldav_library_follows_truncated_pages(dav_url: str, monkeypatch) -> None:
    monkeypatch.setattr(reports, "SYNC_PAGE_LIMIT", 2)
    first, later = await asyncio.to_thread(_library_sync, dav_url)
    assert first == [f"p{i}" for i in range(5)]
    assert later == ["p5", "p6", "p7"]
