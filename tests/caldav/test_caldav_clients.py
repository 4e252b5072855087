"""Real clients on a real socket: the ``caldav`` library and vdirsyncer."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import caldav
from conftest import AN, PASSWORD, THU, event


def _library_session(url: str) -> dict[str, object]:
    out: dict[str, object] = {}
    with caldav.DAVClient(url=url + "/.well-known/caldav", username=AN,
                          password=PASSWORD) as client:
        principal = client.principal()
        out["principal"] = str(principal.url)
        cals = principal.calendars()
        out["calendars"] = [str(c.url) for c in cals]
        new = principal.make_calendar(name="Công tác", cal_id="cong-tac")
        new.save_event(event("lib-1", "20261207T020000Z", "20261207T030000Z").decode())
        new.save_event(event("lib-2", "20261214T020000Z", "20261214T030000Z").decode())
        new.save_event(event("lib-w", "20261102T020000Z", "20261102T030000Z",
                             extra="RRULE:FREQ=WEEKLY;COUNT=10\r\n").decode())
        found = new.search(start=datetime(2026, 12, 7, tzinfo=UTC),
                           end=datetime(2026, 12, 8, tzinfo=UTC), event=True, expand=True)
        out["found"] = sorted(str(e.icalendar_component["UID"]) for e in found)
        objs = new.objects_by_sync_token(load_objects=False)
        out["sync_count"] = len(list(objs))
        token = objs.sync_token
        new.save_event(event("lib-3", "20261221T020000Z", "20261221T030000Z").decode())
        later = new.objects_by_sync_token(sync_token=token, load_objects=True)
        out["sync_new"] = [str(o.icalendar_component["UID"]) for o in later]
        out["names"] = sorted(str(c.get_display_name()) for c in principal.calendars())
    return out


async def test_caldav_library_discovery_create_query_sync(dav_url: str) -> None:
    out = await asyncio.to_thread(_library_session, dav_url)
    assert out["principal"].endswith(f"/dav/principals/users/{AN}/")
    assert any(u.endswith(f"/dav/calendars/users/{AN}/calendar/") for u in out["calendars"])
    assert out["found"] == ["lib-1", "lib-w"]  # the weekly series has an instance that day
    assert out["sync_count"] == 3
    assert out["sync_new"] == ["lib-3"]
    assert "Công tác" in out["names"]


VDIR_CONFIG = """
[general]
status_path = "{tmp}/status/"

[pair cal]
a = "local"
b = "server"
collections = null
conflict_resolution = "a wins"

[storage local]
type = "filesystem"
path = "{tmp}/local/"
fileext = ".ics"

[storage server]
type = "caldav"
url = "{url}/dav/calendars/users/{user}/calendar/"
username = "{user}"
password = "{password}"
"""


async def test_vdirsyncer_syncs_both_ways(dav_url: str, dav, services, tmp_path: Path) -> None:
    cal = f"/dav/calendars/users/{AN}/calendar/"
    # vdirsyncer's HTTP library encodes Basic credentials as Latin-1: an ASCII password
    ascii_password = "Dong-bo-Lich-2026!"
    await services.directory.set_password(AN, ascii_password, "test")
    # the secretary (calendar-write) works on the server side meanwhile
    r = await dav.request("PUT", cal + "from-server.ics", user=THU, body=event("from-server"))
    assert r.status_code == 201, r.text
    (tmp_path / "local").mkdir()
    config = tmp_path / "config"
    config.write_text(VDIR_CONFIG.format(tmp=tmp_path, url=dav_url, user=AN,
                                         password=ascii_password))

    def run(*args: str) -> str:
        proc = subprocess.run(["vdirsyncer", "-c", str(config), *args], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    await asyncio.to_thread(run, "discover")
    log = await asyncio.to_thread(run, "sync")
    local = list((tmp_path / "local").glob("*.ics"))
    assert any("UID:from-server" in p.read_text() for p in local), log
    (tmp_path / "local" / "from-laptop.ics").write_bytes(event("from-laptop", summary="Từ máy"))
    await asyncio.to_thread(run, "sync")
    r = await dav.request("REPORT", cal, user=THU, body=(
        b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        b"<D:prop><C:calendar-data/></D:prop><C:filter><C:comp-filter name=\"VCALENDAR\"/>"
        b"</C:filter></C:calendar-query>"))
    assert "UID:from-laptop" in r.text and "Từ máy" in r.text
    # a change on the server comes back down
    await dav.request("PUT", cal + "from-server.ics", user=THU,
                      body=event("from-server", summary="Đã sửa"))
    log = await asyncio.to_thread(run, "sync")
    texts = [p.read_text() for p in (tmp_path / "local").glob("*.ics")]
    assert any("Đã sửa" in t for t in texts), (log, texts)
