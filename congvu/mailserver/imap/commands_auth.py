"""Commands of any state and of the not-authenticated state (RFC 3501 §6.1, §6.2).

CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN, AUTHENTICATE PLAIN (RFC 4616,
with RFC 4959 SASL-IR), and the capability list itself: each extension is
advertised only when it is implemented and tested.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from . import commands as c
from . import responses as r
from .errors import ImapBad, ImapFatal, ImapNo
from .state import ANY_STATE, AUTHENTICATED, LOGOUT, NOT_AUTHENTICATED, SELECTED, allowed_in

log = logging.getLogger(__name__)

__all__ = ["AUTHENTICATED_CAPABILITIES", "AuthCommands"]

_BASE = ("IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE")

#: After login (RFC 3501 §7.2.1: the list may change after authentication).
AUTHENTICATED_CAPABILITIES: tuple[str, ...] = (
    *_BASE,
    "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE", "CREATE-SPECIAL-USE",
    "LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "CONDSTORE", "QRESYNC", "SORT",
    "QUOTA", "QUOTA=RES-STORAGE", "ACL", "RIGHTS=texk", "MULTIAPPEND", "STATUS=SIZE",
    "COMPRESS=DEFLATE",
)


class AuthCommands:
    """Mixin: see :class:`.session.Session` for the attributes used."""

    def capabilities(self: Any) -> tuple[str, ...]:
        if self.state in (AUTHENTICATED, SELECTED):
            caps = AUTHENTICATED_CAPABILITIES
            if self._deflate is not None:
                caps = tuple(x for x in caps if not x.startswith("COMPRESS="))
            return caps
        caps = _BASE
        if not self.tls_active and self.services.tls is not None:
            caps += ("STARTTLS",)
        if self.login_disabled:
            caps += ("LOGINDISABLED",)  # RFC 3501 §6.2.3
        else:
            caps += ("AUTH=PLAIN",)
        return caps

    # -- any state -----------------------------------------------------------------

    @allowed_in(*ANY_STATE)
    async def do_capability(self: Any, cmd: c.Capability) -> None:
        self.send(r.capability(self.capabilities()))
        self.ok(cmd.tag, "CAPABILITY completed")

    @allowed_in(*ANY_STATE)
    async def do_noop(self: Any, cmd: c.Noop) -> None:
        # RFC 3501 §6.1.2: NOOP is the classic way to poll for updates.
        await self.report_updates(allow_expunge=True, force=True)
        self.ok(cmd.tag, "NOOP completed")

    @allowed_in(*ANY_STATE)
    async def do_logout(self: Any, cmd: c.Logout) -> None:
        self.send(r.bye("Congvu IMAP logging out"))
        self.ok(cmd.tag, "LOGOUT completed")
        self.deselect()
        self.state = LOGOUT

    # -- not authenticated ---------------------------------------------------------

    @allowed_in(NOT_AUTHENTICATED)
    async def do_starttls(self: Any, cmd: c.StartTLS) -> None:
        if self.tls_active or self.services.tls is None:
            raise ImapBad("TLS is not available here (already active?)")
        if self._events or not self.framer.idle:
            # RFC 3501 §6.2.1 / RFC 2595 §3.1: nothing may be pipelined after STARTTLS.
            raise ImapFatal("Data sent after STARTTLS before the TLS negotiation")
        self.ok(cmd.tag, "Begin TLS negotiation now")
        await self.flush()
        await self.writer.start_tls(self.services.tls)
        self.tls_active = True

    @allowed_in(NOT_AUTHENTICATED)
    async def do_login(self: Any, cmd: c.Login) -> None:
        if self.login_disabled:
            raise ImapNo("Use STARTTLS (or port 993) before logging in", code="PRIVACYREQUIRED")
        await self._authenticate(cmd.tag, cmd.username, cmd.password)

    @allowed_in(NOT_AUTHENTICATED)
    async def do_authenticate(self: Any, cmd: c.Authenticate) -> None:
        if cmd.mechanism != "PLAIN":
            raise ImapNo(f"Unsupported mechanism {cmd.mechanism}", code="CANNOT")
        if self.login_disabled:
            raise ImapNo("Use STARTTLS (or port 993) before authenticating",
                         code="PRIVACYREQUIRED")
        response = cmd.initial_response
        if response is None:
            # RFC 3501 §6.2.2: empty challenge, the client answers with base64.
            self.send(r.continuation(b""))
            await self.flush()
            line = (await self.next_line()).rstrip(b"\r\n")
            if line == b"*":
                raise ImapBad("Authentication cancelled")
            try:
                response = base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                raise ImapBad("Invalid base64 in SASL response") from None
        # RFC 4616 §2: [authzid] NUL authcid NUL passwd
        parts = response.split(b"\x00")
        if len(parts) != 3:
            raise ImapBad("Malformed PLAIN response")
        try:
            authzid, authcid, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            raise ImapBad("PLAIN response is not UTF-8") from None
        if authzid and authzid.lower() != authcid.lower():
            # Delegation works with one's own login (CLIENT-QUIRKS): no proxy authorization.
            raise ImapNo("Authorization identity not permitted", code="AUTHORIZATIONFAILED")
        await self._authenticate(cmd.tag, authcid, password)

    async def _authenticate(self: Any, tag: str, user: str, password: str) -> None:
        result = await self.services.auth.authenticate(user, password, self.remote_ip, "imap")
        if not result.ok:
            if result.reason == "throttled":
                raise ImapNo("Too many failed attempts; try later", code="UNAVAILABLE")
            raise ImapNo("Invalid credentials", code="AUTHENTICATIONFAILED")
        self.account = result.account
        self.state = AUTHENTICATED
        limits = self.services.settings.limits
        self.framer.max_literal = limits.imap_max_literal
        self.framer.max_command = limits.imap_max_literal + 4 * self.framer.max_line
        # RFC 3501 §7.2.1: capabilities may change after login; say so.
        self.ok(tag, "Logged in", "CAPABILITY " + " ".join(self.capabilities()))
