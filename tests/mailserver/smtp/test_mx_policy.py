"""MX policy details: postmaster, reverse DNS in Received:, per-IP limits, the purge race."""

from __future__ import annotations

import hashlib
import smtplib
import time
from dataclasses import replace
from datetime import UTC, datetime

import aiosmtplib
import pytest

from congvu.config import Limits
from congvu.directory.service import Directory
from congvu.mailserver.mime import parse_message
from congvu.mailserver.smtp.dnsresolve import StaticResolver
from congvu.mailserver.smtp.ratelimit import ClientLimiter
from congvu.mailserver.smtp.service import SmtpServer, start_smtp
from congvu.services import Services
from congvu.store import delivery

from .conftest import AN, BINH, DOMAIN, client, inbox, message, with_settings

ADMIN = f"admin@{DOMAIN}"


async def _send(port: int, rcpt: str, data: bytes | None = None,
                sender: str = "someone@example.org") -> tuple[tuple[int, str], tuple[int, str]]:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30, start_tls=False)
    await smtp.connect()
    try:
        await smtp.ehlo(hostname="relay.example.org")
        await smtp.mail(sender)
        rcpt_reply = await smtp.execute_command(b"RCPT", f"TO:<{rcpt}>".encode())
        result = (rcpt_reply.code, rcpt_reply.message)
        if rcpt_reply.code != 250:
            return result, (0, "")
        data_reply = await smtp.data(data or message(to=rcpt))
        return result, (data_reply.code, data_reply.message)
    finally:
        await smtp.quit()


# -- postmaster (RFC 5321 §4.5.1) ---------------------------------------------------


async def test_bare_postmaster_goes_to_the_admins(smtp: SmtpServer, org: Directory,
                                                  services: Services) -> None:
    for rcpt in ("postmaster", "PostMaster"):
        rcpt_reply, data_reply = await _send(smtp.ports["mx"], rcpt)
        assert rcpt_reply == (250, "2.1.5 Recipient OK")
        assert data_reply[0] == 250
    rows = await inbox(services, ADMIN)
    assert len(rows) == 2
    assert b"for <postmaster>" in rows[0]["raw"]
    # postmaster@ a hosted domain without such an address: the same people
    rcpt_reply, _ = await _send(smtp.ports["mx"], f"postmaster@{DOMAIN}")
    assert rcpt_reply[0] == 250
    assert len(await inbox(services, ADMIN)) == 3
    # ... but a foreign postmaster is still relaying
    rcpt_reply, _ = await _send(smtp.ports["mx"], "postmaster@example.com")
    assert rcpt_reply == (550, "5.7.1 Relaying denied: this server does not relay")


async def test_configured_postmaster_alias_and_existing_address(
        services: Services, org: Directory) -> None:
    await org.add_alias(f"hotro@{DOMAIN}", BINH, "test")
    configured = with_settings(services, postmaster=f"HoTro@{DOMAIN}")
    srv = await start_smtp(configured, mx_port=0, resolver=StaticResolver(), queue=False)
    try:
        rcpt_reply, data_reply = await _send(srv.ports["mx"], "postmaster")
        assert rcpt_reply[0] == 250 and data_reply[0] == 250
        assert len(await inbox(services, BINH)) == 1
        assert await inbox(services, ADMIN) == []
        # a real postmaster@ address wins over the fallback
        await org.add_alias(f"postmaster@{DOMAIN}", AN, "test")
        await _send(srv.ports["mx"], f"postmaster@{DOMAIN}")
        assert len(await inbox(services, AN)) == 1
        assert len(await inbox(services, BINH)) == 1
    finally:
        await srv.stop()


async def test_no_postmaster_anywhere_is_refused(smtp: SmtpServer, services: Services,
                                                 org: Directory) -> None:
    async with services.db.connection() as conn:
        await conn.execute("DELETE FROM account_roles WHERE role = 'admin'")
    rcpt_reply, _ = await _send(smtp.ports["mx"], "postmaster")
    assert rcpt_reply == (550, "5.1.1 No such user here")


