"""Extension commands: ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342),
IDLE (RFC 2177), COMPRESS (RFC 4978), QUOTA (RFC 9208) and ACL (RFC 4314).

Quota and rights are the directory's: quota_bytes/used_bytes of the
account, and delegation grants. SETQUOTA/SETACL/DELETEACL answer NO —
they are set with ``congvu admin account quota`` / ``congvu admin delegate``.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from congvu import __name__ as _pkg
from congvu.store import imapstore as mstore

from . import commands as c
from . import responses as r
from .commands_mailbox import MANAGE_RIGHTS, OTHER_USERS, OWNER_RIGHTS, READ_RIGHTS
from .errors import ImapBad, ImapNo
from .framer import CommandReady
from .parser import is_idle_done
from .state import ANY_STATE, AUTH_STATES, allowed_in

__all__ = ["ExtCommands", "with_virtual"]

IDLE_POLL_SECONDS = 30.0
#: RFC 5161 §3.1: what ENABLE can turn on here.
ENABLEABLE = ("CONDSTORE", "QRESYNC")


def with_virtual(rights: str) -> str:
    """``rights`` plus RFC 4314 §2.1.1's virtual "c" and "d" where their members are."""
    out = rights
    if any(x in rights for x in "kx") and "c" not in rights:
        out += "c"
    if any(x in rights for x in "te") and "d" not in rights:
        out += "d"
    return out


