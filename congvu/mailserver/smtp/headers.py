"""Header-field edits SMTP makes to a message (pure functions on bytes).

- ``Received:`` trace fields (RFC 5321 §4.4), with the protocol keyword of
  RFC 3848 / RFC 6531 (ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP...).
- Removal of ``Authentication-Results`` fields that claim to come from us
  (RFC 8601 §5: a forged one must not survive).
- On submission: the ``From:`` addresses, ``Sender:`` for send-on-behalf
  (RFC 5322 §3.6.2), and the ``Date:``/``Message-ID:`` an MSA may add
  (RFC 6409 §8.2, §8.3).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, getaddresses

__all__ = [
    "add_missing_fields",
    "from_addresses",
    "header_end",
    "received",
    "set_sender",
    "strip_auth_results",
]


def header_end(raw: bytes) -> int:
    """Offset just past the CRLF of the last header line (0 if no header)."""
    if raw.startswith(b"\r\n"):
        return 0
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 2


def _fields(raw: bytes) -> list[tuple[str, int, int]]:
    """(lower-case name, start, end) of every header field."""
    end = header_end(raw)
    out: list[tuple[str, int, int]] = []
    pos = 0
    while pos < end:
        nxt = raw.find(b"\r\n", pos, end)
        nxt = end if nxt < 0 else nxt + 2
        line = raw[pos:nxt]
        if line[:1] in (b" ", b"\t") and out:
            name, start, _ = out[-1]
            out[-1] = (name, start, nxt)
        else:
            name = line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
            out.append((name, pos, nxt))
        pos = nxt
    return out


def _values(raw: bytes, name: str) -> list[str]:
    vals = []
    for n, s, e in _fields(raw):
        if n == name:
            text = raw[s:e].split(b":", 1)[1] if b":" in raw[s:e] else b""
            vals.append(text.decode("utf-8", "replace").replace("\r\n", ""))
    return vals


def _remove(raw: bytes, keep: Callable[[str, bytes], bool]) -> bytes:
    parts = []
    last = 0
    for name, s, e in _fields(raw):
        if not keep(name, raw[s:e]):
            parts.append(raw[last:s])
            last = e
    parts.append(raw[last:])
    return b"".join(parts)


def from_addresses(raw: bytes) -> list[str]:
    """Addresses in the ``From:`` field(s), lower-cased, as ``local@domain``."""
    return [a.strip().lower() for _n, a in getaddresses(_values(raw, "from")) if a.strip()]


def strip_auth_results(raw: bytes, authserv_id: str) -> bytes:
    pattern = re.compile(rb"^authentication-results[ \t]*:[ \t\r\n]*" + re.escape(
        authserv_id.encode()) + rb"[ \t\r\n]*(;|$)", re.IGNORECASE)
    return _remove(raw, lambda n, field: not (n == "authentication-results"
                                              and pattern.match(field)))


def set_sender(raw: bytes, name: str, address: str) -> bytes:
    """Replace any ``Sender:`` with the delegate who sent on the owner's behalf."""
    raw = _remove(raw, lambda n, _f: n != "sender")
    display = Header(name, "utf-8").encode() if name and not name.isascii() else name
    value = f'{display} <{address}>' if display else f"<{address}>"
    return f"Sender: {value}\r\n".encode() + raw


def add_missing_fields(raw: bytes, hostname: str, now: datetime) -> bytes:
    """RFC 6409 §8.2/§8.3: supply ``Date:`` and ``Message-ID:`` if the client did not."""
    names = {n for n, _s, _e in _fields(raw)}
    extra = b""
    if "date" not in names:
        extra += f"Date: {format_datetime(now)}\r\n".encode()
    if "message-id" not in names:
        extra += f"Message-ID: <{secrets.token_hex(12)}@{hostname}>\r\n".encode()
    if not extra:
        return raw
    end = header_end(raw)
    return raw[:end] + extra + raw[end:]


def received(*, helo: str, ip: str, hostname: str, protocol: str, queue_id: str,
             now: datetime, for_rcpt: str | None = None, tls: str | None = None,
             rdns: str | None = None) -> bytes:
    """One ``Received:`` field (RFC 5321 §4.4 Time-stamp-line), CRLF-terminated.

    ``rdns`` is the client's verified reverse DNS name: TCP-info is then
    ``(name [ip])``, else ``([ip])`` (§4.4 ``TCP-info``).
    """
    helo = re.sub(r"[^\x21-\x7e]", "?", helo)[:255] or "unknown"
    literal = f"IPv6:{ip}" if ":" in ip else ip  # RFC 5321 §4.1.3 address literal
    name = re.sub(r"[^A-Za-z0-9.-]", "", rdns or "")[:255]
    info = f"({name} [{literal}])" if name else f"([{literal}])"
    lines = [f"Received: from {helo} {info}", f"\tby {hostname} (Congvu) with {protocol}"]
    if tls:
        lines[-1] += f" ({tls})"
    lines.append(f"\tid {queue_id}" + (f" for <{for_rcpt}>" if for_rcpt else "")
                 + f"; {format_datetime(now)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
