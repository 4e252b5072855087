"""MX: receiving for hosted domains with smtplib, the relay refusal, recipient rules."""

from __future__ import annotations

import asyncio
import json
import smtplib
import socket

import aiosmtplib
import pytest

from congvu.config import Limits
from congvu.directory.service import Directory
from congvu.mailserver.smtp import policy as policy_mod
from congvu.mailserver.smtp.dnsresolve import StaticResolver
from congvu.mailserver.smtp.service import SmtpServer, start_smtp
from congvu.services import Services
from congvu.store import delivery

from .conftest import AN, BINH, DOMAIN, HOA, THU, client, inbox, message, with_settings

EHLO = "relay.example.org"


def talk(port: int, *steps: tuple[str, str]) -> list[tuple[int, str]]:
    """Run smtplib steps (("mail", addr), ("rcpt", addr), ("data", text)) and collect replies."""
    out = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo(EHLO)
        for verb, arg in steps:
            if verb == "mail":
                code, msg = s.mail(arg)
            elif verb == "rcpt":
                code, msg = s.rcpt(arg)
            elif verb == "data":
                code, msg = s.data(arg.encode() if isinstance(arg, str) else arg)
            else:
                code, msg = s.docmd(verb, arg)
            out.append((code, msg.decode()))
    return out


async def test_ehlo_advertises_extensions(smtp: SmtpServer) -> None:
    def run() -> dict[str, str]:
        with smtplib.SMTP("127.0.0.1", smtp.ports["mx"], timeout=30) as s:
            s.ehlo("client.example.org")
            return dict(s.esmtp_features)
    features = await client(run)
    for ext in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "starttls"):
        assert ext in features, ext
    assert features["size"] == str(Limits().max_message_bytes)
    assert "auth" not in features  # the MX never offers AUTH


async def test_delivers_to_account_with_trace_headers(smtp: SmtpServer, services: Services) -> None:
    replies = await client(lambda: talk(smtp.ports["mx"], ("mail", "someone@example.org"),
                                        ("rcpt", AN), ("data", message())))
    assert [c for c, _ in replies] == [250, 250, 250]
    assert replies[2][1].startswith("2.0.0 OK queued as ")
    rows = await inbox(services, AN)
    assert len(rows) == 1
    raw = rows[0]["raw"]
    assert raw.startswith(b"Received: from relay.example.org ([127.0.0.1])\r\n\tby mail.hanoi.gov.vn")
    assert b"with ESMTP" in raw and f"for <{AN}>".encode() in raw
    assert b"Authentication-Results: mail.hanoi.gov.vn;" in raw
    assert rows[0]["subject"] == "Thông báo họp"
    assert "hop luc 9 gio" in rows[0]["search_body"]  # folded for Vietnamese search


async def test_open_relay_refused(smtp: SmtpServer, services: Services) -> None:
    replies = await client(lambda: talk(smtp.ports["mx"], ("mail", AN),
                                        ("rcpt", "victim@example.com"),
                                        ("rcpt", "x@hanoi.gov.vn.example.com")))
    assert replies[1] == (550, "5.7.1 Relaying denied: this server does not relay")
    assert replies[2][0] == 550
    # smtplib.sendmail to a foreign domain only: refused, nothing queued
    def try_send() -> None:
        with smtplib.SMTP("127.0.0.1", smtp.ports["mx"], timeout=30) as s:
            s.sendmail(AN, ["victim@example.com"], message(to="victim@example.com"))
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await client(try_send)
    async with services.db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbound_messages") == 0


async def test_unknown_disabled_and_malformed_recipients(smtp: SmtpServer, org: Directory) -> None:
    await org.set_enabled(HOA, False, "test")
    replies = await client(lambda: talk(smtp.ports["mx"], ("mail", "a@example.org"),
                                        ("rcpt", f"nobody@{DOMAIN}"), ("rcpt", HOA),
                                        ("rcpt", "<bad..dots@hanoi.gov.vn>"),
                                        ("rcpt", AN)))
    assert replies[1] == (550, "5.1.1 No such user here")
    assert replies[2] == (550, "5.2.1 Mailbox disabled, not accepting messages")
    assert replies[3][0] == 553 and replies[3][1].startswith("5.1.3")
    assert replies[4] == (250, "2.1.5 Recipient OK")


