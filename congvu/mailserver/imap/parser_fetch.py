"""FETCH attribute and modifier parsing (RFC 9051 §6.4.5, RFC 3516, RFC 7162).

Parses ``fetch-att``, the ALL/FAST/FULL macros, ``section`` specs with
``<partial>`` ranges, and the CONDSTORE/QRESYNC fetch modifiers.
"""

from __future__ import annotations

import re

from .commands import FetchAttr, Section
from .lexer import Reader

__all__ = ["parse_fetch_atts", "parse_fetch_modifiers"]

_ATT_NAME = re.compile(rb"[A-Za-z0-9.]+")
_PART = re.compile(rb"[1-9][0-9]{0,8}(?:\.[1-9][0-9]{0,8})*")
_SECTION_TEXT = re.compile(rb"[A-Za-z]+(?:\.[A-Za-z]+)*")
_PARTIAL = re.compile(rb"<([0-9]{1,10})\.([0-9]{1,10})>")

# Simple attributes: name → the FetchAttr (shared, they are immutable).
_SIMPLE = {
    n: FetchAttr(n)
    for n in (
        "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.TEXT",
        "RFC822.SIZE", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ",
        # RFC 8514 SAVEDATE, RFC 8474 OBJECTID: cheap to accept, the session decides.
        "SAVEDATE", "EMAILID", "THREADID",
    )
}

# RFC 9051 §6.4.5 macros.
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}

_MSGTEXT = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"})


def _header_name(r: Reader) -> str:
    # header-fld-name = astring (RFC 9051 §9)
    return r.astring().decode("ascii", "replace")


def _section(r: Reader, binary: bool) -> Section:
    """After ``[``: ``section-spec "]"`` (or ``section-part "]"`` for BINARY)."""
    if r.maybe(b"]"):
        return Section()
    part: tuple[int, ...] = ()
    m = _PART.match(r.buf, r.pos, r.end)
    if m is not None:
        part = tuple(int(x) for x in m.group(0).split(b"."))
        r.pos = m.end()
        if binary or not r.maybe(b"."):
            r.expect(b"]", "']' after section part")
            return Section(part)
    elif binary:
        raise r.error("BINARY takes only a section part")
    m = _SECTION_TEXT.match(r.buf, r.pos, r.end)
    if m is None:
        raise r.error("Invalid section")
    text = m.group(0).decode("ascii").upper()
    r.pos = m.end()
    if text not in _MSGTEXT and not (text == "MIME" and part):
        raise r.error(f"Invalid section text {text}")
    headers: tuple[str, ...] = ()
    if text.startswith("HEADER.FIELDS"):
        r.sp()
        headers = tuple(r.paren_list(lambda: _header_name(r), allow_empty=False))
    r.expect(b"]", "']' after section")
    return Section(part, text, headers)


def _partial(r: Reader) -> tuple[int, int] | None:
    if r.peek() != 0x3C:  # '<'
        return None
    m = _PARTIAL.match(r.buf, r.pos, r.end)
    if m is None:
        raise r.error("Invalid partial range")
    r.pos = m.end()
    length = int(m.group(2))
    if length == 0:  # RFC 9051 §9: partial = "<" number64 "." nz-number64 ">"
        raise r.error("Partial length must not be zero")
    return int(m.group(1)), length


def parse_fetch_att(r: Reader) -> FetchAttr:
    """One ``fetch-att``."""
    m = _ATT_NAME.match(r.buf, r.pos, r.end)
    if m is None:
        raise r.error("Expected fetch attribute")
    name = m.group(0).decode("ascii").upper()
    r.pos = m.end()
    if r.peek() != 0x5B:  # no '['
        att = _SIMPLE.get(name)
        if att is None:
            raise r.error(f"Unknown fetch attribute {name}")
        return att
    r.pos += 1
    if name in ("BODY", "BODY.PEEK"):
        section = _section(r, binary=False)
        return FetchAttr("BODY", section, _partial(r), peek=name == "BODY.PEEK")
    if name in ("BINARY", "BINARY.PEEK"):  # RFC 3516 §4.2
        section = _section(r, binary=True)
        return FetchAttr("BINARY", section, _partial(r), peek=name == "BINARY.PEEK")
    if name == "BINARY.SIZE":
        return FetchAttr("BINARY.SIZE", _section(r, binary=True))
    raise r.error(f"Unknown fetch attribute {name}[")


def parse_fetch_atts(r: Reader) -> tuple[FetchAttr, ...]:
    """Macro, single attribute or parenthesised list; duplicates removed, order kept."""
    if r.peek() == 0x28:  # '('
        atts = r.paren_list(lambda: parse_fetch_att(r), allow_empty=False)
        return tuple(dict.fromkeys(atts))
    m = _ATT_NAME.match(r.buf, r.pos, r.end)
    if m is not None:
        macro = _MACROS.get(m.group(0).decode("ascii").upper())
        if macro is not None and r.buf[m.end() : m.end() + 1] != b"[":
            r.pos = m.end()
            return tuple(_SIMPLE[n] for n in macro)
    return (parse_fetch_att(r),)


def parse_fetch_modifiers(r: Reader) -> tuple[int | None, bool]:
    """``SP "(" fetch-modifier *(SP fetch-modifier) ")"`` → (changedsince, vanished).

    RFC 7162 §3.1.4 CHANGEDSINCE and §3.2.6 VANISHED; the session checks that
    VANISHED comes with UID FETCH, CHANGEDSINCE and QRESYNC enabled.
    """
    changedsince: int | None = None
    vanished = False

    def modifier() -> None:
        nonlocal changedsince, vanished
        word = r.keyword()
        if word == "CHANGEDSINCE" and changedsince is None:
            r.sp()
            changedsince = r.number64()
        elif word == "VANISHED" and not vanished:
            vanished = True
        else:
            raise r.error(f"Unknown or repeated FETCH modifier {word}")

    r.paren_list(modifier, allow_empty=False)
    if vanished and changedsince is None:
        raise r.error("VANISHED requires CHANGEDSINCE")  # RFC 7162 §3.2.6
    return changedsince, vanished
