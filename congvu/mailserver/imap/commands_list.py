"""LIST and LSUB (RFC 3501 §6.3.8/§6.3.9) with LIST-EXTENDED (RFC 5258),
LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348).

The tree is built from one's own mailboxes plus, under ``Other Users/``
(RFC 2342), the mailboxes of every owner whose active grant gives
``mail-read`` or more. Missing levels (``Other Users``, ``Other
Users/owner@domain``, a parent deleted before its child) appear as
``\\Noselect`` (``\\NonExistent`` in extended answers) when a ``%`` stops at
them, as RFC 3501 §6.3.8 describes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from congvu.store import imapstore as mstore

from . import commands as c
from . import responses as r
from .commands_mailbox import OTHER_USERS, OWNER_RIGHTS, canonical_name
from .selected import MailboxRef
from .state import AUTH_STATES, allowed_in

__all__ = ["ListCommands", "pattern_regex"]

DELIM = "/"


@dataclass
class _Entry:
    name: str
    ref: MailboxRef | None = None  # None: a level that is not a mailbox
    special_use: str | None = None
    subscribed: bool = False
    children: bool = False
    subscribed_children: bool = False
    orphan: bool = False  # a subscribed name whose mailbox was deleted
    extra: list[str] = field(default_factory=list)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """RFC 3501 §6.3.8: ``*`` matches anything, ``%`` anything but the delimiter."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    if pattern[:5].upper() == "INBOX" and (len(pattern) == 5 or pattern[5] in "/*%"):
        body = "(?i:INBOX)" + "".join(out[5:])  # INBOX is case-insensitive
    return re.compile(body + r"\Z", re.DOTALL)


class ListCommands:
    """Mixin: see :class:`.session.Session` for the attributes used."""

    async def _tree(self: Any) -> dict[str, _Entry]:
        me = self.account
        entries: dict[str, _Entry] = {}
        async with self.services.db.connection() as conn:
            for mb in await mstore.list_mailboxes(conn, me.id):
                ref = MailboxRef(me.id, me.address, mb.id, mb.name, mb.name, None, OWNER_RIGHTS)
                entries[mb.name] = _Entry(mb.name, ref, mb.special_use, mb.subscribed)
            owners = await self.services.authz.owners_for(me, "mail-read")
            for owner in owners:
                if owner.id == me.id:
                    continue
                rights = await self.rights_for(owner.id)
                subs = await mstore.other_subscriptions(conn, me.id, owner.id)
                for mb in await mstore.list_mailboxes(conn, owner.id):
                    display = f"{OTHER_USERS}/{owner.address}/{mb.name}"
                    ref = MailboxRef(owner.id, owner.address, mb.id, mb.name, display, me.id,
                                     rights)
                    entries[display] = _Entry(display, ref, mb.special_use,
                                              subs is None or mb.name in subs)
            # RFC 3501 §6.3.6: subscriptions outlive deleted mailboxes.
            orphans = await mstore.other_subscriptions(conn, me.id, me.id) or frozenset()
        # Levels that are not mailboxes, and who has children.
        for name in list(entries):
            parts = name.split(DELIM)
            for i in range(1, len(parts)):
                parent = DELIM.join(parts[:i])
                e = entries.setdefault(parent, _Entry(parent))
                e.children = True
                if entries[name].subscribed:
                    e.subscribed_children = True
        for name in orphans:
            if name in entries:
                entries[name].subscribed = True
                continue
            entries[name] = _Entry(name, subscribed=True, orphan=True)
            parts = name.split(DELIM)
            for i in range(1, len(parts)):
                level = entries.get(DELIM.join(parts[:i]))
                if level is not None:
                    level.subscribed_children = True
        return entries

    def _attributes(self: Any, e: _Entry, cmd_returns: frozenset[str], extended: bool) -> list[str]:
        attrs: list[str] = []
        if e.ref is None:
            attrs.append("\\NonExistent" if extended else "\\Noselect")
        attrs.append("\\HasChildren" if e.children else "\\HasNoChildren")  # RFC 3348
        if e.special_use:
            attrs.append(e.special_use)  # RFC 6154 §2
        if e.subscribed and ("SUBSCRIBED" in cmd_returns):
            attrs.append("\\Subscribed")
        return attrs

    @allowed_in(*AUTH_STATES)
    async def do_list(self: Any, cmd: c.List) -> None:
        if len(cmd.patterns) == 1 and cmd.patterns[0] == "" and not cmd.extended:
            # RFC 3501 §6.3.8: the delimiter and root of the reference.
            root = cmd.reference.split(DELIM)[0] + DELIM if DELIM in cmd.reference else ""
            self.send(r.list_line(["\\Noselect"], DELIM, root))
            self.ok(cmd.tag, "LIST completed")
            return
        sel, ret = cmd.selection, set(cmd.returns)
        if "SUBSCRIBED" in sel:
            ret.add("SUBSCRIBED")  # RFC 5258 §3.1: implies RETURN (SUBSCRIBED)
        regexes = [pattern_regex(canonical_name(cmd.reference + p)) for p in cmd.patterns
                   if p != ""]
        entries = await self._tree()
        for name in sorted(entries, key=_sort_key):
            e = entries[name]
            if not any(rx.match(name) for rx in regexes):
                continue
            extra: dict[str, bytes] = {}
            if "SUBSCRIBED" in sel and not e.subscribed:
                if "RECURSIVEMATCH" in sel and e.subscribed_children:
                    extra["CHILDINFO"] = b'("SUBSCRIBED")'  # RFC 5258 §3.5
                else:
                    continue
            if "SPECIAL-USE" in sel and not e.special_use:
                continue
            if e.orphan and "SUBSCRIBED" not in sel:
                continue  # only the subscription remains
            if e.ref is None and not cmd.extended and not _stops_here(name, regexes, entries):
                continue
            attrs = self._attributes(e, frozenset(ret), cmd.extended)
            self.send(r.list_line(attrs, DELIM, name, extended=extra or None))
            if "STATUS" in ret and e.ref is not None and "r" in e.ref.rights:
                # RFC 5819 §2: STATUS right after the LIST line of each match
                self.send(r.status(name, await self.status_items(e.ref, cmd.status_items)))
        self.ok(cmd.tag, "LIST completed")

    @allowed_in(*AUTH_STATES)
    async def do_lsub(self: Any, cmd: c.Lsub) -> None:
        rx = pattern_regex(canonical_name(cmd.reference + cmd.pattern))
        entries = await self._tree()
        for name in sorted(entries, key=_sort_key):
            e = entries[name]
            if not rx.match(name):
                continue
            if e.subscribed:
                self.send(r.list_line(self._attributes(e, frozenset(), False), DELIM, name,
                                      command="LSUB"))
            elif e.subscribed_children and cmd.pattern.endswith("%"):
                # RFC 3501 §6.3.9: a %-match with subscribed inferiors shows as \Noselect
                self.send(r.list_line(["\\Noselect"], DELIM, name, command="LSUB"))
        self.ok(cmd.tag, "LSUB completed")


def _sort_key(name: str) -> tuple[int, str]:
    if name == "INBOX":
        return (0, name)
    if name == OTHER_USERS or name.startswith(OTHER_USERS + DELIM):
        return (2, name)
    return (1, name)


def _stops_here(name: str, regexes: list[re.Pattern[str]], entries: dict[str, _Entry]) -> bool:
    """A non-mailbox level is listed only when no descendant matches too (a ``%`` stop)."""
    prefix = name + DELIM
    return not any(
        other.startswith(prefix) and any(rx.match(other) for rx in regexes) for other in entries
    )
