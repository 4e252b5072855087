"""SMTP load figures for Congvu's MX, side by side with Postfix handing to Dovecot.

    python bench/smtp_load.py [-n 2000] [-s 10240] [-c 20] [--recipients 20] [--no-peer]

N messages of S bytes are sent over C concurrent sessions (each pipelining
MAIL/RCPT/DATA, RFC 2920) by a load generator in a separate process, so it
does not share the server's interpreter. Printed for each server:

  * accepted/s — messages acknowledged with 250 per second of sending;
  * end to end — seconds from the first connection until every message is
    readable in the mailboxes (Congvu: rows in ``mailbox_messages``, polled;
    Postfix→Dovecot: files in the maildirs), and messages/s over that time.

Congvu runs in a child process of its own for each configuration, on a fresh
embedded PostgreSQL (or ``CONGVU_DATABASE_URL``) with its full MX path: recipient lookup and quota,
SPF/DKIM/DMARC checks (a static in-process resolver answering with a TTL of
300 s, no network latency: first with no records for the sender domain, then
with SPF and DMARC records published so pyspf and DMARC evaluation run;
the test mail is not DKIM-signed, so no signature is verified; ``--dkim``
adds a run where it is),
Received/Authentication-Results, parse-once, and the 250 only after commit.
The peer is Postfix on 127.0.0.1:10025 delivering over LMTP to Dovecot
(/work/shared/anchors/dovecot.sh then postfix.sh); as configured there it
checks no SPF, DKIM or DMARC at all. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DOMAIN = "bench.gov.vn"
PEER_PORT = 10025
PEER_DOMAIN = "anchor.test"
PEER_MAILDIR = Path("/tmp/anchor-dovecot/mail")


def make_message(i: int, size: int, to: str) -> bytes:
    head = (f"From: Văn phòng <vanphong@sender.example>\r\nTo: {to}\r\n"
            f"Subject: =?utf-8?b?VGjDtG5nIGLDoW8=?= {i}\r\nDate: Mon, 02 Mar 2026 09:00:00 +0700\r\n"
            f"Message-ID: <bench{i}.{time.time_ns()}@sender.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    line = "Kính gửi các đồng chí, về việc triển khai kế hoạch số 12/2026.\r\n".encode()
    body = bytearray(f"Thông báo số {i}.\r\n".encode())
    total = size - len(head.encode())
    while len(body) + len(line) <= total:
        body += line
    body += b"x" * max(0, total - len(body) - 2) + b"\r\n"
    return head.encode() + bytes(body)


# -- the load generator (child process) ----------------------------------------------


async def _session(host: str, port: int, jobs: list[tuple[str, bytes]], acks: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                return line

    await reply()
    writer.write(b"EHLO loadgen.example\r\n")
    await reply()
    failed = 0
    for rcpt, data in jobs:
        # RFC 2920: MAIL, RCPT and DATA in one write; then the data.
        writer.write(b"MAIL FROM:<vanphong@sender.example>\r\nRCPT TO:<" + rcpt.encode()
                     + b">\r\nDATA\r\n")
        codes = [await reply() for _ in range(3)]
        if not codes[2].startswith(b"354"):
            failed += 1
            writer.write(b"RSET\r\n")
            await reply()
            continue
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        writer.write(stuffed + b".\r\n")
        if (await reply()).startswith(b"250"):
            acks.append(time.time())
        else:
            failed += 1
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()
    return failed


async def _client(host: str, port: int, n: int, size: int, conc: int, rcpts: list[str],
                  dkim_pem: str | None = None) -> dict:
    msgs = [(rcpts[i % len(rcpts)], make_message(i, size, rcpts[i % len(rcpts)]))
            for i in range(n)]
    if dkim_pem:  # signed before the clock starts, as the sender's MTA would
        from congvu.mailserver.smtp.dkimsign import sign

        msgs = [(r, sign(m, "sender.example", "bench", dkim_pem)) for r, m in msgs]
    per = [msgs[i::conc] for i in range(conc)]
    acks: list[float] = []
    start = time.time()
    failed = await asyncio.gather(*(_session(host, port, p, acks) for p in per))
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"start": start, "last_ack": max(acks) if acks else start, "accepted": len(acks),
            "failed": sum(failed), "client_cpu": ru.ru_utime + ru.ru_stime}


def run_client(host: str, port: int, n: int, size: int, conc: int, rcpts: list[str],
               dkim_key_file: str = "") -> dict:
    """Start the generator in a child process; return its figures (as JSON)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--client", host, str(port), str(n), str(size), str(conc),
         ",".join(rcpts), dkim_key_file], stdout=subprocess.PIPE, text=True)
    return proc  # type: ignore[return-value]


def client_main(argv: list[str]) -> None:
    host, port, n, size, conc, rcpts, key_file = argv
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    pem = Path(key_file).read_text() if key_file else None
    out = asyncio.run(_client(host, int(port), int(n), int(size), int(conc), rcpts.split(","),
                              pem))
    print(json.dumps(out))


# -- Congvu ----------------------------------------------------------------------------


