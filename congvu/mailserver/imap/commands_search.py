"""SEARCH, UID SEARCH (RFC 3501 §6.4.4, RFC 4731 ESEARCH, RFC 7162 §3.1.5) and SORT (RFC 5256).

The key tree is normalized by :func:`.search.normalize` (folded text,
sequence numbers turned into UID ranges of this session's view) and run as
SQL by ``congvu.store.imap_search`` over this mailbox only. Text keys are
substring matches, case- and diacritic-insensitive, over the folded text
stored at delivery. Results are cut to the session's view, so a message
delivered but not yet announced with EXISTS is never returned.
"""

from __future__ import annotations

from typing import Any

from congvu.store import imap_search

from . import commands as c
from . import responses as r
from .errors import ImapBad
from .search import normalize
from .searchkeys import And, Flag, ModSeq, Not, Or, SearchKey
from .sequence import SequenceSet
from .state import SELECTED, allowed_in

__all__ = ["SearchCommands"]


def _uses_modseq(k: SearchKey) -> bool:
    if isinstance(k, ModSeq):
        return True
    if isinstance(k, And):
        return any(_uses_modseq(s) for s in k.keys)
    if isinstance(k, Or):
        return _uses_modseq(k.left) or _uses_modseq(k.right)
    if isinstance(k, Not):
        return _uses_modseq(k.key)
    return False


class SearchCommands:
    """Mixin: see :class:`.session.Session` for the attributes used."""

    async def _run_search(self: Any, key: SearchKey,
                          sort: tuple[tuple[str, bool], ...] = ()) -> list[int]:
        sel = self.selected
        ref = sel.ref
        norm = normalize(key, uids=sel.uids)
        if isinstance(norm, Flag) and norm.flag == "\\Recent" and norm.present:
            return []
        async with self.services.db.connection() as conn:
            found = await imap_search.search_uids(
                conn, ref.owner_id, ref.mailbox_id, norm, ref.reader_id, max_uid=sel.max_uid,
                timezone=self.services.settings.timezone, sort=sort,
                visible_only=not sel.pending,
            )
        return sel.in_view(found)

    async def _modseq_of(self: Any, uids: list[int]) -> int | None:
        if not uids:
            return None
        sel = self.selected
        async with self.services.db.connection() as conn:
            return await imap_search.max_modseq(conn, sel.ref.owner_id, sel.ref.mailbox_id, uids)

    @allowed_in(SELECTED)
    async def do_search(self: Any, cmd: c.Search) -> None:
        sel = self.selected
        uids = await self._run_search(cmd.key)
        numbers = uids if cmd.uid else sel.seqs_of(uids)
        modseq = None
        if _uses_modseq(cmd.key):
            self.enabled.add("CONDSTORE")
            modseq = await self._modseq_of(uids)
        if cmd.returns is None:
            self.send(r.search(numbers, modseq))
        else:
            # RFC 4731 §3.1: MIN MAX COUNT ALL; "SAVE" (RFC 5182) is not offered.
            want = set(cmd.returns)
            unknown = want - {"MIN", "MAX", "COUNT", "ALL"}
            if unknown:
                raise ImapBad("Unsupported RETURN option " + " ".join(sorted(unknown)))
            self.send(r.esearch(
                cmd.tag, cmd.uid,
                min=min(numbers) if numbers and "MIN" in want else None,
                max=max(numbers) if numbers and "MAX" in want else None,
                count=len(numbers) if "COUNT" in want else None,
                all=SequenceSet.from_numbers(numbers) if numbers and "ALL" in want else None,
                modseq=modseq,
            ))
        await self.report_updates(allow_expunge=cmd.uid, with_uid=cmd.uid)
        self.ok(cmd.tag, ("UID " if cmd.uid else "") + "SEARCH completed")

    @allowed_in(SELECTED)
    async def do_sort(self: Any, cmd: c.Sort) -> None:
        sel = self.selected
        criteria = []
        for crit in cmd.criteria:
            if crit.key not in imap_search.SORT_KEYS:
                raise ImapBad(f"Unsupported sort key {crit.key}")
            criteria.append((crit.key, crit.reverse))
        uids = await self._run_search(cmd.key, tuple(criteria))
        self.send(r.sort(uids if cmd.uid else sel.seqs_of(uids)))
        await self.report_updates(allow_expunge=cmd.uid, with_uid=cmd.uid)
        self.ok(cmd.tag, ("UID " if cmd.uid else "") + "SORT completed")
