"""SEARCH program and SORT criteria parsing.

RFC 9051 §6.4.4 (search keys), RFC 4731 (ESEARCH ``RETURN``), RFC 5182
(SEARCHRES ``SAVE`` and ``$``), RFC 7162 §3.1.5 (``MODSEQ``), RFC 5256 §3
(SORT). Produces the node tree of :mod:`.searchkeys`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .commands import SortCriterion
from .errors import BadCharset
from .lexer import Reader
from .searchkeys import (
    All, And, DateKey, Flag, Header, ModSeq, New, Not, Old, Or, SearchKey, SeqSet, Size,
    Text, UidSet,
)
from .sequence import SequenceSet

__all__ = [
    "SUPPORTED_CHARSETS",
    "parse_charset",
    "parse_search_program",
    "parse_search_returns",
    "parse_sequence_set",
    "parse_sort_criteria",
]

#: CHARSETs accepted by SEARCH/SORT; others get ``NO [BADCHARSET (...)]``.
SUPPORTED_CHARSETS = ("US-ASCII", "UTF-8")
_CODECS = {"US-ASCII": "ascii", "UTF-8": "utf-8"}

_SEQSET = re.compile(rb"[0-9*:,$]+")
_MAX_DEPTH = 64  # nested parentheses/NOT/OR: enough for any client, bounded recursion

# key → Flag node (RFC 9051 §6.4.4)
_FLAG_KEYS: dict[str, SearchKey] = {
    "ANSWERED": Flag("\\Answered"), "UNANSWERED": Flag("\\Answered", False),
    "DELETED": Flag("\\Deleted"), "UNDELETED": Flag("\\Deleted", False),
    "DRAFT": Flag("\\Draft"), "UNDRAFT": Flag("\\Draft", False),
    "FLAGGED": Flag("\\Flagged"), "UNFLAGGED": Flag("\\Flagged", False),
    "SEEN": Flag("\\Seen"), "UNSEEN": Flag("\\Seen", False),
    "RECENT": Flag("\\Recent"),
    "ALL": All(), "NEW": New(), "OLD": Old(),
}
_TEXT_KEYS = {"FROM", "TO", "CC", "BCC", "SUBJECT", "BODY", "TEXT"}
_DATE_KEYS = {
    "BEFORE": ("internal", "before"), "ON": ("internal", "on"), "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"), "SENTON": ("sent", "on"), "SENTSINCE": ("sent", "since"),
}
_RETURN_OPTS = {"MIN", "MAX", "ALL", "COUNT", "SAVE"}
_SORT_KEYS = {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}


def parse_sequence_set(r: Reader) -> SequenceSet:
    m = _SEQSET.match(r.buf, r.pos, r.end)
    if m is None:
        raise r.error("Expected sequence set")
    try:
        seqset = SequenceSet.parse(m.group(0))
    except ValueError as exc:
        raise r.error(f"Invalid sequence set: {exc}") from None
    r.pos = m.end()
    return seqset


def parse_charset(r: Reader) -> str:
    """``charset = atom / quoted``; raises BadCharset if unsupported."""
    raw = r.quoted() if r.peek() == 0x22 else r.atom()
    charset = raw.decode("ascii", "replace").upper()
    if charset not in _CODECS:
        raise BadCharset(charset, SUPPORTED_CHARSETS, tag=r.tag)
    return charset


def parse_search_returns(r: Reader) -> tuple[str, ...]:
    """``RETURN (opts)`` after the keyword; ``()`` means ``(ALL)`` (RFC 4731 §3.1)."""
    r.sp()

    def opt() -> str:
        word = r.keyword()
        if word not in _RETURN_OPTS:
            raise r.error(f"Unknown SEARCH RETURN option {word}")
        return word

    opts = tuple(dict.fromkeys(r.paren_list(opt)))
    return opts or ("ALL",)


class _SearchParser:
    """Recursive-descent over ``search-key``; strings decoded with the charset."""

    def __init__(self, r: Reader, charset: str) -> None:
        self.r = r
        self.codec = _CODECS[charset]

    def text(self) -> str:
        raw = self.r.astring()
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            raise self.r.error(f"Search string is not valid {self.codec}") from None

    def keys(self, depth: int, stop: Callable[[], bool]) -> SearchKey:
        """``search-key *(SP search-key)`` until ``stop()``; one key stays bare."""
        keys = [self.key(depth)]
        while not stop():
            self.r.sp()
            keys.append(self.key(depth))
        return keys[0] if len(keys) == 1 else And(tuple(keys))

    def key(self, depth: int) -> SearchKey:
        r = self.r
        if depth > _MAX_DEPTH:
            raise r.error("Search program nested too deeply")
        c = r.peek()
        if c == 0x28:  # '('
            r.pos += 1
            inner = self.keys(depth + 1, lambda: r.maybe(b")"))
            return inner
        if 0x30 <= c <= 0x39 or c in (0x2A, 0x24):  # digit, '*', '$'
            return SeqSet(parse_sequence_set(r))
        word = r.keyword()
        node = _FLAG_KEYS.get(word)
        if node is not None:
            return node
        r.sp()
        if word in _TEXT_KEYS:
            return Text(word.lower(), self.text())
        if word in _DATE_KEYS:
            field, op = _DATE_KEYS[word]
            return DateKey(field, op, r.date())  # type: ignore[arg-type]
        if word == "KEYWORD" or word == "UNKEYWORD":
            flag = r.atom().decode("utf-8", "surrogateescape")
            return Flag(flag, word == "KEYWORD")
        if word == "LARGER" or word == "SMALLER":
            return Size(word.lower(), r.number64())  # type: ignore[arg-type]
        if word == "HEADER":
            name = r.astring().decode("ascii", "replace")
            r.sp()
            return Header(name, self.text())
        if word == "UID":
            return UidSet(parse_sequence_set(r))
        if word == "NOT":
            return Not(self.key(depth + 1))
        if word == "OR":
            left = self.key(depth + 1)
            r.sp()
            return Or(left, self.key(depth + 1))
        if word == "MODSEQ":
            return self.modseq()
        raise r.error(f"Unknown search key {word}")

    def modseq(self) -> ModSeq:
        # RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer
        r = self.r
        if r.peek() == 0x22:
            entry = r.quoted().decode("utf-8", "replace")
            r.sp()
            etype = r.keyword().lower()
            if etype not in ("priv", "shared", "all"):
                raise r.error("Invalid MODSEQ entry type")
            r.sp()
            return ModSeq(r.number64(), entry, etype)
        return ModSeq(r.number64())


def parse_search_program(r: Reader, charset: str | None = None) -> tuple[str | None, SearchKey]:
    """``["CHARSET" SP charset SP] search-key *(SP search-key)`` to the end of the command.

    ``charset`` given (SORT) skips the CHARSET prefix. Returns the charset
    (None if absent) and the key (an :class:`And` for several top-level keys).
    """
    if charset is None and r.buf[r.pos : r.pos + 8].upper() == b"CHARSET ":
        r.pos += 8
        charset = parse_charset(r)
        r.sp()
    # No CHARSET means US-ASCII (RFC 3501 §6.4.4), but clients send raw UTF-8
    # anyway and UTF-8 is a superset: decode as UTF-8.
    parser = _SearchParser(r, charset or "UTF-8")
    key = parser.keys(0, r.at_end)
    return charset, key


def parse_sort_criteria(r: Reader) -> tuple[SortCriterion, ...]:
    """``"(" sort-criterion *(SP sort-criterion) ")"`` (RFC 5256 §3)."""

    def criterion() -> SortCriterion:
        word = r.keyword()
        reverse = word == "REVERSE"
        if reverse:
            r.sp()
            word = r.keyword()
        if word not in _SORT_KEYS:
            raise r.error(f"Unknown sort key {word}")
        return SortCriterion(word, reverse)

    return tuple(r.paren_list(criterion, allow_empty=False))
