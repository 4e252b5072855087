"""DNS for SMTP: one small async interface, a dnspython implementation, a static one.

Everything SMTP asks DNS (MX for outbound routing, TXT for SPF/DKIM/DMARC,
A/AAAA/PTR for SPF mechanisms) goes through a :class:`Resolver`, injected
into the listeners and the queue, so tests need no network (CONVENTIONS §5)
and lookups never block the event loop. Answers are normalised:

- ``A``/``AAAA``: address strings;
- ``MX``: ``(preference, exchange)`` with the exchange lower-case, no final dot;
- ``TXT``: each record's character-strings joined into one ``bytes``;
- ``PTR``/``CNAME``: names, no final dot.

No such name or no such record is an empty list; a failure to get an answer
(timeout, SERVFAIL) raises :class:`DnsTempError`.

:class:`CachingResolver` sits in front of either and keeps answers for their
TTL (RFC 1035 §3.2.1; negative answers per RFC 2308 §5), as every MTA's
resolver does: a busy MX asks for the same sender domains' SPF and DMARC
records over and over. Its :meth:`~CachingResolver.peek` answers from the
cache without awaiting, so synchronous checkers (pyspf) can run on the event
loop when everything they need is known.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

__all__ = ["CachingResolver", "DnsResolver", "DnsTempError", "Resolver", "StaticResolver",
           "reverse_name"]


class DnsTempError(Exception):
    """DNS gave no answer now (timeout, SERVFAIL); try again later."""


class Resolver(Protocol):
    async def query(self, name: str, rdtype: str) -> list[Any]: ...


class DnsResolver:
    """The real thing: ``dns.asyncresolver`` with the system's configuration."""

    def __init__(self, lifetime: float = 10.0, nameservers: Iterable[str] | None = None) -> None:
        import dns.asyncresolver

        self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = lifetime
        if nameservers:
            self._resolver.nameservers = list(nameservers)

    async def query(self, name: str, rdtype: str) -> list[Any]:
        return (await self.query_ttl(name, rdtype))[0]

    async def query_ttl(self, name: str, rdtype: str) -> tuple[list[Any], float]:
        """The answer and how long it may be cached, in seconds."""
        import dns.exception
        import dns.resolver

        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            return [], _negative_ttl(exc.responses().values())
        except dns.resolver.NoAnswer as exc:
            return [], _negative_ttl([exc.kwargs.get("response")])
        except dns.resolver.YXDOMAIN:
            return [], 0.0
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise DnsTempError(f"DNS {rdtype} {name}: {exc}") from None
        except dns.exception.DNSException as exc:
            # Malformed names and the like: no usable answer, not worth retrying.
            if "label" in str(exc).lower() or "name" in type(exc).__name__.lower():
                return [], 0.0
            raise DnsTempError(f"DNS {rdtype} {name}: {exc}") from None
        out: list[Any] = []
        for rd in answer:
            if rdtype in ("A", "AAAA"):
                out.append(rd.address)
            elif rdtype == "MX":
                out.append((int(rd.preference), rd.exchange.to_text(True).lower()))
            elif rdtype == "TXT":
                out.append(b"".join(rd.strings))
            elif rdtype in ("PTR", "CNAME"):
                out.append(rd.target.to_text(True))
            else:
                out.append(rd.to_text())
        ttl = float(answer.rrset.ttl) if answer.rrset is not None else 0.0
        return out, ttl


def _negative_ttl(responses: Iterable[Any]) -> float:
    """RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM); 0 without SOA."""
    for response in responses:
        for rrset in getattr(response, "authority", None) or ():
            if rrset.rdtype == 6 and len(rrset):  # SOA
                return float(min(rrset.ttl, rrset[0].minimum))
    return 0.0


def client_address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer's address, an IPv4-mapped IPv6 address as the IPv4 one; None if malformed."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


