"""Search key tree: what SEARCH, UID SEARCH and SORT parse into.

Nodes are small frozen dataclasses (RFC 9051 §6.4.4 ``search-key``). The
parser keeps the client's intent (``NEW`` stays :class:`New`); the
evaluation module :mod:`.search` normalizes the tree (folds text, expands
``NEW``/``OLD``, flattens ``AND``) for predicates and SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, TypeAlias

from .sequence import SequenceSet

__all__ = [
    "TEXT_FIELDS",
    "All",
    "And",
    "DateKey",
    "Flag",
    "Header",
    "ModSeq",
    "New",
    "Not",
    "Old",
    "Or",
    "SearchKey",
    "SeqSet",
    "Size",
    "Text",
    "UidSet",
]

#: Text keys of RFC 9051 §6.4.4 and the message field each searches.
TEXT_FIELDS = frozenset({"from", "to", "cc", "bcc", "subject", "body", "text"})


@dataclass(frozen=True, slots=True)
class All:
    """``ALL``: every message."""


@dataclass(frozen=True, slots=True)
class SeqSet:
    """A bare sequence set: messages whose sequence number is in it."""

    seqset: SequenceSet


@dataclass(frozen=True, slots=True)
class UidSet:
    """``UID <sequence-set>``."""

    seqset: SequenceSet


@dataclass(frozen=True, slots=True)
class Flag:
    """Flag present (``SEEN``, ``KEYWORD x``) or absent (``UNSEEN``, ``UNKEYWORD x``).

    ``flag`` is a system flag in canonical case (``\\Seen``, ``\\Recent``) or a keyword.
    """

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class New:
    """``NEW``: ``\\Recent`` and not ``\\Seen``."""


@dataclass(frozen=True, slots=True)
class Old:
    """``OLD``: not ``\\Recent``."""


@dataclass(frozen=True, slots=True)
class DateKey:
    """``BEFORE/ON/SINCE`` (internal date) and ``SENTBEFORE/SENTON/SENTSINCE`` (Date: header).

    RFC 9051 §6.4.4: dates compare disregarding time and timezone.
    """

    field: Literal["internal", "sent"]
    op: Literal["before", "on", "since"]
    date: date


@dataclass(frozen=True, slots=True)
class Size:
    """``LARGER n`` / ``SMALLER n`` on RFC822.SIZE."""

    op: Literal["larger", "smaller"]
    size: int


@dataclass(frozen=True, slots=True)
class Text:
    """``FROM/TO/CC/BCC/SUBJECT/BODY/TEXT string``: case-insensitive substring.

    ``field`` is one of :data:`TEXT_FIELDS` (lower case). ``value`` is the
    decoded search string (after CHARSET); folded by :func:`.search.normalize`.
    """

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class Header:
    """``HEADER field-name string``; an empty string matches any message with the field."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ModSeq:
    """``MODSEQ [entry-name entry-type] n`` (RFC 7162 §3.1.5): modseq >= n."""

    modseq: int
    entry_name: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Or:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class And:
    """Several keys that must all match (the top level, or a parenthesised list)."""

    keys: tuple[SearchKey, ...]


SearchKey: TypeAlias = (
    All | SeqSet | UidSet | Flag | New | Old | DateKey | Size | Text | Header | ModSeq | Not | Or | And
)
