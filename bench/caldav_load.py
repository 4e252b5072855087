"""CalDAV load: Congvu side by side with Radicale 3.x in one run.

For each server and size: PUT N events (5% weekly recurring, COUNT=10) from 8
concurrent clients, then a one-week calendar-query (getetag, as iPhone and
DAVx5 ask), a full sync-collection (empty token) and a Depth-1 PROPFIND of
the calendar (getetag). Queries are timed as the median of 11 runs.

Events are spaced every 8 hours from 2020-01-06 (about 21 a week), so a
larger calendar holds a longer history at the same density, and the queried
week is the same one at every size: a flat query time shows the index works.

    flock /tmp/congvu-bench.lock python bench/caldav_load.py \
        --sizes 1000,100000 --radicale /tmp/radicale-venv/bin/radicale

Congvu runs as ``congvu serve`` with its embedded PostgreSQL in a temporary
data directory; Radicale with its file storage in a temporary directory, no
auth (which only flatters Radicale). Radicale runs at the first size only
unless --radicale-sizes says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

BASE = datetime(2020, 1, 6, tzinfo=UTC)
STEP = timedelta(hours=8)
WEEK_START = BASE + timedelta(days=120)
PASSWORD = "Đo-tải-Mật-khẩu-2026"
USER = "bench@bench.vn"
CONCURRENCY = 8
REPEATS = 11  # queries: the median of this many runs (the machine is shared)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fmt(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%SZ")


def event(i: int) -> bytes:
    start = BASE + i * STEP
    rrule = "RRULE:FREQ=WEEKLY;COUNT=10\r\n" if i % 20 == 0 else ""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//congvu bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:bench-{i}@congvu\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{fmt(start)}\r\n"
        f"DTEND:{fmt(start + timedelta(hours=1))}\r\n{rrule}"
        f"SUMMARY:Họp giao ban số {i}\r\nLOCATION:Phòng họp {i % 12}\r\n"
        "DESCRIPTION:Nội dung cuộc họp\\, thành phần tham dự và tài liệu kèm theo.\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


WEEK_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name=\"VCALENDAR\">"
    f'<C:comp-filter name="VEVENT"><C:time-range start="{fmt(WEEK_START)}" '
    f'end="{fmt(WEEK_START + timedelta(days=7))}"/></C:comp-filter></C:comp-filter>'
    "</C:filter></C:calendar-query>"
).encode()
SYNC = (b'<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
        b"<D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop>"
        b"</D:sync-collection>")
PROPFIND = (b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
            b"<D:getetag/><D:resourcetype/></D:prop></D:propfind>")


async def put_all(client: httpx.AsyncClient, cal: str, n: int) -> float:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            r = await client.put(f"{cal}bench-{i}.ics", content=event(i),
                                 headers={"Content-Type": "text/calendar; charset=utf-8"})
            if r.status_code not in (201, 204):
                raise RuntimeError(f"PUT {i}: {r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - t0)


async def timed(client: httpx.AsyncClient, method: str, url: str, body: bytes,
                depth: str, expect: str) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        r = await client.request(method, url, content=body,
                                 headers={"Depth": depth,
                                          "Content-Type": "application/xml; charset=utf-8"})
        times.append(time.perf_counter() - t0)
        if r.status_code != 207:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:300]}")
        count = len(re.findall(r"<(?:[A-Za-z0-9_]+:)?" + expect + ">", r.text))
    return statistics.median(times) * 1000, count


async def measure(name: str, base: str, cal: str, n: int, auth: tuple[str, str] | None,
                  make: bool) -> dict[str, float | int | str]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, auth=auth, limits=limits, timeout=600) as c:
        if make:
            await c.request("MKCOL", cal.rstrip("/").rsplit("/", 1)[0] + "/")
            r = await c.request("MKCALENDAR", cal)
            if r.status_code not in (201, 405):
                raise RuntimeError(f"MKCALENDAR: {r.status_code} {r.text[:200]}")
        rate = await put_all(c, cal, n)
        week_ms, week_n = await timed(c, "REPORT", cal, WEEK_QUERY, "1", "getetag")
        sync_ms, sync_n = await timed(c, "REPORT", cal, SYNC, "1", "getetag")
        pf_ms, pf_n = await timed(c, "PROPFIND", cal, PROPFIND, "1", "getetag")
        if os.environ.get("BENCH_OVERHEAD"):
            ov, _ = await timed(c, "PROPFIND", cal, PROPFIND, "0", "getetag")
            print(f"{name}: PROPFIND depth 0 {ov:.2f} ms", file=sys.stderr)
    week_n = max(week_n, 0)
    return {"server": name, "n": n, "put_per_s": rate, "week_ms": week_ms, "week_hits": week_n,
            "sync_ms": sync_ms, "sync_items": sync_n, "propfind_ms": pf_ms,
            "propfind_items": pf_n}


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


class Congvu:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONGVU_")}
        self.env.update({f"CONGVU_LISTENERS_{p}": "0" for p in
                         ("SMTP", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "HTTPS")})
        self.env.update({"CONGVU_LISTENERS_HTTP": str(self.port),
                         "CONGVU_DATA_DIR": str(tmp / "congvu"), "CONGVU_LOG_LEVEL": "WARNING"})
        self.proc: subprocess.Popen[bytes] | None = None

    def admin(self, *args: str, stdin: str | None = None) -> None:
        subprocess.run([sys.executable, "-m", "congvu", "admin", *args], env=self.env,
                       input=stdin.encode() if stdin else None, check=True,
                       stdout=subprocess.DEVNULL)

    def start(self) -> str:
        self.proc = subprocess.Popen([sys.executable, "-m", "congvu", "serve"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{self.port}"
        wait_http(base + "/healthz", self.proc)
        return base

    def setup(self) -> None:
        self.admin("domain", "add", "bench.vn")
        self.admin("unit", "add", "bench", "--name", "Đơn vị đo")
        for i in (0, 1):
            self.admin("account", "add", f"bench{i}@bench.vn" if i else USER, "--name",
                       "Người đo", "--unit", "bench", "--password-stdin", stdin=PASSWORD + "\n")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


class Radicale:
    def __init__(self, binary: str, tmp: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = tmp / "radicale"
        self.dir.mkdir(parents=True)
        (self.dir / "config").write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n[auth]\ntype = none\n"
            f"[storage]\nfilesystem_folder = {self.dir}/collections\n"
            "[logging]\nlevel = warning\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.proc = subprocess.Popen([self.binary, "--config", str(self.dir / "config")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{self.port}"
        wait_http(base + "/", self.proc)
        return base

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def show(rows: list[dict[str, float | int | str]]) -> None:
    head = ("server", "events", "PUT/s", "week query ms (hits)", "full sync ms (items)",
            "PROPFIND d1 ms (items)")
    print(" | ".join(head))
    for r in rows:
        print(f"{r['server']} | {r['n']} | {r['put_per_s']:.0f} | "
              f"{r['week_ms']:.1f} ({r['week_hits']}) | {r['sync_ms']:.1f} ({r['sync_items']}) | "
              f"{r['propfind_ms']:.1f} ({r['propfind_items']})")
    rad = {r["n"]: r for r in rows if r["server"] == "radicale"}
    for r in rows:
        peer = rad.get(r["n"])
        if r["server"] != "congvu" or peer is None:
            continue
        print(f"\nratios at {r['n']} events (congvu vs radicale): "
              f"PUT {float(r['put_per_s']) / float(peer['put_per_s']):.0f}x, "
              f"week query {float(peer['week_ms']) / float(r['week_ms']):.0f}x, "
              f"full sync {float(peer['sync_ms']) / float(r['sync_ms']):.0f}x, "
              f"PROPFIND {float(peer['propfind_ms']) / float(r['propfind_ms']):.0f}x faster")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--radicale", default=shutil.which("radicale") or "")
    ap.add_argument("--radicale-sizes", default=None, help="default: the first size")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rad_sizes = ([int(s) for s in args.radicale_sizes.split(",")] if args.radicale_sizes
                 else sizes[:1])
    rows = []
    with tempfile.TemporaryDirectory(prefix="caldav-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.radicale:
            for n in rad_sizes:
                rad = Radicale(args.radicale, tmp / f"r{n}")
                try:
                    base = rad.start()
                    rows.append(await measure("radicale", base, f"/bench/cal{n}/", n, None, True))
                finally:
                    rad.stop()
                shutil.rmtree(rad.dir, ignore_errors=True)
        cv = Congvu(tmp)
        cv.setup()
        base = cv.start()
        try:
            for i, n in enumerate(sizes):
                user = USER if i == 0 else "bench1@bench.vn"
                cal = f"/dav/calendars/users/{user}/calendar/"
                rows.append(await measure("congvu", base, cal, n, (user, PASSWORD), False))
                print(f"... congvu {n} done", file=sys.stderr)
        finally:
            cv.stop()
    show(rows)


if __name__ == "__main__":
    asyncio.run(main())
