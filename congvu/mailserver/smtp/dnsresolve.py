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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = ["DnsResolver", "DnsTempError", "Resolver", "StaticResolver"]


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
        import dns.exception
        import dns.resolver

        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.YXDOMAIN:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise DnsTempError(f"DNS {rdtype} {name}: {exc}") from None
        except dns.exception.DNSException as exc:
            # Malformed names and the like: no usable answer, not worth retrying.
            if "label" in str(exc).lower() or "name" in type(exc).__name__.lower():
                return []
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
        return out


class StaticResolver:
    """Answers from a table: ``{("example.org", "MX"): [(10, "mx.example.org")]}``.

    Names are matched case-insensitively without a final dot; TXT values may be
    given as ``str``. A value that is an exception instance is raised (to test
    temporary failures). Every query is recorded in :attr:`queries`.
    """

    def __init__(self, records: Mapping[tuple[str, str], list[Any]] | None = None) -> None:
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
