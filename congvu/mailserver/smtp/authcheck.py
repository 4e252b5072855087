"""Inbound sender authentication on the MX: SPF, DKIM, DMARC, Authentication-Results.

- SPF (RFC 7208) with pyspf, DKIM verification (RFC 6376) with dkimpy; both
  are synchronous libraries and every DNS question they ask goes to the
  injectable :class:`~.dnsresolve.Resolver`: the loop never waits for DNS and
  tests need no network. pyspf runs on the event loop once the answers it
  needs are known (fetched asynchronously, or in the resolver's TTL cache):
  evaluating a record costs microseconds, a thread hop per question far
  more. dkimpy (RSA, body hashes) runs in a worker thread whose DNS
  questions are sent back to the loop (``run_coroutine_threadsafe``).
- DMARC (RFC 7489) is evaluated here: the policy record of the ``From:``
  domain (or its organizational domain), identifier alignment of the SPF
  and DKIM passes (§3.1), and the requested policy (§6.3 ``p``/``sp``/``pct``).
- The verdict is rendered as an ``Authentication-Results`` field (RFC 8601).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

import dkim
import spf

from .dnsresolve import DnsTempError, Resolver

log = logging.getLogger(__name__)

__all__ = ["AuthVerdict", "InboundChecker", "organizational_domain", "parse_dmarc"]

_DNS_TIMEOUT = 20.0
# pyspf runs on the event loop at most this many times per check (each run
# learns one more DNS answer); a record needing more goes to a worker thread.
_SPF_INLINE_ROUNDS = 12


class _CacheMiss(Exception):
    """An SPF lookup whose answer is not known yet (see ``_spf_on_loop``)."""


class _TooManyRounds(Exception):
    pass

# pyspf asks DNS through a module-level function. Route it through the
# resolver of the check running in this thread (a thread-local), and fall
# back to pyspf's own lookup for any other use of the library.
_local = threading.local()
_pyspf_lookup = spf.DNSLookup


def _spf_dns(name: str, qtype: str, strict: Any = True, timeout: Any = 20) -> list[Any]:
    lookup = getattr(_local, "lookup", None)
    if lookup is None:
        return _pyspf_lookup(name, qtype, strict, timeout)
    try:
        values = lookup(name, qtype)
    except DnsTempError as exc:
        raise spf.TempError(f"DNS {exc}") from None
    out = []
    for v in values:
        if qtype in ("TXT", "SPF"):
            v = (v,)  # pyspf joins a record's character-strings itself
        out.append(((name, qtype), v))
    return out


spf.DNSLookup = _spf_dns


# Second-level labels under which registrations are made in many ccTLDs
# (gov.vn, com.vn, co.uk, ...). Without the Public Suffix List this is the
# heuristic for the organizational domain (RFC 7489 §3.2).
_SECOND_LEVEL = frozenset({"com", "gov", "edu", "org", "net", "ac", "co", "int", "mil",
                           "health", "info", "biz", "name", "pro"})


def organizational_domain(domain: str) -> str:
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def parse_dmarc(text: str) -> dict[str, str] | None:
    """Tags of a DMARC record (RFC 7489 §6.3), or None if it is not one."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip()
    if tags.get("v") != "DMARC1" or ("p" not in tags and "rua" not in tags):
        return None
    return tags


@dataclass
class AuthVerdict:
    spf: str = "none"
    spf_domain: str = ""
    spf_scope: str = "mailfrom"
    dkim: list[tuple[str, str, str]] = field(default_factory=list)  # (result, d, s)
    dmarc: str = "none"
    dmarc_policy: str | None = None
    from_domain: str = ""
    policy_applies: bool = False  # pct sampling chose to apply the policy

    @property
    def reject(self) -> bool:
        return self.dmarc == "fail" and self.policy_applies and self.dmarc_policy == "reject"

    @property
    def quarantine(self) -> bool:
        return (self.dmarc == "fail" and self.policy_applies
                and self.dmarc_policy in ("quarantine", "reject"))

    def header(self, authserv_id: str) -> bytes:
        """The ``Authentication-Results`` field (RFC 8601 §2.2), CRLF-terminated."""
        parts = [f"spf={self.spf} smtp.{self.spf_scope}={self.spf_domain or 'unknown'}"]
        if self.dkim:
            for result, d, s in self.dkim:
                parts.append(f"dkim={result} header.d={d or 'unknown'} header.s={s or 'unknown'}")
        else:
            parts.append("dkim=none")
        policy = f" (p={self.dmarc_policy})" if self.dmarc_policy else ""
        parts.append(f"dmarc={self.dmarc}{policy} header.from={self.from_domain or 'unknown'}")
        text = f"Authentication-Results: {authserv_id};\r\n\t" + ";\r\n\t".join(parts) + "\r\n"
        return text.encode("utf-8")