async def test_alias_and_null_sender(smtp: SmtpServer, org: Directory, services: Services) -> None:
    await org.add_alias(f"giamdoc@{DOMAIN}", AN, "test")
    replies = await client(lambda: talk(smtp.ports["mx"], ("mail", "<>"),
                                        ("rcpt", f"GiamDoc@{DOMAIN}"), ("data", message())))
    assert [c for c, _ in replies] == [250, 250, 250]
    assert len(await inbox(services, AN)) == 1


async def test_quota(smtp: SmtpServer, org: Directory, services: Services) -> None:
    # SIZE declared (smtplib sends it) and over the quota: 452 4.2.2 at RCPT
    await org.set_quota(AN, 1000, "test")
    big = message(body="x" * 2000 + "\r\n")

    def send_big() -> dict:
        with smtplib.SMTP("127.0.0.1", smtp.ports["mx"], timeout=30) as s:
            return s.sendmail("a@example.org", [AN, BINH], big)
    refused = await client(send_big)
    assert refused == {AN: (452, b"4.2.2 Mailbox full, try again later")}
    assert len(await inbox(services, BINH)) == 1
    # already full (no SIZE given): refused as well, temporarily
    async with services.db.connection() as conn:
        await conn.execute("UPDATE accounts SET used_bytes = 1000 WHERE address = $1", AN)
    replies = await client(lambda: talk(smtp.ports["mx"], ("mail", "a@example.org"), ("rcpt", AN)))
    assert replies[1] == (452, "4.2.2 Mailbox full, try again later")
    assert await inbox(services, AN) == []


async def test_used_bytes_and_default_quota(smtp: SmtpServer, services: Services) -> None:
    data = message()
    await client(lambda: talk(smtp.ports["mx"], ("mail", "a@example.org"), ("rcpt", AN),
                              ("data", data)))
    rows = await inbox(services, AN)
    async with services.db.connection() as conn:
        used = await conn.fetchval("SELECT used_bytes FROM accounts WHERE address = $1", AN)
        assert used == rows[0]["size"] == len(rows[0]["raw"])
        full = await delivery.over_quota(conn, [await conn.fetchval(
            "SELECT id FROM accounts WHERE address = $1", AN)], used)
        assert full  # quota_bytes NULL: the default applies


async def test_group_expands_once_and_stores_one_copy(smtp: SmtpServer, org: Directory,
                                                      services: Services) -> None:
    await org.add_group(f"lanhdao@{DOMAIN}", "Lãnh đạo", "test")
    await org.add_group(f"toanbo@{DOMAIN}", "Toàn bộ", "test")
    await org.add_member(f"lanhdao@{DOMAIN}", AN, "test")
    await org.add_member(f"lanhdao@{DOMAIN}", BINH, "test")
    await org.add_member(f"toanbo@{DOMAIN}", f"lanhdao@{DOMAIN}", "test")
    await org.add_member(f"toanbo@{DOMAIN}", "unit:q-hk+sub", "test")  # binh and hoa
    await org.add_member(f"toanbo@{DOMAIN}", THU, "test")
    replies = await client(lambda: talk(
        smtp.ports["mx"], ("mail", "vanthu@example.org"), ("rcpt", f"toanbo@{DOMAIN}"),
        ("rcpt", AN), ("data", message(to=f"toanbo@{DOMAIN}"))))
    assert [c for c, _ in replies] == [250, 250, 250, 250]
    for who in (AN, BINH, THU, HOA):
        rows = await inbox(services, who)
        assert len(rows) == 1, who  # each person once, even when named twice
        assert b"for <" not in rows[0]["raw"].split(b"\r\n\r\n")[0]  # several rcpts: no "for"
    async with services.db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM message_blobs") == 1


