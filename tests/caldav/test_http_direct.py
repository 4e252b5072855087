"""/dav served ahead of Starlette's middleware and router (`congvu.web.app.Direct`),
and the per-request re-validation of a remembered Basic login: same answers as
through the router, a 500 that leaves the server serving, and a change to the
account seen on the very next request."""

from __future__ import annotations

import httpx
import pytest
from conftest import AN, BINH, DOMAIN, PASSWORD, THU, basic, event
from starlette.requests import Request

from congvu.calendar import app as dav_app
from congvu.calendar.davxml import DavError
from congvu.store import accounts as accounts_repo
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


def _request(user: str, password: str = PASSWORD) -> Request:
    headers = [(k.lower().encode(), v.encode()) for k, v in basic(user, password).items()]
    return Request({"type": "http", "method": "PROPFIND", "path": "/dav/", "headers": headers,
                    "client": ("127.0.0.1", 1)})


async def test_the_account_stamp_changes_with_everything_an_account_is_read_from(
        services, org) -> None:
    async def stamp_of(address: str) -> list[int | None] | None:
        account = await org.get_account(address)
        async with services.db.connection() as conn:
            return await accounts_repo.stamp(conn, account.id)

    seen = [await stamp_of(AN)]
    assert seen[0] is not None and await stamp_of(AN) == seen[0]
    async with services.db.connection() as conn:
        account, stamp = await accounts_repo.get_stamped(conn, (await org.get_account(AN)).id)
        assert stamp == seen[0] and account.address == AN
        assert await accounts_repo.stamp(conn, 10**9) is None
        assert await accounts_repo.get_stamped(conn, 10**9) is None
    changes = [
        org.add_role(AN, "schedule-manager:q-hk", "test"),
        org.remove_role(AN, "schedule-manager:q-hk", "test"),
        org.add_alias(f"giam-doc@{DOMAIN}", AN, "test"),
        org.remove_alias(f"giam-doc@{DOMAIN}", "test"),
        org.rename_unit("so-tttt", "Sở Khoa học và Công nghệ", "test"),
        org.set_password(AN, "Mật-khẩu-mới-2026!", "test"),
        org.set_enabled(AN, False, "test"),
        org.set_enabled(AN, True, "test"),
    ]
    for change in changes:
        await change
        now = await stamp_of(AN)
        assert now != seen[-1]
        seen.append(now)
    # A role or an alias added and removed again: the same rows as before, so
    # the same stamp; every other state its own.
    assert seen[2] == seen[4] == seen[0]
    assert len(set(map(tuple, seen))) == len(seen) - 2
    # Someone else's change leaves it alone.
    await org.add_role(BINH, "schedule-manager:q-hk", "test")
    assert await stamp_of(AN) == seen[-1]


async def test_a_remembered_login_reads_the_account_again_only_when_it_changed(
        services, org) -> None:
    auth = dav_app.BasicAuth(services)
    first = await auth(_request(AN))  # verified by the authenticator, remembered
    second = await auth(_request(AN))  # read again with its stamp
    assert await auth(_request(AN)) is second  # the stamp is the same: no new read
    assert second == first
    await org.add_alias(f"giam-doc@{DOMAIN}", AN, "test")
    third = await auth(_request(AN))
    assert f"giam-doc@{DOMAIN}" in third.aliases and third is not second
    await org.add_role(AN, "schedule-manager:q-hk", "test")
    fourth = await auth(_request(AN))
    assert "schedule-manager:q-hk" in map(str, fourth.roles)
    await org.set_enabled(AN, False, "test")
    with pytest.raises(DavError) as refused:
        await auth(_request(AN))
    assert refused.value.status == 401
    await org.set_enabled(AN, True, "test")
    assert (await auth(_request(AN))).enabled
    with pytest.raises(DavError):
        await auth(_request(AN, "sai-mật-khẩu"))
