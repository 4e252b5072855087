"""IMAP command objects: one frozen dataclass per command.

The parser (:mod:`.parser`) returns these; the session layer dispatches on
``cmd.name`` (``do_<name>``) or on the class. Every command carries its
``tag``; ``uid`` is true for the ``UID`` forms. Mailbox names are already
decoded from modified UTF-7 (``INBOX`` canonicalised); flags are canonical
for system flags. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from .searchkeys import SearchKey
from .sequence import SequenceSet

__all__ = [
    "Append",
    "AppendMessage",
    "Authenticate",
    "Capability",
    "Check",
    "Close",
    "Command",
    "Compress",
    "Copy",
    "Create",
    "Delete",
    "DeleteAcl",
    "Enable",
    "Examine",
    "Expunge",
    "Fetch",
    "FetchAttr",
    "GetAcl",
    "GetQuota",
    "GetQuotaRoot",
    "Id",
    "Idle",
    "List",
    "ListRights",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "MyRights",
    "Namespace",
    "Noop",
    "QResyncParams",
    "Rename",
    "Search",
    "Section",
    "Select",
    "SetAcl",
    "SetQuota",
    "Sort",
    "SortCriterion",
    "StartTLS",
    "Status",
    "Store",
    "Subscribe",
    "Unselect",
    "Unsubscribe",
]


@dataclass(frozen=True, slots=True)
class Command:
    """Base class: ``name`` is the upper-case command word (``UID`` dropped)."""

    tag: str
    name: ClassVar[str] = ""


# -- any state (RFC 9051 §6.1) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability(Command):
    name: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    name: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True)
class Logout(Command):
    name: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True, slots=True)
class Id(Command):
    """RFC 2971: ``params`` is None for ``ID NIL``, else (field, value-or-None) pairs."""

    params: tuple[tuple[str, str | None], ...] | None
    name: ClassVar[str] = "ID"


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """RFC 5161: capability names, upper-cased."""

    capabilities: tuple[str, ...]
    name: ClassVar[str] = "ENABLE"


@dataclass(frozen=True, slots=True)
class Compress(Command):
    """RFC 4978: mechanism, upper-cased (``DEFLATE``)."""

    mechanism: str
    name: ClassVar[str] = "COMPRESS"


# -- not authenticated (RFC 9051 §6.2) --------------------------------------


@dataclass(frozen=True, slots=True)
class StartTLS(Command):
    name: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """``AUTHENTICATE mech [initial-response]`` (RFC 4959 SASL-IR).

    ``initial_response`` is the base64-decoded bytes, ``b""`` for ``=``, or
    None when absent (then the server sends an empty continuation).
    """

    mechanism: str
    initial_response: bytes | None = field(default=None, repr=False)
    name: ClassVar[str] = "AUTHENTICATE"


@dataclass(frozen=True, slots=True)
class Login(Command):
    username: str
    password: str = field(repr=False)
    name: ClassVar[str] = "LOGIN"


# -- authenticated (RFC 9051 §6.3) ------------------------------------------


@dataclass(frozen=True, slots=True)
class QResyncParams:
    """RFC 7162 §3.2.5: ``QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])``."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select(Command):
    mailbox: str
    condstore: bool = False
    qresync: QResyncParams | None = None
    name: ClassVar[str] = "SELECT"
    readonly: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Examine(Select):
    name: ClassVar[str] = "EXAMINE"
    readonly: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Create(Command):
    """``special_use``: RFC 6154 §3 ``USE (\\Drafts ...)``, canonical attribute spelling."""

    mailbox: str
    special_use: tuple[str, ...] = ()
    name: ClassVar[str] = "CREATE"


@dataclass(frozen=True, slots=True)
class Delete(Command):
    mailbox: str
    name: ClassVar[str] = "DELETE"


