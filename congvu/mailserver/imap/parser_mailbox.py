"""Parsing of the mailbox commands: SELECT/EXAMINE, CREATE, RENAME, LIST, LSUB, STATUS, APPEND.

Split from :mod:`.parser` to keep modules small. RFC 9051 §6.3, RFC 5258
(LIST-EXTENDED), RFC 5819 (LIST-STATUS), RFC 6154 (SPECIAL-USE), RFC 7162
(CONDSTORE/QRESYNC select parameters), RFC 3502 (MULTIAPPEND).
"""

from __future__ import annotations

from collections.abc import Callable

from . import commands as c
from .lexer import Reader, decode_mailbox
from .mutf7 import MUTF7Error
from .parser_search import parse_sequence_set

__all__ = [
    "STATUS_ITEMS",
    "parse_append",
    "parse_create",
    "parse_examine",
    "parse_list",
    "parse_lsub",
    "parse_rename",
    "parse_select",
    "parse_status",
]

#: STATUS data items (RFC 9051 §6.3.11, RFC 7162 §3.1.9, RFC 8438, RFC 7889, RFC 9208
#: §4.2 DELETED-STORAGE). Only items the server answers: an unknown one is BAD
#: rather than silently left out (MAILBOXID would need OBJECTID, RFC 8474).
STATUS_ITEMS = frozenset({
    "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
    "HIGHESTMODSEQ", "APPENDLIMIT", "DELETED-STORAGE",
})
# RFC 5258 §3.1 / RFC 6154 §5.
_LIST_SELECT = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
# RFC 6154 §2 special-use attributes, canonical spelling.
_USE_ATTRS = {
    a.upper(): a
    for a in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}

_Parse = Callable[[Reader, str], c.Command]


def _qresync(r: Reader) -> c.QResyncParams:
    # RFC 7162 §3.2.5: "(" uidvalidity SP mod-sequence-value [SP known-uids]
    #                  [SP seq-match-data] ")"
    r.expect(b"(")
    uidvalidity = r.nz_number()
    r.sp()
    modseq = r.number64()
    known = None
    match = None
    if r.maybe_sp() and r.peek() != 0x28:
        known = parse_sequence_set(r)
        r.maybe_sp()
    if r.peek() == 0x28:
        r.pos += 1
        seqs = parse_sequence_set(r)
        r.sp()
        uids = parse_sequence_set(r)
        r.expect(b")")
        match = (seqs, uids)
    r.expect(b")")
    return c.QResyncParams(uidvalidity, modseq, known, match)


def _select_like(cls: type[c.Select]) -> _Parse:
    def parse(r: Reader, tag: str) -> c.Command:
        r.sp()
        mailbox = r.mailbox()
        condstore = False
        qresync = None
        if r.maybe_sp():
            def param() -> None:
                nonlocal condstore, qresync
                word = r.keyword()
                if word == "CONDSTORE":
                    condstore = True
                elif word == "QRESYNC" and qresync is None:
                    r.sp()
                    qresync = _qresync(r)
                else:
                    raise r.error(f"Unknown {cls.name} parameter {word}")

            r.paren_list(param)
        return cls(tag, mailbox, condstore, qresync)

    return parse


def _create(r: Reader, tag: str) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    use: list[str] = []
    if r.maybe_sp():
        def param() -> None:
            word = r.keyword()
            if word != "USE":  # RFC 6154 §3
                raise r.error(f"Unknown CREATE parameter {word}")
            r.sp()
            for attr in r.paren_list(r.flag):
                use.append(_USE_ATTRS.get(attr.upper(), attr))

        r.paren_list(param)
    return c.Create(tag, mailbox, tuple(dict.fromkeys(use)))


def _rename(r: Reader, tag: str) -> c.Command:
    r.sp()
    old = r.mailbox()
    r.sp()
    return c.Rename(tag, old, r.mailbox())


def _pattern(r: Reader) -> str:
    raw = r.list_mailbox()
    try:
        # Patterns are mailbox names with wildcards; "%" and "*" are plain
        # printable ASCII in modified UTF-7, so decoding is the same.
        return decode_mailbox(raw) if raw else ""
    except MUTF7Error as exc:
        raise r.error(f"Invalid mailbox pattern: {exc}") from None


def _status_items(r: Reader) -> tuple[str, ...]:
    def item() -> str:
        word = r.keyword()
        if word not in STATUS_ITEMS:
            raise r.error(f"Unknown STATUS item {word}")
        return word

    return tuple(dict.fromkeys(r.paren_list(item, allow_empty=False)))


def _list(r: Reader, tag: str) -> c.Command:
    # RFC 5258 §6: list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    #                     [SP list-return-opts]
    r.sp()
    extended = False
    selection: set[str] = set()
    if r.peek() == 0x28:
        extended = True
        for word in r.paren_list(r.keyword):
            if word not in _LIST_SELECT:  # RFC 5258 §3: unknown selection option → BAD
                raise r.error(f"Unknown LIST selection option {word}")
            selection.add(word)
        if selection == {"RECURSIVEMATCH"}:  # RFC 5258 §3.1
            raise r.error("RECURSIVEMATCH needs another selection option")
        r.sp()
    reference = _pattern(r)
    r.sp()
    if r.peek() == 0x28:
        extended = True
        patterns = tuple(r.paren_list(lambda: _pattern(r), allow_empty=False))
    else:
        patterns = (_pattern(r),)
    returns: set[str] = set()
    status_items: tuple[str, ...] = ()
    if r.maybe_sp():
        extended = True
        if r.keyword() != "RETURN":
            raise r.error("Expected RETURN")
        r.sp()

        def option() -> str:
            nonlocal status_items
            word = r.keyword()
            if word not in _LIST_RETURN:
                raise r.error(f"Unknown LIST return option {word}")
            if word == "STATUS":  # RFC 5819 §2
                r.sp()
                status_items = _status_items(r)
            return word

        returns.update(r.paren_list(option))
    return c.List(
        tag, reference, patterns, frozenset(selection), frozenset(returns), status_items, extended
    )


def _lsub(r: Reader, tag: str) -> c.Command:
    r.sp()
    reference = _pattern(r)
    r.sp()
    return c.Lsub(tag, reference, _pattern(r))


def _status(r: Reader, tag: str) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return c.Status(tag, mailbox, _status_items(r))


def _append(r: Reader, tag: str) -> c.Command:
    # RFC 9051 §6.3.12; RFC 3502 MULTIAPPEND: several messages in one command.
    r.sp()
    mailbox = r.mailbox()
    messages: list[c.AppendMessage] = []
    while r.maybe_sp():
        flags: tuple[str, ...] = ()
        when = None
        if r.peek() == 0x28:
            flags = r.flag_list()
            r.sp()
        if r.peek() == 0x22:
            when = r.date_time()
            r.sp()
        binary = r.peek() == 0x7E  # "~{n}" literal8, RFC 3516 §4.4
        if r.peek() != 0x7B and not binary:
            raise r.error("Expected message literal")
        data = r.literal(allow_literal8=True)
        messages.append(c.AppendMessage(flags, when, data, binary))
    if not messages:
        raise r.error("Missing message literal")
    return c.Append(tag, mailbox, tuple(messages))


parse_select = _select_like(c.Select)
parse_examine = _select_like(c.Examine)
parse_create = _create
parse_rename = _rename
parse_list = _list
parse_lsub = _lsub
parse_status = _status
parse_append = _append
