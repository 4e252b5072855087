"""IMAP load figures for Congvu, side by side with Dovecot.

    python bench/imap_load.py --sizes 10000 100000 [--no-dovecot] [--idle 2000]

For each size: a mailbox of N messages (Congvu: inserted with COPY after
parsing each message once, the rows delivery would write; Dovecot: APPENDed
over IMAP), then the median of several runs (the two servers taking turns) of

  * LOGIN + SELECT INBOX
  * UID FETCH 1:* (FLAGS) (its first run on the server shown apart: Congvu
    keeps a per-node copy of the flags after it)
  * FETCH 1:* (ENVELOPE)
  * SEARCH CHARSET UTF-8 SUBJECT "<one message's subject>" (a header)
  * SEARCH CHARSET UTF-8 BODY "chuyển đổi số" (body text, in every 97th message)

(with the hit counts of both servers, which must agree); login+SELECT of one
small mailbox as the rest of the database grows; and the server's memory
growth for ``--idle`` connections sitting in IDLE (Congvu runs in a child
process so its RSS is its own; Dovecot's is the PSS summed over its master's
process tree). Dovecot is started with
/work/shared/anchors/dovecot.sh (127.0.0.1:10143), then its passwords are
switched to argon2id at Congvu's parameters so LOGIN does the same work on
both sides (see :func:`start_dovecot`). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from congvu.config import Listeners, Settings
from congvu.directory.passwords import hash_password
from congvu.directory.service import NewAccount
from congvu.mailserver.mime import parse_message
from congvu.services import Services
from congvu.store.db import ConnectParams, Database, start_embedded
from congvu.store.migrate import apply_migrations

DOMAIN = "bench.gov.vn"
PASSWORD = "Bench-pass-2026!"
DOVECOT_PORT = 10143
WORDS = ["ngân sách", "kế hoạch", "công văn", "báo cáo", "hội nghị", "chỉ thị", "quyết định",
         "tờ trình", "giấy mời", "thông báo"]


def make_message(i: int) -> bytes:
    w = WORDS[i % len(WORDS)]
    body = (f"Kính gửi các đồng chí,\r\nVề việc {w} số {i}/2026: đề nghị các đơn vị "
            f"triển khai theo đúng tiến độ.\r\n" + "Nội dung chi tiết. " * 20 + "\r\n")
    if i % 97 == 0:
        body += "Ghi chú: chương trình chuyển đổi số.\r\n"
    return (
        f"From: Văn thư <vanthu{i % 50}@{DOMAIN}>\r\nTo: lanhdao@{DOMAIN}\r\n"
        f"Subject: {w.capitalize()} số {i}\r\nDate: Mon, 02 Mar 2026 09:00:00 +0700\r\n"
        f"Message-ID: <m{i}@{DOMAIN}>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
    ).encode("utf-8")


# -- Congvu ---------------------------------------------------------------------


PROBE, IDLE_USER = 1000, 100  # messages of the SELECT probe and of the IDLE mailbox


async def prepare_congvu(params: ConnectParams, settings: Settings,
                         accounts: list[tuple[str, int]]) -> int:
    """Create (if missing) ``(local part, messages)`` accounts; messages in the database."""
    db = await Database.connect(params, min_size=1, max_size=4)
    try:
        await apply_migrations(db)
        services = Services.build(settings, db)
        d = services.directory
        if not await d.list_domains():
            await d.add_domain(DOMAIN, "bench")
            await d.add_unit("bench", "Bench", None, "bench")
        for local, n in accounts:
            addr = f"{local}@{DOMAIN}"
            if await d.find_account(addr) is None:
                await d.add_account(NewAccount(addr, f"User {local}", "bench", "", PASSWORD,
                                               quota_bytes=10**12), "bench")
                await fill(db, await d.get_account(addr), n)
        async with db.connection() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM mailbox_messages"))
    finally:
        await db.close()


async def fill(db: Database, account, n: int) -> None:
    if not n:
        return
    t0 = time.perf_counter()
    blobs, rows = [], []
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        raw = make_message(i + n * 1000000)  # distinct bytes per mailbox
        pm = parse_message(raw)
        row = pm.to_row()
        sha = hashlib.sha256(raw).digest()
        blobs.append((sha, row["size"], raw, row["envelope"], row["body"], row["bodystructure"],
                      row["part_map"], row["sent_date"], row["subject"], row["from_text"],
                      row["to_text"], row["cc_text"], row["message_id"], row["sort_subject"],
                      row["sort_from"], row["sort_to"], row["sort_cc"], row["search_headers"],
                      row["search_body"], row["preview"], row["has_attachments"]))
        rows.append((account.id, i, sha, row["size"], base + timedelta(minutes=i),
                     ["\\Seen"] if i % 3 else [], i + 1))
    async with db.transaction() as conn:
        mb = await conn.fetchval("SELECT id FROM mailboxes WHERE account_id = $1 AND name = "
                                 "'INBOX'", account.id)
        # COPY has no binary jsonb encoder: stage part_map as text.
        await conn.execute("CREATE TEMP TABLE stage_blobs (LIKE message_blobs INCLUDING DEFAULTS) ON COMMIT DROP")
        await conn.execute("ALTER TABLE stage_blobs ALTER part_map TYPE text")
        await conn.copy_records_to_table(
            "stage_blobs", records=blobs,
            columns=["sha256", "size", "raw", "envelope", "body", "bodystructure", "part_map",
                     "sent_date", "subject", "from_text", "to_text", "cc_text", "message_id",
                     "sort_subject", "sort_from", "sort_to", "sort_cc", "search_headers",
                     "search_body", "preview", "has_attachments"])
        await conn.execute("INSERT INTO message_blobs SELECT sha256, size, raw, envelope, body,"
                           " bodystructure, part_map::jsonb, sent_date, subject, from_text,"
                           " to_text, cc_text, message_id, sort_subject, sort_from, sort_to,"
                           " sort_cc, search_headers, search_body, preview, has_attachments,"
                           " now() FROM stage_blobs ON CONFLICT DO NOTHING")
        await conn.copy_records_to_table(
            "mailbox_messages", records=[(a, mb, u, s, z, d, f, m) for a, u, s, z, d, f, m in rows],
            columns=["account_id", "mailbox_id", "uid", "sha256", "size", "internal_date",
                     "flags", "modseq"])
        # What n deliveries leave behind: uidnext n+1, modseq of the last one
        # n+1 (delivery.py allocates both from the mailbox row), bytes counted.
        await conn.execute("UPDATE mailboxes SET uidnext = $3::bigint, highestmodseq = $3::bigint "
                           "WHERE account_id = $1 AND id = $2", account.id, mb, n + 1)
        await conn.execute("UPDATE accounts SET used_bytes = used_bytes + $2 WHERE id = $1",
                           account.id, sum(r[3] for r in rows))
    async with db.connection() as conn:
        await conn.execute("ANALYZE mailbox_messages")
        await conn.execute("ANALYZE message_blobs")
        await conn.execute("ANALYZE mailbox_message_texts")
    print(f"  congvu: {n} messages inserted in {time.perf_counter() - t0:.1f} s", flush=True)


def congvu_server(params: ConnectParams, settings: Settings, conn) -> None:
    async def main() -> None:
        from congvu.mailserver.imap.service import start_imap

        db = await Database.connect(params, min_size=2, max_size=20)
        services = Services.build(settings, db)
        srv = await start_imap(services, port=0, tls_port=None, retention=False)
        conn.send(srv.port)
        await asyncio.Event().wait()

    asyncio.run(main())


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def dovecot_pids() -> list[int]:
    """The Dovecot master and all its descendants (not this script)."""
    master = int((DOVECOT_DIR / "run" / "master.pid").read_text())
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [master]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def dovecot_mem_kb(measure=pss_kb) -> int:
    total = 0
    for pid in dovecot_pids():
        try:
            total += measure(pid)
        except (OSError, ValueError):
            pass
    return total


# -- a minimal client ---------------------------------------------------------------


class Client:
    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w, self.n = r, w, 0

    @classmethod
    async def open(cls, port: int) -> Client:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
        c = cls(r, w)
        await r.readline()
        return c

    async def cmd(self, text: str | bytes) -> list[bytes]:
        """Send; read to the tagged reply; return the untagged lines (literals left out)."""
        self.n += 1
        tag = f"b{self.n}".encode()
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.w.write(tag + b" " + data + b"\r\n")
        await self.w.drain()
        lines = []
        while True:
            line = await self.r.readline()
            if line.endswith(b"}\r\n"):
                k = int(line[line.rindex(b"{") + 1:-3].rstrip(b"+"))
                await self.r.readexactly(k)
                continue
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line)
                return lines
            if not line:
                raise ConnectionError("closed")
            lines.append(line)

    async def search(self, key: str, needle: str) -> int:
        """``SEARCH CHARSET UTF-8 key {n+}`` (8-bit text must be a literal); number of hits."""
        raw = needle.encode("utf-8")
        lines = await self.cmd(b"SEARCH CHARSET UTF-8 %s {%d+}\r\n%s"
                               % (key.encode(), len(raw), raw))
        return sum(len(ln.split()) - 2 for ln in lines if ln.startswith(b"* SEARCH"))

    async def close(self) -> None:
        self.w.close()


async def timed(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


BODY_NEEDLE = "chuyển đổi số"  # in every 97th body


async def login_select(port: int, user: str, password: str) -> None:
    c = await Client.open(port)
    await c.cmd(f'LOGIN "{user}" "{password}"')
    lines = await c.cmd("SELECT INBOX")
    if not any(ln.endswith(b" EXISTS\r\n") for ln in lines):
        raise RuntimeError(f"no EXISTS in SELECT: {lines!r}")
    await c.cmd("LOGOUT")
    await c.close()


async def measure(targets: list[tuple[int, str]], password: str, subject: str,
                  runs: int = 7) -> tuple[list[dict[str, float]], list[dict[str, int]]]:
    """Median milliseconds per operation for each ``(port, user)`` target.

    The servers take turns run by run, so a busy moment on this shared
    machine falls on both rather than on whichever happened to run then.
    """
    out: list[dict[str, float]] = [{} for _ in targets]
    hits: list[dict[str, int]] = [{} for _ in targets]
    for port, user in targets:
        await login_select(port, user, password)  # untimed: both servers start warm

    async def op(name: str, make, n: int = runs) -> None:
        times: list[list[float]] = [[] for _ in targets]
        for _ in range(n):
            for i in range(len(targets)):
                fn = make(i)
                t0 = time.perf_counter()
                await fn()
                times[i].append((time.perf_counter() - t0) * 1000)
        for i in range(len(targets)):
            out[i][name] = statistics.median(times[i])

    await op("login+SELECT", lambda i: lambda: login_select(*targets[i], password))
    clients = []
    for port, user in targets:
        c = await Client.open(port)
        await c.cmd(f'LOGIN "{user}" "{password}"')
        clients.append(c)
    await op("SELECT", lambda i: lambda: clients[i].cmd("SELECT INBOX"))
    # The first resync of a mailbox on a server (one sample): Congvu's node has
    # no copy of its flags yet and reads them all from PostgreSQL; the runs
    # after it are served from that copy, brought up to date by one statement.
    await op("UID FETCH (FLAGS), first", lambda i: lambda: clients[i].cmd(
        "UID FETCH 1:* (FLAGS)"), 1)
    await op("UID FETCH 1:* (FLAGS)", lambda i: lambda: clients[i].cmd("UID FETCH 1:* (FLAGS)"))
    await op("FETCH 1:* (ENVELOPE)", lambda i: lambda: clients[i].cmd("FETCH 1:* (ENVELOPE)"), 3)

    def search(key: str, needle: str):
        def make(i: int):
            async def run() -> None:
                hits[i][f"SEARCH {key}"] = await clients[i].search(key, needle)
            return run
        return make

    await op("SEARCH SUBJECT", search("SUBJECT", subject))
    await op("SEARCH BODY", search("BODY", BODY_NEEDLE), 3)
    for c in clients:
        await c.cmd("LOGOUT")
        await c.close()
    return out, hits


async def idle_memory(port: int, user: str, password: str, n: int, mem) -> list[float]:
    """Per-connection growth of each ``mem()`` figure (KB) with ``n`` sessions in IDLE."""
    for _ in range(20):  # warm up: one-time costs (imports, pools, statements) first
        await login_select(port, user, password)
    await asyncio.sleep(1)
    before = mem()
    clients = []
    for _ in range(n):
        c = await Client.open(port)
        await c.cmd(f'LOGIN "{user}" "{password}"')
        await c.cmd("SELECT INBOX")
        c.w.write(b"i IDLE\r\n")
        await c.w.drain()
        line = await c.r.readline()
        if not line.startswith(b"+"):
            raise RuntimeError(f"IDLE refused: {line!r}")
        clients.append(c)
    await asyncio.sleep(3)
    after = mem()
    for c in clients:
        c.w.write(b"DONE\r\n")
        await c.close()
    return [(a - b) / n for a, b in zip(after, before, strict=True)]


async def idle_latency(port_a: int, port_b: int, user: str, password: str,
                       runs: int = 9) -> float:
    """Milliseconds from APPEND's OK on node B to ``* n EXISTS`` in an IDLE on node A
    (two server processes, one database: LISTEN/NOTIFY); the median of ``runs``."""
    idler = await Client.open(port_a)
    await idler.cmd(f'LOGIN "{user}" "{password}"')
    await idler.cmd("SELECT INBOX")
    idler.w.write(b"i IDLE\r\n")
    await idler.w.drain()
    await idler.r.readline()
    other = await Client.open(port_b)
    await other.cmd(f'LOGIN "{user}" "{password}"')
    times = []
    for i in range(runs):
        raw = make_message(900000000 + i + int(time.time()))
        # From sending the APPEND (the EXISTS may well arrive before its OK:
        # the notification leaves at commit).
        t0 = time.perf_counter()
        exists = asyncio.ensure_future(idler.r.readline())
        await other.cmd(b"APPEND INBOX {%d+}\r\n%s" % (len(raw), raw))
        line = await asyncio.wait_for(exists, 10)
        while not line.endswith(b" EXISTS\r\n"):
            line = await asyncio.wait_for(idler.r.readline(), 10)
        times.append((time.perf_counter() - t0) * 1000)
    idler.w.write(b"DONE\r\n")
    await idler.close()
    await other.cmd("LOGOUT")
    await other.close()
    return statistics.median(times)


# -- Dovecot ----------------------------------------------------------------------------


async def dovecot_fill(user: str, n: int) -> None:
    """Give Dovecot the same messages Congvu holds for ``user``: same bytes, same
    \\Seen flags, same internal dates.

    Small mailboxes are APPENDed over IMAP; large ones are written straight into
    the maildir (what APPEND would leave there, minus an fsync per message that
    makes 100,000 APPENDs take most of an hour), then indexed by one untimed
    SELECT before anything is measured.
    """
    c = await Client.open(DOVECOT_PORT)
    await c.cmd(f'LOGIN "{user}" "{PASSWORD}"')
    status = b"".join(await c.cmd("STATUS INBOX (MESSAGES)"))
    have = int(status.rsplit(b"MESSAGES ", 1)[1].split(b")")[0])
    if have == n:
        print(f"  dovecot: {n} messages already there", flush=True)
        await c.cmd("LOGOUT")
        await c.close()
        return
    if have:
        await c.cmd("SELECT INBOX")
        await c.cmd("STORE 1:* +FLAGS.SILENT (\\Deleted)")
        await c.cmd("CLOSE")
    if n > 2000:
        await c.cmd("LOGOUT")
        await c.close()
        t0 = time.perf_counter()
        maildir_fill(user, n)
        c = await Client.open(DOVECOT_PORT)
        await c.cmd(f'LOGIN "{user}" "{PASSWORD}"')
        lines = await c.cmd("SELECT INBOX")
        await c.cmd("LOGOUT")
        await c.close()
        if f"* {n} EXISTS\r\n".encode() not in lines:
            raise RuntimeError(f"dovecot does not see {n} messages: {lines!r}")
        print(f"  dovecot: {n} messages written to the maildir and indexed in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        return
    t0 = time.perf_counter()
    pending = 0

    async def collect(until: int) -> None:
        nonlocal pending
        while pending > until:
            line = await c.r.readline()
            if not line:
                raise ConnectionError("closed")
            if line.startswith(b"a"):
                if b" OK" not in line[:16]:
                    raise RuntimeError(line)
                pending -= 1

    for i in range(1, n + 1):
        raw = make_message(i + n * 1000000)
        c.n += 1
        # The flags and internal date Congvu's row has (see fill).
        when = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)).strftime(
            "%d-%b-%Y %H:%M:%S +0000").encode()
        flags = b"(\\Seen) " if i % 3 else b""
        c.w.write(b"a%d APPEND INBOX %s\"%s\" {%d+}\r\n" % (c.n, flags, when, len(raw))
                  + raw + b"\r\n")
        pending += 1
        if pending >= 200:
            await c.w.drain()
            await collect(100)
    await c.w.drain()
    await collect(0)
    await c.close()
    print(f"  dovecot: {n} messages appended in {time.perf_counter() - t0:.1f} s", flush=True)


def maildir_fill(user: str, n: int) -> None:
    """Message files in ``cur/`` named and dated as Dovecot's own delivery would."""
    import pwd

    vmail = pwd.getpwnam("vmail")
    cur = DOVECOT_DIR / "mail" / user / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    for i in range(1, n + 1):
        when = base + 60 * i  # Congvu's internal_date of message i (see fill)
        raw = make_message(i + n * 1000000)
        path = cur / f"{int(when)}.M{i}P1.bench,S={len(raw)}:2,{'S' if i % 3 else ''}"
        path.write_bytes(raw)
        os.utime(path, (when, when))
        os.chown(path, vmail.pw_uid, vmail.pw_gid)
    for d in (cur.parent, cur):
        os.chown(d, vmail.pw_uid, vmail.pw_gid)


