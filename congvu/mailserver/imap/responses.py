"""IMAP response writer (RFC 9051 §7 and the extensions' response grammar).

Everything returns ready-to-send ``bytes`` lines ending in CRLF (or, for
the ``fetch_*`` item helpers, one FETCH item to join into
:func:`fetch_response`). Strings are written in the cheapest valid form:
atom when every byte is an ATOM-CHAR, quoted when 7-bit without CR/LF/NUL,
else a literal ``{n}\\r\\n`` (RFC 9051 §4.3). Mailbox names are encoded to
modified UTF-7 here (RFC 9051 §5.1.3).

The hot path is FETCH: :func:`fetch_response` and the item helpers use
``%``-formatting on bytes and an LRU cache for flag lists, so 100,000
``* n FETCH (UID u FLAGS (...))`` lines cost well under a second.

Errors that know their reply live in :mod:`.errors` and are re-exported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache

from .errors import (
    BadCharset, ImapBad, ImapError, ImapFatal, ImapNo, ParseError, format_status,
)
from .lexer import MONTHS
from .mutf7 import encode as mutf7_encode
from .sequence import SequenceSet

__all__ = [
    "CONTINUE_LITERAL",
    "BadCharset",
    "ImapBad",
    "ImapError",
    "ImapFatal",
    "ImapNo",
    "ParseError",
    "acl",
    "astring",
    "bye",
    "capability",
    "code_appenduid",
    "code_copyuid",
    "continuation",
    "enabled",
    "esearch",
    "exists",
    "expunge",
    "fetch_data",
    "fetch_flags",
    "fetch_internaldate",
    "fetch_modseq",
    "fetch_raw",
    "fetch_response",
    "fetch_size",
    "fetch_uid",
    "flag_list",
    "flags",
    "format_internaldate",
    "format_response",
    "id_response",
    "list_line",
    "listrights",
    "literal",
    "mailbox",
    "myrights",
    "namespace",
    "nstring",
    "paren",
    "quota",
    "quotaroot",
    "quoted",
    "recent",
    "search",
    "sort",
    "status",
    "string",
    "untagged",
    "untagged_ok",
    "vanished",
]

#: Tagged/untagged status line: ``format_response(tag, "OK", "READ-WRITE", "SELECT completed")``.
format_response = format_status

#: RFC 9051 §7.5 continuation request for a synchronizing literal.
CONTINUE_LITERAL = b"+ Ready for literal data\r\n"

_ASTRING_CHARS = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+\Z')  # RFC 9051 §9 ASTRING-CHAR
_QUOTE_UNSAFE = re.compile(rb"[\x00\r\n\x80-\xff]")


# -- basic forms -------------------------------------------------------------


def _b(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def quoted(value: str | bytes) -> bytes:
    """``"..."`` with ``\\`` and ``"`` escaped; caller ensures it is quotable."""
    raw = _b(value)
    if b"\\" in raw or b'"' in raw:
        raw = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + raw + b'"'


def literal(value: str | bytes) -> bytes:
    """``{n}CRLF`` followed by the octets (RFC 9051 §4.3)."""
    raw = _b(value)
    return b"{%d}\r\n" % len(raw) + raw


def string(value: str | bytes) -> bytes:
    """Quoted if 7-bit without CR/LF/NUL, else literal."""
    raw = _b(value)
    if _QUOTE_UNSAFE.search(raw) is None:
        return quoted(raw)
    return literal(raw)


def astring(value: str | bytes) -> bytes:
    """Atom when possible (not ``NIL``, which would read as nil), else :func:`string`."""
    raw = _b(value)
    if _ASTRING_CHARS.match(raw) is not None and raw.upper() != b"NIL":
        return raw
    return string(raw)


def nstring(value: str | bytes | None) -> bytes:
    return b"NIL" if value is None else string(value)


def mailbox(name: str) -> bytes:
    """A mailbox name for the wire: modified UTF-7, always quoted (Dovecot-compatible)."""
    return string("INBOX" if name.upper() == "INBOX" else mutf7_encode(name))


def paren(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


@lru_cache(maxsize=4096)
def _flags_cached(flags: tuple[str, ...] | frozenset[str]) -> bytes:
    return ("(" + " ".join(flags) + ")").encode("utf-8")


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Forwarded)``; tuples and frozensets are cached."""
    if isinstance(flags, (tuple, frozenset)):
        return _flags_cached(flags)
    return ("(" + " ".join(flags) + ")").encode("utf-8")


def format_internaldate(dt: datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (RFC 9051 §9 date-time, quotes included).

    A naive datetime is taken as UTC.
    """
    off = dt.utcoffset() if dt.tzinfo is not None else None
    minutes = int(off.total_seconds()) // 60 if off is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f'"{dt.day:02d}-{MONTHS[dt.month - 1]}-{dt.year:04d} '
        f'{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"'
    ).encode("ascii")