async def test_limits_each_with_its_code(services: Services, org: Directory) -> None:
    limits = Limits(max_message_bytes=4000, max_recipients=2, max_line_length=200,
                    max_header_count=12)
    svc = with_settings(services, limits=limits)
    srv = await start_smtp(svc, mx_port=0, resolver=StaticResolver(), queue=False)
    port = srv.ports["mx"]
    try:
        # SIZE parameter over the limit: refused at MAIL
        r = await client(lambda: talk(port, ("MAIL", "FROM:<a@example.org> SIZE=5000")))
        assert r[0] == (552, "5.3.4 Message size exceeds fixed maximum message size")
        # no SIZE, data over the limit: refused after the data
        r = await client(lambda: talk(port, ("mail", "a@example.org"), ("rcpt", AN),
                                      ("data", message(body="y" * 60 + "\r\n") * 70)))
        assert r[2] == (552, "5.3.4 Message size exceeds fixed maximum message size")
        r = await client(lambda: talk(port, ("mail", "a@example.org"), ("rcpt", AN),
                                      ("data", message(body="z" * 300 + "\r\n"))))
        assert r[2] == (500, "5.5.2 Line too long")
        many = "".join(f"X-H{i}: v\r\n" for i in range(20))
        r = await client(lambda: talk(port, ("mail", "a@example.org"), ("rcpt", AN),
                                      ("data", message(extra=many))))
        assert r[2] == (552, "5.3.4 Too many header fields")
        r = await client(lambda: talk(port, ("mail", "a@example.org"), ("rcpt", AN),
                                      ("rcpt", BINH), ("rcpt", THU)))
        assert r[3] == (452, "4.5.3 Too many recipients")
        assert await inbox(services, AN) == []
        # the session survives every refusal: a good message still goes through
        r = await client(lambda: talk(port, ("mail", "a@example.org"), ("rcpt", AN),
                                      ("data", message())))
        assert r[2][0] == 250
    finally:
        await srv.stop()


async def test_dot_stuffing_and_bare_lf(smtp: SmtpServer, services: Services) -> None:
    body = "line one\r\n.leading dot\r\n..two dots\r\nbare\nlf\r\n"
    await client(lambda: talk(smtp.ports["mx"], ("mail", "a@example.org"), ("rcpt", AN),
                              ("data", message(body=body))))
    raw = (await inbox(services, AN))[0]["raw"]
    assert raw.endswith(b"line one\r\n.leading dot\r\n..two dots\r\nbare\r\nlf\r\n")


async def test_smuggled_bare_lf_dot_is_not_an_end(smtp: SmtpServer, services: Services) -> None:
    """RFC 5321 §4.1.1.4: only CRLF.CRLF ends the data (SMTP smuggling)."""
    def run() -> list[bytes]:
        with socket.create_connection(("127.0.0.1", smtp.ports["mx"]), timeout=30) as s:
            s.sendall(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<" + AN.encode()
                      + b">\r\nDATA\r\n")
            buf = b""
            while b"354" not in buf:
                buf += s.recv(4096)
            s.sendall(b"Subject: one\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\r\n.\r\nQUIT\r\n")
            while b"221" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            return buf.split(b"\r\n")
    lines = await client(run)
    assert sum(1 for ln in lines if ln.startswith(b"250 2.0.0 OK queued")) == 1
    rows = await inbox(services, AN)
    assert len(rows) == 1 and b"evil@example.org" in rows[0]["raw"]


