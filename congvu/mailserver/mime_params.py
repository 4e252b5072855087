"""Content-Type and Content-Disposition parameters (RFC 2045 §5.1, RFC 2183, RFC 2231).

Values come in as latin-1 byte strings (see :mod:`mime_headers`).  The
merged parameter lists are what BODYSTRUCTURE shows; :func:`param_value`
decodes one parameter to text for webmail (attachment names, charsets).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote_from_bytes, unquote_to_bytes

from .mime_headers import decode_bytes, decode_words

__all__ = [
    "merge_rfc2231",
    "param_value",
    "parse_content_type",
    "parse_disposition",
    "parse_params",
]

_TSPECIALS_WS = frozenset('()<>@,;:\\"/[]?= \t')


def _skip_comment(s: str, i: int) -> int:
    depth = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _split_value(value: str) -> tuple[str, int]:
    """The leading token (media type or disposition type) and where params start."""
    semi = value.find(";")
    head = value if semi < 0 else value[:semi]
    if "(" in head:
        head = re.sub(r"\([^()]*\)", "", head)  # RFC 2045 allows comments
    return head.strip(" \t\r\n"), (len(value) if semi < 0 else semi)


def parse_params(s: str, i: int = 0) -> list[tuple[str, str]]:
    """Raw ``attribute=value`` pairs after *i*: names lower-cased, quotes removed."""
    out: list[tuple[str, str]] = []
    n = len(s)
    while i < n:
        c = s[i]
        if c in "; \t\r\n":
            i += 1
            continue
        if c == "(":
            i = _skip_comment(s, i)
            continue
        eq = i
        while eq < n and s[eq] not in "=;":
            eq += 1
        name = s[i:eq].strip(" \t\r\n").lower()
        if eq >= n or s[eq] == ";":
            i = eq + 1  # attribute without value: garbage, skip
            continue
        i = eq + 1
        while i < n and s[i] in " \t\r\n":
            i += 1
        if i < n and s[i] == '"':
            i += 1
            buf: list[str] = []
            while i < n and s[i] != '"':
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(s[i])
                i += 1
            i += 1
            value = "".join(buf)
            # tolerate garbage between the closing quote and the next ';'
            while i < n and s[i] != ";":
                i += 1
        else:
            start = i
            while i < n and s[i] != ";":
                if s[i] == "(":
                    break
                i += 1
            value = s[start:i].strip(" \t\r\n")
        if name:
            out.append((name, value))
    return out


_SECTION_NAME = re.compile(r"^(.*?)\*(\d+)(\*?)$")


def merge_rfc2231(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Merge RFC 2231 §3 continuations the way IMAP servers present them.

    ``name*0*=utf-8''a; name*1*=%20b`` becomes ``("name*", "utf-8''a%20b")``:
    the value stays percent-encoded and the trailing ``*`` tells the client
    so, which is what Dovecot sends in BODYSTRUCTURE and what Thunderbird
    and Apple Mail understand.  Plain continuations (``name*0``, ``name*1``)
    are joined into ``name``.  The first occurrence of a name wins.
    """
    if not any("*" in name for name, _ in params):
        seen: set[str] = set()
        plain: list[tuple[str, str]] = []
        for name, value in params:
            if name not in seen:
                seen.add(name)
                plain.append((name, value))
        return plain
    order: list[str] = []
    simple: dict[str, tuple[str, str]] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, value in params:
        m = _SECTION_NAME.match(name)
        if m:
            base, num, star = m.group(1), int(m.group(2)), bool(m.group(3))
            if base not in sections and base not in simple:
                order.append(base)
            sections.setdefault(base, {}).setdefault(num, (value, star))
        elif name.endswith("*"):
            base = name[:-1]
            if base not in simple and base not in sections:
                order.append(base)
                simple[base] = (name, value)
        elif name not in simple and name not in sections:
            order.append(name)
            simple[name] = (name, value)
    out: list[tuple[str, str]] = []
    for base in order:
        if base in simple:
            out.append(simple[base])
            continue
        segs = sections[base]
        nums = sorted(segs)
        extended = any(star for _, star in segs.values())
        pieces: list[str] = []
        for k, num in enumerate(nums):
            value, star = segs[num]
            if extended and not star:
                value = quote_from_bytes(value.encode("latin-1"), safe="")
                if k == 0:
                    value = "''" + value  # no charset'language' given
            pieces.append(value)
        out.append((base + "*" if extended else base, "".join(pieces)))
    return out


def _decode_extended(value: str) -> str:
    """Decode an RFC 2231 §4 ``charset'language'%XX`` value."""
    parts = value.split("'", 2)
    if len(parts) == 3:
        charset, _lang, encoded = parts
    else:
        charset, encoded = "", value
    return decode_bytes(unquote_to_bytes(encoded.encode("latin-1")), charset)


def param_value(params: list[tuple[str, str]], name: str,
                fallback: str | None = None) -> str | None:
    """Decoded value of parameter *name* from a merged parameter list.

    Also decodes RFC 2047 encoded-words in plain values, which Outlook and
    many webmails put in ``filename="=?utf-8?B?...?="`` against RFC 2047 §5.
    """
    for key, value in params:
        if key == name + "*":
            return unicodedata.normalize("NFC", _decode_extended(value))
        if key == name:
            return decode_words(value, fallback)
    return None


def parse_content_type(
    value: str | None, default: tuple[str, str] = ("text", "plain")
) -> tuple[str, str, list[tuple[str, str]]]:
    """(type, subtype, merged params) of a Content-Type value, lower-cased type.

    RFC 2045 §5.2: a missing or syntactically invalid Content-Type means
    ``text/plain; charset=us-ascii`` (or the context default, e.g.
    ``message/rfc822`` inside multipart/digest, RFC 2046 §5.1.5).
    """
    if value is None:
        return _default_type(default)
    head, pos = _split_value(value)
    main, slash, sub = head.lower().partition("/")
    main, sub = main.strip(), sub.strip()
    if (
        not slash
        or not main
        or not sub
        or any(c in _TSPECIALS_WS for c in main)
        or any(c in _TSPECIALS_WS for c in sub)
        or not (main + sub).isascii()
    ):
        return _default_type(("text", "plain"))
    return main, sub, merge_rfc2231(parse_params(value, pos + 1))


def _default_type(default: tuple[str, str]) -> tuple[str, str, list[tuple[str, str]]]:
    if default == ("text", "plain"):
        return "text", "plain", [("charset", "us-ascii")]
    return default[0], default[1], []


def parse_disposition(value: str | None) -> tuple[str, list[tuple[str, str]]] | None:
    """(lower-cased type, merged params) of Content-Disposition (RFC 2183), or None."""
    if value is None:
        return None
    head, pos = _split_value(value)
    if not head:
        return None
    return head.lower(), merge_rfc2231(parse_params(value, pos + 1))