class ExtCommands:
    """Mixin: see :class:`.session.Session` for the attributes used."""

    _wake: asyncio.Event | None

    @allowed_in(*ANY_STATE)
    async def do_id(self: Any, cmd: c.Id) -> None:
        # RFC 2971 §3.3: the server's own identity; no version to help attackers.
        self.send(r.id_response({"name": "Congvu", "vendor": _pkg}))
        self.ok(cmd.tag, "ID completed")

    @allowed_in(*AUTH_STATES)
    async def do_enable(self: Any, cmd: c.Enable) -> None:
        newly = []
        for cap in cmd.capabilities:
            if cap in ENABLEABLE and cap not in self.enabled:
                self.enabled.add(cap)
                newly.append(cap)
        if "QRESYNC" in self.enabled:
            self.enabled.add("CONDSTORE")  # RFC 7162 §3.2.3
        self.send(r.enabled(newly))
        self.ok(cmd.tag, "ENABLE completed")

    @allowed_in(*AUTH_STATES)
    async def do_namespace(self: Any, cmd: c.Namespace) -> None:
        # RFC 2342 §5: personal, other users', shared.
        self.send(r.namespace([("", "/")], [(OTHER_USERS + "/", "/")], None))
        self.ok(cmd.tag, "NAMESPACE completed")

    # -- IDLE (RFC 2177) -------------------------------------------------------------

    @allowed_in(*AUTH_STATES)
    async def do_idle(self: Any, cmd: c.Idle) -> None:
        self._wake = asyncio.Event()
        try:
            await self.report_updates(allow_expunge=True, force=True)
            self.send(r.continuation("idling"))
            await self.flush()
            while True:
                ev = await self.next_event(self._wake, timeout=IDLE_POLL_SECONDS)
                if ev is None:
                    # Woken by a notification, or the periodic poll (a missed NOTIFY).
                    self._wake.clear()
                    await self.report_updates(allow_expunge=True, force=True)
                    await self.flush()
                    continue
                if isinstance(ev, CommandReady) and is_idle_done(ev.data):
                    break
                raise ImapBad("Expected DONE to end IDLE")
        finally:
            self._wake = None
        await self.report_updates(allow_expunge=True)
        self.ok(cmd.tag, "IDLE terminated")

    # -- COMPRESS (RFC 4978) --------------------------------------------------------------

    @allowed_in(*AUTH_STATES)
    async def do_compress(self: Any, cmd: c.Compress) -> None:
        if self._deflate is not None:
            raise ImapNo("Compression is already active", code="COMPRESSIONACTIVE")
        if cmd.mechanism != "DEFLATE":
            raise ImapBad(f"Unknown compression mechanism {cmd.mechanism}")
        self.ok(cmd.tag, "DEFLATE active")
        await self.flush()
        # RFC 4978 §3: raw deflate (no zlib header) in both directions.
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)

    # -- QUOTA (RFC 9208) -------------------------------------------------------------------

    async def _quota(self: Any, owner_id: int) -> tuple[int, int]:
        async with self.services.db.connection() as conn:
            used, quota = await mstore.quota_usage(conn, owner_id)
        limit = quota if quota is not None else self.services.settings.default_quota_bytes
        return used, limit

    def _root_for(self: Any, ref: Any) -> str:
        return "" if not ref.shared else ref.owner_address

    @allowed_in(*AUTH_STATES)
    async def do_getquotaroot(self: Any, cmd: c.GetQuotaRoot) -> None:
        ref, _mb = await self.resolve(cmd.mailbox, "lr")
        root = self._root_for(ref)
        used, limit = await self._quota(ref.owner_id)
        self.send(r.quotaroot(ref.display, [root]))
        # RFC 9208 §5.1: STORAGE in units of 1024 octets.
        self.send(r.quota(root, [("STORAGE", (used + 1023) // 1024, limit // 1024)]))
        self.ok(cmd.tag, "GETQUOTAROOT completed")

    @allowed_in(*AUTH_STATES)
    async def do_getquota(self: Any, cmd: c.GetQuota) -> None:
        if cmd.root == "":
            owner_id = self.account.id
        else:
            owner = await self.services.directory.find_account(cmd.root.lower())
            if owner is None or "r" not in await self.rights_for(owner.id):
                raise ImapNo("No such quota root", code="NONEXISTENT")
            owner_id = owner.id
        used, limit = await self._quota(owner_id)
        self.send(r.quota(cmd.root, [("STORAGE", (used + 1023) // 1024, limit // 1024)]))
        self.ok(cmd.tag, "GETQUOTA completed")

    @allowed_in(*AUTH_STATES)
    async def do_setquota(self: Any, cmd: c.SetQuota) -> None:
        raise ImapNo("Quotas are set by the administrators (congvu admin account quota)",
                     code="NOPERM")

    # -- ACL (RFC 4314) -------------------------------------------------------------------
    # Responses carry the virtual rights of RFC 4314 §2.1.1 for RFC 2086 clients:
    # "c" with any of k/x ("create"), "d" with any of t/e ("delete").

    @allowed_in(*AUTH_STATES)
    async def do_myrights(self: Any, cmd: c.MyRights) -> None:
        ref, _mb = await self.resolve(cmd.mailbox)
        self.send(r.myrights(ref.display, with_virtual(ref.rights)))
        self.ok(cmd.tag, "MYRIGHTS completed")

    @allowed_in(*AUTH_STATES)
    async def do_getacl(self: Any, cmd: c.GetAcl) -> None:
        ref, _mb = await self.resolve(cmd.mailbox)
        if "a" not in ref.rights:  # RFC 4314 §3.3 needs "a" (or reading one's own)
            raise ImapNo("Only the owner may read the access list", code="NOPERM")
        owner = await self.services.directory.get_account(ref.owner_address)
        entries = [(owner.address, OWNER_RIGHTS)]
        managers = await self.services.authz.delegates_of(owner, "mail-manage")
        readers = await self.services.authz.delegates_of(owner, "mail-read")
        done = set()
        for acc in managers:
            entries.append((acc.address, MANAGE_RIGHTS))
            done.add(acc.id)
        for acc in readers:
            if acc.id not in done:
                entries.append((acc.address, READ_RIGHTS))
        self.send(r.acl(ref.display, [(who, with_virtual(rights)) for who, rights in entries]))
        self.ok(cmd.tag, "GETACL completed")

    @allowed_in(*AUTH_STATES)
    async def do_listrights(self: Any, cmd: c.ListRights) -> None:
        ref, _mb = await self.resolve(cmd.mailbox)
        if "a" not in ref.rights:
            raise ImapNo("Only the owner may list rights", code="NOPERM")
        if cmd.identifier.lower() == ref.owner_address:
            self.send(r.listrights(ref.display, cmd.identifier, with_virtual(OWNER_RIGHTS), []))
        else:
            # What a grant can give: nothing, mail-read (lr) or mail-manage (+swite);
            # "d" is tied to the rights its members t/e are tied to (§2.1.1).
            self.send(r.listrights(ref.display, cmd.identifier, "", ["lr", "swited"]))
        self.ok(cmd.tag, "LISTRIGHTS completed")

    @allowed_in(*AUTH_STATES)
    async def do_setacl(self: Any, cmd: c.SetAcl) -> None:
        raise ImapNo("Rights come from delegation grants (congvu admin delegate)",
                     code="NOPERM")

    @allowed_in(*AUTH_STATES)
    async def do_deleteacl(self: Any, cmd: c.DeleteAcl) -> None:
        raise ImapNo("Rights come from delegation grants (congvu admin delegate)",
                     code="NOPERM")
