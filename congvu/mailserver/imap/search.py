"""Pure SEARCH evaluation: normalize a key tree, and test it on messages.

Two consumers:

* The store layer turns the tree from :func:`normalize` into SQL. In that
  tree text values are already folded with :func:`congvu.textfold.fold`
  (RFC 9051 §6.4.4 text keys are case-insensitive *substring* matches; we
  extend that to diacritics, so the stored folded text is compared with
  ``strpos``/``LIKE``), ``NEW``/``OLD`` are expanded to flags, ``NOT`` of a
  flag is a negative flag, nested ``AND`` is flattened, and — given the
  session's UID list — sequence numbers and ``$`` become UID ranges, so
  SQL never needs sequence numbers.
* Small sets (IDLE updates, a few hundred messages) are filtered in Python
  with :func:`compile_predicate` over :class:`MessageInfo` objects whose
  text fields hold the same folded text the store keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from congvu.textfold import fold

from .searchkeys import (
    All, And, DateKey, Flag, Header, ModSeq, New, Not, Old, Or, SearchKey, SeqSet, Size,
    Text, UidSet,
)
from .sequence import SequenceSet

__all__ = ["MessageInfo", "compile_predicate", "fold", "normalize", "required_fields"]

Predicate = Callable[["MessageInfo"], bool]


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What a predicate may look at. Text fields must already be folded.

    ``sent_date`` is the Date: header (None when absent or unparsable: then
    SENT* keys use ``internal_date``, as Dovecot does). ``headers`` maps a
    lower-case field name to the folded values of all its occurrences
    joined by newlines (for ``HEADER``). ``header_text``/``body`` back
    ``TEXT`` and ``BODY``.
    """

    seq: int
    uid: int
    flags: frozenset[str] = frozenset()
    internal_date: datetime = datetime(1970, 1, 1)
    size: int = 0
    sent_date: datetime | date | None = None
    from_: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    header_text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    modseq: int = 0
    keywords: frozenset[str] = frozenset()

    @classmethod
    def from_search_text(
        cls, *, search_headers: str, search_body: str, **fields: Any
    ) -> MessageInfo:
        """Build from the texts :mod:`congvu.mailserver.mime` stores at delivery.

        ``search_headers`` is ``fold_lines`` of ``Name: value`` lines, so the
        per-field texts (FROM, TO, CC, BCC, SUBJECT, HEADER) are split out of
        it here; other fields (``seq``, ``uid``, ``flags`` ...) pass through.
        """
        headers: dict[str, str] = {}
        for line in search_headers.split("\n"):
            name, sep, value = line.partition(": ")
            if not sep:
                name, value = line.rstrip(":"), ""
            prev = headers.get(name)
            headers[name] = value if prev is None else prev + "\n" + value
        return cls(
            header_text=search_headers,
            body=search_body,
            headers=headers,
            from_=headers.get("from", ""),
            to=headers.get("to", ""),
            cc=headers.get("cc", ""),
            bcc=headers.get("bcc", ""),
            subject=headers.get("subject", ""),
            **fields,
        )


# -- normalization -------------------------------------------------------------


def _seq_to_uids(seqset: SequenceSet, uids: Sequence[int]) -> SequenceSet:
    # Session UIDs ascend with sequence numbers, and no message can appear
    # inside a UID range later (UIDs strictly increase, RFC 9051 §2.3.1.1),
    # so seq range lo..hi is exactly UID range uids[lo-1]..uids[hi-1].
    return SequenceSet.from_ranges(
        (uids[lo - 1], uids[hi - 1]) for lo, hi in seqset.resolve(len(uids))
    )


def normalize(
    key: SearchKey,
    *,
    uids: Sequence[int] | None = None,
    saved_uids: SequenceSet | None = None,
) -> SearchKey:
    """Canonical tree for the store (see module docstring).

    ``uids``: the session's UIDs in sequence order; when given, every
    :class:`SeqSet` becomes a :class:`UidSet` with explicit ranges.
    ``saved_uids``: the RFC 5182 saved result for ``$`` (empty if None).
    """

    def norm(k: SearchKey) -> SearchKey:
        if isinstance(k, Text):
            return Text(k.field, fold(k.value))
        if isinstance(k, Header):
            return Header(k.name.lower(), fold(k.value))
        if isinstance(k, New):  # RFC 9051 §6.4.4: NEW = RECENT UNSEEN
            return And((Flag("\\Recent"), Flag("\\Seen", False)))
        if isinstance(k, Old):
            return Flag("\\Recent", False)
        if isinstance(k, SeqSet):
            if k.seqset.saved:
                return UidSet(saved_uids or SequenceSet(()))
            if uids is not None:
                return UidSet(_seq_to_uids(k.seqset, uids))
            return k
        if isinstance(k, UidSet) and k.seqset.saved:
            return UidSet(saved_uids or SequenceSet(()))
        if isinstance(k, Not):
            inner = norm(k.key)
            if isinstance(inner, Not):
                return inner.key
            if isinstance(inner, Flag):
                return Flag(inner.flag, not inner.present)
            return Not(inner)
        if isinstance(k, Or):
            left, right = norm(k.left), norm(k.right)
            if isinstance(left, All) or isinstance(right, All):
                return All()
            return Or(left, right)
        if isinstance(k, And):
            flat: list[SearchKey] = []
            for sub in k.keys:
                n = norm(sub)
                if isinstance(n, And):
                    flat.extend(n.keys)
                elif not isinstance(n, All):
                    flat.append(n)
            if not flat:
                return All()
            return flat[0] if len(flat) == 1 else And(tuple(dict.fromkeys(flat)))
        return k

    return norm(key)