# -- status lines ------------------------------------------------------------


def untagged(data: bytes) -> bytes:
    """``* data CRLF``."""
    return b"* " + data + b"\r\n"


def untagged_ok(code: str | None, text: str) -> bytes:
    """``* OK [code] text`` — e.g. ``untagged_ok("UIDVALIDITY 3857529045", "UIDs valid")``."""
    return format_status(None, "OK", code, text)


def continuation(text: str | bytes = b"Ready") -> bytes:
    """``+ text CRLF`` (RFC 9051 §7.5); bytes are sent as is (e.g. base64 SASL challenge)."""
    return b"+ " + _b(text) + b"\r\n"


def bye(text: str, code: str | None = None) -> bytes:
    return format_status(None, "BYE", code, text)


def code_appenduid(uidvalidity: int, uids: SequenceSet | int) -> str:
    """RFC 4315 §3 ``APPENDUID`` response code text."""
    return f"APPENDUID {uidvalidity} {uids}"


def code_copyuid(uidvalidity: int, source: SequenceSet, dest: SequenceSet) -> str:
    """RFC 4315 §3 ``COPYUID``: source and destination UIDs in matching order.

    Both sets must be written in the order of the pairs, so build them with
    :meth:`SequenceSet.from_ranges` from ordered runs, not ``from_numbers``.
    """
    return f"COPYUID {uidvalidity} {source} {dest}"


# -- untagged data -----------------------------------------------------------


def capability(caps: Iterable[str]) -> bytes:
    return ("* CAPABILITY " + " ".join(caps) + "\r\n").encode("ascii")


def flags(flag_names: Iterable[str]) -> bytes:
    return b"* FLAGS " + flag_list(flag_names) + b"\r\n"


def exists(n: int) -> bytes:
    return b"* %d EXISTS\r\n" % n


def recent(n: int) -> bytes:
    return b"* %d RECENT\r\n" % n


def expunge(seq: int) -> bytes:
    return b"* %d EXPUNGE\r\n" % seq


def vanished(uids: SequenceSet | str, earlier: bool = False) -> bytes:
    """RFC 7162 §3.2.10 ``* VANISHED [(EARLIER)] uid-set``."""
    return ("* VANISHED " + ("(EARLIER) " if earlier else "") + str(uids) + "\r\n").encode("ascii")


def search(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SEARCH 2 3 6`` (+ ``(MODSEQ n)`` per RFC 7162 §3.1.5 when given)."""
    body = b" ".join(b"%d" % n for n in numbers)
    out = b"* SEARCH " + body if body else b"* SEARCH"
    if modseq is not None and body:
        out += b" (MODSEQ %d)" % modseq
    return out + b"\r\n"


def sort(numbers: Iterable[int]) -> bytes:
    """RFC 5256 §4 ``* SORT 2 3 6``."""
    body = b" ".join(b"%d" % n for n in numbers)
    return (b"* SORT " + body if body else b"* SORT") + b"\r\n"


def esearch(
    tag: str | None,
    uid: bool,
    *,
    min: int | None = None,
    max: int | None = None,
    count: int | None = None,
    all: SequenceSet | None = None,
    modseq: int | None = None,
) -> bytes:
    """RFC 4731 §3.1 ``* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]``.

    Absent results are omitted (RFC 4731 §3.1: MIN/MAX/ALL are not returned
    when nothing matched; COUNT is returned as 0 when asked).
    """
    parts = [b"* ESEARCH"]
    if tag is not None:
        parts.append(b"(TAG " + quoted(tag) + b")")
    if uid:
        parts.append(b"UID")
    if min is not None:
        parts.append(b"MIN %d" % min)
    if max is not None:
        parts.append(b"MAX %d" % max)
    if count is not None:
        parts.append(b"COUNT %d" % count)
    if all is not None and all.ranges:
        parts.append(b"ALL " + all.to_bytes())
    if modseq is not None:
        parts.append(b"MODSEQ %d" % modseq)
    return b" ".join(parts) + b"\r\n"


def list_line(
    attributes: Iterable[str],
    delimiter: str | None,
    name: str,
    *,
    command: str = "LIST",
    extended: Mapping[str, bytes] | None = None,
) -> bytes:
    """``* LIST (\\HasNoChildren) "/" "INBOX/x"`` (RFC 9051 §7.3.1, RFC 5258 §6).

    ``command="LSUB"`` for LSUB. ``extended`` maps an extended item tag to
    its already rendered value, e.g. ``{"CHILDINFO": b'("SUBSCRIBED")'}``.
    """
    delim = b"NIL" if delimiter is None else quoted(delimiter)
    line = (
        b"* " + command.encode("ascii") + b" " + flag_list(tuple(attributes)) + b" "
        + delim + b" " + mailbox(name)
    )
    if extended:
        line += b" " + paren(quoted(k) + b" " + v for k, v in extended.items())
    return line + b"\r\n"


def status(name: str, items: Mapping[str, int]) -> bytes:
    """``* STATUS "INBOX" (MESSAGES 3 UIDNEXT 9)`` in the caller's item order."""
    body = b" ".join(k.encode("ascii") + b" %d" % v for k, v in items.items())
    return b"* STATUS " + mailbox(name) + b" (" + body + b")\r\n"


