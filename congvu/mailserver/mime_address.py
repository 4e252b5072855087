"""Address-list parsing for ENVELOPE, SORT and webmail (RFC 5322 §3.4).

A small tolerant tokenizer rather than ``email.utils.getaddresses``,
because IMAP needs what the stdlib drops: group syntax (RFC 3501 §7.4.2
renders ``undisclosed-recipients:;`` as a group start and end), source
routes, and the raw (undecoded, possibly 8-bit) display names.

Input and output are latin-1 byte strings (see :mod:`mime_headers`).
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["MISSING_DOMAIN", "MISSING_MAILBOX", "EnvAddress", "parse_address_list"]

# What Dovecot puts in an ENVELOPE address that lacks a part: a NIL host
# would turn a mailbox into a group marker for the client (RFC 3501 §7.4.2).
MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"


class EnvAddress(NamedTuple):
    """One ENVELOPE address: (name adl mailbox host), None meaning NIL.

    Group start is ``(None, None, group_name, None)``; group end is all None.
    """

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None

    @property
    def is_group_marker(self) -> bool:
        return self.host is None


_GROUP_END = EnvAddress(None, None, None, None)
_SPECIALS = frozenset("<>,:;@")
_ATOM_END = frozenset('<>,:;@"([ \t\r\n')
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\xff-]+"
_DOT_ATOM = re.compile(rf"^{_ATEXT}(\.{_ATEXT})*$")

# token kinds
_ATOM, _QUOTED, _COMMENT, _LITERAL, _SPECIAL = range(5)


def _tokenize(s: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':
            i += 1
            buf: list[str] = []
            while i < n and s[i] != '"':
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(s[i])
                i += 1
            tokens.append((_QUOTED, "".join(buf)))
            i += 1
        elif c == "(":
            depth, i = 1, i + 1
            buf = []
            while i < n and depth:
                ch = s[i]
                if ch == "\\" and i + 1 < n:
                    buf.append(s[i + 1])
                    i += 2
                    continue
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                    if not depth:
                        i += 1
                        break
                buf.append(ch)
                i += 1
            tokens.append((_COMMENT, "".join(buf).strip()))
        elif c == "[":
            end = s.find("]", i)
            end = n if end < 0 else end + 1
            tokens.append((_LITERAL, s[i:end]))
            i = end
        elif c in _SPECIALS:
            tokens.append((_SPECIAL, c))
            i += 1
        else:
            start = i
            while i < n and s[i] not in _ATOM_END:
                i += 1
            tokens.append((_ATOM, s[start:i]))
    return tokens


def _phrase(tokens: list[tuple[int, str]]) -> str | None:
    words = [text for kind, text in tokens if kind in (_ATOM, _QUOTED, _LITERAL)]
    return " ".join(words) if words else None


def _local_part(tokens: list[tuple[int, str]]) -> str:
    pieces: list[str] = []
    for kind, text in tokens:
        if kind == _QUOTED:
            # keep the quotes only where the local part needs them
            if not _DOT_ATOM.match(text):
                text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
            pieces.append(text)
        elif kind in (_ATOM, _LITERAL):
            pieces.append(text)
    return "".join(pieces)


def _domain(tokens: list[tuple[int, str]]) -> str:
    return "".join(text for kind, text in tokens if kind in (_ATOM, _LITERAL, _QUOTED))


def _addr_spec(tokens: list[tuple[int, str]]) -> tuple[str, str]:
    at = -1
    for k in range(len(tokens) - 1, -1, -1):
        if tokens[k] == (_SPECIAL, "@"):
            at = k
            break
    if at < 0:
        local, host = _local_part(tokens), ""
    else:
        local, host = _local_part(tokens[:at]), _domain(tokens[at + 1 :])
    return local or MISSING_MAILBOX, host or MISSING_DOMAIN


def _mailbox(tokens: list[tuple[int, str]]) -> EnvAddress | None:
    if not any(kind != _COMMENT for kind, _ in tokens):
        return None
    if (_SPECIAL, "<") in tokens:
        lt = tokens.index((_SPECIAL, "<"))
        gt = len(tokens)
        for k in range(lt + 1, len(tokens)):
            if tokens[k] == (_SPECIAL, ">"):
                gt = k
                break
        inner = tokens[lt + 1 : gt]
        adl: str | None = None
        # obs-route (RFC 5322 §4.4): "<@a,@b:user@host>"
        if inner and inner[0] == (_SPECIAL, "@") and (_SPECIAL, ":") in inner:
            colon = inner.index((_SPECIAL, ":"))
            adl = "".join(text for kind, text in inner[:colon] if kind != _COMMENT)
            inner = inner[colon + 1 :]
        name = _phrase(tokens[:lt])
        if name is None:
            # "<a@b> (Name)": some servers take the comment as the name
            comments = [t for k, t in tokens[gt:] if k == _COMMENT and t]
            name = comments[-1] if comments else None
        mailbox, host = _addr_spec(inner)
        return EnvAddress(name, adl, mailbox, host)
    comments = [text for kind, text in tokens if kind == _COMMENT and text]
    mailbox, host = _addr_spec(tokens)
    return EnvAddress(comments[-1] if comments else None, None, mailbox, host)


def parse_address_list(value: str | None) -> list[EnvAddress]:
    """Parse an address-list header value into ENVELOPE addresses.

    Groups (RFC 5322 §3.4) become a start marker, their members and an end
    marker (RFC 3501 §7.4.2).  Never raises; unparsable parts are skipped or
    filled with :data:`MISSING_MAILBOX` / :data:`MISSING_DOMAIN`.
    """
    if not value or not value.strip():
        return []
    out: list[EnvAddress] = []
    cur: list[tuple[int, str]] = []
    in_angle = in_group = False

    def flush() -> None:
        if cur:
            addr = _mailbox(cur)
            if addr is not None:
                out.append(addr)
            cur.clear()

    for tok in _tokenize(value):
        kind, text = tok
        if kind == _SPECIAL:
            if text == "<":
                in_angle = True
            elif text == ">":
                in_angle = False
            elif not in_angle:
                if text == ",":
                    flush()
                    continue
                if text == ":" and not in_group and (_SPECIAL, "@") not in cur:
                    out.append(EnvAddress(None, None, _phrase(cur) or "", None))
                    cur.clear()
                    in_group = True
                    continue
                if text == ";":
                    flush()
                    if in_group:
                        out.append(_GROUP_END)
                        in_group = False
                    continue
        cur.append(tok)
    flush()
    if in_group:
        out.append(_GROUP_END)  # unterminated group: close it for the client
    return out