@dataclass(frozen=True, slots=True)
class Rename(Command):
    mailbox: str
    new_name: str
    name: ClassVar[str] = "RENAME"


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    mailbox: str
    name: ClassVar[str] = "SUBSCRIBE"


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    mailbox: str
    name: ClassVar[str] = "UNSUBSCRIBE"


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST, with RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE.

    ``selection``: upper-case selection options (``SUBSCRIBED``, ``REMOTE``,
    ``RECURSIVEMATCH``, ``SPECIAL-USE``). ``returns``: upper-case return
    options (``SUBSCRIBED``, ``CHILDREN``, ``SPECIAL-USE``, ``STATUS``);
    ``status_items`` the STATUS items when ``STATUS`` is requested.
    ``extended`` tells whether any extended syntax was used (RFC 5258 §3:
    the server then answers with extended data where relevant).
    """

    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()
    extended: bool = False
    name: ClassVar[str] = "LIST"


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    reference: str
    pattern: str
    name: ClassVar[str] = "LSUB"


@dataclass(frozen=True, slots=True)
class Status(Command):
    """``items`` upper-case: MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE ..."""

    mailbox: str
    items: tuple[str, ...]
    name: ClassVar[str] = "STATUS"


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of APPEND (RFC 3502 MULTIAPPEND allows several)."""

    flags: tuple[str, ...]
    internal_date: datetime | None
    data: bytes = field(repr=False)
    binary: bool = False  # sent as literal8 ~{n} (RFC 3516)


@dataclass(frozen=True, slots=True)
class Append(Command):
    mailbox: str
    messages: tuple[AppendMessage, ...]
    name: ClassVar[str] = "APPEND"


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    name: ClassVar[str] = "NAMESPACE"


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """RFC 2177: the session sends ``+ idling`` and waits for ``DONE`` (see ``is_idle_done``)."""

    name: ClassVar[str] = "IDLE"


@dataclass(frozen=True, slots=True)
class GetAcl(Command):
    mailbox: str
    name: ClassVar[str] = "GETACL"


@dataclass(frozen=True, slots=True)
class SetAcl(Command):
    """RFC 4314 §3.1: ``mode`` is ``"+"``/``"-"`` for a leading sign, else ``""`` (replace)."""

    mailbox: str
    identifier: str
    rights: str
    mode: Literal["", "+", "-"] = ""
    name: ClassVar[str] = "SETACL"


@dataclass(frozen=True, slots=True)
class DeleteAcl(Command):
    mailbox: str
    identifier: str
    name: ClassVar[str] = "DELETEACL"


@dataclass(frozen=True, slots=True)
class ListRights(Command):
    mailbox: str
    identifier: str
    name: ClassVar[str] = "LISTRIGHTS"


@dataclass(frozen=True, slots=True)
class MyRights(Command):
    mailbox: str
    name: ClassVar[str] = "MYRIGHTS"


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    root: str
    name: ClassVar[str] = "GETQUOTA"


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    mailbox: str
    name: ClassVar[str] = "GETQUOTAROOT"


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """RFC 9208 §4.3: (resource-name, limit) pairs, names upper-cased."""

    root: str
    limits: tuple[tuple[str, int], ...]
    name: ClassVar[str] = "SETQUOTA"


# -- selected (RFC 9051 §6.4) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Check(Command):
    name: ClassVar[str] = "CHECK"


@dataclass(frozen=True, slots=True)
class Close(Command):
    name: ClassVar[str] = "CLOSE"


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    name: ClassVar[str] = "UNSELECT"


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE, or ``UID EXPUNGE set`` (RFC 4315 §2.1) when ``uid``."""

    uid: bool = False
    uid_set: SequenceSet | None = None
    name: ClassVar[str] = "EXPUNGE"


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH.

    ``charset`` is the upper-case CHARSET argument or None; string values in
    ``key`` are already decoded with it. ``returns`` is None for a classic
    SEARCH, else the upper-case ESEARCH RETURN options (RFC 4731 §3.1: an
    empty ``RETURN ()`` means ``ALL``, already substituted here).
    """

    key: SearchKey
    uid: bool = False
    charset: str | None = None
    returns: tuple[str, ...] | None = None
    name: ClassVar[str] = "SEARCH"


