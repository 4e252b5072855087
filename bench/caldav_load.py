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
auth (which only flatters Radicale), once with its built-in HTTP/1.0 server
(its default: a connection per request) and once as a WSGI app under waitress
(keep-alive where Radicale's response has a length; ``pip install waitress``
beside Radicale; Radicale 3.9's hypercorn mode fails with hypercorn 0.18). Radicale runs at the first size only unless
--radicale-sizes says otherwise.

Every server gets the same client: a minimal HTTP/1.1 one with keep-alive on
the uvloop loop (tens of microseconds per request; httpx cost ~1 ms of CPU per
request, as much as a Congvu PUT, on the same two cores). The report says how
many connections each PUT phase opened and the CPU per PUT of the server side
(for Congvu: its process and its PostgreSQL's) and of the client.

``--attendees 200`` also times a meeting PUT with 200 internal attendees
(implicit scheduling: inbox and calendar copy for each, in the PUT's
transaction) and moving it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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
from collections.abc import Callable
from pathlib import Path

import httpx

try:
    import psutil
except ImportError:  # CPU figures are printed only with psutil
    psutil = None

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


class Conn:
    """One HTTP/1.1 connection with keep-alive: the same lean client for every
    server (a few tens of microseconds per request, so the client's own cost
    stays small beside any server's). A server that closes after a response
    (Radicale's built-in one answers HTTP/1.0) gets a new connection for the
    next request; ``connects`` counts them."""

    def __init__(self, host: str, port: int, auth: tuple[str, str] | None) -> None:
        self.host, self.port = host, port
        self.auth = b""
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.auth = f"Authorization: Basic {token}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0
        self.requests = 0

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.connects += 1
        assert self.reader is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}".encode() + self.auth + b"\r\n" + body)
        self.requests += 1
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            data = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            data = b"".join(p[:-2] for p in parts)
        else:
            data = await self.reader.read()
            fields["connection"] = "close"
        conn_hdr = fields.get("connection", "").lower()
        if conn_hdr == "close" or (version == "HTTP/1.0" and conn_hdr != "keep-alive"):
            await self.close()
        return int(status), data


def cpu_seconds(procs: list) -> float:
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except Exception:  # a process ended: its time is gone too
            pass
    return total


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


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


async def put_all(conns: list[Conn], cal: str, n: int,
                  body: Callable[[int], bytes] = lambda i: event(i)) -> float:
    counter = iter(range(n))

    async def worker(conn: Conn) -> None:
        for i in counter:
            status, text = await conn.request(
                "PUT", f"{cal}bench-{i}.ics", body(i),
                {"Content-Type": "text/calendar; charset=utf-8"})
            if status not in (201, 204):
                raise RuntimeError(f"PUT {i}: {status} {text[:200]!r}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    return n / (time.perf_counter() - t0)


async def timed(conn: Conn, method: str, url: str, body: bytes,
                depth: str, expect: str) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        status, text = await conn.request(method, url, body, {
            "Depth": depth, "Content-Type": "application/xml; charset=utf-8"})
        times.append(time.perf_counter() - t0)
        if status != 207:
            raise RuntimeError(f"{method} {url}: {status} {text[:300]!r}")
        count = len(re.findall(rb"<(?:[A-Za-z0-9_]+:)?" + expect.encode() + rb">", text))
    return statistics.median(times) * 1000, count


class Cost:
    """CPU seconds of the server side (its processes) and of this client.

    Processes that appear meanwhile (a PostgreSQL backend for a pool that
    grew) count in full: all their time was spent in the measured interval."""

    def __init__(self, procs: Callable[[], list]) -> None:
        self.list_procs = procs
        self.procs = procs() if psutil else []
        self.server = cpu_seconds(self.procs)
        self.client = own_cpu()

    def per(self, n: int) -> tuple[float, float]:
        """ms of CPU per request since this was made: (server side, client)."""
        known = {p.pid for p in self.procs}
        new = [p for p in (self.list_procs() if psutil else []) if p.pid not in known]
        server = cpu_seconds(self.procs) + cpu_seconds(new) - self.server
        return server / n * 1000, (own_cpu() - self.client) / n * 1000


async def measure(name: str, base: str, cal: str, n: int, auth: tuple[str, str] | None,
                  make: bool, procs: Callable[[], list]) -> dict[str, float | int | str]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conns = [Conn(host, int(port), auth) for _ in range(CONCURRENCY)]
    c = conns[0]
    if make:
        await c.request("MKCOL", cal.rstrip("/").rsplit("/", 1)[0] + "/")
        status, text = await c.request("MKCALENDAR", cal)
        if status not in (201, 405):
            raise RuntimeError(f"MKCALENDAR: {status} {text[:200]!r}")
    for conn in conns:  # connections open before the clock starts (keep-alive servers)
        await conn.request("OPTIONS", cal)
    for _ in range(3):  # and the server's database pool as wide as the PUTs will need
        await asyncio.gather(*(conn.request("OPTIONS", cal) for conn in conns))
    requests0 = sum(x.requests for x in conns)
    connects0 = sum(x.connects for x in conns)
    cost = Cost(procs)
    rate = await put_all(conns, cal, n)
    put_server, put_client = cost.per(n)
    put_connects = sum(x.connects for x in conns) - connects0
    put_requests = sum(x.requests for x in conns) - requests0
    cost = Cost(procs)
    week_ms, week_n = await timed(c, "REPORT", cal, WEEK_QUERY, "1", "getetag")
    week_server, week_client = cost.per(REPEATS)
    sync_ms, sync_n = await timed(c, "REPORT", cal, SYNC, "1", "getetag")
    pf_ms, pf_n = await timed(c, "PROPFIND", cal, PROPFIND, "1", "getetag")
    if os.environ.get("BENCH_OVERHEAD"):
        ov, _ = await timed(c, "PROPFIND", cal, PROPFIND, "0", "getetag")
        print(f"{name}: PROPFIND depth 0 {ov:.2f} ms", file=sys.stderr)
    for conn in conns:
        await conn.close()
    return {"server": name, "n": n, "put_per_s": rate, "week_ms": week_ms, "week_hits": week_n,
            "sync_ms": sync_ms, "sync_items": sync_n, "propfind_ms": pf_ms,
            "propfind_items": pf_n, "put_server_ms": put_server, "put_client_ms": put_client,
            "put_connects": put_connects, "put_requests": put_requests,
            "week_server_ms": week_server, "week_client_ms": week_client}


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

    def procs(self) -> list:
        """The server process and its PostgreSQL (postmaster and every backend)."""
        assert self.proc is not None
        out = [psutil.Process(self.proc.pid)]
        pgdata = str(Path(self.env["CONGVU_DATA_DIR"]) / "pgdata")
        for p in psutil.process_iter(["cmdline"]):
            try:
                if pgdata in " ".join(p.info["cmdline"] or []) and p.pid != self.proc.pid:
                    out += [p, *p.children(recursive=True)]
            except psutil.Error:
                pass
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


class Radicale:
    def __init__(self, binary: str, tmp: Path, server: str = "builtin") -> None:
        self.binary = binary
        self.server = server
        self.port = free_port()
        self.dir = tmp / "radicale"
        self.dir.mkdir(parents=True)
        (self.dir / "config").write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n[auth]\ntype = none\n"
            f"[storage]\nfilesystem_folder = {self.dir}/collections\n"
            "[logging]\nlevel = warning\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        config = str(self.dir / "config")
        if self.server == "waitress":
            # Radicale's WSGI application under waitress (HTTP/1.1, keep-alive where
            # the response has a length), 8 threads like the built-in server's 8
            # connections; waitress-serve from the same virtualenv.
            cmd = [str(Path(self.binary).parent / "waitress-serve"),
                   f"--listen=127.0.0.1:{self.port}", "--threads=8", "radicale:application"]
            env = {**os.environ, "RADICALE_CONFIG": config}
        else:
            cmd, env = [self.binary, "--config", config], None
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{self.port}"
        wait_http(base + "/", self.proc)
        return base

    def procs(self) -> list:
        assert self.proc is not None
        me = psutil.Process(self.proc.pid)
        return [me, *me.children(recursive=True)]

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
    print("\nwhat was measured (one client for every server; CPU from the processes' counters):")
    for r in rows:
        print(f"  {r['server']} {r['n']}: {r['put_requests']} PUTs over "
              f"{r['put_connects']} new connections "
              f"({'keep-alive' if int(r['put_connects']) == 0 else 'a connection per request'})"
              f"; CPU per PUT: server side {r['put_server_ms']:.2f} ms"
              f"{' (congvu + its PostgreSQL)' if r['server'] == 'congvu' else ''}, "
              f"client {r['put_client_ms']:.2f} ms; CPU per week query: server side "
              f"{r['week_server_ms']:.2f} ms, client {r['week_client_ms']:.2f} ms")
    peers = [r for r in rows if str(r["server"]).startswith("radicale")]
    for r in rows:
        if r["server"] != "congvu":
            continue
        for peer in peers:
            if peer["n"] != r["n"]:
                continue
            print(f"\nratios at {r['n']} events (congvu vs {peer['server']}): "
                  f"PUT {float(r['put_per_s']) / float(peer['put_per_s']):.1f}x, "
                  f"week query {float(peer['week_ms']) / float(r['week_ms']):.1f}x, "
                  f"full sync {float(peer['sync_ms']) / float(r['sync_ms']):.1f}x, "
                  f"PROPFIND {float(peer['propfind_ms']) / float(r['propfind_ms']):.1f}x faster")


def meeting(uid: str, organizer: str, attendees: list[str], start: datetime) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//congvu bench//EN", "BEGIN:VEVENT",
             f"UID:{uid}", "DTSTAMP:20260101T000000Z", f"DTSTART:{fmt(start)}",
             f"DTEND:{fmt(start + timedelta(hours=2))}", "SUMMARY:Hội nghị toàn thành phố",
             f"ORGANIZER;CN=Người đo:mailto:{organizer}"]
    lines += [f"ATTENDEE;CN=Đại biểu {i};PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{a}"
              for i, a in enumerate(attendees)]
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines).encode()


