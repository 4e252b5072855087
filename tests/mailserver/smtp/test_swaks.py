"""swaks, the SMTP Swiss army knife: AUTH, STARTTLS and PIPELINING from a real client."""

from __future__ import annotations

import shutil
import subprocess

from congvu.mailserver.smtp.service import SmtpServer
from congvu.services import Services

from .conftest import AN, BINH, PASSWORD, THU, client, inbox

SWAKS = shutil.which("swaks") or "swaks"  # Debian package "swaks" (.ci/run installs it)


def swaks(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SWAKS, "--server", f"127.0.0.1:{port}", "--ehlo", "laptop",
                           "--timeout", "30", *args], capture_output=True, text=True, timeout=60)


async def test_starttls_auth_plain_pipelined(smtp: SmtpServer, services: Services) -> None:
    res = await client(lambda: swaks(
        smtp.ports["submission"], "--tls", "--pipeline", "--auth", "PLAIN",
        "--auth-user", AN, "--auth-password", PASSWORD, "--from", AN, "--to", f"{BINH},{THU}",
        "--header", "Subject: swaks test"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in res.stdout and "=== TLS started" in res.stdout
    assert "~> AUTH PLAIN" in res.stdout and "<~  235 2.7.0" in res.stdout
    assert "250-PIPELINING" in res.stdout
    for who in (BINH, THU):
        rows = await inbox(services, who)
        assert len(rows) == 1 and rows[0]["subject"] == "swaks test"


async def test_auth_login_over_implicit_tls(smtp: SmtpServer, services: Services) -> None:
    res = await client(lambda: swaks(
        smtp.ports["submissions"], "--tlsc", "--auth", "LOGIN", "--auth-user", THU,
        "--auth-password", PASSWORD, "--from", THU, "--to", AN))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "<~  235 2.7.0 Authentication successful" in res.stdout
    assert len(await inbox(services, AN)) == 1


async def test_bad_password_and_relay_attempt(smtp: SmtpServer, services: Services) -> None:
    res = await client(lambda: swaks(
        smtp.ports["submission"], "--tls", "--auth", "PLAIN", "--auth-user", AN,
        "--auth-password", "sai mật khẩu", "--from", AN, "--to", BINH))
    assert res.returncode != 0
    assert "535 5.7.8 Authentication credentials invalid" in res.stdout
    # the MX: an unauthenticated relay attempt is refused at RCPT
    res = await client(lambda: swaks(smtp.ports["mx"], "--pipeline", "--from", AN,
                                     "--to", "victim@example.com"))
    assert res.returncode != 0
    assert "550 5.7.1 Relaying denied" in res.stdout
    assert await inbox(services, BINH) == []