async def reverse_name(resolver: Resolver, ip: str) -> str | None:
    """The client's forward-confirmed reverse DNS name, or None.

    A PTR name counts only if it resolves back to ``ip`` (FCrDNS), as
    Postfix checks before it writes a name into ``Received:``.
    """
    addr = client_address(ip)
    if addr is None:
        return None
    try:
        names = await resolver.query(addr.reverse_pointer, "PTR")
        for name in names[:5]:
            found = await resolver.query(name, "A" if addr.version == 4 else "AAAA")
            if any(_same_ip(a, addr) for a in found):
                return str(name).lower().rstrip(".")
    except DnsTempError:
        return None
    return None


def _same_ip(text: Any, addr: Any) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(str(text)) == addr
    except ValueError:
        return False


class CachingResolver:
    """A TTL-respecting cache in front of a :class:`Resolver`.

    Answers are kept for the TTL the inner resolver reports through an
    optional ``query_ttl(name, rdtype) -> (values, ttl)`` (capped at
    ``max_ttl``); a resolver without ``query_ttl`` is not cached. Temporary
    failures are never cached. Concurrent identical questions share one
    lookup. At most ``max_entries`` answers are kept (least recently used
    go first).
    """

    def __init__(self, inner: Resolver, *, max_entries: int = 10000, max_ttl: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, list[Any]]] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Future[list[Any]]] = {}

    @staticmethod
    def _key(name: str, rdtype: str) -> tuple[str, str]:
        return name.lower().rstrip("."), rdtype.upper()

    def peek(self, name: str, rdtype: str) -> list[Any] | None:
        """The cached answer if it is still valid, else None (never blocks)."""
        key = self._key(name, rdtype)
        hit = self._cache.get(key)
        if hit is None:
            return None
        if hit[0] <= self.clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return list(hit[1])

    async def query(self, name: str, rdtype: str) -> list[Any]:
        hit = self.peek(name, rdtype)
        if hit is not None:
            return hit
        key = self._key(name, rdtype)
        pending = self._pending.get(key)
        if pending is not None:
            try:
                return list(await asyncio.shield(pending))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # the task that asked first was cancelled, not this one
                raise DnsTempError(f"DNS {rdtype} {name}: lookup abandoned") from None
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            query_ttl = getattr(self.inner, "query_ttl", None)
            if query_ttl is not None:
                values, ttl = await query_ttl(name, rdtype)
            else:
                values, ttl = await self.inner.query(name, rdtype), 0.0
            ttl = min(ttl, self.max_ttl)
            if ttl > 0:
                self._cache[key] = (self.clock() + ttl, list(values))
                self._cache.move_to_end(key)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
            fut.set_result(list(values))
            return list(values)
        except BaseException as exc:
            if not fut.done():
                if isinstance(exc, asyncio.CancelledError):
                    fut.cancel()
                else:
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            del self._pending[key]


class StaticResolver:
    """Answers from a table: ``{("example.org", "MX"): [(10, "mx.example.org")]}``.

    Names are matched case-insensitively without a final dot; TXT values may be
    given as ``str``. A value that is an exception instance is raised (to test
    temporary failures). Every query is recorded in :attr:`queries`. ``ttl``
    is the TTL reported to a :class:`CachingResolver` (0: not cached).
    """

    def __init__(self, records: Mapping[tuple[str, str], list[Any]] | None = None,
                 ttl: float = 0.0) -> None:
        self.ttl = ttl
        self.records: dict[tuple[str, str], list[Any]] = {}
        self.queries: list[tuple[str, str]] = []
        for (name, rdtype), values in (records or {}).items():
            self.add(name, rdtype, *values)

    def add(self, name: str, rdtype: str, *values: Any) -> None:
        key = (name.lower().rstrip("."), rdtype.upper())
        items = self.records.setdefault(key, [])
        for v in values:
            items.append(v.encode() if isinstance(v, str) and key[1] == "TXT" else v)

    async def query(self, name: str, rdtype: str) -> list[Any]:
        key = (name.lower().rstrip("."), rdtype.upper())
        self.queries.append(key)
        values = self.records.get(key, [])
        for v in values:
            if isinstance(v, BaseException):
                raise v
        return list(values)

    async def query_ttl(self, name: str, rdtype: str) -> tuple[list[Any], float]:
        return await self.query(name, rdtype), self.ttl