def required_fields(key: SearchKey) -> frozenset[str]:
    """:class:`MessageInfo` fields a key needs (lets the store load only those)."""
    out: set[str] = set()

    def walk(k: SearchKey) -> None:
        if isinstance(k, (And,)):
            for sub in k.keys:
                walk(sub)
        elif isinstance(k, Or):
            walk(k.left)
            walk(k.right)
        elif isinstance(k, Not):
            walk(k.key)
        elif isinstance(k, Text):
            if k.field == "text":
                out.update(("header_text", "body"))
            else:
                out.add("from_" if k.field == "from" else k.field)
        elif isinstance(k, Header):
            out.add("headers")
        elif isinstance(k, DateKey):
            out.add("internal_date")
            if k.field == "sent":
                out.add("sent_date")
        elif isinstance(k, Size):
            out.add("size")
        elif isinstance(k, ModSeq):
            out.add("modseq")
        elif isinstance(k, (Flag, New, Old)):
            out.update(("flags", "keywords"))
        elif isinstance(k, SeqSet):
            out.add("seq")
        elif isinstance(k, UidSet):
            out.add("uid")

    walk(key)
    return frozenset(out)


# -- predicates ---------------------------------------------------------------


def _day(value: datetime | date) -> date:
    # RFC 9051 §6.4.4: "disregarding time and timezone" — the date as written.
    return value.date() if isinstance(value, datetime) else value


def _date_pred(k: DateKey) -> Predicate:
    target = k.date
    sent = k.field == "sent"

    def day_of(m: MessageInfo) -> date:
        if sent and m.sent_date is not None:
            return _day(m.sent_date)
        return _day(m.internal_date)

    if k.op == "before":
        return lambda m: day_of(m) < target
    if k.op == "on":
        return lambda m: day_of(m) == target
    return lambda m: day_of(m) >= target


def _flag_pred(k: Flag) -> Predicate:
    flag = k.flag
    if flag.startswith("\\"):
        has: Predicate = lambda m: flag in m.flags  # noqa: E731 - canonical system flag
    else:
        low = flag.lower()  # keywords compare case-insensitively (RFC 9051 §2.3.2)

        def has(m: MessageInfo) -> bool:
            return any(f.lower() == low for f in m.flags) or any(
                f.lower() == low for f in m.keywords
            )

    if k.present:
        return has
    return lambda m: not has(m)


_TEXT_ATTR = {"from": "from_", "to": "to", "cc": "cc", "bcc": "bcc", "subject": "subject",
              "body": "body"}


def compile_predicate(
    key: SearchKey,
    *,
    max_seq: int,
    max_uid: int,
    saved_uids: SequenceSet | None = None,
) -> Predicate:
    """A ``MessageInfo -> bool`` test for ``key`` (normalized here first).

    ``max_seq``/``max_uid`` resolve ``*``: the message count and the highest
    UID in the mailbox (RFC 9051 §9 ``seq-number``).
    """

    def comp(k: SearchKey) -> Predicate:
        if isinstance(k, All):
            return lambda m: True
        if isinstance(k, Text):
            needle = k.value
            if k.field == "text":
                return lambda m: needle in m.header_text or needle in m.body
            attr = _TEXT_ATTR[k.field]
            return lambda m: needle in getattr(m, attr)
        if isinstance(k, Header):
            name, needle = k.name, k.value

            def header(m: MessageInfo) -> bool:
                value = m.headers.get(name)
                return value is not None and needle in value

            return header
        if isinstance(k, Flag):
            return _flag_pred(k)
        if isinstance(k, DateKey):
            return _date_pred(k)
        if isinstance(k, Size):
            n = k.size
            if k.op == "larger":
                return lambda m: m.size > n
            return lambda m: m.size < n
        if isinstance(k, ModSeq):  # RFC 7162 §3.1.5: modseq >= value
            ms = k.modseq
            return lambda m: m.modseq >= ms
        if isinstance(k, SeqSet):
            match = k.seqset.matcher(max_seq)
            return lambda m: match(m.seq)
        if isinstance(k, UidSet):
            uid_match = _uid_matcher(k.seqset, max_uid)
            return lambda m: uid_match(m.uid)
        if isinstance(k, Not):
            inner = comp(k.key)
            return lambda m: not inner(m)
        if isinstance(k, Or):
            left, right = comp(k.left), comp(k.right)
            return lambda m: left(m) or right(m)
        if isinstance(k, And):
            preds = tuple(comp(sub) for sub in _cheap_first(k.keys))
            return lambda m: all(p(m) for p in preds)
        raise TypeError(f"not a search key: {k!r}")  # pragma: no cover

    return comp(normalize(key, saved_uids=saved_uids))


def _uid_matcher(seqset: SequenceSet, max_uid: int) -> Callable[[int], bool]:
    # RFC 9051 §6.4.9: "*" is the largest UID in use, and n:* always includes
    # it even when n is larger; resolve() clips accordingly. An explicit UID
    # above max_uid cannot exist, so clipping loses nothing.
    return seqset.matcher(max_uid)


_COST = {All: 0, Flag: 1, Size: 1, ModSeq: 1, SeqSet: 1, UidSet: 1, DateKey: 2, Not: 3,
         Or: 3, And: 3, Header: 4, Text: 5}


def _cheap_first(keys: tuple[SearchKey, ...]) -> list[SearchKey]:
    """Order AND operands so cheap tests short-circuit the substring scans."""
    return sorted(keys, key=lambda k: _COST.get(type(k), 4))
