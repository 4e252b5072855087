"""Submission (RFC 6409): AUTH only after TLS, sender rules, delegation, local and remote mail."""

from __future__ import annotations

import base64
import smtplib
import ssl

import aiosmtplib
import pytest

from congvu.directory.service import Directory
from congvu.mailserver.smtp.dnsresolve import StaticResolver
from congvu.mailserver.smtp.service import SmtpServer, start_smtp
from congvu.services import Services
from congvu.store import outqueue

from .conftest import AN, BINH, DOMAIN, PASSWORD, THU, client, inbox, message, with_settings


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def auth_plain(s: smtplib.SMTP, user: str, password: str = PASSWORD) -> tuple[int, bytes]:
    """smtplib's login() is ASCII-only; our password is Vietnamese."""
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return s.docmd("AUTH", "PLAIN " + token)


def submit(port: int, user: str, sender: str, rcpts: list[str], data: bytes,
           implicit: bool = False) -> list[tuple[int, str]]:
    out = []
    cls = smtplib.SMTP_SSL if implicit else smtplib.SMTP
    kwargs = {"context": tls_context()} if implicit else {}
    with cls("127.0.0.1", port, timeout=30, **kwargs) as s:
        s.ehlo("laptop")
        if not implicit:
            s.starttls(context=tls_context())
            s.ehlo("laptop")
        out.append(auth_plain(s, user))
        out.append(s.mail(sender))
        for r in rcpts:
            out.append(s.rcpt(r))
        try:
            out.append(s.data(data))
        except smtplib.SMTPDataError as exc:
            out.append((exc.smtp_code, exc.smtp_error))
    return [(c, m.decode()) for c, m in out]


@pytest.fixture
async def strict(services: Services, org: Directory) -> SmtpServer:
    """Submission as in production: no plaintext AUTH, even from loopback."""
    svc = with_settings(services, allow_plaintext_loopback=False)
    srv = await start_smtp(svc, submission_port=0, submissions_port=0,
                           resolver=StaticResolver(), queue=False)
    yield srv
    await srv.stop()


async def test_auth_not_offered_before_tls(strict: SmtpServer) -> None:
    def run() -> tuple[dict, tuple[int, bytes], dict, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", strict.ports["submission"], timeout=30) as s:
            s.ehlo("laptop")
            before = dict(s.esmtp_features)
            refused = auth_plain(s, AN)
            s.starttls(context=tls_context())
            s.ehlo("laptop")
            after = dict(s.esmtp_features)
            return before, refused, after, auth_plain(s, AN)
    before, refused, after, ok = await client(run)
    assert "auth" not in before and "starttls" in before
    assert refused == (538, b"5.7.11 Encryption required for requested authentication mechanism")
    assert after["auth"].split() == ["PLAIN", "LOGIN"] and "starttls" not in after
    assert ok == (235, b"2.7.0 Authentication successful")


async def test_implicit_tls_submissions(strict: SmtpServer, services: Services) -> None:
    replies = await client(lambda: submit(strict.ports["submissions"], AN, AN, [BINH],
                                          message(sender=AN, to=BINH), implicit=True))
    assert [c for c, _ in replies] == [235, 250, 250, 250]
    raw = (await inbox(services, BINH))[0]["raw"]
    assert b"with ESMTPSA (TLSv1." in raw  # RFC 3848: TLS and AUTH


async def test_wrong_password_and_auth_required(smtp: SmtpServer, services: Services) -> None:
    def run() -> list[tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", smtp.ports["submission"], timeout=30) as s:
            s.ehlo("laptop")
            return [s.mail(AN), auth_plain(s, AN, "wrong password"), s.rcpt(BINH)]
    r = await client(run)
    assert r[0] == (530, b"5.7.0 Authentication required")
    assert r[1] == (535, b"5.7.8 Authentication credentials invalid")
    async with services.db.connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.fail' AND details->>'protocol'"
            " = 'smtp'") == 1


async def test_auth_login_with_aiosmtplib_and_local_delivery(smtp: SmtpServer,
                                                             services: Services) -> None:
    c = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.ports["submission"], start_tls=True,
                        tls_context=tls_context())
    await c.connect()
    await c.ehlo()
    assert "login" in c.server_auth_methods
    await c.auth_login(THU, PASSWORD)
    errors, _ = await c.sendmail(THU, [AN, f"nobody@{DOMAIN}"], message(sender=THU, to=AN))
    await c.quit()
    assert {k: (v.code, v.message) for k, v in errors.items()} == {
        f"nobody@{DOMAIN}": (550, "5.1.1 No such user here")}
    rows = await inbox(services, AN)
    assert len(rows) == 1
    head = rows[0]["raw"].split(b"\r\n\r\n")[0]
    assert b"with ESMTPSA" in head and b"Sender:" not in head