def enabled(caps: Iterable[str]) -> bytes:
    """RFC 5161 §3.2 ``* ENABLED ...`` (may be empty)."""
    return ("* ENABLED " + " ".join(caps)).rstrip().encode("ascii") + b"\r\n"


def id_response(params: Mapping[str, str | None] | None) -> bytes:
    """RFC 2971 §3.2 ``* ID ("name" "Congvu" ...)`` or ``* ID NIL``."""
    if not params:
        return b"* ID NIL\r\n"
    return b"* ID " + paren(string(k) + b" " + nstring(v) for k, v in params.items()) + b"\r\n"


def _ns(entries: Sequence[tuple[str, str | None]] | None) -> bytes:
    if not entries:
        return b"NIL"
    return paren(
        b"(" + string(mutf7_encode(p)) + b" " + (b"NIL" if d is None else quoted(d)) + b")"
        for p, d in entries
    )


def namespace(
    personal: Sequence[tuple[str, str | None]] | None,
    other_users: Sequence[tuple[str, str | None]] | None,
    shared: Sequence[tuple[str, str | None]] | None,
) -> bytes:
    """RFC 2342 §5 ``* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL``."""
    return b"* NAMESPACE " + _ns(personal) + b" " + _ns(other_users) + b" " + _ns(shared) + b"\r\n"


def acl(name: str, entries: Iterable[tuple[str, str]]) -> bytes:
    """RFC 4314 §3.6 ``* ACL mailbox identifier rights ...``."""
    out = b"* ACL " + mailbox(name)
    for ident, rights in entries:
        out += b" " + astring(ident) + b" " + astring(rights)
    return out + b"\r\n"


def listrights(name: str, identifier: str, required: str, optional: Iterable[str]) -> bytes:
    """RFC 4314 §3.7 ``* LISTRIGHTS mailbox id required-rights optional-rights...``."""
    out = b"* LISTRIGHTS " + mailbox(name) + b" " + astring(identifier) + b" "
    out += astring(required) if required else b'""'
    for group in optional:
        out += b" " + astring(group)
    return out + b"\r\n"


def myrights(name: str, rights: str) -> bytes:
    """RFC 4314 §3.8 ``* MYRIGHTS mailbox rights``."""
    return b"* MYRIGHTS " + mailbox(name) + b" " + (astring(rights) if rights else b'""') + b"\r\n"


def quota(root: str, resources: Iterable[tuple[str, int, int]]) -> bytes:
    """RFC 9208 §5.1 ``* QUOTA root (STORAGE usage limit ...)``."""
    body = b" ".join(b"%s %d %d" % (n.encode("ascii"), u, lim) for n, u, lim in resources)
    return b"* QUOTA " + astring(root) + b" (" + body + b")\r\n"


def quotaroot(name: str, roots: Iterable[str]) -> bytes:
    """RFC 9208 §5.2 ``* QUOTAROOT mailbox root...``."""
    out = b"* QUOTAROOT " + mailbox(name)
    for root in roots:
        out += b" " + astring(root)
    return out + b"\r\n"


# -- FETCH (RFC 9051 §7.5.2) --------------------------------------------------


def fetch_response(seq: int, items: Sequence[bytes]) -> bytes:
    """``* seq FETCH (item item ...)``; items come from the ``fetch_*`` helpers."""
    return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(items))


def fetch_uid(uid: int) -> bytes:
    return b"UID %d" % uid


def fetch_flags(flag_names: Iterable[str]) -> bytes:
    return b"FLAGS " + flag_list(flag_names)


def fetch_internaldate(dt: datetime) -> bytes:
    return b"INTERNALDATE " + format_internaldate(dt)


def fetch_size(size: int) -> bytes:
    return b"RFC822.SIZE %d" % size


def fetch_modseq(modseq: int) -> bytes:
    """RFC 7162 §3.1.4.1 ``MODSEQ (n)``."""
    return b"MODSEQ (%d)" % modseq


def fetch_raw(name: bytes | str, raw: bytes) -> bytes:
    """A preformatted item, e.g. ``fetch_raw(b"ENVELOPE", envelope_bytes)`` stored at delivery."""
    return _b(name) + b" " + raw


def fetch_data(key: bytes, data: bytes | None) -> bytes:
    """Body data: ``key`` from :attr:`FetchAttr.key` (``BODY[HEADER]<0>``), then literal or NIL.

    Section data is always sent as a literal: it may hold CR, LF and 8-bit.
    """
    if data is None:
        return key + b" NIL"
    return key + b" {%d}\r\n" % len(data) + data

