"""/dav served ahead of Starlette's middleware and router (`congvu.web.app.Direct`),
and the per-request re-validation of a remembered Basic login: same answers as
through the router, a 500 that leaves the server serving, and a change to the
account seen on the very next request."""

from __future__ import annotations

import httpx
import pytest
from conftest import AN, PASSWORD, THU, basic, event

from congvu.calendar import app as dav_app
from congvu.web import app as web_app

CAL = f"/dav/calendars/users/{AN}/calendar/"
UNIT_CAL = "/dav/calendars/units/so-tttt/work-schedule/"


async def test_dav_paths_take_the_direct_dispatch(dav, monkeypatch) -> None:
    seen: list[str] = []
    real = web_app._serve_direct

    async def spy(app, scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["path"])
        await real(app, scope, receive, send)

    monkeypatch.setattr(web_app, "_serve_direct", spy)
    for path in ("/dav", "/dav/", CAL):
        r = await dav.request("OPTIONS", path)
        assert r.status_code == 200 and "calendar-access" in r.headers["dav"], path
    assert seen == ["/dav", "/dav/", CAL]
    # Not under /dav: the router answers (404), not the DAV endpoint.
    r = await dav.request("OPTIONS", "/davx")
    assert r.status_code == 404 and "dav" not in r.headers
    r = await dav.request("GET", "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await dav.request("GET", "/.well-known/caldav")
    assert r.status_code == 301 and r.headers["location"] == "/dav/"
    r = await dav.request("PUT", "/.well-known/caldav")
    assert r.status_code == 405
    assert seen == ["/dav", "/dav/", CAL]


async def test_head_and_errors_answer_as_before(dav) -> None:
    r = await dav.request("PUT", CAL + "h.ics", body=event("h"))
    assert r.status_code == 201 and r.headers["etag"]
    get = await dav.request("GET", CAL + "h.ics")
    head = await dav.request("HEAD", CAL + "h.ics")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == get.headers["etag"] == r.headers["etag"]
    assert head.headers["content-type"] == get.headers["content-type"]
    assert (await dav.request("HEAD", CAL + "missing.ics")).status_code == 404
    r = await dav.as_(AN).request("PROPFIND", CAL, headers={"Authorization": "Basic !!"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic realm=")
    r = await dav.request("PROPFIND", CAL, user=AN, Depth="7")
    assert r.status_code == 400


async def test_a_failing_request_gets_500_and_the_server_serves_on(dav_url, monkeypatch) -> None:
    calls = 0
    real = dav_app.DavEndpoint.handle

    async def broken(self, request):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("escapes the endpoint")
        if calls == 2:
            return "not a response"  # fails while answering
        return await real(self, request)

    monkeypatch.setattr(dav_app.DavEndpoint, "handle", broken)
    async with httpx.AsyncClient(base_url=dav_url, headers=basic(AN)) as client:
        r = await client.request("OPTIONS", CAL)
        assert r.status_code == 500 and r.text == "Internal Server Error"
        r = await client.request("OPTIONS", CAL)
        assert r.status_code == 500
        r = await client.request("OPTIONS", CAL)
        assert r.status_code == 200 and "calendar-access" in r.headers["dav"]
        r = await client.put(CAL + "after.ics", content=event("after"))
        assert r.status_code == 201
    # A method that fails inside the endpoint: its own 500, the next request fine.
    monkeypatch.setattr(dav_app.DavEndpoint, "handle", real)

    async def fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("boom")

    monkeypatch.setattr("congvu.calendar.methods.do_PROPPATCH", fails)
    async with httpx.AsyncClient(base_url=dav_url, headers=basic(AN)) as client:
        r = await client.request("PROPPATCH", CAL, content=b"<x/>")
        assert r.status_code == 500 and r.text == "internal error"
        r = await client.get(CAL + "after.ics")
        assert r.status_code == 200 and b"UID:after" in r.content


async def test_an_escaping_exception_reaches_the_server(dav, monkeypatch) -> None:
    async def broken(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("escapes the endpoint")

    monkeypatch.setattr(dav_app.DavEndpoint, "handle", broken)
    with pytest.raises(RuntimeError, match="escapes the endpoint"):
        await dav.request("OPTIONS", CAL)


async def test_a_remembered_login_follows_every_change_at_once(dav, org) -> None:
    # Remembered after the first request; each change below counts on the next one.
    assert (await dav.request("PROPFIND", CAL, Depth="0")).status_code == 207
    assert (await dav.request("PROPFIND", CAL, Depth="0")).status_code == 207
    await org.set_enabled(AN, False, "test")
    assert (await dav.request("PROPFIND", CAL, Depth="0")).status_code == 401
    await org.set_enabled(AN, True, "test")
    assert (await dav.request("PROPFIND", CAL, Depth="0")).status_code == 207
    await org.set_password(AN, "Mật-khẩu-mới-2026!", "test")
    assert (await dav.request("PROPFIND", CAL, Depth="0")).status_code == 401
    new = dav.as_(AN)
    r = await new.request("PROPFIND", CAL, headers={
        **basic(AN, "Mật-khẩu-mới-2026!"), "Depth": "0"})
    assert r.status_code == 207
    await org.set_password(AN, PASSWORD, "test")
    assert (await dav.request("PROPFIND", CAL, Depth="0")).status_code == 207

    # Roles come with the account: a schedule manager who loses the role cannot
    # write the unit's schedule on the very next request, and can again once
    # it is given back.
    r = await dav.request("PUT", UNIT_CAL + "w1.ics", user=THU, body=event("w1"))
    assert r.status_code == 201
    await org.remove_role(THU, "schedule-manager:so-tttt", "test")
    r = await dav.request("PUT", UNIT_CAL + "w2.ics", user=THU, body=event("w2"))
    assert r.status_code == 403
    await org.add_role(THU, "schedule-manager:so-tttt", "test")
    r = await dav.request("PUT", UNIT_CAL + "w3.ics", user=THU, body=event("w3"))
    assert r.status_code == 201
