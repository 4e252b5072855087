"""Selected-state commands that change messages (RFC 3501 §6.4).

CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315 §2.1),
STORE (with RFC 7162 UNCHANGEDSINCE), COPY (RFC 4315 COPYUID) and MOVE
(RFC 6851). Every change is one transaction; the tagged OK follows COMMIT.
"""

from __future__ import annotations

from typing import Any

from congvu.store import imap_messages as msgs

from . import commands as c
from . import responses as r
from .errors import ImapNo
from .sequence import SequenceSet
from .state import AUTHENTICATED, SELECTED, allowed_in

__all__ = ["SelectedCommands"]


class SelectedCommands:
    """Mixin: see :class:`.session.Session` for the attributes used."""

    def require_writable(self: Any, right: str) -> None:
        sel = self.selected
        if sel.readonly:
            raise ImapNo("The mailbox is selected read-only", code="READ-ONLY")
        if right not in sel.ref.rights:
            raise ImapNo("Your delegation does not allow this", code="NOPERM")

    @allowed_in(SELECTED)
    async def do_check(self: Any, cmd: c.Check) -> None:
        # RFC 3501 §6.4.1: every change is already committed; just report news.
        await self.report_updates(allow_expunge=True, force=True)
        self.ok(cmd.tag, "CHECK completed")

    @allowed_in(SELECTED)
    async def do_close(self: Any, cmd: c.Close) -> None:
        sel = self.selected
        if not sel.readonly and "e" in sel.ref.rights:
            # RFC 3501 §6.4.2: expunge silently, no untagged EXPUNGE.
            async with self.services.db.transaction() as conn:
                uids = await msgs.expunge(conn, sel.ref.owner_id, sel.ref.mailbox_id, None)
            if uids:
                await self.audit(sel.ref, "expunge", uids=uids)
        self.deselect()
        self.state = AUTHENTICATED
        self.ok(cmd.tag, "CLOSE completed")

    @allowed_in(SELECTED)
    async def do_unselect(self: Any, cmd: c.Unselect) -> None:
        self.deselect()  # RFC 3691: like CLOSE without the expunge
        self.state = AUTHENTICATED
        self.ok(cmd.tag, "UNSELECT completed")

    @allowed_in(SELECTED)
    async def do_expunge(self: Any, cmd: c.Expunge) -> None:
        self.require_writable("e")
        sel = self.selected
        ranges = None
        if cmd.uid_set is not None:
            ranges = sel.uid_ranges(cmd.uid_set, True)
            if not ranges:
                await self.report_updates(allow_expunge=True, force=True)
                self.ok(cmd.tag, "EXPUNGE completed")
                return
        async with self.services.db.transaction() as conn:
            uids = await msgs.expunge(conn, sel.ref.owner_id, sel.ref.mailbox_id, ranges)
        if uids:
            await self.audit(sel.ref, "expunge", uids=uids)
        sel.pending.update(sel.in_view(uids))
        await self.report_updates(allow_expunge=True, force=True)
        self.ok(cmd.tag, "EXPUNGE completed")

    @allowed_in(SELECTED)
    async def do_store(self: Any, cmd: c.Store) -> None:
        sel = self.selected
        if sel.readonly:
            raise ImapNo("The mailbox is selected read-only", code="READ-ONLY")
        others = [f for f in cmd.flags if f not in ("\\Seen", "\\Deleted")]
        rights = sel.ref.rights
        if (others and "w" not in rights) or ("\\Seen" in cmd.flags and "s" not in rights) or (
                "\\Deleted" in cmd.flags and "t" not in rights) or (
                cmd.mode == "" and "w" not in rights):
            raise ImapNo("Your delegation does not allow changing these flags", code="NOPERM")
        if cmd.unchangedsince is not None:
            self.enabled.add("CONDSTORE")
        flags = [f for f in cmd.flags if f != "\\Recent"]
        ranges = sel.uid_ranges(cmd.seqset, cmd.uid)
        changes: list[msgs.Change] = []
        failed: list[int] = []
        if ranges:
            async with self.services.db.transaction() as conn:
                changes, failed = await msgs.store_flags(
                    conn, sel.ref.owner_id, sel.ref.mailbox_id, ranges, cmd.mode, flags,
                    sel.ref.reader_id, unchangedsince=cmd.unchangedsince,
                )
        if changes:
            await self.audit(sel.ref, "store", mode=cmd.mode, flags=flags,
                             uids=[ch.uid for ch in changes][:100])
        for ch in changes:
            sel.own_changes[ch.uid] = ch.modseq
            seq = sel.seq_of(ch.uid)
            if seq is None:
                continue
            # RFC 3501 §6.4.6: FETCH FLAGS unless .SILENT; RFC 7162 §3.1.3 adds
            # MODSEQ and sends it even for .SILENT once CONDSTORE is on.
            if cmd.silent and not self.condstore:
                continue
            items = []
            if cmd.uid or self.qresync:
                items.append(r.fetch_uid(ch.uid))
            if not cmd.silent:
                items.append(r.fetch_flags(ch.flags))
            if self.condstore:
                items.append(r.fetch_modseq(ch.modseq))
            self.send(r.fetch_response(seq, items))
        await self.report_updates(allow_expunge=cmd.uid)
        code = None
        if failed:  # RFC 7162 §3.1.3: MODIFIED lists what was not stored
            nums = sel.in_view(failed) if cmd.uid else sel.seqs_of(failed)
            code = "MODIFIED " + str(SequenceSet.from_numbers(nums)) if nums else None
        self.ok(cmd.tag, ("UID " if cmd.uid else "") + "STORE completed", code)

    async def _copy(self: Any, cmd: c.Copy | c.Move, move: bool) -> None:
        sel = self.selected
        if move:
            self.require_writable("e")
            if "t" not in sel.ref.rights:
                raise ImapNo("Your delegation does not allow this", code="NOPERM")
        ranges = sel.uid_ranges(cmd.seqset, cmd.uid)
        try:
            dest, dmb = await self.resolve(cmd.mailbox, "li")
        except ImapNo as exc:
            if exc.code == "NONEXISTENT":  # RFC 3501 §6.4.7
                raise ImapNo(f"No mailbox {cmd.mailbox}", code="TRYCREATE") from None
            raise
        if move and dest.owner_id == sel.ref.owner_id and dest.mailbox_id == sel.ref.mailbox_id:
            raise ImapNo("Source and destination are the same mailbox", code="CANNOT")
        res = None
        if ranges:
            async with self.services.db.transaction() as conn:
                res = await msgs.copy_messages(conn, sel.ref.owner_id, sel.ref.mailbox_id,
                                               ranges, dest.owner_id, dmb.id, sel.ref.reader_id,
                                               move=move)
        code = None
        if res is not None and res.source_uids:
            code = r.code_copyuid(res.uidvalidity, SequenceSet.from_numbers(res.source_uids),
                                  SequenceSet.from_numbers(res.dest_uids))
            await self.audit(sel.ref, "move" if move else "copy", to=dest.display,
                             uids=list(res.source_uids)[:100])
            if dest.shared:
                await self.audit(dest, "copy-in", uids=list(res.dest_uids)[:100])
        if move:
            if code:  # RFC 6851 §4.3: COPYUID in an untagged OK before the expunges
                assert res is not None
                self.send(r.untagged_ok(code, "Moved"))
                code = None
                sel.pending.update(sel.in_view(list(res.source_uids)))
            await self.report_updates(allow_expunge=True, force=True)
        else:
            await self.report_updates(allow_expunge=cmd.uid)
        name = ("UID " if cmd.uid else "") + ("MOVE" if move else "COPY")
        self.ok(cmd.tag, f"{name} completed", code)

    @allowed_in(SELECTED)
    async def do_copy(self: Any, cmd: c.Copy) -> None:
        await self._copy(cmd, False)

    @allowed_in(SELECTED)
    async def do_move(self: Any, cmd: c.Move) -> None:
        await self._copy(cmd, True)
