"""Per-client-IP limits on the MX: simultaneous connections and messages per minute.

A client over a limit is told to come back later, never refused for good:

- too many connections: ``421 4.7.0`` instead of the greeting (RFC 5321
  §3.1 allows a 421 greeting; RFC 3463 X.7.0 other security/policy status);
- too many messages: ``451 4.7.1`` at MAIL (RFC 5321 §4.2.3 451 local error
  in processing; X.7.1 delivery not authorized, message refused, for now).

Loopback and configured trusted networks (``limits.mx_limit_exempt``) are
exempt, as Postfix exempts ``$mynetworks`` from its anvil limits. An IPv6
client is counted by its /64. State is per process; each node limits what
reaches it.
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable, Iterable

from ...config import ConfigError
from .dnsresolve import client_address
from .errors import SmtpError

__all__ = ["CONNECTION_LIMIT", "MESSAGE_RATE_LIMIT", "ClientLimiter"]

CONNECTION_LIMIT = SmtpError(421, "4.7.0", "Too many connections from your address, "
                                           "try again later")
MESSAGE_RATE_LIMIT = SmtpError(451, "4.7.1", "Too many messages from your address, "
                                             "try again later")

_WINDOW = 60.0


class ClientLimiter:
    """Counts connections and recent messages per IP address."""

    def __init__(self, max_connections: int, max_messages_per_minute: int,
                 exempt: Iterable[str] = (), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_connections = max_connections
        self.max_messages = max_messages_per_minute
        try:
            self.exempt = [ipaddress.ip_network(n, strict=False) for n in exempt]
        except ValueError as exc:
            raise ConfigError(f"limits.mx_limit_exempt: {exc}") from None
        self.clock = clock
        self.connections: dict[str, int] = {}
        self.messages: dict[str, deque[float]] = {}

    def is_exempt(self, ip: str) -> bool:
        addr = client_address(ip)
        return addr is not None and any(addr in net for net in self.exempt)

    @staticmethod
    def client_key(ip: str) -> str:
        """What is counted: an IPv4 address, or the /64 of an IPv6 one.

        One IPv6 host usually has a whole /64 to pick addresses from.
        """
        addr = client_address(ip)
        if addr is None:
            return ip
        if addr.version == 6:
            return str(ipaddress.ip_network(f"{addr}/64", strict=False))
        return str(addr)

    def connect(self, ip: str) -> SmtpError | None:
        """Count a new connection; the refusal if it is one too many."""
        if not ip or self.is_exempt(ip):
            return None
        ip = self.client_key(ip)
        count = self.connections.get(ip, 0)
        if self.max_connections and count >= self.max_connections:
            return CONNECTION_LIMIT
        self.connections[ip] = count + 1
        return None

    def disconnect(self, ip: str) -> None:
        ip = self.client_key(ip)
        count = self.connections.get(ip, 0)
        if count <= 1:
            self.connections.pop(ip, None)
        else:
            self.connections[ip] = count - 1

    def message(self, ip: str) -> SmtpError | None:
        """Count a MAIL command; the refusal if the client is over its rate."""
        if not self.max_messages or not ip or self.is_exempt(ip):
            return None
        ip = self.client_key(ip)
        now = self.clock()
        recent = self.messages.get(ip)
        if recent is None:
            if len(self.messages) > 10000:
                self._sweep(now)
            recent = self.messages[ip] = deque()
        while recent and recent[0] <= now - _WINDOW:
            recent.popleft()
        if len(recent) >= self.max_messages:
            return MESSAGE_RATE_LIMIT
        recent.append(now)
        return None

    def _sweep(self, now: float) -> None:
        for ip in [ip for ip, q in self.messages.items() if not q or q[-1] <= now - _WINDOW]:
            del self.messages[ip]