@dataclass(frozen=True, slots=True)
class Section:
    """``section-spec`` of BODY[...] / BINARY[...] (RFC 9051 §6.4.5).

    ``part``: part numbers (``1.2.3`` → ``(1, 2, 3)``), empty for the whole
    message. ``text``: None, ``HEADER``, ``HEADER.FIELDS``,
    ``HEADER.FIELDS.NOT``, ``TEXT`` or ``MIME``. ``headers``: field names as
    the client wrote them (echoed back in the response).
    """

    part: tuple[int, ...] = ()
    text: str | None = None
    headers: tuple[str, ...] = ()

    def spec(self) -> str:
        """Wire form between the brackets, e.g. ``1.2.HEADER.FIELDS (From To)``."""
        out = ".".join(map(str, self.part))
        if self.text:
            out = f"{out}.{self.text}" if out else self.text
            if self.headers:
                out += " (" + " ".join(self.headers) + ")"
        return out


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """One ``fetch-att``.

    ``name`` is upper-case: ``FLAGS``, ``INTERNALDATE``, ``RFC822``,
    ``RFC822.HEADER``, ``RFC822.TEXT``, ``RFC822.SIZE``, ``ENVELOPE``,
    ``BODY`` (structure when ``section`` is None, else a body section),
    ``BODYSTRUCTURE``, ``UID``, ``MODSEQ``, ``BINARY``, ``BINARY.SIZE``.
    ``partial`` is ``(origin, length)``. ``peek`` for ``BODY.PEEK`` /
    ``BINARY.PEEK``. ``key`` is the precomputed response item name
    (``BODY[HEADER.FIELDS (From)]<0>``: RFC 9051 §7.5.2 echoes only the origin).
    """

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False
    key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.name
        if self.section is not None:
            key += "[" + self.section.spec() + "]"
            if self.partial is not None:
                key += f"<{self.partial[0]}>"
        object.__setattr__(self, "key", key.encode("utf-8"))

    @property
    def sets_seen(self) -> bool:
        """Fetching this implicitly sets ``\\Seen`` (unless the mailbox is read-only)."""
        if self.peek:
            return False
        if self.section is not None:
            return self.name in ("BODY", "BINARY")
        return self.name in ("RFC822", "RFC822.TEXT")


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """FETCH / UID FETCH with RFC 7162 modifiers.

    For UID FETCH the session must include UID in every response even if
    not asked (RFC 9051 §6.4.9). Macros ALL/FAST/FULL are already expanded.
    """

    seqset: SequenceSet
    attributes: tuple[FetchAttr, ...]
    uid: bool = False
    changedsince: int | None = None
    vanished: bool = False
    name: ClassVar[str] = "FETCH"

    @property
    def sets_seen(self) -> bool:
        return any(a.sets_seen for a in self.attributes)


@dataclass(frozen=True, slots=True)
class Store(Command):
    """STORE / UID STORE: ``mode`` ``"+"`` adds, ``"-"`` removes, ``""`` replaces."""

    seqset: SequenceSet
    mode: Literal["", "+", "-"]
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchangedsince: int | None = None
    name: ClassVar[str] = "STORE"


@dataclass(frozen=True, slots=True)
class Copy(Command):
    seqset: SequenceSet
    mailbox: str
    uid: bool = False
    name: ClassVar[str] = "COPY"


@dataclass(frozen=True, slots=True)
class Move(Command):
    """RFC 6851."""

    seqset: SequenceSet
    mailbox: str
    uid: bool = False
    name: ClassVar[str] = "MOVE"


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """RFC 5256 §3: ``key`` upper-case (ARRIVAL CC DATE FROM SIZE SUBJECT TO, DISPLAYFROM ...)."""

    key: str
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Sort(Command):
    criteria: tuple[SortCriterion, ...]
    charset: str
    key: SearchKey
    uid: bool = False
    name: ClassVar[str] = "SORT"
