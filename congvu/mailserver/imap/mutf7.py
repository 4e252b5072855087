"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3, RFC 9051 §5.1.3).

Printable US-ASCII (0x20–0x7E) stands for itself, except ``&`` which is
written ``&-``. Everything else is UTF-16BE, encoded in base64 with ``,``
instead of ``/`` and without padding, between ``&`` and ``-``.

Only the canonical form is accepted when decoding: a name that decodes but
would not be produced by :func:`encode` (printable ASCII hidden in base64,
two adjacent shifted runs, padding bits not zero, lone surrogates) is
rejected, so every mailbox has exactly one wire spelling.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["MUTF7Error", "decode", "encode"]


class MUTF7Error(ValueError):
    """A mailbox name is not valid modified UTF-7."""


def _is_direct(ch: str) -> bool:
    # RFC 3501 §5.1.3: "printable US-ASCII ... 0x20-0x25 and 0x27-0x7e
    # represent themselves"; "&" is 0x26.
    return " " <= ch <= "~" and ch != "&"


def _b64(run: str) -> str:
    raw = run.encode("utf-16-be")
    return base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    """Encode a Unicode mailbox name to its modified UTF-7 wire form."""
    if name.isascii() and "&" not in name and name.isprintable():
        return name  # the common case: nothing to do
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out.append("&" + _b64("".join(run)) + "-")
                run.clear()
            out.append(ch)
        elif ch == "&":
            if run:
                out.append("&" + _b64("".join(run)) + "-")
                run.clear()
            out.append("&-")
        else:
            run.append(ch)
    if run:
        out.append("&" + _b64("".join(run)) + "-")
    return "".join(out)


def _decode_run(b64: str, whole: str) -> str:
    if not b64:
        raise MUTF7Error(f"empty base64 run in mailbox name {whole!r}")
    std = b64.replace(",", "/")
    if "/" in b64 or "=" in b64:
        raise MUTF7Error(f"invalid character in base64 run of {whole!r}")
    try:
        raw = base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MUTF7Error(f"invalid base64 in mailbox name {whole!r}") from exc
    if len(raw) % 2:
        raise MUTF7Error(f"odd number of UTF-16 bytes in mailbox name {whole!r}")
    try:
        return raw.decode("utf-16-be")  # strict: rejects lone surrogates
    except UnicodeDecodeError as exc:
        raise MUTF7Error(f"invalid UTF-16 in mailbox name {whole!r}") from exc


def decode(wire: str | bytes) -> str:
    """Decode a modified UTF-7 mailbox name; raise :class:`MUTF7Error` if invalid."""
    if isinstance(wire, bytes):
        try:
            wire = wire.decode("ascii")
        except UnicodeDecodeError as exc:
            raise MUTF7Error(f"8-bit byte in modified UTF-7 mailbox name {wire!r}") from exc
    if "&" not in wire:
        if not wire.isprintable() or not wire.isascii():
            raise MUTF7Error(f"control or non-ASCII character in mailbox name {wire!r}")
        return wire
    out: list[str] = []
    i, n = 0, len(wire)
    while i < n:
        amp = wire.find("&", i)
        if amp < 0:
            out.append(wire[i:])
            break
        out.append(wire[i:amp])
        end = wire.find("-", amp + 1)
        if end < 0:
            raise MUTF7Error(f"unterminated '&' shift in mailbox name {wire!r}")
        if end == amp + 1:
            out.append("&")
        else:
            out.append(_decode_run(wire[amp + 1 : end], wire))
        i = end + 1
    text = "".join(out)
    for ch in wire:
        if not (" " <= ch <= "~"):
            raise MUTF7Error(f"control or non-ASCII character in mailbox name {wire!r}")
    # Canonical form only (RFC 3501 §5.1.3: printable characters MUST NOT be
    # encoded; a shifted run ends at the first printable character).
    if encode(text) != wire:
        raise MUTF7Error(f"mailbox name {wire!r} is not in canonical modified UTF-7")
    return text