async def test_pipelining_raw_socket(smtp: SmtpServer, services: Services) -> None:
    """RFC 2920: a whole transaction in one write; replies come back in order."""
    def run() -> list[bytes]:
        with socket.create_connection(("127.0.0.1", smtp.ports["mx"]), timeout=30) as s:
            s.recv(4096)
            s.sendall(b"EHLO x\r\n")
            buf = b""
            while not buf.endswith(b"250 ENHANCEDSTATUSCODES\r\n") and b"250 " not in buf:
                buf += s.recv(4096)
            s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<" + AN.encode() + b">\r\n"
                      b"RCPT TO:<nobody@hanoi.gov.vn>\r\nRCPT TO:<" + BINH.encode() + b">\r\n"
                      b"DATA\r\n")
            buf = b""
            while b"354" not in buf:
                buf += s.recv(4096)
            s.sendall(b"Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.org>\r\n"
                      b"RCPT TO:<" + AN.encode() + b">\r\nDATA\r\n")
            while buf.count(b"354") < 2:
                buf += s.recv(4096)
            s.sendall(b"Subject: q\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            while b"221" not in buf:
                buf += s.recv(4096)
            return [ln[:3] for ln in buf.split(b"\r\n") if ln]
    codes = await client(run)
    assert codes == [b"250", b"250", b"550", b"250", b"354", b"250", b"250", b"250", b"354",
                     b"250", b"221"]
    assert len(await inbox(services, AN)) == 2
    assert len(await inbox(services, BINH)) == 1


async def test_database_error_answers_451_and_stores_nothing(
        smtp: SmtpServer, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(policy_mod.delivery, "deliver", broken)
    replies = await client(lambda: talk(smtp.ports["mx"], ("mail", "a@example.org"),
                                        ("rcpt", AN), ("data", message()), ("NOOP", "")))
    assert replies[2] == (451, "4.3.0 Temporary server error, please try again later")
    assert replies[3][0] == 250  # the connection lives on
    monkeypatch.undo()
    assert await inbox(services, AN) == []
    async with services.db.connection() as conn:
        assert await conn.fetchval("SELECT used_bytes FROM accounts WHERE address = $1", AN) == 0


async def test_concurrent_deliveries_get_increasing_uids_and_notify(
        smtp: SmtpServer, services: Services) -> None:
    conn = await services.db.raw_connection()
    got: list[dict] = []
    await conn.add_listener(delivery.NOTIFY_CHANNEL, lambda *a: got.append(json.loads(a[3])))
    try:
        async def one(i: int) -> None:
            c = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.ports["mx"], start_tls=False)
            await c.connect()
            await c.sendmail("a@example.org", [AN, BINH], message(subject=f"số {i}"))
            await c.quit()
        await asyncio.gather(*(one(i) for i in range(20)))
        rows = await inbox(services, AN)
        assert [r["uid"] for r in rows] == list(range(1, 21))
        assert len({r["modseq"] for r in rows}) == 20
        for _ in range(100):
            if len(got) >= 40:
                break
            await asyncio.sleep(0.05)
        assert len(got) == 40
        assert set(got[0]) == set(delivery.NOTIFY_PAYLOAD_KEYS)
        assert sorted(g["uid"] for g in got if g["account_id"] == got[0]["account_id"]) == \
            list(range(1, 21))
    finally:
        await conn.close()


async def test_five_thousand_member_group(smtp: SmtpServer, org: Directory,
                                          services: Services) -> None:
    """A notice to every official: one blob, one row per member, in one delivery."""
    async with services.db.transaction() as conn:
        dom = await conn.fetchval("SELECT id FROM domains WHERE name = $1", DOMAIN)
        unit = await conn.fetchval("SELECT id FROM units WHERE slug = 'p-ht'")
        ids = await conn.fetch(
            "INSERT INTO accounts (address, domain_id, display_name, unit_id)"
            " SELECT 'cb' || g || '@' || $1, $2, 'Cán bộ ' || g, $3"
            " FROM generate_series(1, 5000) g RETURNING id", DOMAIN, dom, unit)
        await conn.execute(
            "INSERT INTO addresses (address, kind, account_id)"
            " SELECT address, 'account', id FROM accounts WHERE address LIKE 'cb%'")
        await conn.execute(
            "INSERT INTO mailboxes (account_id, name) SELECT id, 'INBOX' FROM unnest($1::int[]) id",
            [r["id"] for r in ids])
    await org.add_group(f"tatca@{DOMAIN}", "Tất cả cán bộ", "test")
    await org.add_member(f"tatca@{DOMAIN}", "unit:p-ht", "test")
    replies = await client(lambda: talk(smtp.ports["mx"], ("mail", "ubnd@example.org"),
                                        ("rcpt", f"tatca@{DOMAIN}"),
                                        ("data", message(to=f"tatca@{DOMAIN}"))))
    assert [c for c, _ in replies] == [250, 250, 250]
    async with services.db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM message_blobs") == 1
        n = await conn.fetchval(
            "SELECT count(DISTINCT m.account_id) FROM mailbox_messages m"
            " JOIN accounts a ON a.id = m.account_id WHERE a.unit_id = (SELECT id FROM units"
            " WHERE slug = 'p-ht')")
        assert n == 5001  # 5,000 officials and hoa
        assert await conn.fetchval(
            "SELECT count(*) FROM accounts WHERE unit_id = (SELECT id FROM units WHERE"
            " slug = 'p-ht') AND used_bytes = 0") == 0
