"""``congvu admin schedule publish|show|feed``: unit work-schedule publication and feeds."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest


PW = "Mật-khẩu-2026!"


@pytest.fixture
def cli(cli):  # type: ignore[no-untyped-def]
    """The shared admin runner, on a database with the units these tests use."""
    cli("domain", "add", "hanoi.gov.vn")
    cli("unit", "add", "ubnd-tp", "--name", "UBND Thành phố Hà Nội")
    cli("unit", "add", "so-tttt", "--name", "Sở Thông tin và Truyền thông", "--parent", "ubnd-tp")
    return cli


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def test_schedule_publish_show_feed_and_revoke(cli, db_params) -> None:  # type: ignore[no-untyped-def]
    out = ok(cli("schedule", "show", "so-tttt"))
    assert "scope: subtree (default)" in out
    out = ok(cli("schedule", "show", "ubnd-tp"))
    assert "scope: organisation (default)" in out
    assert "published to: unit" in ok(cli("schedule", "publish", "so-tttt", "--scope", "unit"))
    assert "scope: unit\n" in ok(cli("schedule", "show", "so-tttt"))
    url = ok(cli("schedule", "feed", "so-tttt")).strip()
    assert url.startswith("https://") and "/dav/feeds/" in url and url.endswith(".ics")
    assert ok(cli("schedule", "feed", "so-tttt")).strip() == url  # stable until revoked
    assert "revoked 1" in ok(cli("schedule", "feed", "so-tttt", "--revoke"))
    assert ok(cli("schedule", "feed", "so-tttt")).strip() != url

    async def audited() -> list[str]:
        conn = await asyncpg.connect(**db_params.kwargs())
        try:
            rows = await conn.fetch("SELECT action FROM audit_log WHERE action LIKE 'schedule.%'")
            return [r["action"] for r in rows]
        finally:
            await conn.close()

    assert sorted(set(asyncio.run(audited()))) == [
        "schedule.feed", "schedule.feed.revoke", "schedule.publish"]


def test_schedule_bad_input_exits_2(cli) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = cli("schedule", "publish", "khong-co", "--scope", "unit")
    assert code == 2 and "khong-co" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        cli("schedule", "publish", "so-tttt", "--scope", "everyone")
    assert exc.value.code == 2
