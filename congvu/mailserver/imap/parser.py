"""IMAP command parser: one complete command buffer → a :class:`.commands.Command`.

Pure: no I/O, no state. The connection frames commands with
:class:`.framer.CommandFramer` (re-exported here) and hands each buffer —
command line, literals inline, final CRLF — to :func:`parse_command`.

Errors: :class:`.errors.ParseError` (``tag BAD ...``; untagged when even the
tag is unreadable) and :class:`.errors.BadCharset` (``tag NO
[BADCHARSET ...]``); both are :class:`.errors.ImapError` and render with
``err.response()``. Which command is allowed in which state is the
session's table, not the parser's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from . import commands as c
from .errors import ParseError
from .framer import CommandFramer, CommandReady, ContinuationNeeded, FramerEvent, Rejected
from .lexer import Reader
from .parser_fetch import parse_fetch_atts, parse_fetch_modifiers
from .parser_mailbox import (
    STATUS_ITEMS, parse_append, parse_create, parse_examine, parse_list, parse_lsub,
    parse_rename, parse_select, parse_status,
)
from .parser_search import (
    parse_charset, parse_search_program, parse_search_returns, parse_sequence_set,
    parse_sort_criteria,
)

__all__ = [
    "STATUS_ITEMS",
    "CommandFramer",
    "CommandReady",
    "ContinuationNeeded",
    "FramerEvent",
    "Rejected",
    "is_idle_done",
    "parse_command",
]

_Parse = Callable[[Reader, str], c.Command]


def is_idle_done(line: bytes) -> bool:
    """Is this line the ``DONE`` that ends IDLE (RFC 2177 §3)?"""
    return line.rstrip(b"\r\n").upper() == b"DONE"


def parse_command(buf: bytes) -> c.Command:
    """Parse one complete command; raise :class:`.errors.ImapError` if invalid."""
    r = Reader(buf)
    if r.at_end():
        raise ParseError("Empty command line")
    try:
        tag = r.tag_token()
    except ParseError:
        raise ParseError("Missing or invalid tag") from None
    r.tag = tag
    if r.at_end():
        raise r.error("Missing command")
    r.sp()
    word = r.keyword()
    if word == "UID":
        r.sp()
        sub = r.keyword()
        parse_uid = _UID_COMMANDS.get(sub)
        if parse_uid is None:
            raise r.error(f"Unknown UID command {sub}")
        cmd = parse_uid(r, tag)
    else:
        parse = _COMMANDS.get(word)
        if parse is None:
            raise r.error(f"Unknown command {word[:40]}")
        cmd = parse(r, tag)
    r.expect_end()
    return cmd


# -- argument-less commands ---------------------------------------------------


def _simple(cls: type[c.Command]) -> _Parse:
    return lambda r, tag: cls(tag)


# -- not authenticated --------------------------------------------------------


def _authenticate(r: Reader, tag: str) -> c.Command:
    r.sp()
    mech = r.atom().decode("ascii", "replace").upper()
    initial: bytes | None = None
    if r.maybe_sp():  # RFC 4959 §3: initial-response = base64 / "="
        raw = r.atom()
        if raw == b"=":
            initial = b""
        else:
            try:
                initial = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise r.error("Invalid base64 in initial response") from None
    return c.Authenticate(tag, mech, initial)


def _login(r: Reader, tag: str) -> c.Command:
    r.sp()
    user = r.astring_str()
    r.sp()
    return c.Login(tag, user, r.astring_str())


# -- authenticated ------------------------------------------------------------


def _mailbox_cmd(cls: Callable[[str, str], c.Command]) -> _Parse:
    def parse(r: Reader, tag: str) -> c.Command:
        r.sp()
        return cls(tag, r.mailbox())

    return parse


def _mailbox_ident_cmd(cls: Callable[[str, str, str], c.Command]) -> _Parse:
    def parse(r: Reader, tag: str) -> c.Command:
        r.sp()
        mailbox = r.mailbox()
        r.sp()
        return cls(tag, mailbox, r.astring_str())

    return parse


def _enable(r: Reader, tag: str) -> c.Command:
    caps = [r.keyword()] if r.maybe_sp() else []
    if not caps:
        raise r.error("ENABLE needs at least one capability")
    while r.maybe_sp():
        caps.append(r.keyword())
    return c.Enable(tag, tuple(caps))


def _id(r: Reader, tag: str) -> c.Command:
    # RFC 2971 §4: id-params-list = "(" *(string SP nstring) ")" / nil
    r.sp()
    if r.peek() != 0x28:
        if r.keyword() != "NIL":
            raise r.error("Expected ID parameter list or NIL")
        return c.Id(tag, None)
    r.pos += 1
    params: list[tuple[str, str | None]] = []
    while not r.maybe(b")"):
        if params:
            r.sp()
        key = r.string().decode("utf-8", "replace")
        r.sp()
        value = r.nstring()
        params.append((key, None if value is None else value.decode("utf-8", "replace")))
        if len(params) > 30:  # RFC 2971 §3.3: at most 30 field-value pairs
            raise r.error("Too many ID parameters")
    return c.Id(tag, tuple(params))


def _setacl(r: Reader, tag: str) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    ident = r.astring_str()
    r.sp()
    rights = r.astring_str()
    mode = rights[:1] if rights[:1] in ("+", "-") else ""
    return c.SetAcl(tag, mailbox, ident, rights[len(mode) :], mode)  # type: ignore[arg-type]


def _getquota(r: Reader, tag: str) -> c.Command:
    r.sp()
    return c.GetQuota(tag, r.astring_str())


def _setquota(r: Reader, tag: str) -> c.Command:
    # RFC 9208 §4.3: "(" [setquota-resource *(SP setquota-resource)] ")"
    r.sp()
    root = r.astring_str()
    r.sp()
    r.expect(b"(")
    limits: list[tuple[str, int]] = []
    while not r.maybe(b")"):
        if limits:
            r.sp()
        name = r.keyword()
        r.sp()
        limits.append((name, r.number64()))
    return c.SetQuota(tag, root, tuple(limits))


def _compress(r: Reader, tag: str) -> c.Command:
    r.sp()
    return c.Compress(tag, r.keyword())


# -- selected -----------------------------------------------------------------


def _search(uid: bool) -> _Parse:
    def parse(r: Reader, tag: str) -> c.Command:
        r.sp()
        returns = None
        if r.buf[r.pos : r.pos + 7].upper() == b"RETURN ":  # RFC 4731 §3.1
            r.pos += 6
            returns = parse_search_returns(r)
            r.sp()
        charset, key = parse_search_program(r)
        return c.Search(tag, key, uid, charset, returns)

    return parse


def _fetch(uid: bool) -> _Parse:
    def parse(r: Reader, tag: str) -> c.Command:
        r.sp()
        seqset = parse_sequence_set(r)
        r.sp()
        atts = parse_fetch_atts(r)
        changedsince, vanished = None, False
        if r.maybe_sp():
            changedsince, vanished = parse_fetch_modifiers(r)
        return c.Fetch(tag, seqset, atts, uid, changedsince, vanished)

    return parse


def _store(uid: bool) -> _Parse:
    def parse(r: Reader, tag: str) -> c.Command:
        r.sp()
        seqset = parse_sequence_set(r)
        r.sp()
        unchangedsince = None
        if r.peek() == 0x28:  # RFC 7162 §3.1.3 store-modifiers
            r.pos += 1
            if r.keyword() != "UNCHANGEDSINCE":
                raise r.error("Unknown STORE modifier")
            r.sp()
            unchangedsince = r.number64()
            r.expect(b")")
            r.sp()
        word = r.keyword()
        mode = word[:1] if word[:1] in ("+", "-") else ""
        item = word[len(mode) :]
        if item not in ("FLAGS", "FLAGS.SILENT"):
            raise r.error(f"Unknown STORE item {word}")
        r.sp()
        if r.peek() == 0x28:
            flags = r.flag_list()
        else:  # RFC 9051 §9: store-att-flags also allows flags without parentheses
            flags_l = [r.flag()]
            while r.maybe_sp():
                flags_l.append(r.flag())
            flags = tuple(flags_l)
        return c.Store(
            tag, seqset, mode, tuple(dict.fromkeys(flags)),  # type: ignore[arg-type]
            item.endswith(".SILENT"), uid, unchangedsince,
        )

    return parse


def _copy_like(cls: type[c.Copy] | type[c.Move], uid: bool) -> _Parse:
    def parse(r: Reader, tag: str) -> c.Command:
        r.sp()
        seqset = parse_sequence_set(r)
        r.sp()
        return cls(tag, seqset, r.mailbox(), uid)

    return parse


def _uid_expunge(r: Reader, tag: str) -> c.Command:
    r.sp()  # RFC 4315 §2.1
    return c.Expunge(tag, True, parse_sequence_set(r))


def _sort(uid: bool) -> _Parse:
    def parse(r: Reader, tag: str) -> c.Command:
        # RFC 5256 §3: SORT SP sort-criteria SP search-charset 1*(SP search-key)
        r.sp()
        criteria = parse_sort_criteria(r)
        r.sp()
        charset = parse_charset(r)
        r.sp()
        _, key = parse_search_program(r, charset)
        return c.Sort(tag, criteria, charset, key, uid)

    return parse


_COMMANDS: dict[str, _Parse] = {
    "CAPABILITY": _simple(c.Capability),
    "NOOP": _simple(c.Noop),
    "LOGOUT": _simple(c.Logout),
    "STARTTLS": _simple(c.StartTLS),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "SELECT": parse_select,
    "EXAMINE": parse_examine,
    "CREATE": parse_create,
    "DELETE": _mailbox_cmd(c.Delete),
    "RENAME": parse_rename,
    "SUBSCRIBE": _mailbox_cmd(c.Subscribe),
    "UNSUBSCRIBE": _mailbox_cmd(c.Unsubscribe),
    "LIST": parse_list,
    "LSUB": parse_lsub,
    "STATUS": parse_status,
    "APPEND": parse_append,
    "NAMESPACE": _simple(c.Namespace),
    "ENABLE": _enable,
    "ID": _id,
    "IDLE": _simple(c.Idle),
    "GETACL": _mailbox_cmd(c.GetAcl),
    "SETACL": _setacl,
    "DELETEACL": _mailbox_ident_cmd(c.DeleteAcl),
    "LISTRIGHTS": _mailbox_ident_cmd(c.ListRights),
    "MYRIGHTS": _mailbox_cmd(c.MyRights),
    "GETQUOTA": _getquota,
    "GETQUOTAROOT": _mailbox_cmd(c.GetQuotaRoot),
    "SETQUOTA": _setquota,
    "COMPRESS": _compress,
    "CHECK": _simple(c.Check),
    "CLOSE": _simple(c.Close),
    "UNSELECT": _simple(c.Unselect),
    "EXPUNGE": _simple(c.Expunge),
    "SEARCH": _search(False),
    "FETCH": _fetch(False),
    "STORE": _store(False),
    "COPY": _copy_like(c.Copy, False),
    "MOVE": _copy_like(c.Move, False),
    "SORT": _sort(False),
}

_UID_COMMANDS: dict[str, _Parse] = {
    "FETCH": _fetch(True),
    "STORE": _store(True),
    "SEARCH": _search(True),
    "COPY": _copy_like(c.Copy, True),
    "MOVE": _copy_like(c.Move, True),
    "EXPUNGE": _uid_expunge,
    "SORT": _sort(True),
}
