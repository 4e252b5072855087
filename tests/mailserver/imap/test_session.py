"""Any-state and not-authenticated commands: greeting, CAPABILITY, LOGIN,
AUTHENTICATE PLAIN (SASL-IR), STARTTLS, implicit TLS, LOGOUT, state gates."""

from __future__ import annotations

import base64
import imaplib
import ssl
from dataclasses import replace

from congvu.mailserver.imap.service import start_imap
from congvu.services import Services
from tests.conftest import PASSWORD

from .conftest import AN, client
from .transcript import Raw, ok


async def test_greeting_and_capability_before_login(imap):
    c = await Raw.connect(imap.port)
    assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    lines = await c.cmd("CAPABILITY")
    caps = lines[0].split()
    assert b"STARTTLS" in caps and b"AUTH=PLAIN" in caps and b"SASL-IR" in caps
    assert b"IDLE" in caps and b"LITERAL+" in caps and b"ID" in caps
    assert b"UIDPLUS" not in caps  # announced after login only
    assert ok(lines)
    await c.close()


async def test_login_with_literal_and_vietnamese_password(imap):
    c = await Raw.connect(imap.port)
    pw = PASSWORD.encode()
    await c.send(b"a1 LOGIN an.nv@hanoi.gov.vn {%d}\r\n" % len(pw))
    assert (await c.line()).startswith(b"+ ")
    await c.send(pw + b"\r\n")
    lines = await c.until("a1")
    assert lines[-1].startswith(b"a1 OK [CAPABILITY IMAP4rev1")
    assert b"UIDPLUS" in lines[-1]
    await c.close()


async def test_login_failure_is_no_authenticationfailed(imap):
    c = await Raw.connect(imap.port)
    lines = await c.cmd('LOGIN an.nv@hanoi.gov.vn "wrong"')
    assert lines[-1].split(b" ", 1)[1].startswith(b"NO [AUTHENTICATIONFAILED]")
    assert ok(await c.cmd("NOOP"))  # the connection lives on
    await c.close()


async def test_authenticate_plain_with_and_without_initial_response(imap):
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    await c.close()
    c = await Raw.connect(imap.port)
    await c.send(b"a AUTHENTICATE PLAIN\r\n")
    assert await c.line() == b"+ \r\n"
    await c.send(base64.b64encode(f"\0{AN}\0{PASSWORD}".encode()) + b"\r\n")
    assert (await c.until("a"))[-1].startswith(b"a OK")
    await c.close()
    c = await Raw.connect(imap.port)
    await c.send(b"b AUTHENTICATE PLAIN\r\n")
    await c.line()
    await c.send(b"*\r\n")
    assert (await c.until("b"))[-1].startswith(b"b BAD")
    await c.close()


async def test_logindisabled_without_tls_unless_loopback_allowed(services: Services, org):
    strict = replace(services, settings=replace(services.settings,
                                                allow_plaintext_loopback=False))
    srv = await start_imap(strict, port=0, tls_port=0, retention=False)
    try:
        c = await Raw.connect(srv.port)
        caps = (await c.cmd("CAPABILITY"))[0]
        assert b"LOGINDISABLED" in caps and b"AUTH=PLAIN" not in caps
        lines = await c.cmd(f'LOGIN {AN} "x"')
        assert lines[-1].split(b" ", 1)[1].startswith(b"NO [PRIVACYREQUIRED]")
        await c.close()

        def starttls_then_login() -> list[bytes]:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            m = imaplib.IMAP4("127.0.0.1", srv.port, timeout=30)
            m.starttls(ctx)
            caps = list(m.capabilities)
            m.authenticate("PLAIN", lambda _: f"\0{AN}\0{PASSWORD}".encode())
            m.logout()
            return caps

        caps_after = await client(starttls_then_login)
        assert "AUTH=PLAIN" in caps_after and "STARTTLS" not in caps_after

        def implicit_tls() -> str:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            m = imaplib.IMAP4_SSL("127.0.0.1", srv.tls_port, ssl_context=ctx, timeout=30)
            typ, _ = m.authenticate("PLAIN", lambda _: f"\0{AN}\0{PASSWORD}".encode())
            m.logout()
            return typ

        assert await client(implicit_tls) == "OK"
    finally:
        await srv.stop()


async def test_wrong_state_and_unknown_commands(imap):
    c = await Raw.connect(imap.port)
    lines = await c.cmd("SELECT INBOX")
    assert lines[-1].split(b" ", 1)[1].startswith(b"BAD [CLIENTBUG]")
    lines = await c.cmd("FETCH 1 FLAGS")
    assert lines[-1].split(b" ", 1)[1].startswith(b"BAD")
    lines = await c.cmd("FROBNICATE")
    assert lines[-1].split(b" ", 1)[1].startswith(b"BAD")
    assert ok(await c.login(AN))
    lines = await c.cmd("FETCH 1 FLAGS")  # authenticated, not selected
    assert lines[-1].split(b" ", 1)[1].startswith(b"BAD [CLIENTBUG]")
    lines = await c.cmd("LOGIN a b")  # already logged in
    assert lines[-1].split(b" ", 1)[1].startswith(b"BAD")
    await c.close()


async def test_id_noop_logout(imap):
    c = await Raw.connect(imap.port)
    lines = await c.cmd('ID ("name" "test")')
    assert lines[0].startswith(b'* ID ("name" "Congvu"')
    assert ok(await c.cmd("NOOP"))
    lines = await c.cmd("LOGOUT")
    assert lines[0].startswith(b"* BYE") and ok(lines)
    await c.close()
