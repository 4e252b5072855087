"""MX: receiving for hosted domains with smtplib, the relay refusal, recipient rules."""

from __future__ import annotations

import smtplib

import pytest

from congvu.directory.service import Directory
from congvu.mailserver.smtp.service import SmtpServer
from congvu.services import Services

from .conftest import AN, BINH, DOMAIN, HOA, THU, client, inbox, message

pytestmark = pytest.mark.asyncio


def send(port: int, sender: str, rcpts: list[str], data: bytes) -> tuple[dict, list[tuple[int, bytes]]]:
    """Send with smtplib; return the refused recipients and every reply code seen."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("relay.example.org")
        refused = s.sendmail(sender, rcpts, data)
        return refused, []


async def test_ehlo_advertises_extensions(smtp: SmtpServer) -> None:
    def run() -> dict[str, str]:
        with smtplib.SMTP("127.0.0.1", smtp.ports["mx"], timeout=30) as s:
            s.ehlo("client.example.org")
            return dict(s.esmtp_features)
    features = await client(run)
    for ext in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "starttls"):
        assert ext in features, ext
    assert "auth" not in features  # RFC 6409: the MX never offers AUTH


async def test_delivers_to_account_with_trace_headers(smtp: SmtpServer, services: Services) -> None:
    refused, _ = await client(lambda: send(smtp.ports["mx"], "someone@example.org", [AN],
                                           message()))
    assert refused == {}
    rows = await inbox(services, AN)
    assert len(rows) == 1
    raw = rows[0]["raw"]
    assert raw.startswith(b"Received: from relay.example.org ([127.0.0.1])")
    assert b"Authentication-Results: mail.hanoi.gov.vn;" in raw
    assert rows[0]["subject"] == "Thông báo họp"
    assert "hop luc 9 gio" in rows[0]["search_body"]