async def invites(cv: Congvu, base: str, count: int) -> None:
    """A meeting PUT with ``count`` internal attendees (implicit scheduling: each
    gets it in the inbox and the calendar, in the PUT's transaction)."""
    addresses = [f"dai-bieu-{i}@bench.vn" for i in range(count)]
    csv_path = Path(cv.env["CONGVU_DATA_DIR"]) / "attendees.csv"
    csv_path.write_text("address,name,unit\n" + "".join(
        f"{a},Đại biểu {i},bench\n" for i, a in enumerate(addresses)), encoding="utf-8")
    cv.admin("import", "accounts", str(csv_path))
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = Conn(host, int(port), (USER, PASSWORD))
    cal = f"/dav/calendars/users/{USER}/calendar/"
    new_ms, update_ms = [], []
    for k in range(5):
        start = WEEK_START + timedelta(days=400 + k)
        uid = f"hoi-nghi-{k}@bench.vn"
        t0 = time.perf_counter()
        status, text = await conn.request("PUT", f"{cal}hoi-nghi-{k}.ics",
                                          meeting(uid, USER, addresses, start),
                                          {"Content-Type": "text/calendar; charset=utf-8"})
        new_ms.append((time.perf_counter() - t0) * 1000)
        if status not in (201, 204):
            raise RuntimeError(f"invite PUT: {status} {text[:300]!r}")
        t0 = time.perf_counter()  # the organizer moves it by an hour: every copy changes
        status, text = await conn.request("PUT", f"{cal}hoi-nghi-{k}.ics",
                                          meeting(uid, USER, addresses,
                                                  start + timedelta(hours=1)),
                                          {"Content-Type": "text/calendar; charset=utf-8"})
        update_ms.append((time.perf_counter() - t0) * 1000)
        if status not in (201, 204):
            raise RuntimeError(f"update PUT: {status} {text[:300]!r}")
    await conn.close()
    print(f"\ncongvu implicit scheduling, {count} internal attendees (median of 5): "
          f"new meeting {statistics.median(new_ms):.0f} ms, "
          f"moved meeting {statistics.median(update_ms):.0f} ms "
          f"(Radicale does no scheduling: no peer figure)")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--radicale", default=shutil.which("radicale") or "")
    ap.add_argument("--radicale-sizes", default=None, help="default: the first size")
    ap.add_argument("--radicale-servers", default="builtin,waitress",
                    help="Radicale's HTTP servers to measure: builtin (its default, HTTP/1.0, "
                         "a connection per request) and/or waitress (its WSGI app under "
                         "waitress: keep-alive; needs waitress in Radicale's virtualenv)")
    ap.add_argument("--attendees", type=int, default=0,
                    help="also time a meeting PUT with this many internal attendees")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rad_sizes = ([int(s) for s in args.radicale_sizes.split(",")] if args.radicale_sizes
                 else sizes[:1])
    rows = []
    with tempfile.TemporaryDirectory(prefix="caldav-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.radicale:
            for kind in args.radicale_servers.split(","):
                for n in rad_sizes:
                    rad = Radicale(args.radicale, tmp / f"r{kind}{n}", kind)
                    try:
                        base = rad.start()
                    except (RuntimeError, OSError) as exc:
                        print(f"radicale ({kind}) did not start: {exc}", file=sys.stderr)
                        continue
                    try:
                        rows.append(await measure(f"radicale-{kind}", base, f"/bench/cal{n}/",
                                                  n, None, True, rad.procs))
                    finally:
                        rad.stop()
                    shutil.rmtree(rad.dir, ignore_errors=True)
                    print(f"... radicale ({kind}) {n} done", file=sys.stderr)
        cv = Congvu(tmp)
        cv.setup()
        base = cv.start()
        try:
            for i, n in enumerate(sizes):
                user = USER if i == 0 else "bench1@bench.vn"
                cal = f"/dav/calendars/users/{user}/calendar/"
                rows.append(await measure("congvu", base, cal, n, (user, PASSWORD), False,
                                          cv.procs))
                print(f"... congvu {n} done", file=sys.stderr)
            show(rows)
            if args.attendees:
                await invites(cv, base, args.attendees)
        finally:
            cv.stop()


if __name__ == "__main__":
    try:
        import uvloop  # the same cheaper loop for the client whatever the server
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