_DKIM_FIELD = re.compile(rb"(?im)^dkim-signature[ \t]*:")
_FROM_RE = re.compile(rb"^from[ \t]*:(.*(?:\r\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def header_from_domains(raw: bytes) -> list[str]:
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[:end + 2]
    values = [m.group(1).decode("utf-8", "replace").replace("\r\n", "")
              for m in _FROM_RE.finditer(head)]
    domains = []
    for _name, addr in getaddresses(values):
        if "@" in addr:
            domains.append(addr.rpartition("@")[2].lower().rstrip(">"))
    return domains


class InboundChecker:
    """SPF + DKIM + DMARC for one received message; DNS via ``resolver``."""

    def __init__(self, resolver: Resolver, *, rand: Callable[[], float] = random.random) -> None:
        self.resolver = resolver
        self.rand = rand

    def _blocking_lookup(self, loop: asyncio.AbstractEventLoop) -> Callable[[str, str], list[Any]]:
        def lookup(name: str, rdtype: str) -> list[Any]:
            fut = asyncio.run_coroutine_threadsafe(self.resolver.query(name, rdtype), loop)
            return fut.result(_DNS_TIMEOUT)
        return lookup

    async def check(self, raw: bytes, ip: str, helo: str, mail_from: str) -> AuthVerdict:
        loop = asyncio.get_running_loop()
        lookup = self._blocking_lookup(loop)
        verdict = AuthVerdict()
        # Only when there is work for the libraries: no DKIM-Signature field,
        # or no SPF record at all, is decided here. pyspf runs on the loop
        # (see _spf_on_loop); dkimpy in a worker thread.
        end = raw.find(b"\r\n\r\n")
        signed = _DKIM_FIELD.search(raw, 0, end + 2 if end >= 0 else len(raw)) is not None
        spf_task = self._spf_async(lookup, ip, helo, mail_from)
        if signed:
            (verdict.spf, verdict.spf_domain, verdict.spf_scope), verdict.dkim = \
                await asyncio.gather(spf_task, asyncio.to_thread(self._dkim, lookup, raw))
        else:
            verdict.spf, verdict.spf_domain, verdict.spf_scope = await spf_task
        await self._dmarc(raw, verdict)
        return verdict

    async def _spf_async(self, lookup: Callable[[str, str], list[Any]], ip: str, helo: str,
                         mail_from: str) -> tuple[str, str, str]:
        scope, identity = ("mailfrom", mail_from) if mail_from else ("helo", helo)
        domain = identity.rpartition("@")[2].lower().rstrip(".")
        if not ip or not domain:
            return "none", domain, scope
        try:
            records = await self.resolver.query(domain, "TXT")
        except DnsTempError:
            return "temperror", domain, scope
        if not any(r.lower().startswith(b"v=spf1") and (len(r) == 6 or r[6:7] == b" ")
                   for r in records):
            return "none", domain, scope  # RFC 7208 §4.5: no SPF record
        try:
            async with asyncio.timeout(_DNS_TIMEOUT):  # RFC 7208 §4.6.4: bounded
                return await self._spf_on_loop(ip, helo, mail_from, {(domain, "TXT"): records})
        except TimeoutError:
            return "temperror", domain, scope
        except _TooManyRounds:
            return await asyncio.to_thread(self._spf, lookup, ip, helo, mail_from)

    async def _spf_on_loop(self, ip: str, helo: str, mail_from: str,
                           known: dict[tuple[str, str], Any]) -> tuple[str, str, str]:
        """Run pyspf on the event loop with DNS answers that are already known.

        pyspf is synchronous and, given its DNS answers, costs tens of
        microseconds: far less than a hop to a worker thread and back for
        every query it asks. Its lookups are answered from ``known`` (answers
        fetched for this check) or the resolver's cache (``peek``); the first
        question that is neither is recorded and aborts the run, the answers
        are fetched asynchronously, and pyspf runs again from the start — it
        is deterministic given the same answers. Records needing very many
        lookups go to the thread path instead.
        """
        peek = getattr(self.resolver, "peek", None)
        for _round in range(_SPF_INLINE_ROUNDS):
            missing: list[tuple[str, str]] = []

            def lookup(name: str, rdtype: str,
                       missing: list[tuple[str, str]] = missing) -> list[Any]:
                key = (name.lower().rstrip("."), rdtype)
                if key in known:
                    value = known[key]
                else:
                    value = peek(*key) if peek is not None else None
                    if value is None:
                        missing.append(key)
                        raise _CacheMiss(key)
                if isinstance(value, DnsTempError):
                    raise value
                return list(value)

            try:
                result = self._spf(lookup, ip, helo, mail_from)
            except _CacheMiss:
                result = None
            if not missing:  # pyspf can swallow errors (exp=, ptr): trust only a clean run
                assert result is not None
                return result
            for key in dict.fromkeys(missing):
                try:
                    known[key] = await self.resolver.query(*key)
                except DnsTempError as exc:
                    known[key] = exc
        raise _TooManyRounds

    @staticmethod
    def _spf(lookup: Callable[[str, str], list[Any]], ip: str, helo: str,
             mail_from: str) -> tuple[str, str, str]:
        # RFC 7208 §2.4: with a null reverse-path the HELO identity is checked.
        scope, identity = ("mailfrom", mail_from) if mail_from else ("helo", helo)
        domain = identity.rpartition("@")[2].lower()
        if not ip or not domain:
            return "none", domain, scope
        _local.lookup = lookup
        try:
            result, _why = spf.check2(i=ip, s=mail_from, h=helo or domain, querytime=_DNS_TIMEOUT)
        except _CacheMiss:
            raise
        except Exception as exc:  # pyspf raises on oddities; the answer is temperror
            log.info("SPF check of %s from %s failed: %s", domain, ip, exc)
            result = "temperror"
        finally:
            _local.lookup = None
        return result, domain, scope

    @staticmethod
    def _dkim(lookup: Callable[[str, str], list[Any]], raw: bytes) -> list[tuple[str, str, str]]:
        count = len(re.findall(rb"(?im)^dkim-signature[ \t]*:", raw[:raw.find(b"\r\n\r\n") + 2]))
        if not count:
            return []

        def dnsfunc(name: Any, timeout: float = 5) -> bytes | None:
            text = name.decode() if isinstance(name, bytes) else str(name)
            try:
                values = lookup(text.rstrip("."), "TXT")
            except DnsTempError as exc:
                raise dkim.DnsTimeoutError(str(exc)) from None
            return values[0] if values else None

        results = []
        for idx in range(min(count, 5)):  # RFC 6376 §6.1: a verifier may limit the work
            d = dkim.DKIM(raw)
            try:
                ok = d.verify(idx=idx, dnsfunc=dnsfunc)
                result = "pass" if ok else "fail"
            except dkim.DnsTimeoutError:
                result = "temperror"
            except dkim.KeyFormatError:
                result = "permerror"
            except dkim.DKIMException:
                result = "fail"
            except Exception:  # dkimpy can trip over broken signatures
                result = "permerror"
            dom = d.domain.decode() if isinstance(d.domain, bytes) else (d.domain or "")
            sel = d.selector.decode() if isinstance(d.selector, bytes) else (d.selector or "")
            if not dom:
                result = "permerror" if result == "fail" else result
            results.append((result, dom.lower(), sel))
        return results

    async def _dmarc(self, raw: bytes, v: AuthVerdict) -> None:
        domains = set(header_from_domains(raw))
        if len(domains) != 1:
            v.dmarc = "none" if not domains else "permerror"  # RFC 7489 §6.6.1
            v.from_domain = ",".join(sorted(domains))
            return
        v.from_domain = dom = domains.pop()
        org = organizational_domain(dom)
        try:
            tags = await self._dmarc_record(dom)
            at_org = False
            if tags is None and org != dom:
                tags, at_org = await self._dmarc_record(org), True
        except DnsTempError:
            v.dmarc = "temperror"
            return
        if tags is None:
            v.dmarc = "none"
            return
        policy = tags.get("sp", tags.get("p")) if at_org else tags.get("p")
        v.dmarc_policy = (policy or "none").lower()

        def aligned(d: str, mode: str) -> bool:
            d = d.lower()
            return d == dom if mode == "s" else organizational_domain(d) == org

        spf_ok = (v.spf == "pass" and v.spf_scope == "mailfrom"
                  and aligned(v.spf_domain, tags.get("aspf", "r").lower()))
        dkim_ok = any(r == "pass" and aligned(d, tags.get("adkim", "r").lower())
                      for r, d, _s in v.dkim)
        v.dmarc = "pass" if spf_ok or dkim_ok else "fail"
        try:
            pct = max(0, min(100, int(tags.get("pct", "100"))))
        except ValueError:
            pct = 100
        v.policy_applies = pct >= 100 or self.rand() * 100 < pct

    async def _dmarc_record(self, domain: str) -> dict[str, str] | None:
        records = await self.resolver.query(f"_dmarc.{domain}", "TXT")
        found = [t for t in (parse_dmarc(r.decode("utf-8", "replace")) for r in records) if t]
        return found[0] if len(found) == 1 else None  # RFC 7489 §6.6.3: not exactly one