async def bench_congvu(n: int, size: int, conc: int, nrcpt: int, spf: bool = False,
                       dkim: bool = False) -> dict:
    from congvu.config import Listeners, Settings
    from congvu.directory.service import NewAccount
    from congvu.mailserver.smtp.dnsresolve import StaticResolver
    from congvu.mailserver.smtp.service import start_smtp
    from congvu.services import Services
    from congvu.store.db import open_database
    from congvu.tlscert import server_context

    data_dir = Path(tempfile.mkdtemp(prefix="congvu-smtp-bench-"))
    settings = Settings(data_dir=data_dir, hostname="mail.bench.gov.vn",
                        database_url=os.environ.get("CONGVU_DATABASE_URL"),
                        listeners=Listeners(smtp=0, submission=0, submissions=0, imap=0,
                                            imaps=0, http=0))
    db = await open_database(settings, max_size=20)
    try:
        services = Services.build(settings, db, tls=server_context(settings))
        d = services.directory
        run = f"r{int(time.time())}"
        if not any(x.name == DOMAIN for x in await d.list_domains()):
            await d.add_domain(DOMAIN, "bench")
        rcpts = [f"{run}u{k}@{DOMAIN}" for k in range(nrcpt)]
        for r in rcpts:
            await d.add_account(NewAccount(r, f"Cán bộ {r}", None, "", None), "bench")
        async with db.connection() as conn:
            ids = [r["id"] for r in await conn.fetch(
                "SELECT id FROM accounts WHERE address = ANY($1::text[])", rcpts)]
        # Answers carry a TTL of 300 s, so Congvu's resolver cache keeps them
        # as it would keep real DNS answers.
        resolver = StaticResolver(ttl=300)
        if spf:  # the sender domain publishes SPF and DMARC: pyspf runs for every message
            resolver.add("sender.example", "TXT", "v=spf1 ip4:127.0.0.0/8 -all")
            resolver.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=none")
        key_file = ""
        if dkim:  # the sender signs (2048-bit RSA) and publishes its key
            from congvu.mailserver.smtp.dkimsign import generate_key

            pem, pub = generate_key(2048)
            key_file = str(data_dir / "bench-dkim.pem")
            Path(key_file).write_text(pem)
            resolver.add("bench._domainkey.sender.example", "TXT", f"v=DKIM1; k=rsa; p={pub}")
        srv = await start_smtp(services, mx_port=0, resolver=resolver, queue=False)
        import resource

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        try:
            proc = run_client("127.0.0.1", srv.ports["mx"], n, size, conc, rcpts, key_file)
            done_at = None
            while True:
                async with db.connection() as conn:
                    count = await conn.fetchval(
                        "SELECT count(*) FROM mailbox_messages WHERE account_id = ANY($1::int[])",
                        ids)
                if count >= n and done_at is None:
                    done_at = time.time()
                if proc.poll() is not None and (done_at is not None or count >= n):
                    break
                if proc.poll() is not None and done_at is None:
                    # the client finished; give delivery a moment, then stop waiting
                    await asyncio.sleep(0.02)
                    async with db.connection() as conn:
                        count = await conn.fetchval(
                            "SELECT count(*) FROM mailbox_messages"
                            " WHERE account_id = ANY($1::int[])", ids)
                    done_at = time.time() if count >= n else None
                    break
                await asyncio.sleep(0.02)
            out, _ = await asyncio.to_thread(proc.communicate)
            res = json.loads(out)
            res["readable"] = done_at
            res["stored"] = count
            async with db.connection() as conn:  # what the checks concluded, for the record
                sample = await conn.fetchval(
                    "SELECT b.raw FROM mailbox_messages m JOIN message_blobs b"
                    " ON b.sha256 = m.sha256 WHERE m.account_id = ANY($1::int[]) LIMIT 1", ids)
            res["results"] = _auth_results(sample) if sample else ""
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            res["server_cpu"] = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        finally:
            await srv.stop()
    finally:
        await db.close()
    return res


def _auth_results(raw: bytes) -> str:
    """``spf=pass dkim=none dmarc=pass`` from the stored Authentication-Results field."""
    import re

    start = raw.find(b"Authentication-Results:")
    end = raw.find(b"\r\n", start)
    while raw[end + 2:end + 3] in (b"\t", b" "):
        end = raw.find(b"\r\n", end + 2)
    field = raw[start:end].decode("utf-8", "replace")
    return " ".join(f"{m}={r}" for m, r in re.findall(r"\b(spf|dkim|dmarc)=(\w+)", field))


# -- Postfix → Dovecot ----------------------------------------------------------------


def _maildir_count(rcpts: list[str]) -> int:
    total = 0
    for r in rcpts:
        for sub in ("new", "cur"):
            p = PEER_MAILDIR / r / sub
            if p.is_dir():
                total += sum(1 for _ in os.scandir(p))
    return total


