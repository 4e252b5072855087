"""Authorization in one place: who may do what on whose mail, calendar or unit.

Protocol code asks these questions and never re-implements the rules:

- everyone has every right on their own mail and calendar;
- a delegate has what an *active* grant gives (expired grants stop working on
  their own), with ``mail-manage`` implying ``mail-read``,
  ``mail-send-as`` implying ``mail-send-on-behalf`` and ``calendar-write``
  implying ``calendar-read``;
- ``admin`` administers the whole directory, ``unit-admin`` a unit's subtree;
  neither role reads anyone's mail;
- a unit's work schedule is read by the units its publication scope reaches
  and written by the unit's ``schedule-manager``s.
"""

from __future__ import annotations

from datetime import datetime, UTC
from collections.abc import Callable

import asyncpg

from ..store import accounts as accounts_repo
from ..store import grants as grants_repo
from ..store import units as units_repo
from ..store.accounts import Account
from ..store.db import Database
from ..store.grants import SCOPES
from ..store.units import Unit

ALL_SCOPES = frozenset(SCOPES)

IMPLIED: dict[str, frozenset[str]] = {
    "mail-manage": frozenset({"mail-read"}),
    "mail-send-as": frozenset({"mail-send-on-behalf"}),
    "calendar-write": frozenset({"calendar-read"}),
}

PUBLICATION_SCOPES = ("unit", "subtree", "organisation")


def expand_scopes(scopes: tuple[str, ...] | list[str]) -> frozenset[str]:
    out = set(scopes)
    for s in scopes:
        out |= IMPLIED.get(s, frozenset())
    return frozenset(out)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Authorizer:
    def __init__(self, db: Database, *, now: Callable[[], datetime] = _utcnow) -> None:
        self.db = db
        self.now = now

    async def scopes(
        self, principal_id: int, owner_id: int, conn: asyncpg.Connection | None = None
    ) -> frozenset[str]:
        """The rights ``principal`` has on ``owner``'s mail and calendar, now."""
        if principal_id == owner_id:
            return ALL_SCOPES
        if conn is None:
            async with self.db.connection() as c:
                grant = await grants_repo.find(c, owner_id, principal_id)
        else:
            grant = await grants_repo.find(conn, owner_id, principal_id)
        if grant is None or not grant.active(self.now()):
            return frozenset()
        return expand_scopes(grant.scopes)

    async def may(self, principal: Account, scope: str, owner: Account) -> bool:
        if scope not in ALL_SCOPES:
            raise ValueError(f"unknown scope {scope}")
        if not principal.enabled:
            return False
        return scope in await self.scopes(principal.id, owner.id)

    async def owners_for(self, principal: Account, scope: str) -> list[Account]:
        """Accounts whose mail/calendar ``principal`` may reach with ``scope`` now
        (the "Other Users" namespace, calendar-proxy-*-for)."""
        async with self.db.connection() as conn:
            grants = await grants_repo.list_grants(conn, delegate_id=principal.id)
            now = self.now()
            ids = [g.owner_id for g in grants if g.active(now) and scope in expand_scopes(g.scopes)]
            return [await accounts_repo.get_by_id(conn, i) for i in ids]

    async def delegates_of(self, owner: Account, scope: str) -> list[Account]:
        """Accounts that may reach ``owner``'s mail/calendar with ``scope`` now
        (calendar-proxy-read / -write group members)."""
        async with self.db.connection() as conn:
            grants = await grants_repo.list_grants(conn, owner_id=owner.id)
            now = self.now()
            ids = [g.delegate_id for g in grants if g.active(now) and scope in expand_scopes(g.scopes)]
            return [await accounts_repo.get_by_id(conn, i) for i in ids]

    # -- administration ------------------------------------------------------

    async def may_administer(self, principal: Account, unit: Unit | None) -> bool:
        """``admin`` anywhere; ``unit-admin`` for units inside its unit's subtree."""
        if not principal.enabled:
            return False
        if any(r.role == "admin" for r in principal.roles):
            return True
        if unit is None:
            return False
        async with self.db.connection() as conn:
            for r in principal.roles:
                if r.role == "unit-admin" and r.unit_id is not None:
                    scope_unit = await units_repo.get_by_id(conn, r.unit_id)
                    if unit.path.startswith(scope_unit.path):
                        return True
        return False

    # -- unit work schedules ---------------------------------------------------

    async def may_write_unit_schedule(self, principal: Account, unit: Unit) -> bool:
        if not principal.enabled:
            return False
        return any(
            r.role == "schedule-manager" and r.unit_id == unit.id for r in principal.roles
        )

    async def may_read_unit_schedule(
        self, principal: Account, unit: Unit, publication: str
    ) -> bool:
        """``unit``: its members; ``subtree``: members of it and every unit below;
        ``organisation``: everyone. Schedule managers always read what they write."""
        if publication not in PUBLICATION_SCOPES:
            raise ValueError(f"unknown publication scope {publication}")
        if not principal.enabled:
            return False
        if await self.may_write_unit_schedule(principal, unit):
            return True
        if publication == "organisation":
            return True
        if principal.unit_id is None:
            return False
        if principal.unit_id == unit.id:
            return True
        if publication == "subtree":
            async with self.db.connection() as conn:
                mine = await units_repo.get_by_id(conn, principal.unit_id)
            return mine.path.startswith(unit.path)
        return False


def default_publication(unit: Unit) -> str:
    """The city-level schedule goes to the whole organisation, others to their subtree."""
    return "organisation" if unit.depth == 0 else "subtree"
