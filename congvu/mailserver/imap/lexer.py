"""Token reader over one complete IMAP command buffer (RFC 9051 §9 grammar).

:class:`Reader` walks a ``bytes`` buffer with a position and offers one
method per grammar element (atom, astring, quoted, literal, nstring, number,
date, date-time, mailbox, flag, parenthesised list). Each token is matched
with one compiled regular expression anchored at the current position, never
a Python loop per character. Every failure raises :class:`ParseError`
carrying the command's tag, so the reply is ``tag BAD ...``.

Leniency, decided on purpose: 8-bit bytes are allowed in atoms, astrings and
quoted strings (raw UTF-8 from clients that ignore RFC 3501's 7-bit rule, as
RFC 9051 and RFC 6855 allow), and a bare LF is accepted where CRLF belongs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import TypeVar

from .errors import ParseError
from .mutf7 import MUTF7Error
from .mutf7 import decode as mutf7_decode

__all__ = ["MONTHS", "SYSTEM_FLAGS", "Reader", "canonical_flag", "decode_mailbox"]

T = TypeVar("T")

# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
# quoted-specials / resp-specials.
_ATOM = re.compile(rb'[^\x00-\x20\x7f(){%*"\\\]]+')
_ASTRING = re.compile(rb'[^\x00-\x20\x7f(){%*"\\]+')  # ASTRING-CHAR adds "]"
_TAG = re.compile(rb'[^\x00-\x20\x7f(){%*"\\+]+')  # tag: ASTRING-CHAR except "+"
_LIST_MAILBOX = re.compile(rb'[^\x00-\x20\x7f(){"\\]+')  # list-char adds "%" "*"
_QUOTED = re.compile(rb'"([^"\\\r\n]*(?:\\["\\][^"\\\r\n]*)*)"')
_QUOTED_ESC = re.compile(rb'\\(["\\])')
_LITERAL = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\r?\n")
_NUMBER = re.compile(rb"[0-9]+")
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUM = {m.upper(): i + 1 for i, m in enumerate(MONTHS)}

#: RFC 9051 §2.3.2 system flags, by upper-case spelling → canonical spelling.
SYSTEM_FLAGS = {
    f.upper(): f
    for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent")
}


def canonical_flag(flag: str) -> str:
    """System flags in canonical case (flags are case-insensitive, RFC 9051 §2.3.2)."""
    if flag[:1] == "\\":
        return SYSTEM_FLAGS.get(flag.upper(), flag)
    return flag


def decode_mailbox(raw: bytes) -> str:
    """Wire mailbox name → Unicode; raises :class:`MUTF7Error` if invalid.

    ``INBOX`` is case-insensitive (RFC 9051 §5.1). Names with 8-bit bytes
    are taken as UTF-8 (RFC 6855 UTF8=ACCEPT style), others as mUTF-7.
    """
    if len(raw) == 5 and raw.upper() == b"INBOX":
        return "INBOX"
    if raw.isascii():
        return mutf7_decode(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MUTF7Error("mailbox name is neither modified UTF-7 nor UTF-8") from exc


class Reader:
    """Cursor over a command buffer; methods consume one grammar element each."""

    __slots__ = ("buf", "end", "pos", "tag")

    def __init__(self, buf: bytes, pos: int = 0, tag: str | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.tag = tag
        # The command's final CRLF is not part of any token.
        end = len(buf)
        if buf.endswith(b"\r\n"):
            end -= 2
        elif buf.endswith(b"\n"):
            end -= 1
        self.end = end

    # -- basics -------------------------------------------------------------

    def error(self, text: str, code: str | None = None) -> ParseError:
        return ParseError(text, code=code, tag=self.tag)

    def peek(self) -> int:
        """Next byte value, or -1 at the end of the command."""
        return self.buf[self.pos] if self.pos < self.end else -1

    def at_end(self) -> bool:
        return self.pos >= self.end

    def expect_end(self) -> None:
        if self.pos < self.end:
            snippet = self.buf[self.pos : self.pos + 20].decode("ascii", "replace")
            raise self.error(f"Unexpected characters at end of command: {snippet!r}")

    def expect(self, token: bytes, what: str | None = None) -> None:
        if self.buf.startswith(token, self.pos) and self.pos + len(token) <= self.end:
            self.pos += len(token)
            return
        raise self.error(f"Expected {what or repr(token.decode())}")

    def sp(self) -> None:
        if self.pos < self.end and self.buf[self.pos] == 0x20:
            self.pos += 1
            return
        raise self.error("Missing space" if self.pos < self.end else "Missing argument")

    def maybe_sp(self) -> bool:
        if self.pos < self.end and self.buf[self.pos] == 0x20:
            self.pos += 1
            return True
        return False

    def maybe(self, token: bytes) -> bool:
        """Consume ``token`` (exact bytes) if it is next."""
        if self.buf.startswith(token, self.pos) and self.pos + len(token) <= self.end:
            self.pos += len(token)
            return True
        return False

    def _match(self, rx: re.Pattern[bytes], what: str) -> bytes:
        m = rx.match(self.buf, self.pos, self.end)
        if m is None:
            raise self.error(f"Expected {what}")
        self.pos = m.end()
        return m.group(0)

    # -- atoms and numbers --------------------------------------------------

    def tag_token(self) -> str:
        return self._match(_TAG, "tag").decode("ascii", "replace")

    def atom(self) -> bytes:
        return self._match(_ATOM, "atom")

    def keyword(self) -> str:
        """An atom, upper-cased (command names, search keys, item names)."""
        return self._match(_ATOM, "keyword").decode("ascii", "replace").upper()

    def number(self) -> int:
        return int(self._match(_NUMBER, "number"))

    def nz_number(self) -> int:
        n = self.number()
        if n == 0:
            raise self.error("Expected non-zero number")
        return n

    def number64(self) -> int:
        n = self.number()
        if n >= 1 << 63:  # RFC 9051 §9 number64
            raise self.error("Number too large")
        return n

    # -- strings ------------------------------------------------------------

    def quoted(self) -> bytes:
        m = _QUOTED.match(self.buf, self.pos, self.end)
        if m is None:
            raise self.error("Unterminated or invalid quoted string")
        self.pos = m.end()
        raw = m.group(1)
        return _QUOTED_ESC.sub(rb"\1", raw) if b"\\" in raw else raw

    def literal(self, allow_literal8: bool = False) -> bytes:
        m = _LITERAL.match(self.buf, self.pos, self.end)
        if m is None:
            raise self.error("Invalid literal")
        if m.group(1) and not allow_literal8:
            raise self.error("literal8 not allowed here")
        size = int(m.group(2))
        start = m.end()
        if start + size > len(self.buf):
            raise self.error("Literal shorter than announced")
        self.pos = start + size
        if self.pos > self.end:  # the literal swallowed the final CRLF
            self.end = len(self.buf)
        return self.buf[start : start + size]

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:  # '"'
            return self.quoted()
        if c == 0x7B or c == 0x7E:  # '{' or '~'
            return self.literal()
        raise self.error("Expected string")

    def astring(self) -> bytes:
        c = self.peek()
        if c == 0x22 or c == 0x7B:
            return self.string()
        return self._match(_ASTRING, "string")

    def astring_str(self) -> str:
        return self.astring().decode("utf-8", "surrogateescape")

    def nstring(self) -> bytes | None:
        if self.buf[self.pos : self.pos + 3].upper() == b"NIL" and self._delimited(self.pos + 3):
            self.pos += 3
            return None
        return self.string()

    def _delimited(self, at: int) -> bool:
        return at >= self.end or self.buf[at] in b" )]\r\n"

    def list_mailbox(self) -> bytes:
        """``list-mailbox``: like astring but also allows ``%`` and ``*``."""
        c = self.peek()
        if c == 0x22 or c == 0x7B:
            return self.string()
        return self._match(_LIST_MAILBOX, "mailbox pattern")

    # -- structured ---------------------------------------------------------

    def mailbox(self) -> str:
        raw = self.astring()
        try:
            return decode_mailbox(raw)
        except MUTF7Error as exc:
            raise self.error(f"Invalid mailbox name: {exc}") from exc

    def flag(self) -> str:
        """``flag`` incl. ``\\*`` (flag-perm); canonical case for system flags."""
        if self.maybe(b"\\"):
            if self.maybe(b"*"):
                return "\\*"
            return canonical_flag("\\" + self.atom().decode("ascii", "replace"))
        return self.atom().decode("utf-8", "surrogateescape")

    def flag_list(self) -> tuple[str, ...]:
        """``"(" [flag *(SP flag)] ")"``."""
        return tuple(self.paren_list(self.flag))

    def paren_list(self, item: Callable[[], T], allow_empty: bool = True) -> list[T]:
        """``"(" [item *(SP item)] ")"``."""
        self.expect(b"(")
        out: list[T] = []
        if self.maybe(b")"):
            if not allow_empty:
                raise self.error("Empty list not allowed")
            return out
        while True:
            out.append(item())
            if self.maybe(b")"):
                return out
            self.sp()

    def date(self) -> date:
        """``date`` (RFC 9051 §9), quoted or not: ``1-Feb-1994``."""
        quoted = self.maybe(b'"')
        m = _DATE.match(self.buf, self.pos, self.end)
        if m is None:
            raise self.error("Invalid date (expected dd-Mon-yyyy)")
        self.pos = m.end()
        if quoted:
            self.expect(b'"')
        month = _MONTH_NUM.get(m.group(2).decode().upper())
        try:
            if month is None:
                raise ValueError
            return date(int(m.group(3)), month, int(m.group(1)))
        except ValueError:
            raise self.error("Invalid date") from None

    def date_time(self) -> datetime:
        """``date-time`` (RFC 9051 §9): ``"17-Jul-1996 02:44:25 -0700"``, aware."""
        m = _DATE_TIME.match(self.buf, self.pos, self.end)
        if m is None:
            raise self.error("Invalid date-time")
        self.pos = m.end()
        g = m.groups()
        month = _MONTH_NUM.get(g[1].decode().upper())
        try:
            if month is None:
                raise ValueError
            offset = timedelta(hours=int(g[7]), minutes=int(g[8]))
            if g[6] == b"-":
                offset = -offset
            return datetime(
                int(g[2]), month, int(g[0].strip() or b"0"),
                int(g[3]), int(g[4]), int(g[5]), tzinfo=timezone(offset),
            )
        except ValueError:
            raise self.error("Invalid date-time") from None