# -- reverse DNS in Received: -------------------------------------------------------


async def test_received_names_the_forward_confirmed_reverse_name(
        smtp: SmtpServer, resolver: StaticResolver, services: Services) -> None:
    resolver.add("1.0.0.127.in-addr.arpa", "PTR", "gw.example.net", "liar.example.net")
    resolver.add("gw.example.net", "A", "127.0.0.1")
    resolver.add("liar.example.net", "A", "192.0.2.1")

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", smtp.ports["mx"], timeout=30) as s:
            s.ehlo("relay.example.org")
            s.sendmail("someone@example.org", [AN], message())
    await client(send)
    raw = (await inbox(services, AN))[0]["raw"]
    assert raw.startswith(b"Received: from relay.example.org (gw.example.net [127.0.0.1])\r\n")


async def test_unconfirmed_reverse_name_is_left_out(
        smtp: SmtpServer, resolver: StaticResolver, services: Services) -> None:
    resolver.add("1.0.0.127.in-addr.arpa", "PTR", "forged.example.net")
    resolver.add("forged.example.net", "A", "192.0.2.1")
    await _send(smtp.ports["mx"], AN)
    raw = (await inbox(services, AN))[0]["raw"]
    assert raw.startswith(b"Received: from relay.example.org ([127.0.0.1])\r\n")
    assert ("1.0.0.127.in-addr.arpa", "PTR") in resolver.queries


# -- per-IP limits -------------------------------------------------------------------


def _limited(services: Services, connections: int, per_minute: int) -> Services:
    limits = replace(Limits(), mx_connections_per_ip=connections,
                     mx_messages_per_ip_per_minute=per_minute,
                     mx_limit_exempt=("192.0.2.0/24",))
    return with_settings(services, limits=limits)


async def test_too_many_connections_from_one_address_get_421(services: Services,
                                                             org: Directory) -> None:
    srv = await start_smtp(_limited(services, 2, 0), mx_port=0, resolver=StaticResolver(),
                           queue=False)
    try:
        first = aiosmtplib.SMTP(hostname="127.0.0.1", port=srv.ports["mx"], timeout=30,
                               start_tls=False)
        second = aiosmtplib.SMTP(hostname="127.0.0.1", port=srv.ports["mx"], timeout=30,
                               start_tls=False)
        await first.connect()
        await second.connect()

        def third() -> None:
            smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30).close()
        with pytest.raises(smtplib.SMTPConnectError) as exc:
            await client(third)
        assert exc.value.smtp_code == 421
        assert exc.value.smtp_error.startswith(b"4.7.0 Too many connections")
        # the first two still work; once one leaves, a new one is welcome
        assert (await first.ehlo(hostname="a.example")).code == 250
        await second.quit()

        def fourth() -> int:
            for _ in range(100):  # the server notices the QUIT connection's close soon
                try:
                    with smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30) as s:
                        return s.noop()[0]
                except smtplib.SMTPConnectError:
                    time.sleep(0.05)
            return 0
        assert await client(fourth) == 250
        await first.quit()
    finally:
        await srv.stop()


async def test_too_many_messages_from_one_address_get_451(services: Services,
                                                          org: Directory) -> None:
    srv = await start_smtp(_limited(services, 0, 3), mx_port=0, resolver=StaticResolver(),
                           queue=False)
    try:
        for _ in range(3):
            assert (await _send(srv.ports["mx"], AN))[1][0] == 250
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=srv.ports["mx"], timeout=30,
                               start_tls=False)
        await smtp.connect()
        await smtp.ehlo(hostname="relay.example.org")
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as exc:
            await smtp.mail("someone@example.org")
        assert (exc.value.code, exc.value.message) == (
            451, "4.7.1 Too many messages from your address, try again later")
        await smtp.quit()
    finally:
        await srv.stop()
    assert len(await inbox(services, AN)) == 3


