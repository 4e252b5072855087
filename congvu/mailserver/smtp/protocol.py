"""The SMTP connection: aiosmtpd's state machine with our EHLO, AUTH and DATA.

aiosmtpd checks command syntax and sequence; the handler
(:mod:`.policy`) decides. Three commands are ours:

- **EHLO** (RFC 5321 §4.1.1.1) advertises PIPELINING (RFC 2920), SIZE
  (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES
  (RFC 2034), STARTTLS (RFC 3207) where it applies and AUTH (RFC 4954) only
  on submission and only once TLS is on (or a loopback client in development).
- **AUTH** PLAIN (RFC 4616) and LOGIN awaits the directory's asynchronous
  ``authenticate`` (aiosmtpd's authenticator hook is synchronous).
- **DATA** reads the message in chunks rather than line by line, ends only on
  ``CRLF . CRLF`` (RFC 5321 §4.1.1.4, so a bare-LF dot cannot smuggle a
  second message), removes dot-stuffing (§4.5.2) and answers the size,
  line-length and header-count limits with their own codes — after reading
  to the end of the data, as §4.2.5 implies.

This subclass uses aiosmtpd internals (``_handle_client``, ``_set_rset_state``,
``_call_handler_hook``, ``_reader._buffer``, ``_tls_protocol``...): pyproject
pins aiosmtpd to 1.4.x and ``tests/mailserver/smtp/test_aiosmtpd_contract.py``
names any that a new version removes.
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import logging
import re
import ssl
from base64 import b64decode
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope

from ...config import Limits
from .errors import (LINE_TOO_LONG, LOCAL_ERROR, TOO_BIG, TOO_MANY_HEADERS, SmtpError,
                     reply)

log = logging.getLogger(__name__)

__all__ = ["SmtpConnection", "TxEnvelope", "check_content"]

_END = b"\r\n.\r\n"
_CHUNK = 256 * 1024


def check_content(data: bytes, limits: Limits) -> SmtpError | None:
    """Line length (RFC 5321 §4.5.3.1.6) and header count of received data."""
    if len(data) > limits.max_line_length and max(map(len, data.split(b"\n"))) > \
            limits.max_line_length + 1:  # + 1: the CR before LF
        return LINE_TOO_LONG
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    if head.count(b"\n") >= limits.max_header_count:
        fields = head.count(b"\n") + 1 - head.count(b"\n ") - head.count(b"\n\t")
        if fields > limits.max_header_count:
            return TOO_MANY_HEADERS
    return None


class TxEnvelope(Envelope):
    """aiosmtpd's envelope plus what the policy learned during MAIL and RCPT."""

    def __init__(self) -> None:
        super().__init__()
        self.sender = ""  # the reverse-path, "" for the null one
        self.declared_size = 0  # RFC 1870 SIZE parameter
        self.local_ids: set[int] = set()  # accounts to deliver to here
        self.remote_rcpts: list[str] = []  # addresses for the outbound queue
        self.send_mode = "self"  # self | send-as | on-behalf (submission)


_PLAIN_ADDR = re.compile(r'[^\s"\\<>()\[\],;:@]+@[^\s"\\<>()\[\],;:@]+$')
_BARE_REPLY = re.compile(r"^([245]\d\d)([ -])(?!\d\.\d{1,3}\.\d{1,3}(?: |$))")
# RFC 3463 §3.6: syntax errors are X.5.x; everything else gets the generic X.0.0.
_DEFAULT_ENHANCED = {"500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1",
                     "504": "5.5.4", "555": "5.5.4", "553": "5.1.3", "530": "5.7.0"}


def _is_loopback(peer: Any) -> bool:
    try:
        return ipaddress.ip_address(peer[0]).is_loopback
    except (TypeError, ValueError, IndexError):
        return False


