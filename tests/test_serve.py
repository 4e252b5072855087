"""``congvu serve`` as a process: demo start, admin beside it, concurrent migration, stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg

from congvu.store.migrate import load_migrations

from .conftest import params_url

ALL_OFF = {f"CONGVU_LISTENERS_{p}": "0" for p in
           ("SMTP", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "HTTP", "HTTPS")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(tmp: Path, http: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONGVU_")}
    env.update(ALL_OFF)
    env.update({"CONGVU_LISTENERS_HTTP": str(http), "CONGVU_DATA_DIR": str(tmp / "data")})
    env.update(extra)
    return env


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy")


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_demo_server_and_admin_side_by_side(tmp_path: Path) -> None:
    port, tls_port = free_port(), free_port()
    env = env_for(tmp_path, port, CONGVU_LISTENERS_HTTPS=str(tls_port))
    proc = subprocess.Popen([sys.executable, "-m", "congvu", "serve", "--demo"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_healthy(port, proc)["status"] == "ok"
        # the same app over TLS, with the self-signed certificate made for the data directory
        ctx = ssl.create_default_context(cafile=str(tmp_path / "data" / "tls" / "cert.pem"))
        ctx.check_hostname = False
        with urllib.request.urlopen(f"https://127.0.0.1:{tls_port}/healthz", timeout=5,
                                    context=ctx) as r:
            assert json.loads(r.read())["status"] == "ok"
        # a second terminal: the admin CLI on the same data directory, server running
        listing = subprocess.run([sys.executable, "-m", "congvu", "admin", "account", "list"],
                                 env=env, capture_output=True, text=True, timeout=60)
        assert listing.returncode == 0, listing.stderr
        assert "an.nv@hanoi.gov.vn" in listing.stdout and "Nguyễn Văn An" in listing.stdout
        assert listing.stdout.count("@hanoi.gov.vn") >= 10
    finally:
        out = stop(proc)
    assert "Congvu@2026" in out and "an.nv@hanoi.gov.vn" in out
    assert "Traceback" not in out
    # restarting with --demo adds nothing
    proc = subprocess.Popen([sys.executable, "-m", "congvu", "serve", "--demo"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(port, proc)
    finally:
        out = stop(proc)
    assert "nothing was added" in out


def test_two_nodes_migrate_once(pg_params, tmp_path: Path) -> None:
    name = f"fresh_{os.getpid()}_{int(time.time() * 1000) % 100000}"

    async def create() -> None:
        conn = await asyncpg.connect(**pg_params.kwargs())
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()

    asyncio.run(create())
    url = params_url(pg_params.with_database(name))
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "congvu", "serve"],
            env=env_for(tmp_path / f"n{i}", port, CONGVU_DATABASE_URL=url),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i, port in enumerate(ports)
    ]
    try:
        for port, proc in zip(ports, procs):
            wait_healthy(port, proc)
    finally:
        outputs = [stop(p) for p in procs]
    applied = sum(o.count("applying migration 001_directory") for o in outputs)
    assert applied == 1, outputs

    async def versions() -> list[int]:
        conn = await asyncpg.connect(**pg_params.with_database(name).kwargs())
        try:
            return [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        finally:
            await conn.close()

    assert sorted(asyncio.run(versions())) == [m.version for m in load_migrations()]