async def bench_peer(n: int, size: int, conc: int, nrcpt: int) -> dict | None:
    try:
        socket.create_connection(("127.0.0.1", PEER_PORT), timeout=2).close()
    except OSError:
        return None
    run = f"r{int(time.time())}"
    rcpts = [f"{run}u{k}@{PEER_DOMAIN}" for k in range(nrcpt)]
    proc = run_client("127.0.0.1", PEER_PORT, n, size, conc, rcpts)
    done_at = None
    deadline = None
    while True:
        count = _maildir_count(rcpts)
        if count >= n:
            done_at = time.time()
            break
        if proc.poll() is not None:
            deadline = deadline or time.time() + 120
            if time.time() > deadline:
                break
        await asyncio.sleep(0.02)
    out, _ = await asyncio.to_thread(proc.communicate)
    res = json.loads(out)
    res["readable"] = done_at
    res["stored"] = count
    return res


def report(name: str, n: int, r: dict | None) -> None:
    if r is None:
        print(f"{name:<22} not running (start /work/shared/anchors/dovecot.sh, then postfix.sh)")
        return
    send = r["last_ack"] - r["start"]
    line = (f"{name:<22} accepted {r['accepted']:>5}/{n} in {send:6.2f}s = "
            f"{r['accepted'] / send if send else 0:7.1f}/s")
    if r["readable"]:
        e2e = r["readable"] - r["start"]
        line += f" | all readable after {e2e:6.2f}s = {n / e2e:7.1f}/s end to end"
    else:
        line += f" | only {r['stored']} readable"
    if "server_cpu" in r:
        line += f" | server CPU {r['server_cpu']:.2f}s"
    line += f" | load generator CPU {r['client_cpu']:.2f}s"
    if r["failed"]:
        line += f" | {r['failed']} refused"
    if r.get("results"):
        line += f" | {r['results']}"
    print(line)


def congvu_isolated(n: int, size: int, conc: int, nrcpt: int, spf: bool = False,
                    dkim: bool = False) -> dict:
    """One Congvu configuration in a fresh process.

    Its embedded PostgreSQL stops when that process exits, so a later run
    does not share the machine with an earlier run's idle server (autovacuum,
    checkpoints) nor inherit its interpreter's heap.
    """
    spec = json.dumps({"n": n, "size": size, "conc": conc, "nrcpt": nrcpt, "spf": spf,
                       "dkim": dkim})
    out = subprocess.run([sys.executable, __file__, "--congvu", spec], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def congvu_main(spec: str) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    p = json.loads(spec)
    print(json.dumps(asyncio.run(bench_congvu(p["n"], p["size"], p["conc"], p["nrcpt"],
                                              spf=p["spf"], dkim=p["dkim"]))))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--congvu":
        congvu_main(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="messages (default 2000)")
    ap.add_argument("-s", type=int, default=10240, help="message size in bytes (default 10240)")
    ap.add_argument("-c", type=int, default=20, help="concurrent sessions (default 20)")
    ap.add_argument("--recipients", type=int, default=20, help="distinct mailboxes (default 20)")
    ap.add_argument("--no-peer", action="store_true", help="skip Postfix→Dovecot")
    ap.add_argument("--dkim", action="store_true",
                    help="also a run with DKIM-signed mail (SPF+DMARC published too)")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(f"{args.n} messages of {args.s} bytes over {args.c} sessions to {args.recipients} "
          f"mailboxes, {os.cpu_count()} CPUs")
    print("congvu MX: recipient+quota lookup, SPF/DKIM/DMARC evaluation, Received and "
          "Authentication-Results, parse-once, 250 after COMMIT. DNS: static in-process "
          "resolver (TTL 300 s, no network). Mail is not DKIM-signed unless --dkim.")
    print("  first run: sender domain publishes nothing (SPF none, DMARC none);")
    print("  SPF+DMARC run: 'v=spf1 ip4:127.0.0.0/8 -all' and 'v=DMARC1; p=none' published.")
    if args.dkim:
        print("  +DKIM run: as SPF+DMARC, and every message signed (rsa-sha256, 2048 bits), "
              "so each signature is verified.")
    if not args.no_peer:
        print("postfix -> dovecot: anchor config, NO SPF/DKIM/DMARC checks "
              "(permit_mynetworks, reject_unauth_destination), LMTP to Dovecot maildir.")
    congvu = congvu_isolated(args.n, args.s, args.c, args.recipients)
    report("congvu MX", args.n, congvu)
    with_spf = congvu_isolated(args.n, args.s, args.c, args.recipients, spf=True)
    report("congvu MX, SPF+DMARC", args.n, with_spf)
    runs = [("", congvu), (" (SPF+DMARC)", with_spf)]
    if args.dkim:
        with_dkim = congvu_isolated(args.n, args.s, args.c, args.recipients, spf=True,
                                    dkim=True)
        report("congvu MX, +DKIM signed", args.n, with_dkim)
        runs.append((" (SPF+DMARC+DKIM)", with_dkim))
    if not args.no_peer:
        peer = asyncio.run(bench_peer(args.n, args.s, args.c, args.recipients))
        report("postfix -> dovecot", args.n, peer)
        if peer and peer["readable"]:
            for name, r in runs:
                if r["readable"]:
                    ratio = (peer["readable"] - peer["start"]) / (r["readable"] - r["start"])
                    print(f"congvu{name} / postfix->dovecot, end to end: {ratio:.2f}x")


if __name__ == "__main__":
    main()