class SmtpConnection(SMTP):
    """One client connection (MX or submission, plain or TLS)."""

    def __init__(self, handler: Any, *, hostname: str, limits: Limits, submission: bool,
                 tls_context: ssl.SSLContext | None, implicit_tls: bool,
                 allow_plaintext_loopback: bool,
                 on_close: Callable[[SmtpConnection], None] | None = None,
                 timeout: float = 300.0) -> None:
        # The stream limit bounds command lines; DATA is read in chunks.
        self.line_length_limit = 64 * 1024
        self.limits = limits
        self.submission = submission
        self.implicit_tls = implicit_tls
        self.allow_plaintext_loopback = allow_plaintext_loopback
        self.plaintext_auth_ok = False
        self.on_close = on_close
        self.busy = False  # inside DATA: stop() lets it finish
        self.refusal: str | None = None  # a 421 instead of the greeting (handler's choice)
        self.counted = False  # counted by the handler's per-IP connection limit
        self.peer_name_task: asyncio.Future[str | None] | None = None  # reverse DNS
        super().__init__(
            handler, data_size_limit=None, enable_SMTPUTF8=True, decode_data=False,
            hostname=hostname, ident="Congvu ESMTP",
            tls_context=None if implicit_tls else tls_context,
            auth_require_tls=True, timeout=timeout, loop=asyncio.get_running_loop(),
        )

    # -- connection -----------------------------------------------------------

    def _create_envelope(self) -> TxEnvelope:
        return TxEnvelope()

    @property
    def tls_active(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    @property
    def peer_ip(self) -> str:
        peer = self.session.peer if self.session else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None and self.transport is None
        super().connection_made(transport)
        if first and self.session is not None:
            self.plaintext_auth_ok = (self.allow_plaintext_loopback
                                      and _is_loopback(self.session.peer))
            connected = getattr(self.event_handler, "connected", None)
            if connected is not None:
                self.refusal = connected(self)

    async def _handle_client(self) -> None:
        if self.refusal is not None:
            # RFC 5321 §3.1: a server may answer the connection with 421.
            await SMTP.push(self, self.refusal)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if self.peer_name_task is not None and not self.peer_name_task.done():
                self.peer_name_task.cancel()
            disconnected = getattr(self.event_handler, "disconnected", None)
            if disconnected is not None:
                disconnected(self)
            if self.on_close is not None:
                self.on_close(self)

    async def peer_name(self, wait: float = 2.0) -> str | None:
        """The verified reverse DNS name of the client, looked up since it connected.

        Waits at most ``wait`` seconds more for a lookup still running; a
        name that is not known by then is left out of ``Received:``.
        """
        task = self.peer_name_task
        if task is None:
            return None
        if task.done():  # the usual case: it finished while the client talked
            if task.cancelled() or task.exception() is not None:
                return None
            return task.result()
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return None  # the lookup was cancelled, not this task
        except Exception:  # a resolver that failed oddly: no name
            log.debug("reverse DNS of %s failed", self.peer_ip, exc_info=True)
            return None

    async def push(self, status: Any) -> None:
        """Give aiosmtpd's own replies an enhanced status code (RFC 2034 §3)."""
        if isinstance(status, str) and self.session is not None and self.session.extended_smtp:
            m = _BARE_REPLY.match(status)
            if m:
                code = m.group(1)
                status = f"{code}{m.group(2)}{_DEFAULT_ENHANCED.get(code, code[0] + '.0.0')} " \
                    + status[4:]
        await super().push(status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser, with a fast path for the plain ``<local@domain>``.

        The general parser (``email._header_value_parser``) costs more than the
        rest of MAIL or RCPT together; quoted local parts, source routes and
        the like still go to it.
        """
        if arg and arg[0] == "<":
            end = arg.find(">")
            if end > 1 and _PLAIN_ADDR.match(arg, 1, end):
                return arg[1:end], arg[end + 1:]
        return super()._getaddr(arg)

    # -- EHLO -----------------------------------------------------------------

    async def smtp_EHLO(self, hostname: str) -> None:
        if not hostname:
            await self.push("501 5.5.4 Syntax: EHLO hostname")
            return
        self._set_rset_state()
        assert self.session is not None
        self.session.extended_smtp = True
        self.session.host_name = hostname
        lines = [self.hostname, "PIPELINING", f"SIZE {self.limits.max_message_bytes}",
                 "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]
        if self.tls_context is not None and not self.tls_active:
            lines.append("STARTTLS")
        if self.submission and (self.tls_active or self.plaintext_auth_ok):
            # RFC 4954 §4 / CLIENT-QUIRKS: AUTH is not offered before TLS.
            lines.append("AUTH PLAIN LOGIN")
        for i, text in enumerate(lines):
            await SMTP.push(self, ("250 " if i == len(lines) - 1 else "250-") + text)

    # -- AUTH (RFC 4954) ------------------------------------------------------

    async def smtp_AUTH(self, arg: str) -> None:
        assert self.session is not None and self.envelope is not None
        if not self.submission:
            await self.push("502 5.5.1 AUTH is not available on this port; use submission")
            return
        if await self.check_helo_needed("EHLO"):
            return
        if not self.session.extended_smtp:
            await self.push("503 5.5.1 Send EHLO first")
            return
        if not self.tls_active and not self.plaintext_auth_ok:
            await self.push("538 5.7.11 Encryption required for requested authentication "
                            "mechanism")
            return
        if self.session.authenticated:
            await self.push("503 5.5.1 Already authenticated")
            return
        if self.envelope.mail_from:
            await self.push("503 5.5.1 AUTH not permitted during a mail transaction")
            return
        args = (arg or "").split()
        if not args or len(args) > 2:
            await self.push("501 5.5.4 Syntax: AUTH mechanism [initial-response]")
            return
        mech = args[0].upper()
        creds = await (self._plain(args) if mech == "PLAIN" else
                       self._login(args) if mech == "LOGIN" else self._unknown())
        if creds is None:
            return
        login, password = creds
        status = await self.event_handler.authenticate(self, login, password, mech)
        await self.push(status)

    async def _unknown(self) -> None:
        await self.push("504 5.5.4 Unrecognized authentication type")

    async def _response(self, initial: str | None, challenge: str) -> bytes | None:
        if initial is not None:
            if initial == "=":
                return b""
            try:
                return b64decode(initial.encode(), validate=True)
            except (binascii.Error, ValueError):
                await self.push("501 5.5.2 Cannot decode base64")
                return None
        got = await self.challenge_auth(challenge)
        return None if got is MISSING else got  # challenge_auth replied already

    async def _plain(self, args: list[str]) -> tuple[str, str] | None:
        data = await self._response(args[1] if len(args) > 1 else None, "")
        if data is None:
            return None
        parts = data.split(b"\0")
        if len(parts) != 3:
            await self.push("501 5.5.2 Cannot split the PLAIN response")
            return None
        return await self._decode(parts[0], parts[1], parts[2])

    async def _login(self, args: list[str]) -> tuple[str, str] | None:
        user = await self._response(args[1] if len(args) > 1 else None, "Username:")
        if user is None:
            return None
        password = await self._response(None, "Password:")
        if password is None:
            return None
        return await self._decode(b"", user, password)

    async def _decode(self, authz: bytes, user: bytes, password: bytes) -> tuple[str, str] | None:
        try:
            authz_s, user_s, pass_s = (authz.decode(), user.decode(), password.decode())
        except UnicodeDecodeError:
            await self.push("501 5.5.2 Credentials must be UTF-8")
            return None
        if authz_s and authz_s.lower() != user_s.lower():
            # RFC 4616 §2: acting as another identity is not offered; delegates
            # log in as themselves and send with their grants.
            await self.push("535 5.7.8 Authorization identity not permitted")
            return None
        return user_s, pass_s

    # -- DATA -----------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if not self.envelope.mail_from:
            await self.push("503 5.5.1 Need MAIL command")
            return
        if not self.envelope.rcpt_tos:
            await self.push("554 5.5.1 No valid recipients")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self.busy = True
        try:
            content, error = await self._read_data()
            if error is None:
                error = check_content(content, self.limits)
            if error is not None:
                status = error.line
            else:
                self.envelope.content = self.envelope.original_content = content
                try:
                    status = await self._call_handler_hook("DATA")
                except SmtpError as exc:
                    status = exc.line
                except Exception:
                    log.exception("%s: error while accepting a message", self.peer_ip)
                    status = LOCAL_ERROR.line
        finally:
            self.busy = False
            self._set_post_data_state()
        await self.push(status)

    async def _read_data(self) -> tuple[bytes, SmtpError | None]:
        """Read to ``CRLF.CRLF``; return the unstuffed content (or the limit hit)."""
        limit = self.limits.max_message_bytes
        buf = bytearray(b"\r\n")  # the CRLF that ended the DATA line
        start = 0
        received = 0
        too_big = False
        while True:
            idx = buf.find(_END, start)
            if idx >= 0:
                break
            chunk = await self._reader.read(_CHUNK)
            if not chunk:
                raise ConnectionResetError("connection closed during DATA")
            received += len(chunk)
            if too_big:
                del buf[:-4]  # keep a tail in case the terminator straddles chunks
            buf += chunk
            start = max(len(buf) - len(chunk) - 4, 0)
            if not too_big and received > limit + limit // 16 + 64:
                # Over the limit even allowing for dot-stuffing: stop keeping it.
                too_big = True
        rest = bytes(buf[idx + len(_END):])
        if rest:  # pipelined commands after the data (RFC 2920 §3.1)
            self._reader._buffer[0:0] = rest  # type: ignore[attr-defined]
        if too_big:
            return b"", TOO_BIG
        # RFC 5321 §4.5.2: drop the first dot of every line that starts with one.
        content = bytes(buf[:idx + 2]).replace(b"\r\n.", b"\r\n")[2:]
        if len(content) > limit:
            return b"", TOO_BIG
        return content, None

    async def smtp_VRFY(self, arg: str) -> None:
        # RFC 5321 §3.5.3: 252 without revealing whether the address exists.
        await self.push(reply(252, "2.5.0", "Cannot VRFY user, but will accept message"))