def test_limiter_window_and_exempt_networks() -> None:
    now = [0.0]
    lim = ClientLimiter(1, 2, ["10.0.0.0/8", "2001:db8::/32"], clock=lambda: now[0])
    assert lim.message("198.51.100.1") is None
    assert lim.message("198.51.100.1") is None
    assert lim.message("198.51.100.1") is not None
    now[0] = 61.0  # a minute later the window has moved on
    assert lim.message("198.51.100.1") is None
    for exempt in ("10.1.2.3", "::ffff:10.1.2.3", "2001:db8::5"):
        assert all(lim.message(exempt) is None for _ in range(5))
        assert lim.connect(exempt) is None and lim.connect(exempt) is None
    assert lim.connect("198.51.100.1") is None
    assert lim.connect("198.51.100.1") is not None
    lim.disconnect("198.51.100.1")
    assert lim.connect("198.51.100.1") is None
    # IPv6 is counted per /64: a host cannot escape by picking new addresses
    assert lim.connect("2001:db9:1:2::1") is None
    assert lim.connect("2001:db9:1:2::99") is not None
    assert lim.connect("2001:db9:1:3::1") is None
    lim.disconnect("2001:db9:1:2::1")
    assert lim.connect("2001:db9:1:2::abcd") is None


# -- delivery vs the retention purge --------------------------------------------------


async def test_delivery_stores_the_blob_again_when_the_purge_took_it(
        services: Services, org: Directory) -> None:
    """The purge deletes an unreferenced blob between our insert and our reference.

    A trigger plays the purge, once, at exactly that moment (the blob exists,
    so ``ON CONFLICT DO NOTHING`` kept the old row; the trigger deletes it
    before the new mailbox row's foreign key is checked).
    """
    raw = message(subject="Lưu trữ").replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    parsed = parse_message(raw)
    now = datetime.now(UTC)
    sha = hashlib.sha256(raw).digest()
    async with services.db.connection() as conn:
        an = await conn.fetchval("SELECT id FROM accounts WHERE address = $1", AN)
        binh = await conn.fetchval("SELECT id FROM accounts WHERE address = $1", BINH)
        await delivery.deliver(conn, parsed, raw, [an], internal_date=now)
        await conn.execute("DELETE FROM mailbox_messages WHERE account_id = $1", an)
        await conn.execute("""
            CREATE TABLE purge_once (done boolean);
            CREATE FUNCTION purge_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NOT EXISTS (SELECT 1 FROM purge_once) THEN
                INSERT INTO purge_once VALUES (true);
                DELETE FROM message_blobs b WHERE b.sha256 = NEW.sha256
                  AND NOT EXISTS (SELECT 1 FROM mailbox_messages m WHERE m.sha256 = b.sha256);
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER purge_once BEFORE INSERT ON mailbox_messages
              FOR EACH ROW EXECUTE FUNCTION purge_once();""")

        async def unreferenced() -> None:
            await conn.execute("DELETE FROM mailbox_messages WHERE sha256 = $1", sha)
            await conn.execute("DELETE FROM purge_once")

        # a single recipient (one statement) and several (a transaction)
        for ids in ([an], [an, binh]):
            await unreferenced()
            got = await delivery.deliver(conn, parsed, raw, ids, internal_date=now)
            assert sorted(d.account_id for d in got) == sorted(ids)
            assert await conn.fetchval("SELECT count(*) FROM purge_once") == 1  # it did run
        # inside a caller's transaction the retry is a savepoint: the caller's work stays
        await unreferenced()
        async with conn.transaction():
            await conn.execute("UPDATE accounts SET display_name = 'kept' WHERE id = $1", binh)
            await delivery.deliver(conn, parsed, raw, [binh], internal_date=now)
        assert await conn.fetchval("SELECT display_name FROM accounts WHERE id = $1",
                                   binh) == "kept"
        assert await conn.fetchval("SELECT count(*) FROM message_blobs WHERE sha256 = $1",
                                   sha) == 1
    assert await inbox(services, AN) == []
    assert len(await inbox(services, BINH)) == 1
