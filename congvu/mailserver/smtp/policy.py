"""SMTP policy: who may send what to whom, and what happens to accepted mail.

One :class:`SmtpPolicy` per listener kind; the connection code
(:mod:`.protocol`) calls its ``handle_*`` hooks and sends back the reply line
each returns. Refusals are :class:`~.errors.SmtpError` values that carry
their reply.

- **MX** (RFC 5321): no AUTH; recipients must be ours — anything else is
  refused (``550 5.7.1``), so the MX can never relay. Accepted mail is checked
  for SPF/DKIM/DMARC (:mod:`.authcheck`), gets ``Received:`` and
  ``Authentication-Results:``, and is delivered.
- **Submission** (RFC 6409): AUTH first; the envelope sender and every
  ``From:`` address must be the login, one of its aliases, or an owner whose
  ``mail-send-as``/``mail-send-on-behalf`` grant the login holds (the latter
  adds ``Sender:``). Local recipients are delivered at once; remote ones go
  to the outbound queue, DKIM-signed, in the same transaction.

``250`` after DATA is returned only after the transaction committed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ...config import ConfigError
from ...directory.addresses import normalize_address, normalize_domain
from ...services import Services
from ...store import accounts as accounts_repo
from ...store import audit as audit_repo
from ...store import delivery
from ...store import outqueue
from ...store.accounts import Account
from ...store.errors import Invalid
from ..mime import normalize_crlf, parse_message
from . import errors as E
from .authcheck import InboundChecker
from .dkimsign import sign
from .dnsresolve import Resolver, reverse_name
from .errors import SmtpError
from .headers import (add_missing_fields, from_addresses, received, set_sender,
                      strip_auth_results)
from .protocol import SmtpConnection, TxEnvelope
from .ratelimit import ClientLimiter

log = logging.getLogger(__name__)

__all__ = ["SmtpPolicy"]

# Messages larger than this are parsed in a worker thread.
_PARSE_INLINE_MAX = 256 * 1024

#: Run for local recipients inside the delivery transaction once the message
#: is stored, each under a savepoint (a failing hook never costs the message;
#: ``250`` still follows the commit). A hook has ``matches(raw) -> bool`` and
#: ``async run(conn, services, sender, raw, account_ids, trusted)``; the
#: calendar registers its iMIP REPLY hook here (congvu.calendar.imip).
DELIVERY_HOOKS: list[Any] = []


def _size_param(options: list[str]) -> int:
    for opt in options:
        key, _, value = opt.partition("=")
        if key.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


def _protocol(conn: SmtpConnection, env: TxEnvelope, authenticated: bool) -> str:
    """RFC 3848 / RFC 6531 §3.7.4.2 ``with`` keywords."""
    base = "UTF8SMTP" if env.smtp_utf8 else "ESMTP"
    return base + ("S" if conn.tls_active else "") + ("A" if authenticated else "")


def _tls_info(conn: SmtpConnection) -> str | None:
    if not conn.tls_active or conn.transport is None:
        return None
    ssl_obj = conn.transport.get_extra_info("ssl_object")
    if ssl_obj is None:
        return None
    cipher = ssl_obj.cipher()
    return f"{ssl_obj.version()} {cipher[0]}" if cipher else ssl_obj.version()


class SmtpPolicy:
    """Handler hooks for aiosmtpd, for an MX (``submission=False``) or an MSA."""

    def __init__(self, services: Services, *, submission: bool,
                 checker: InboundChecker | None = None,
                 wake_queue: Callable[[], None] | None = None,
                 dmarc_reject: str = "reject", resolver: Resolver | None = None,
                 limiter: ClientLimiter | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.submission = submission
        self.checker = checker
        self.wake_queue = wake_queue
        self.dmarc_reject = dmarc_reject  # "reject" or "junk"
        self.resolver = resolver  # reverse DNS of clients, for Received:
        self.limiter = limiter  # per-IP limits (the MX)
        self.postmaster: str | None = None
        if self.settings.postmaster:
            try:
                self.postmaster = normalize_address(self.settings.postmaster)
            except Invalid as exc:
                raise ConfigError(f"postmaster: {exc}") from None

    # -- connection -------------------------------------------------------------

    def connected(self, conn: SmtpConnection) -> str | None:
        """A new client: count it, start its reverse DNS lookup; a 421 line to refuse."""
        ip = conn.peer_ip
        if self.limiter is not None:
            refusal = self.limiter.connect(ip)
            if refusal is not None:
                log.info("%s: %s", ip, refusal.text)
                return refusal.line
            conn.counted = True
        if self.resolver is not None and ip:
            conn.peer_name_task = asyncio.ensure_future(reverse_name(self.resolver, ip))
        return None

    def disconnected(self, conn: SmtpConnection) -> None:
        if self.limiter is not None and conn.counted:
            conn.counted = False
            self.limiter.disconnect(conn.peer_ip)

    # -- errors ---------------------------------------------------------------

    async def handle_exception(self, error: Exception) -> str:
        """The one catch-all: log it, answer 451 4.3.0, keep the connection."""
        if isinstance(error, SmtpError):
            return error.line
        log.error("SMTP command failed", exc_info=error)
        return E.LOCAL_ERROR.line

    # -- AUTH -------------------------------------------------------------------

    async def authenticate(self, conn: SmtpConnection, login: str, password: str,
                           mechanism: str) -> str:
        result = await self.services.auth.authenticate(login, password, conn.peer_ip or None,
                                                       "smtp")
        if result.ok:
            assert conn.session is not None
            conn.session.authenticated = True
            conn.session.auth_data = result.account  # type: ignore[assignment]
            return E.reply(235, "2.7.0", "Authentication successful")
        if result.reason == "throttled":
            # RFC 4954 §6: temporary authentication failure
            return E.reply(454, "4.7.0", "Too many failed logins, try again later")
        return E.reply(535, "5.7.8", "Authentication credentials invalid")

    # -- MAIL -------------------------------------------------------------------

    async def handle_MAIL(self, server: SmtpConnection, session: Any, envelope: TxEnvelope,
                          address: str, options: list[str]) -> str:
        try:
            size = _size_param(options)
            if size > self.settings.limits.max_message_bytes:
                raise E.TOO_BIG  # RFC 1870 §6.1
            sender = "" if address == "<>" else address
            if self.limiter is not None:
                refusal = self.limiter.message(server.peer_ip)
                if refusal is not None:
                    raise refusal
            if self.submission:
                account = self._account(session)
                if not sender:
                    await self._deny(server, account, "<>", "envelope")
                mode = await self._sender_mode(account, sender)
                if mode is None:
                    await self._deny(server, account, sender, "envelope")
            envelope.sender = sender
            envelope.declared_size = size
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            return E.SENDER_OK
        except SmtpError as exc:
            return exc.line

    def _account(self, session: Any) -> Account:
        if not session.authenticated or not isinstance(session.auth_data, Account):
            raise E.AUTH_REQUIRED  # RFC 6409 §4.3
        return session.auth_data

    async def _sender_mode(self, account: Account, address: str) -> tuple[str, Account] | None:
        """How ``account`` may use ``address`` as a sender, or None."""
        try:
            addr = normalize_address(address)
        except Invalid:
            return None
        if addr == account.address or addr in account.aliases:
            return "self", account
        async with self.services.db.connection() as conn:
            owner = await accounts_repo.find(conn, addr)
            if owner is None or not owner.enabled:
                return None
            if owner.id == account.id:
                return "self", account
            scopes = await self.services.authz.scopes(account.id, owner.id, conn)
        if "mail-send-as" in scopes:
            return "send-as", owner
        if "mail-send-on-behalf" in scopes:
            return "on-behalf", owner
        return None

    async def _deny(self, conn: SmtpConnection, account: Account, address: str,
                    field: str) -> None:
        async with self.services.db.connection() as db:
            await audit_repo.record(db, account.address, "smtp.sender-denied", address,
                                    {"field": field}, conn.peer_ip or None)
        raise E.SENDER_DENIED

    # -- RCPT -------------------------------------------------------------------

    async def handle_RCPT(self, server: SmtpConnection, session: Any, envelope: TxEnvelope,
                          address: str, options: list[str]) -> str:
        try:
            if self.submission:
                self._account(session)
            if len(envelope.rcpt_tos) >= self.settings.limits.max_recipients:
                raise E.TOO_MANY_RCPTS
            local, _, domain = address.rpartition("@")
            # RFC 5321 §4.5.1: <postmaster> without a domain must be accepted
            # (any case, §4.1.1.3); so must postmaster@ every hosted domain.
            bare_postmaster = address.lower() == "postmaster"
            if not bare_postmaster:
                try:
                    norm = normalize_address(address)
                    domain = normalize_domain(domain)
                except Invalid:
                    raise SmtpError(553, "5.1.3", "Malformed recipient address") from None
            async with self.services.db.connection() as conn:
                if bare_postmaster:
                    found = await delivery.postmaster(conn, self.postmaster)
                else:
                    found = await delivery.resolve_address(
                        conn, norm, self.settings.default_quota_bytes, envelope.declared_size)
                    if found.kind == "unknown" and local.lower() == "postmaster":
                        found = await delivery.postmaster(conn, self.postmaster)
                if found.kind == "postmaster":
                    if not found.account_ids:
                        log.error("mail for postmaster and no postmaster: set 'postmaster' "
                                  "or give an account the admin role")
                        raise E.NO_SUCH_USER
                    envelope.local_ids.update(found.account_ids)  # never held back by quota
                elif found.kind == "foreign":
                    if not self.submission:
                        raise E.RELAY_DENIED  # RFC 5321 §3.6.2: never an open relay
                    envelope.remote_rcpts.append(f"{local}@{domain}")
                elif found.kind == "unknown":
                    raise E.NO_SUCH_USER
                elif found.kind == "group":
                    if not found.account_ids:
                        raise SmtpError(550, "5.2.1", "Group has no active members")
                    # Group notices are not held back by one full mailbox:
                    # members over quota get it in grace.
                    envelope.local_ids.update(found.account_ids)
                else:
                    if not found.enabled:
                        raise E.DISABLED
                    if found.full:
                        raise E.MAILBOX_FULL
                    envelope.local_ids.update(found.account_ids)
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            return E.RCPT_OK
        except SmtpError as exc:
            return exc.line

    # -- DATA -------------------------------------------------------------------

    async def handle_DATA(self, server: SmtpConnection, session: Any,
                          envelope: TxEnvelope) -> str:
        raw = normalize_crlf(bytes(envelope.original_content or b""))
        now = self.services.now()
        queue_id = secrets.token_hex(8)
        hostname = self.settings.hostname
        rcpt_note = envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else None
        mailbox, special, audit = "INBOX", None, None
        if self.submission:
            account = self._account(session)
            raw, audit = await self._check_from(server, account, raw)
            raw = add_missing_fields(raw, hostname, now)
            trace = received(helo=session.host_name or "", ip=server.peer_ip,
                             hostname=hostname, protocol=_protocol(server, envelope, True),
                             queue_id=queue_id, now=now, for_rcpt=rcpt_note,
                             tls=_tls_info(server), rdns=await server.peer_name())
            raw = trace + raw
        else:
            raw = strip_auth_results(raw, hostname)
            results = b""
            if self.checker is not None:
                verdict = await self.checker.check(raw, server.peer_ip, session.host_name or "",
                                                   envelope.sender)
                results = verdict.header(hostname)
                if verdict.quarantine:
                    if verdict.reject and self.dmarc_reject == "reject":
                        raise E.DMARC_REJECT  # RFC 7489 §6.3 p=reject
                    mailbox, special = "Junk", "\\Junk"
            trace = received(helo=session.host_name or "", ip=server.peer_ip,
                             hostname=hostname, protocol=_protocol(server, envelope, False),
                             queue_id=queue_id, now=now, for_rcpt=rcpt_note,
                             tls=_tls_info(server), rdns=await server.peer_name())
            raw = trace + results + raw
        await self._store(envelope, raw, now, mailbox, special,
                          self._account(session) if self.submission else None, audit)
        return E.reply(250, "2.0.0", f"OK queued as {queue_id}")

    async def _check_from(self, conn: SmtpConnection, account: Account,
                          raw: bytes) -> tuple[bytes, tuple[str, str] | None]:
        """The ``From:`` rule of submission; returns the message and what to audit."""
        froms = from_addresses(raw)
        if not froms:
            raise SmtpError(550, "5.6.0", "Message has no From: header field")
        on_behalf_of = None
        audit = None
        for addr in froms:
            mode = await self._sender_mode(account, addr)
            if mode is None:
                await self._deny(conn, account, addr, "from")
                raise AssertionError("unreachable")
            if mode[0] == "on-behalf":
                on_behalf_of = mode[1]
            if mode[0] != "self":
                audit = (f"smtp.{mode[0]}", mode[1].address)
        if on_behalf_of is not None:
            # RFC 5322 §3.6.2: Sender names the agent who actually sent it.
            raw = set_sender(raw, account.display_name, account.address)
        return raw, audit

    async def _store(self, env: TxEnvelope, raw: bytes, now: datetime, mailbox: str,
                     special: str | None, account: Account | None,
                     audit: tuple[str, str] | None) -> None:
        signed = await self._dkim_sign(raw) if env.remote_rcpts else raw
        parsed = None
        if env.local_ids:
            parsed = (parse_message(raw) if len(raw) <= _PARSE_INLINE_MAX
                      else await asyncio.to_thread(parse_message, raw))
        hooks = [h for h in DELIVERY_HOOKS if env.local_ids and h.matches(raw)]
        async with self.services.db.connection() as conn:
            if env.remote_rcpts or audit is not None or hooks:
                async with conn.transaction():
                    await self._write(conn, env, raw, signed, parsed, now, mailbox, special,
                                      account, audit)
                    for hook in hooks:
                        try:
                            async with conn.transaction():  # a savepoint
                                await hook.run(conn, self.services, env.sender, raw,
                                               sorted(env.local_ids), mailbox != "Junk")
                        except Exception:
                            log.exception("delivery hook %s failed", getattr(hook, "name", hook))
            else:
                await self._write(conn, env, raw, signed, parsed, now, mailbox, special,
                                  account, audit)
        if env.remote_rcpts and self.wake_queue is not None:
            self.wake_queue()

    async def _write(self, conn: Any, env: TxEnvelope, raw: bytes, signed: bytes, parsed: Any,
                     now: datetime, mailbox: str, special: str | None, account: Account | None,
                     audit: tuple[str, str] | None) -> None:
        if parsed is not None:
            await delivery.deliver(conn, parsed, raw, sorted(env.local_ids),
                                   internal_date=now, mailbox=mailbox, special_use=special)
        if env.remote_rcpts:
            await outqueue.enqueue(
                conn, account_id=account.id if account else None, mail_from=env.sender,
                recipients=env.remote_rcpts, raw=signed, smtputf8=env.smtp_utf8, now=now,
                lifetime=timedelta(hours=self.settings.queue_lifetime_hours))
        if audit is not None and account is not None:
            await audit_repo.record(conn, account.address, audit[0], audit[1],
                                    {"recipients": len(env.rcpt_tos)})

    async def _dkim_sign(self, raw: bytes) -> bytes:
        """RFC 6376: sign with the key of the From: domain (d= aligns for DMARC)."""
        froms = from_addresses(raw)
        domain = froms[0].rpartition("@")[2] if froms else ""
        async with self.services.db.connection() as conn:
            key = await outqueue.active_dkim_key(conn, domain)
        if key is None:
            return raw
        return await asyncio.to_thread(sign, raw, key.domain, key.selector, key.private_key)
