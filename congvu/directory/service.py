"""The directory service: every change to the organisation goes through here.

It validates input, runs the repository calls in one transaction, and writes
the audit entry in that same transaction, so a change and its record commit
together or not at all. The admin CLI, the web admin and the protocols share
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, UTC
from collections.abc import Callable, Sequence
from typing import Any

from ..config import Settings
from ..store import accounts as accounts_repo
from ..store import audit as audit_repo
from ..store import domains as domains_repo
from ..store import grants as grants_repo
from ..store import groups as groups_repo
from ..store import mailboxes as mailboxes_repo
from ..store import units as units_repo
from ..store.accounts import Account
from ..store.db import Database
from ..store.errors import Conflict, Invalid, NotFound
from ..store.grants import SCOPES, Grant
from ..store.groups import Group, Member, Recipient
from ..store.units import Unit
from ..textfold import fold
from . import passwords
from .addresses import (
    domain_of,
    normalize_address,
    normalize_domain,
    validate_display_name,
    validate_slug,
)

ROLES = ("admin", "unit-admin", "schedule-manager")
KINDS = ("person", "room", "resource")


class BadRows(Invalid):
    """A bulk import with bad rows: ``problems`` has one line per bad row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} bad row(s); nothing was imported")
        self.problems = problems


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewAccount:
    """One account to create (from the CLI or a CSV row)."""

    address: str
    display_name: str
    unit: str | None = None
    title: str = ""
    password: str | None = None
    kind: str = "person"
    quota_bytes: int | None = None
    roles: tuple[str, ...] = ()  # "admin", "unit-admin:slug", "schedule-manager:slug"


def parse_role(spec: str) -> tuple[str, str | None]:
    role, _, unit = spec.strip().partition(":")
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    if role == "admin" and unit:
        raise Invalid("the admin role is organisation-wide and takes no unit")
    if role != "admin" and not unit:
        raise Invalid(f"role {role} needs a unit: {role}:UNIT-SLUG")
    return role, (unit or None)


def parse_scopes(spec: str | Sequence[str]) -> list[str]:
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    scopes = [s.strip() for s in items if s.strip()]
    if not scopes:
        raise Invalid("no scope given (scopes: " + ", ".join(SCOPES) + ")")
    for s in scopes:
        if s not in SCOPES:
            raise Invalid(f"unknown scope {s!r} (scopes: {', '.join(SCOPES)})")
    return scopes