async def test_sender_must_be_login_or_alias(smtp: SmtpServer, org: Directory,
                                             services: Services) -> None:
    await org.add_alias(f"phongtt@{DOMAIN}", BINH, "test")
    port = smtp.ports["submission"]
    ok = await client(lambda: submit(port, BINH, f"phongtt@{DOMAIN}", [AN],
                                     message(sender=f"phongtt@{DOMAIN}")))
    assert [c for c, _ in ok] == [235, 250, 250, 250]
    bad = await client(lambda: submit(port, BINH, AN, [AN], message(sender=AN)))
    assert bad[1] == (550, "5.7.1 Sender address not allowed for this login")
    # right envelope, wrong From: refused after the data
    bad2 = await client(lambda: submit(port, BINH, BINH, [AN], message(sender=AN)))
    assert bad2[1][0] == 250 and bad2[3] == (550, "5.7.1 Sender address not allowed for this login")
    async with services.db.connection() as conn:
        rows = await conn.fetch("SELECT actor, target, details FROM audit_log"
                                " WHERE action = 'smtp.sender-denied' ORDER BY id")
    assert [(r["actor"], r["target"], r["details"]["field"]) for r in rows] == [
        (BINH, AN, "envelope"), (BINH, AN, "from")]
    assert len(await inbox(services, AN)) == 1


async def test_send_on_behalf_adds_sender(smtp: SmtpServer, services: Services) -> None:
    # thu holds mail-send-on-behalf for an (tests/conftest.py)
    r = await client(lambda: submit(smtp.ports["submission"], THU, AN, [BINH],
                                    message(sender=f"Nguyễn Văn An <{AN}>", to=BINH,
                                            extra=f"Sender: someone else <x@{DOMAIN}>\r\n")))
    assert [c for c, _ in r] == [235, 250, 250, 250]
    head = (await inbox(services, BINH))[0]["raw"].split(b"\r\n\r\n")[0]
    assert head.count(b"Sender:") == 1
    assert f"<{THU}>".encode() in head.split(b"Sender:")[1].split(b"\r\n")[0]
    async with services.db.connection() as conn:
        row = await conn.fetchrow("SELECT actor, target FROM audit_log"
                                  " WHERE action = 'smtp.on-behalf'")
    assert (row["actor"], row["target"]) == (THU, AN)


async def test_send_as_grant_needs_no_sender(smtp: SmtpServer, org: Directory,
                                             services: Services) -> None:
    await org.grant(AN, BINH, "mail-send-as", "test")
    r = await client(lambda: submit(smtp.ports["submission"], BINH, AN, [THU],
                                    message(sender=AN, to=THU)))
    assert [c for c, _ in r] == [235, 250, 250, 250]
    head = (await inbox(services, THU))[0]["raw"].split(b"\r\n\r\n")[0]
    assert b"\r\nSender:" not in head and not head.startswith(b"Sender:")
    await org.revoke(AN, BINH, "test")
    r = await client(lambda: submit(smtp.ports["submission"], BINH, AN, [THU],
                                    message(sender=AN, to=THU)))
    assert r[1][0] == 550


async def test_remote_recipients_are_queued_signed(smtp: SmtpServer, services: Services) -> None:
    from congvu.admin.mailcmds import create_dkim_key

    key = await create_dkim_key(services.db, DOMAIN, "sel1")
    data = (f"From: {AN}\r\nTo: partner@example.com\r\nSubject: hi\r\n\r\nbody\r\n").encode()
    r = await client(lambda: submit(smtp.ports["submission"], AN, AN,
                                    ["partner@example.com", "Other@Example.COM", BINH], data))
    assert [c for c, _ in r] == [235, 250, 250, 250, 250, 250]
    async with services.db.connection() as conn:
        queued = await outqueue.list_queue(conn)
    assert len(queued) == 1
    q = queued[0]
    assert q.mail_from == AN
    assert sorted(x.rcpt for x in q.recipients) == ["Other@example.com", "partner@example.com"]
    assert q.raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=hanoi.gov.vn;")
    assert key.selector == "sel1"
    # RFC 6409 §8: the MSA supplied Date and Message-ID
    assert b"\r\nDate: " in q.raw and b"\r\nMessage-ID: <" in q.raw
    # the local recipient got its copy at once, unsigned
    local = (await inbox(services, BINH))[0]["raw"]
    assert b"DKIM-Signature" not in local
