"""Authenticated-state mailbox commands (RFC 3501 §6.3) and delegated access.

SELECT/EXAMINE (+ RFC 7162 CONDSTORE/QRESYNC parameters), CREATE (RFC 6154
CREATE-SPECIAL-USE), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS and
APPEND (RFC 4315 APPENDUID, RFC 3502 MULTIAPPEND).

A leader's mailboxes appear to their delegates as
``Other Users/<owner address>/<name>`` (RFC 2342 "Other Users" namespace).
What a delegate may do comes from the directory's grants, read on every
command through ``services.authz`` and expressed as RFC 4314 rights:
``mail-read`` gives ``lr`` (list, select read-only, search), ``mail-manage``
gives ``lrswite`` (flags, \\Seen of their own, append, delete, expunge).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from congvu.mailserver.mime import normalize_crlf, parse_message
from congvu.store import imapstore as mstore
from congvu.store import imap_messages as msgs
from congvu.store.errors import NotFound

from . import commands as c
from . import responses as r
from .errors import ImapBad, ImapNo
from .selected import MailboxRef, SelectedMailbox
from .sequence import SequenceSet
from .state import AUTH_STATES, AUTHENTICATED, SELECTED, allowed_in

__all__ = ["MANAGE_RIGHTS", "OTHER_USERS", "OWNER_RIGHTS", "READ_RIGHTS", "MailboxCommands"]

OTHER_USERS = "Other Users"
OWNER_RIGHTS = "lrswipkxtea"  # RFC 4314 §2.1
READ_RIGHTS = "lr"
MANAGE_RIGHTS = "lrswite"

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
#: Keywords clients commonly set (Thunderbird, Apple Mail, RFC 5788 registry).
KEYWORDS = ("$Forwarded", "$MDNSent", "$Junk", "$NotJunk", "$Phishing")
APPEND_PARSE_IN_THREAD = 256 * 1024


def rights_from_scopes(scopes: frozenset[str]) -> str:
    if "mail-manage" in scopes:
        return MANAGE_RIGHTS
    if "mail-read" in scopes:
        return READ_RIGHTS
    return ""


def canonical_name(name: str) -> str:
    """INBOX is case-insensitive, also as the first level of a path (RFC 3501 §5.1)."""
    if name.upper() == "INBOX":
        return "INBOX"
    if name[:6].upper() == "INBOX/":
        return "INBOX/" + name[6:]
    return name


class MailboxCommands:
    """Mixin: see :class:`.session.Session` for the attributes used."""

    selected: SelectedMailbox | None

    # -- access ------------------------------------------------------------------

    async def rights_for(self: Any, owner_id: int) -> str:
        if owner_id == self.account.id:
            return OWNER_RIGHTS
        return rights_from_scopes(await self.services.authz.scopes(self.account.id, owner_id))

    def split_other(self: Any, name: str) -> tuple[str, str] | None:
        """``Other Users/a@b/Sent`` → ("a@b", "Sent"); None for one's own names."""
        if name != OTHER_USERS and not name.startswith(OTHER_USERS + "/"):
            return None
        rest = name[len(OTHER_USERS) + 1:]
        addr, _, mbname = rest.partition("/")
        return addr.lower(), canonical_name(mbname)

    async def resolve(self: Any, name: str, need: str = "l") -> tuple[MailboxRef, mstore.Mailbox]:
        """Find a mailbox the principal may reach with rights ``need``.

        A mailbox of someone who has not granted access is reported as
        nonexistent (RFC 4314 §4: no ``l`` right, do not reveal it).
        """
        try:
            return await self._resolve(canonical_name(name), need)
        except NotFound:
            raise ImapNo(f"No mailbox {name}", code="NONEXISTENT") from None

    async def _resolve(self: Any, name: str, need: str) -> tuple[MailboxRef, mstore.Mailbox]:
        me = self.account
        other = self.split_other(name)
        async with self.services.db.connection() as conn:
            if other is None:
                mb = await mstore.get_mailbox(conn, me.id, name)
                return MailboxRef(me.id, me.address, mb.id, mb.name, name, None,
                                  OWNER_RIGHTS), mb
            addr, mbname = other
            owner = await self.services.directory.find_account(addr) if mbname else None
            if owner is None or owner.id == me.id:
                raise ImapNo(f"No mailbox {name}", code="NONEXISTENT")
            rights = await self.rights_for(owner.id)
            if "l" not in rights:
                raise ImapNo(f"No mailbox {name}", code="NONEXISTENT")
            mb = await mstore.get_mailbox(conn, owner.id, mbname)
        missing = [x for x in need if x not in rights]
        if missing:
            raise ImapNo(f"Your delegation does not allow this on {name}", code="NOPERM")
        display = f"{OTHER_USERS}/{owner.address}/{mb.name}"
        return MailboxRef(owner.id, owner.address, mb.id, mb.name, display, me.id, rights), mb

    async def audit(self: Any, ref: MailboxRef, action: str, **details: Any) -> None:
        """Delegate access goes to the audit log (who read or changed whose mail)."""
        if ref.shared:
            details["mailbox"] = ref.name
            await self.services.directory.record(self.account.address, "imap." + action,
                                                 ref.owner_address, details, self.remote_ip)

    # -- SELECT / EXAMINE -------------------------------------------------------------

    @allowed_in(*AUTH_STATES)
    async def do_select(self: Any, cmd: c.Select) -> None:
        if self.selected is not None:
            self.deselect()
            self.state = AUTHENTICATED
            if self.qresync:  # RFC 7162 §3.2.11
                self.send(r.untagged_ok("CLOSED", "Previous mailbox closed"))
        if cmd.qresync is not None and not self.qresync:
            raise ImapBad("QRESYNC must be enabled first (RFC 7162 §3.2.3)")
        if cmd.condstore or cmd.qresync is not None:
            self.enabled.add("CONDSTORE")
        name = canonical_name(cmd.mailbox)
        me = self.account
        if self.split_other(name) is None:
            # One's own mailbox: found by name in the statement that reads its
            # state (a re-SELECT is one round trip).
            try:
                async with self.services.db.connection() as conn:
                    st = await mstore.select_state(conn, me.id, name, None, self.hub.uid_cache)
            except NotFound:
                raise ImapNo(f"No mailbox {cmd.mailbox}", code="NONEXISTENT") from None
            ref = MailboxRef(me.id, me.address, st.mailbox.id, st.mailbox.name, name, None,
                             OWNER_RIGHTS)
        else:
            ref, mb = await self.resolve(cmd.mailbox, "lr")
            async with self.services.db.connection() as conn:
                st = await mstore.select_state(conn, ref.owner_id, mb.id, ref.reader_id,
                                               self.hub.uid_cache)
        readonly = cmd.readonly or not any(x in ref.rights for x in "stwe")
        mb = st.mailbox
        sel = SelectedMailbox(ref, st.uids, mb.uidvalidity, mb.highestmodseq, readonly)
        self.send(r.flags(SYSTEM_FLAGS + KEYWORDS))
        self.send(r.exists(sel.exists))
        self.send(r.recent(0))  # \Recent is not kept (RFC 9051 removed it)
        if st.first_unseen_uid is not None:
            seq = sel.seq_of(st.first_unseen_uid)
            if seq is not None:
                self.send(r.untagged_ok(f"UNSEEN {seq}", "First unseen"))
        self.send(r.untagged_ok(f"UIDVALIDITY {mb.uidvalidity}", "UIDs valid"))
        self.send(r.untagged_ok(f"UIDNEXT {mb.uidnext}", "Predicted next UID"))
        perm = "" if readonly else " ".join(SYSTEM_FLAGS + KEYWORDS) + " \\*"
        if not readonly and "w" not in ref.rights:
            perm = "\\Seen \\Deleted" if "t" in ref.rights else "\\Seen"
        self.send(r.untagged_ok(f"PERMANENTFLAGS ({perm})", "Flags permitted"))
        self.send(r.untagged_ok(f"HIGHESTMODSEQ {mb.highestmodseq}", "Highest"))
        self.selected = sel
        self.state = SELECTED
        sel.unwatch = self.hub.watch(ref.owner_id, mb.id, self)
        if cmd.qresync is not None and cmd.qresync.uidvalidity == mb.uidvalidity:
            await self.qresync_catchup(cmd.qresync)
        await self.audit(ref, "select", readonly=readonly)
        code = "READ-ONLY" if readonly else "READ-WRITE"
        self.ok(cmd.tag, ("EXAMINE" if cmd.readonly else "SELECT") + " completed", code)

    do_examine = do_select

    async def qresync_catchup(self: Any, q: c.QResyncParams) -> None:
        """RFC 7162 §3.2.5.2: VANISHED (EARLIER) and FETCH for what changed since q.modseq."""
        sel = self.selected
        ref = sel.ref
        async with self.services.db.connection() as conn:
            changes = await msgs.changes_since(conn, ref.owner_id, ref.mailbox_id, q.modseq,
                                               ref.reader_id)
        known = None
        if q.known_uids is not None:
            known = q.known_uids.matcher(max(sel.max_uid, q.known_uids.highest_explicit, 1))
        gone = [ch.uid for ch in changes if ch.expunged and ch.uid <= sel.max_uid
                and (known is None or known(ch.uid))]
        if gone:
            self.send(r.vanished(SequenceSet.from_numbers(gone), earlier=True))
        for ch in changes:
            if ch.expunged:
                continue
            seq = sel.seq_of(ch.uid)
            if seq is not None:
                self.send(r.fetch_response(seq, [r.fetch_uid(ch.uid), r.fetch_flags(ch.flags),
                                                 r.fetch_modseq(ch.modseq)]))

    # -- CREATE / DELETE / RENAME ------------------------------------------------------

    @allowed_in(*AUTH_STATES)
    async def do_create(self: Any, cmd: c.Create) -> None:
        name = canonical_name(cmd.mailbox.rstrip("/"))  # RFC 3501 §6.3.3 trailing delimiter
        if self.split_other(name) is not None:
            raise ImapNo("Mailboxes of other users are created by their owners", code="NOPERM")
        if len(cmd.special_use) > 1:
            raise ImapNo("One special-use attribute per mailbox", code="USEATTR")
        use = cmd.special_use[0] if cmd.special_use else None
        if use == "\\All" or use == "\\Flagged":
            raise ImapNo(f"{use} mailboxes are not supported", code="USEATTR")
        async with self.services.db.transaction() as conn:
            parts = name.split("/")
            # RFC 3501 §6.3.3: create the superior hierarchy as needed.
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                try:
                    await mstore.get_mailbox(conn, self.account.id, parent)
                except NotFound:
                    await mstore.create_mailbox(conn, self.account.id, parent)
            await mstore.create_mailbox(conn, self.account.id, name, use)
        self.ok(cmd.tag, "CREATE completed")

    @allowed_in(*AUTH_STATES)
    async def do_delete(self: Any, cmd: c.Delete) -> None:
        name = canonical_name(cmd.mailbox)
        if self.split_other(name) is not None:
            raise ImapNo("Mailboxes of other users are deleted by their owners", code="NOPERM")
        if self.selected is not None and self.selected.ref.display == name:
            # Deleting the selected mailbox: RFC 3501 leaves it open; we close it first.
            self.deselect()
            self.state = AUTHENTICATED
        async with self.services.db.transaction() as conn:
            await mstore.delete_mailbox(conn, self.account.id, name)
        self.ok(cmd.tag, "DELETE completed")

    @allowed_in(*AUTH_STATES)
    async def do_rename(self: Any, cmd: c.Rename) -> None:
        old, new = canonical_name(cmd.mailbox), canonical_name(cmd.new_name.rstrip("/"))
        if self.split_other(old) is not None or self.split_other(new) is not None:
            raise ImapNo("Mailboxes of other users are renamed by their owners", code="NOPERM")
        async with self.services.db.transaction() as conn:
            parts = new.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent == old:
                    continue
                try:
                    await mstore.get_mailbox(conn, self.account.id, parent)
                except NotFound:
                    await mstore.create_mailbox(conn, self.account.id, parent)
            await mstore.rename_mailbox(conn, self.account.id, old, new)
        self.ok(cmd.tag, "RENAME completed")

    # -- SUBSCRIBE / UNSUBSCRIBE ------------------------------------------------------------

    async def _subscribe(self: Any, name: str, on: bool) -> None:
        name = canonical_name(name)
        other = self.split_other(name)
        async with self.services.db.connection() as conn:
            if other is None:
                await mstore.set_subscribed(conn, self.account.id, name, on)
                return
            if on:
                ref, _mb = await self.resolve(name)
                owner_id, mbname = ref.owner_id, ref.name
            else:
                owner = await self.services.directory.find_account(other[0])
                if owner is None:
                    return
                owner_id, mbname = owner.id, other[1]
            await mstore.set_other_subscription(conn, self.account.id, owner_id, mbname, on)

    @allowed_in(*AUTH_STATES)
    async def do_subscribe(self: Any, cmd: c.Subscribe) -> None:
        await self._subscribe(cmd.mailbox, True)
        self.ok(cmd.tag, "SUBSCRIBE completed")

    @allowed_in(*AUTH_STATES)
    async def do_unsubscribe(self: Any, cmd: c.Unsubscribe) -> None:
        await self._subscribe(cmd.mailbox, False)
        self.ok(cmd.tag, "UNSUBSCRIBE completed")

    # -- STATUS -------------------------------------------------------------------------

    async def status_items(self: Any, ref: MailboxRef, items: tuple[str, ...]) -> dict[str, int]:
        async with self.services.db.connection() as conn:
            st = await mstore.status(conn, ref.owner_id, ref.mailbox_id, ref.reader_id)
        values = {
            "MESSAGES": st.messages, "RECENT": 0, "UIDNEXT": st.uidnext,
            "UIDVALIDITY": st.uidvalidity, "UNSEEN": st.unseen, "DELETED": st.deleted,
            "SIZE": st.size, "HIGHESTMODSEQ": st.highestmodseq,
            "APPENDLIMIT": self.services.settings.limits.imap_max_literal,
            # RFC 9208 §4.2, required with QUOTA=RES-STORAGE (§5.1): what EXPUNGE
            # takes out of the mailbox, in units of 1024 octets like STORAGE.
            "DELETED-STORAGE": (st.deleted_size + 1023) // 1024,
        }
        if "HIGHESTMODSEQ" in items:
            self.enabled.add("CONDSTORE")  # RFC 7162 §3.1: a CONDSTORE-enabling command
        return {k: values[k] for k in items if k in values}

    @allowed_in(*AUTH_STATES)
    async def do_status(self: Any, cmd: c.Status) -> None:
        ref, _mb = await self.resolve(cmd.mailbox, "lr")
        self.send(r.status(ref.display, await self.status_items(ref, cmd.items)))
        await self.report_updates(allow_expunge=True)
        self.ok(cmd.tag, "STATUS completed")

    # -- APPEND ---------------------------------------------------------------------------

    @allowed_in(*AUTH_STATES)
    async def do_append(self: Any, cmd: c.Append) -> None:
        try:
            ref, mb = await self.resolve(cmd.mailbox, "li")
        except ImapNo as exc:
            if exc.code == "NONEXISTENT":  # RFC 3501 §6.3.11: tell the client to CREATE
                raise ImapNo(f"No mailbox {cmd.mailbox}", code="TRYCREATE") from None
            raise
        prepared = []
        total = 0
        for m in cmd.messages:
            raw = normalize_crlf(m.data)
            if not raw.strip():
                raise ImapNo("Empty message", code="CANNOT")
            if len(raw) > APPEND_PARSE_IN_THREAD:
                pm = await asyncio.to_thread(parse_message, raw)
            else:
                pm = parse_message(raw)
            row = pm.to_row()
            row["raw"] = raw
            flags = [f for f in dict.fromkeys(m.flags) if f != "\\Recent"]
            if ref.shared and "w" not in ref.rights:
                flags = [f for f in flags if f in ("\\Seen", "\\Deleted")]
            when = m.internal_date or self.services.now()
            prepared.append((hashlib.sha256(raw).digest(), row, flags, when))
            total += len(raw)
        async with self.services.db.transaction() as conn:
            used, quota = await mstore.quota_usage(conn, ref.owner_id)
            limit = quota if quota is not None else self.services.settings.default_quota_bytes
            if limit and used + total > limit:
                raise ImapNo("Mailbox quota exceeded", code="OVERQUOTA")  # RFC 9208 §7.1
            res = await msgs.append_messages(conn, ref.owner_id, mb.id, prepared)
        # Acknowledged only now, after COMMIT (DESIGN principle 2).
        await self.audit(ref, "append", uids=list(res.uids))
        if self.selected is not None:
            self.selected.dirty = True
            await self.report_updates(allow_expunge=True)
        uids = SequenceSet.from_numbers(res.uids)
        self.ok(cmd.tag, "APPEND completed", r.code_appenduid(res.uidvalidity, uids))