class Directory:
    def __init__(
        self, db: Database, settings: Settings, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self.now = now

    # -- domains -----------------------------------------------------------

    async def add_domain(self, name: str, actor: str) -> domains_repo.Domain:
        name = normalize_domain(name)
        async with self.db.transaction() as conn:
            domain = await domains_repo.add(conn, name)
            await audit_repo.record(conn, actor, "domain.add", name)
        return domain

    async def list_domains(self) -> list[domains_repo.Domain]:
        async with self.db.connection() as conn:
            return await domains_repo.list_all(conn)

    # -- units -------------------------------------------------------------

    def level_name(self, depth: int) -> str:
        levels = self.settings.unit_levels
        return levels[depth] if depth < len(levels) else f"level-{depth + 1}"

    async def add_unit(self, slug: str, name: str, parent: str | None, actor: str) -> Unit:
        slug = validate_slug(slug)
        name = validate_display_name(name, "unit name")
        async with self.db.transaction() as conn:
            parent_unit = await units_repo.get(conn, parent) if parent else None
            unit = await units_repo.add(
                conn, slug, name, parent_unit, len(self.settings.unit_levels)
            )
            await audit_repo.record(conn, actor, "unit.add", slug, {"name": name, "parent": parent})
        return unit

    async def list_units(self) -> list[Unit]:
        async with self.db.connection() as conn:
            return await units_repo.list_all(conn)

    async def get_unit(self, slug: str) -> Unit:
        async with self.db.connection() as conn:
            return await units_repo.get(conn, slug)

    async def move_unit(self, slug: str, new_parent: str | None, actor: str) -> Unit:
        async with self.db.transaction() as conn:
            unit = await units_repo.get(conn, slug)
            parent = await units_repo.get(conn, new_parent) if new_parent else None
            moved = await units_repo.move(conn, unit, parent, len(self.settings.unit_levels))
            await audit_repo.record(conn, actor, "unit.move", slug, {"parent": new_parent})
        return moved

    async def rename_unit(self, slug: str, name: str, actor: str) -> Unit:
        name = validate_display_name(name, "unit name")
        async with self.db.transaction() as conn:
            unit = await units_repo.rename(conn, await units_repo.get(conn, slug), name)
            await audit_repo.record(conn, actor, "unit.rename", slug, {"name": name})
        return unit

    # -- accounts ----------------------------------------------------------

    def _check_new(self, new: NewAccount) -> NewAccount:
        address = normalize_address(new.address)
        name = validate_display_name(new.display_name, "display name")
        if new.kind not in KINDS:
            raise Invalid(f"unknown account kind {new.kind!r} (kinds: {', '.join(KINDS)})")
        if new.password is not None:
            passwords.check_strength(new.password, address)
        if new.quota_bytes is not None and new.quota_bytes < 0:
            raise Invalid("quota must not be negative")
        for r in new.roles:
            parse_role(r)
        return NewAccount(
            address, name, new.unit, new.title.strip(), new.password, new.kind,
            new.quota_bytes, new.roles,
        )

    async def _create(self, conn, new: NewAccount, hashed: str | None, actor: str) -> int:
        domain = await domains_repo.get(conn, domain_of(new.address))
        unit = await units_repo.get(conn, new.unit) if new.unit else None
        account_id = await accounts_repo.add(
            conn,
            address=new.address,
            domain_id=domain.id,
            display_name=new.display_name,
            unit_id=unit.id if unit else None,
            title=new.title,
            password_hash=hashed,
            kind=new.kind,
            quota_bytes=new.quota_bytes,
            search_text=fold(f"{new.display_name} {new.address} {new.title}"),
        )
        for spec in new.roles:
            role, role_unit = parse_role(spec)
            unit_id = (await units_repo.get(conn, role_unit)).id if role_unit else None
            await accounts_repo.add_role(conn, account_id, role, unit_id)
        await mailboxes_repo.create_defaults(conn, account_id)
        await audit_repo.record(
            conn, actor, "account.add", new.address,
            {"unit": new.unit, "title": new.title, "kind": new.kind},
        )
        return account_id

    async def add_account(self, new: NewAccount, actor: str) -> Account:
        new = self._check_new(new)
        hashed = passwords.hash_password(new.password) if new.password else None
        async with self.db.transaction() as conn:
            account_id = await self._create(conn, new, hashed, actor)
            return await accounts_repo.get_by_id(conn, account_id)

    async def add_accounts(
        self,
        rows: Sequence[tuple[int, NewAccount]],
        actor: str,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """All-or-nothing bulk creation. ``rows`` pairs a line number with an account.

        Every bad row is reported (``Invalid`` listing each line); nothing is
        created unless every row is good.
        """
        errors: list[str] = []
        checked: list[tuple[int, NewAccount]] = []
        seen: dict[str, int] = {}
        for line, new in rows:
            try:
                ok = self._check_new(new)
            except Invalid as exc:
                errors.append(f"line {line}: {exc}")
                continue
            if ok.address in seen:
                errors.append(f"line {line}: {ok.address} repeats line {seen[ok.address]}")
                continue
            seen[ok.address] = line
            checked.append((line, ok))
        async with self.db.transaction() as conn:
            taken = {
                r["address"]
                for r in await conn.fetch(
                    "SELECT address FROM addresses WHERE address = ANY($1::text[])", list(seen)
                )
            }
            domains = {d.name for d in await domains_repo.list_all(conn)}
            unit_slugs = {u.slug for u in await units_repo.list_all(conn)}
            for line, new in checked:
                if new.address in taken:
                    errors.append(f"line {line}: {new.address} already exists")
                if domain_of(new.address) not in domains:
                    errors.append(f"line {line}: domain {domain_of(new.address)} is not served here")
                if new.unit and new.unit not in unit_slugs:
                    errors.append(f"line {line}: unknown unit {new.unit!r}")
            if errors:
                errors.sort(key=lambda e: int(e.split(":")[0].split()[1]))
                raise BadRows(errors)
            for done, (_line, new) in enumerate(checked, 1):
                hashed = passwords.hash_password(new.password) if new.password else None
                await self._create(conn, new, hashed, actor)
                if progress:
                    progress(done)
            await audit_repo.record(conn, actor, "account.import", "", {"count": len(checked)})
        return len(checked)

    async def get_account(self, address: str) -> Account:
        async with self.db.connection() as conn:
            return await accounts_repo.get(conn, normalize_address(address))

    async def find_account(self, address: str) -> Account | None:
        """By address or alias; None for unknown or malformed addresses."""
        try:
            address = normalize_address(address)
        except Invalid:
            return None
        async with self.db.connection() as conn:
            return await accounts_repo.find(conn, address)

    async def list_accounts(
        self, *, unit: str | None = None, subtree: bool = True, search: str | None = None
    ) -> list[Account]:
        async with self.db.connection() as conn:
            unit_ids = None
            if unit:
                u = await units_repo.get(conn, unit)
                unit_ids = await units_repo.subtree_ids(conn, u) if subtree else [u.id]
            return await accounts_repo.list_accounts(
                conn, unit_ids=unit_ids, search=fold(search) if search else None
            )

    async def _change(self, address: str, actor: str, action: str, details=None, **changes):
        address = normalize_address(address)
        async with self.db.transaction() as conn:
            account = await accounts_repo.get(conn, address)
            await accounts_repo.update(conn, account.id, **changes)
            await audit_repo.record(conn, actor, action, address, details)
            return await accounts_repo.get_by_id(conn, account.id)

    async def set_password(self, address: str, password: str, actor: str) -> Account:
        passwords.check_strength(password, normalize_address(address))
        return await self._change(
            address, actor, "account.passwd", password_hash=passwords.hash_password(password)
        )

    async def set_enabled(self, address: str, enabled: bool, actor: str) -> Account:
        return await self._change(
            address, actor, "account.enable" if enabled else "account.disable", enabled=enabled
        )

    async def set_quota(self, address: str, quota_bytes: int | None, actor: str) -> Account:
        if quota_bytes is not None and quota_bytes < 0:
            raise Invalid("quota must not be negative")
        return await self._change(
            address, actor, "account.quota", {"quota_bytes": quota_bytes}, quota_bytes=quota_bytes
        )

    async def update_account(
        self, address: str, actor: str, *, display_name: str | None = None,
        title: str | None = None, unit: str | None = None,
    ) -> Account:
        address = normalize_address(address)
        async with self.db.transaction() as conn:
            account = await accounts_repo.get(conn, address)
            changes: dict[str, object] = {}
            if display_name is not None:
                changes["display_name"] = validate_display_name(display_name, "display name")
            if title is not None:
                changes["title"] = title.strip()
            if unit is not None:
                changes["unit_id"] = (await units_repo.get(conn, unit)).id
            name = changes.get("display_name", account.display_name)
            changes["search_text"] = fold(f"{name} {address} {changes.get('title', account.title)}")
            await accounts_repo.update(conn, account.id, **changes)
            await audit_repo.record(conn, actor, "account.update", address,
                                    {k: v for k, v in changes.items() if k != "search_text"})
            return await accounts_repo.get_by_id(conn, account.id)

    async def remove_account(self, address: str, actor: str) -> None:
        address = normalize_address(address)
        async with self.db.transaction() as conn:
            account = await accounts_repo.get(conn, address)
            await accounts_repo.remove(conn, account.id)
            await audit_repo.record(conn, actor, "account.remove", address)

    async def add_role(self, address: str, spec: str, actor: str) -> Account:
        role, unit_slug = parse_role(spec)
        address = normalize_address(address)
        async with self.db.transaction() as conn:
            account = await accounts_repo.get(conn, address)
            unit_id = (await units_repo.get(conn, unit_slug)).id if unit_slug else None
            await accounts_repo.add_role(conn, account.id, role, unit_id)
            await audit_repo.record(conn, actor, "account.role.add", address, {"role": spec})
            return await accounts_repo.get_by_id(conn, account.id)

    async def remove_role(self, address: str, spec: str, actor: str) -> Account:
        role, unit_slug = parse_role(spec)
        address = normalize_address(address)
        async with self.db.transaction() as conn:
            account = await accounts_repo.get(conn, address)
            unit_id = (await units_repo.get(conn, unit_slug)).id if unit_slug else None
            if not await accounts_repo.remove_role(conn, account.id, role, unit_id):
                raise NotFound(f"{address} does not have role {spec}")
            await audit_repo.record(conn, actor, "account.role.remove", address, {"role": spec})
            return await accounts_repo.get_by_id(conn, account.id)

    # -- aliases -----------------------------------------------------------

    async def add_alias(self, alias: str, address: str, actor: str) -> None:
        alias, address = normalize_address(alias), normalize_address(address)
        async with self.db.transaction() as conn:
            await domains_repo.get(conn, domain_of(alias))
            account = await accounts_repo.get(conn, address)
            await accounts_repo.add_alias(conn, alias, account.id)
            await audit_repo.record(conn, actor, "alias.add", alias, {"account": address})

    async def remove_alias(self, alias: str, actor: str) -> None:
        alias = normalize_address(alias)
        async with self.db.transaction() as conn:
            await accounts_repo.remove_alias(conn, alias)
            await audit_repo.record(conn, actor, "alias.remove", alias)

    # -- groups ------------------------------------------------------------

    async def add_group(self, address: str, name: str, actor: str) -> Group:
        address = normalize_address(address)
        name = validate_display_name(name, "group name")
        async with self.db.transaction() as conn:
            domain = await domains_repo.get(conn, domain_of(address))
            group = await groups_repo.add(conn, address, name, domain.id)
            await audit_repo.record(conn, actor, "group.add", address, {"name": name})
        return group

    async def list_groups(self) -> list[Group]:
        async with self.db.connection() as conn:
            return await groups_repo.list_all(conn)

    async def group_members(self, address: str) -> list[Member]:
        async with self.db.connection() as conn:
            return await groups_repo.members(conn, await groups_repo.get(conn, normalize_address(address)))

    async def _member_ref(self, conn, spec: str) -> dict[str, Any]:
        """``unit:SLUG``, ``unit:SLUG+sub`` or an account/group address."""
        spec = spec.strip()
        if spec.startswith("unit:"):
            slug = spec[5:]
            sub = slug.endswith("+sub")
            slug = slug[:-4] if sub else slug
            unit = await units_repo.get(conn, slug)
            return {"unit_id": unit.id, "include_subunits": sub}
        target = await accounts_repo.resolve_address(conn, normalize_address(spec))
        if target is None:
            raise NotFound(f"no account or group {spec}")
        if target.kind == "group":
            return {"group_id": target.group_id}
        return {"account_id": target.account_id}

    async def add_member(self, group: str, member: str, actor: str) -> None:
        async with self.db.transaction() as conn:
            g = await groups_repo.get(conn, normalize_address(group))
            await groups_repo.add_member(conn, g, **await self._member_ref(conn, member))
            await audit_repo.record(conn, actor, "group.member.add", g.address, {"member": member})

    async def remove_member(self, group: str, member: str, actor: str) -> None:
        async with self.db.transaction() as conn:
            g = await groups_repo.get(conn, normalize_address(group))
            ref = await self._member_ref(conn, member)
            ref.pop("include_subunits", None)
            await groups_repo.remove_member(conn, g, **ref)
            await audit_repo.record(conn, actor, "group.member.remove", g.address, {"member": member})

    async def expand_group(self, address: str) -> list[Recipient]:
        async with self.db.connection() as conn:
            g = await groups_repo.get(conn, normalize_address(address))
            return await groups_repo.expand(conn, [g.id])

    # -- delegation --------------------------------------------------------

    async def grant(
        self,
        owner: str,
        delegate: str,
        scopes: str | Sequence[str],
        actor: str,
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> Grant:
        scope_list = parse_scopes(scopes)
        owner, delegate = normalize_address(owner), normalize_address(delegate)
        if owner == delegate:
            raise Invalid("an account cannot delegate to itself")
        if valid_until is not None and valid_until <= (valid_from or self.now()):
            raise Invalid("the grant would end before it starts")
        async with self.db.transaction() as conn:
            o = await accounts_repo.get(conn, owner)
            d = await accounts_repo.get(conn, delegate)
            g = await grants_repo.upsert(conn, o.id, d.id, scope_list, valid_from, valid_until, actor)
            await audit_repo.record(
                conn, actor, "delegate.grant", owner,
                {"delegate": delegate, "scopes": scope_list,
                 "from": valid_from.isoformat() if valid_from else None,
                 "until": valid_until.isoformat() if valid_until else None},
            )
        return g

    async def revoke(self, owner: str, delegate: str, actor: str) -> Grant:
        owner, delegate = normalize_address(owner), normalize_address(delegate)
        async with self.db.transaction() as conn:
            o = await accounts_repo.get(conn, owner)
            d = await accounts_repo.get(conn, delegate)
            g = await grants_repo.revoke(conn, o.id, d.id)
            await audit_repo.record(conn, actor, "delegate.revoke", owner, {"delegate": delegate})
        return g

    async def list_grants(
        self, *, owner: str | None = None, delegate: str | None = None
    ) -> list[Grant]:
        async with self.db.connection() as conn:
            oid = (await accounts_repo.get(conn, normalize_address(owner))).id if owner else None
            did = (await accounts_repo.get(conn, normalize_address(delegate))).id if delegate else None
            return await grants_repo.list_grants(conn, owner_id=oid, delegate_id=did)

    # -- audit -------------------------------------------------------------

    async def audit(self, **filters: object) -> list[audit_repo.AuditEntry]:
        async with self.db.connection() as conn:
            return await audit_repo.recent(conn, **filters)  # type: ignore[arg-type]

    async def record(
        self, actor: str, action: str, target: str = "", details: dict | None = None,
        remote_addr: str | None = None,
    ) -> None:
        await audit_repo.record(self.db.pool, actor, action, target, details, remote_addr)


__all__ = ["BadRows", "Conflict", "Directory", "Invalid", "NewAccount", "NotFound", "parse_role", "parse_scopes"]
