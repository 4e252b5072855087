"""The directory service: units, accounts, aliases, groups, grants, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from congvu.directory.service import BadRows, Directory, NewAccount
from congvu.store.errors import Conflict, Invalid, NotFound

from ..conftest import DOMAIN, PASSWORD

A = "test"


async def test_unit_tree_levels_and_move(org: Directory) -> None:
    units = await org.list_units()
    assert [u.slug for u in units] == ["ubnd-tp", "so-tttt", "q-hk", "p-ht"]
    ward = await org.get_unit("p-ht")
    assert org.level_name(ward.depth) == "commune-or-ward"
    # only three levels: nothing below a ward
    with pytest.raises(Invalid):
        await org.add_unit("to-dan-pho", "Tổ dân phố", "p-ht", A)
    # moving a district under a department would make the ward a 4th level
    with pytest.raises(Invalid):
        await org.move_unit("q-hk", "so-tttt", A)
    # a cycle is refused and nothing changes
    with pytest.raises(Conflict):
        await org.move_unit("q-hk", "p-ht", A)
    await org.add_unit("q-bd", "UBND quận Ba Đình", "ubnd-tp", A)
    moved = await org.move_unit("p-ht", "q-bd", A)
    assert moved.parent_id == (await org.get_unit("q-bd")).id
    assert moved.path.startswith((await org.get_unit("q-bd")).path)
    # the subtree moves with it: accounts listed under the new district
    names = [a.address for a in await org.list_accounts(unit="q-bd")]
    assert names == [f"hoa.nt@{DOMAIN}"]
    assert [a.address for a in await org.list_accounts(unit="q-hk")] == [f"binh.tq@{DOMAIN}"]
    renamed = await org.rename_unit("q-bd", "UBND quận Ba Đình (mới)", A)
    assert renamed.name.endswith("(mới)")


async def test_duplicate_and_malformed_units(org: Directory) -> None:
    with pytest.raises(Conflict):
        await org.add_unit("so-tttt", "again", "ubnd-tp", A)
    with pytest.raises(NotFound):
        await org.add_unit("x", "X", "no-such-unit", A)
    with pytest.raises(Invalid):
        await org.add_unit("Sở TT", "X", "ubnd-tp", A)


async def test_account_rules(org: Directory) -> None:
    a = await org.get_account(f"AN.NV@{DOMAIN.upper()}")
    assert a.display_name == "Nguyễn Văn An" and a.unit_slug == "so-tttt"
    assert "hash" not in repr(a) or "argon2" not in repr(a)
    with pytest.raises(Conflict):
        await org.add_account(NewAccount(f"an.nv@{DOMAIN}", "X", "so-tttt", "", PASSWORD), A)
    with pytest.raises(Invalid):
        await org.add_account(NewAccount("not-an-address", "X", "so-tttt", "", PASSWORD), A)
    with pytest.raises(NotFound):
        await org.add_account(NewAccount(f"x@{DOMAIN}", "X", "no-unit", "", PASSWORD), A)
    with pytest.raises(NotFound):
        await org.add_account(NewAccount("x@elsewhere.vn", "X", "so-tttt", "", PASSWORD), A)
    with pytest.raises(Invalid):
        await org.add_account(NewAccount(f"x@{DOMAIN}", "X", "so-tttt", "", "short"), A)
    with pytest.raises(Invalid):
        await org.add_account(NewAccount(f"x@{DOMAIN}", "X", "so-tttt", "", "alllowercaseletters"), A)
    # nothing of the failed attempts exists
    assert await org.find_account(f"x@{DOMAIN}") is None


async def test_account_changes_and_search(org: Directory) -> None:
    addr = f"hoa.nt@{DOMAIN}"
    assert not (await org.set_enabled(addr, False, A)).enabled
    assert (await org.set_enabled(addr, True, A)).enabled
    assert (await org.set_quota(addr, 10 * 2**20, A)).quota_bytes == 10 * 2**20
    found = await org.list_accounts(search="ngo thi hoa")
    assert [a.address for a in found] == [addr]
    found = await org.list_accounts(search="NGÔ")
    assert [a.address for a in found] == [addr]
    await org.update_account(addr, A, title="Phó Chủ tịch", unit="q-hk")
    a = await org.get_account(addr)
    assert (a.title, a.unit_slug) == ("Phó Chủ tịch", "q-hk")
    await org.remove_account(addr, A)
    assert await org.find_account(addr) is None


async def test_new_account_has_special_use_mailboxes(org: Directory) -> None:
    from congvu.store.mailboxes import names

    a = await org.get_account(f"an.nv@{DOMAIN}")
    async with org.db.connection() as conn:
        assert set(await names(conn, a.id)) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}


async def test_aliases_share_one_namespace(org: Directory) -> None:
    await org.add_alias(f"giamdoc@{DOMAIN}", f"an.nv@{DOMAIN}", A)
    assert (await org.find_account(f"giamdoc@{DOMAIN}")).address == f"an.nv@{DOMAIN}"
    with pytest.raises(Conflict):
        await org.add_alias(f"thu.lt@{DOMAIN}", f"an.nv@{DOMAIN}", A)
    with pytest.raises(Conflict):
        await org.add_group(f"giamdoc@{DOMAIN}", "G", A)
    await org.remove_alias(f"giamdoc@{DOMAIN}", A)
    assert await org.find_account(f"giamdoc@{DOMAIN}") is None
    with pytest.raises(NotFound):
        await org.remove_alias(f"giamdoc@{DOMAIN}", A)


async def test_group_expansion_without_duplicates_or_loops(org: Directory) -> None:
    g1, g2 = f"quan-hk@{DOMAIN}", f"lanh-dao@{DOMAIN}"
    await org.add_group(g1, "Toàn quận Hoàn Kiếm", A)
    await org.add_group(g2, "Lãnh đạo", A)
    await org.add_member(g1, "unit:q-hk+sub", A)
    await org.add_member(g1, g2, A)
    await org.add_member(g2, f"binh.tq@{DOMAIN}", A)  # also reached through the unit
    await org.add_member(g2, f"an.nv@{DOMAIN}", A)
    await org.add_member(g2, g1, A)  # a loop
    got = [r.address for r in await org.expand_group(g1)]
    assert got == sorted({f"an.nv@{DOMAIN}", f"binh.tq@{DOMAIN}", f"hoa.nt@{DOMAIN}"})
    # without sub-units the ward's official is not reached
    await org.remove_member(g1, "unit:q-hk", A)
    await org.add_member(g1, "unit:q-hk", A)
    got = [r.address for r in await org.expand_group(g1)]
    assert f"hoa.nt@{DOMAIN}" not in got
    members = [str(m) for m in await org.group_members(g1)]
    assert members == [f"group:{g2}", "unit:q-hk"]
    with pytest.raises(Conflict):
        await org.add_member(g1, g1, A)
    with pytest.raises(Conflict):
        await org.add_member(g2, f"an.nv@{DOMAIN}", A)


async def test_grants_expire_on_their_own(org: Directory, services) -> None:
    an = await org.get_account(f"an.nv@{DOMAIN}")
    thu = await org.get_account(f"thu.lt@{DOMAIN}")
    binh = await org.get_account(f"binh.tq@{DOMAIN}")
    authz = services.authz
    assert await authz.may(thu, "mail-read", an)
    assert await authz.may(thu, "calendar-read", an)  # implied by calendar-write
    assert not await authz.may(thu, "mail-manage", an)
    assert await authz.may(an, "mail-manage", an)
    assert not await authz.may(binh, "mail-read", an)
    now = org.now()
    await org.grant(an.address, binh.address, "mail-manage", A, valid_until=now + timedelta(hours=1))
    assert await authz.may(binh, "mail-read", an)
    later = now + timedelta(hours=2)
    authz.now = lambda: later
    assert not await authz.may(binh, "mail-read", an)
    assert [o.address for o in await authz.owners_for(thu, "calendar-write")] == [an.address]
    assert [d.address for d in await authz.delegates_of(an, "mail-read")] == [thu.address]
    await org.revoke(an.address, thu.address, A)
    assert not await authz.may(thu, "mail-read", an)
    with pytest.raises(NotFound):
        await org.revoke(an.address, thu.address, A)
    with pytest.raises(Invalid):
        await org.grant(an.address, thu.address, "mail-everything", A)
    with pytest.raises(Invalid):
        await org.grant(an.address, an.address, "mail-read", A)


async def test_administration_and_unit_schedule_rights(org: Directory, services) -> None:
    authz = services.authz
    admin = await org.get_account(f"admin@{DOMAIN}")
    binh = await org.add_role(f"binh.tq@{DOMAIN}", "unit-admin:q-hk", A)
    ward, dept = await org.get_unit("p-ht"), await org.get_unit("so-tttt")
    assert await authz.may_administer(admin, dept)
    assert await authz.may_administer(binh, ward)
    assert not await authz.may_administer(binh, dept)
    thu = await org.get_account(f"thu.lt@{DOMAIN}")
    hoa = await org.get_account(f"hoa.nt@{DOMAIN}")
    city = await org.get_unit("ubnd-tp")
    district = await org.get_unit("q-hk")
    assert await authz.may_write_unit_schedule(thu, dept)
    assert not await authz.may_write_unit_schedule(hoa, dept)
    assert await authz.may_read_unit_schedule(hoa, city, "organisation")
    assert await authz.may_read_unit_schedule(hoa, district, "subtree")
    assert not await authz.may_read_unit_schedule(hoa, district, "unit")
    assert not await authz.may_read_unit_schedule(hoa, dept, "subtree")


async def test_bulk_import_is_all_or_nothing(org: Directory) -> None:
    rows = [
        (2, NewAccount(f"new1@{DOMAIN}", "Mới Một", "so-tttt")),
        (3, NewAccount(f"an.nv@{DOMAIN}", "Trùng", "so-tttt")),
        (4, NewAccount("bad address", "X")),
        (5, NewAccount(f"new2@{DOMAIN}", "Mới Hai", "no-unit")),
        (6, NewAccount(f"new1@{DOMAIN}", "Lặp", "so-tttt")),
    ]
    with pytest.raises(BadRows) as err:
        await org.add_accounts(rows, A)
    problems = err.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5", "line 6"]
    assert await org.find_account(f"new1@{DOMAIN}") is None
    count = await org.add_accounts([rows[0]], A)
    assert count == 1 and await org.find_account(f"new1@{DOMAIN}") is not None


async def test_audit_log_records_changes_and_is_append_only(org: Directory) -> None:
    entries = await org.audit(action="account.add", limit=100)
    assert {e.target for e in entries} >= {f"an.nv@{DOMAIN}", f"thu.lt@{DOMAIN}"}
    grant = (await org.audit(action="delegate.grant"))[0]
    assert grant.details["delegate"] == f"thu.lt@{DOMAIN}"
    import asyncpg

    async with org.db.connection() as conn:
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("DELETE FROM audit_log")