DOVECOT_DIR = Path("/tmp/anchor-dovecot")
DOVECOT_CONF = DOVECOT_DIR / "dovecot.conf"


def stop_dovecot() -> None:
    """Stop the anchor's master and wait until it is gone (``doveadm stop`` does not wait)."""
    try:
        master = int((DOVECOT_DIR / "run" / "master.pid").read_text())
    except (OSError, ValueError):
        return
    subprocess.run(["doveadm", "-c", str(DOVECOT_CONF), "stop"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    for _ in range(300):
        if not Path(f"/proc/{master}").exists():
            return
        time.sleep(0.1)


def start_dovecot(idle: int, users: list[str]) -> bool:
    """The anchor Dovecot, with two changes for a like-for-like comparison:

    * its passwords are checked with argon2id at Congvu's parameters (a
      passwd-file of ``users``) instead of the anchor's plaintext "pass",
      so LOGIN costs the same work on both sides;
    * process and client limits raised for ``idle`` connections (its
      defaults stop at 100 imap processes).

    Mail already APPENDed by an earlier run is kept (see :func:`dovecot_fill`).
    """
    if shutil.which("dovecot") is None:
        print("dovecot not installed (apt-get install -y dovecot-imapd)")
        return False
    if DOVECOT_CONF.exists():
        stop_dovecot()
    # The daemon inherits our pipes: never capture its output (it would never close).
    res = subprocess.run(["sh", "/work/shared/anchors/dovecot.sh"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    if res.returncode != 0:
        return False
    for _ in range(100):  # the master writes its pid file a moment after forking
        if (DOVECOT_DIR / "run" / "master.pid").exists():
            break
        time.sleep(0.1)
    stop_dovecot()
    limit = max(1000, idle + 200)
    hashed = hash_password(PASSWORD)
    (DOVECOT_DIR / "passwd").write_text("".join(f"{u}:{{ARGON2ID}}{hashed}\n" for u in users))
    conf = DOVECOT_CONF.read_text()
    static = "passdb {\n  driver = static\n  args = password=pass\n}"
    if static not in conf:
        print("unexpected anchor configuration: passdb not found")
        return False
    DOVECOT_CONF.write_text(conf.replace(static, "passdb {\n  driver = passwd-file\n"
                                         f"  args = {DOVECOT_DIR / 'passwd'}\n}}"))
    with DOVECOT_CONF.open("a") as fh:
        fh.write(f"default_process_limit = {limit}\ndefault_client_limit = {limit * 4}\n"
                 f"default_vsz_limit = 1G\n"
                 # its built-in service imap sets its own limit of 1024 processes
                 f"service imap {{\n  process_limit = {limit}\n}}\n")
    res = subprocess.run(["dovecot", "-c", str(DOVECOT_CONF)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(1)
    return res.returncode == 0


# -- main -----------------------------------------------------------------------------------


def table(rows: list[tuple[str, ...]]) -> None:
    print(f"  {'operation':28} {'congvu':>12} {'dovecot':>12} {'ratio':>7}")
    for name, a, b, ratio in rows:
        print(f"  {name:28} {a:>12} {b:>12} {ratio:>7}")


def hits_line(ours: dict[str, int], theirs: dict[str, int]) -> None:
    print("  hits: " + ", ".join(f"{k} {v}/{theirs.get(k, '-')}" for k, v in ours.items()))


async def run(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    base = Path(args.workdir)
    base.mkdir(parents=True, exist_ok=True)
    params = start_embedded(base / "pgdata")
    settings = Settings(data_dir=base / "data", hostname="bench.local",
                        listeners=Listeners(imap=0, imaps=0, smtp=0, submission=0,
                                            submissions=0, http=0),
                        allow_plaintext_loopback=True, auth_failure_delay=0.0,
                        auth_max_failures_per_ip=10**9, auth_max_failures_per_account=10**9)
    print("preparing Congvu mailboxes", flush=True)
    total = await prepare_congvu(params, settings, [("probe", PROBE), ("idle", IDLE_USER)])
    ctx = mp.get_context("spawn")  # a clean interpreter: no inherited event loop
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=congvu_server, args=(params, settings, child), daemon=True)
    proc.start()
    port = parent.recv()
    dovecot = not args.no_dovecot and start_dovecot(
        args.idle, ["idle", "probe"] + [f"u{n}" for n in args.sizes])
    probe_user = f"probe@{DOMAIN}"
    selects: list[tuple[int, float]] = []
    try:
        # RFC 3501 §6.3.1 SELECT reads one mailbox's index range: its time must
        # not grow with the rest of the database.
        selects.append((total, await timed(lambda: login_select(port, probe_user, PASSWORD), 9)))
        for n in args.sizes:
            print(f"\n== mailbox of {n} messages ==", flush=True)
            total = await prepare_congvu(params, settings, [(f"u{n}", n)])
            subject = f"{WORDS[(n // 2) % len(WORDS)].capitalize()} số {n // 2 + n * 1000000}"
            targets = [(port, f"u{n}@{DOMAIN}")]
            if dovecot:
                await dovecot_fill(f"u{n}", n)
                targets.append((DOVECOT_PORT, f"u{n}"))
            figures, found = await measure(targets, PASSWORD, subject)
            ours, hits = figures[0], found[0]
            theirs = figures[1] if dovecot else {}
            their_hits = found[1] if dovecot else {}
            table([(k, f"{v:.1f} ms", f"{theirs[k]:.1f} ms" if k in theirs else "-")
                   + ((f"{v / theirs[k]:.2f}x",) if k in theirs else ("",))
                   for k, v in ours.items()])
            hits_line(hits, their_hits)
            selects.append((total, await timed(lambda: login_select(port, probe_user, PASSWORD),
                                               9)))
        print(f"\n== login+SELECT of one {PROBE}-message mailbox (Congvu) ==")
        for total, ms in selects:
            print(f"  {total:>9} messages in the database: {ms:.1f} ms")
        if args.idle:
            print(f"\n== {args.idle} connections in IDLE on a {IDLE_USER}-message INBOX ==",
                  flush=True)
            # A fresh server process: one that has just streamed 100,000-message
            # FETCHes has freed memory to reuse, which would hide the growth.
            parent2, child2 = ctx.Pipe()
            fresh = ctx.Process(target=congvu_server, args=(params, settings, child2),
                                daemon=True)
            fresh.start()
            port2 = parent2.recv()
            try:
                ours_kb = await idle_memory(port2, f"idle@{DOMAIN}", PASSWORD, args.idle,
                                            lambda: [rss_kb(fresh.pid)])
                print(f"  congvu (one process, RSS):   {ours_kb[0]:.1f} KB per connection",
                      flush=True)
                # Two nodes on one database: an IDLE on one hears an APPEND on the other.
                ms = await idle_latency(port, port2, f"probe@{DOMAIN}", PASSWORD)
                print(f"  congvu: IDLE on node A sees an APPEND sent to node B {ms:.1f} ms"
                      " after it was sent (median)", flush=True)
            finally:
                fresh.terminate()
            theirs_kb = None
            if dovecot:
                await dovecot_fill("idle", IDLE_USER)
                theirs_kb = await idle_memory(
                    DOVECOT_PORT, "idle", PASSWORD, args.idle,
                    lambda: [dovecot_mem_kb(pss_kb), dovecot_mem_kb(rss_kb)])
            if theirs_kb is not None:
                print(f"  dovecot (all processes, PSS): {theirs_kb[0]:.1f} KB per connection"
                      f" (RSS summed: {theirs_kb[1]:.1f} KB)")
    finally:
        proc.terminate()
        if dovecot:
            stop_dovecot()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[10000, 100000])
    p.add_argument("--idle", type=int, default=2000)
    p.add_argument("--no-dovecot", action="store_true")
    p.add_argument("--workdir", default=os.environ.get("BENCH_DIR", "/tmp/congvu-bench"))
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
