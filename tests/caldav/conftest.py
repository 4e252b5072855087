"""CalDAV fixtures: the app over the test database, in-process and on a real socket.

``dav`` is an httpx client talking to the ASGI app directly (transcripts);
``dav_url`` starts uvicorn on an ephemeral port for real clients (the
``caldav`` library, vdirsyncer), which run in a worker thread.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

import congvu.calendar.app  # noqa: F401 - registers the /dav routes
from congvu.directory.service import Directory
from congvu.mailserver.smtp.dnsresolve import StaticResolver
from congvu.mailserver.smtp.service import SmtpServer, start_smtp
from congvu.services import Services
from congvu.store import calendar_put
from congvu.store import calendars as repo
from congvu.web.app import build_app

PASSWORD = "Mật-khẩu-2026!"
DOMAIN = "hanoi.gov.vn"
AN = f"an.nv@{DOMAIN}"
THU = f"thu.lt@{DOMAIN}"
BINH = f"binh.tq@{DOMAIN}"
HOA = f"hoa.nt@{DOMAIN}"


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def event(uid: str, start: str = "20261201T020000Z", end: str = "20261201T030000Z",
          extra: str = "", summary: str = "Họp giao ban") -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\n"
        f"SUMMARY:{summary}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()



async def an_calendar(services: Services) -> repo.Calendar:
    """AN's default calendar as stored now (made on first use)."""
    account = await services.directory.get_account(AN)
    async with services.db.connection() as conn:
        return await repo.default_calendar(conn, repo.account_owner(account))


@pytest.fixture
def verdicts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The verdict of each one-statement PUT (congvu.store.calendar_put), in order."""
    seen: list[str] = []
    for name in ("put_plain", "put_plain_by_name"):
        real = getattr(calendar_put, name)

        async def spy(*args, real=real, **kwargs):
            result = await real(*args, **kwargs)
            seen.append(result.verdict)
            return result

        monkeypatch.setattr(calendar_put, name, spy)
    return seen

class Dav:
    """An httpx client per user against the in-process app."""

    def __init__(self, app: object) -> None:
        self.app = app
        self._clients: dict[str, httpx.AsyncClient] = {}

    def as_(self, user: str = AN) -> httpx.AsyncClient:
        if user not in self._clients:
            self._clients[user] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app),  # type: ignore[arg-type]
                base_url="http://mail.hanoi.gov.vn", headers=basic(user))
        return self._clients[user]

    async def request(self, method: str, path: str, user: str = AN, body: bytes | str = b"",
                      **headers: str) -> httpx.Response:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        return await self.as_(user).request(method, path, content=body, headers=hdrs)

    async def close(self) -> None:
        for c in self._clients.values():
            await c.aclose()


@pytest.fixture
async def dav(services: Services, org: Directory) -> AsyncIterator[Dav]:
    client = Dav(build_app(services))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def dav_url(services: Services, org: Directory) -> AsyncIterator[str]:
    """A real HTTP listener on an ephemeral port; yields its base URL."""
    config = uvicorn.Config(build_app(services), host="127.0.0.1", port=0, log_config=None,
                            lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    port = server.servers[0].sockets[0].getsockname()[1]
    import asyncio

    task = asyncio.create_task(server.main_loop())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await server.shutdown()


@pytest.fixture
def resolver() -> StaticResolver:
    """DNS for the MX listener below: nothing published unless a test adds it."""
    return StaticResolver()


@pytest.fixture
async def mx(services: Services, org: Directory, resolver: StaticResolver,
             ) -> AsyncIterator[SmtpServer]:
    """An MX listener (iMIP tests): DMARC failures go to Junk, no outbound queue."""
    srv = await start_smtp(services, mx_port=0, resolver=resolver, queue=False,
                           dmarc_reject="junk")
    try:
        yield srv
    finally:
        await srv.stop()
