"""Shared fixtures: one embedded PostgreSQL per test run, one database per test.

The schema is migrated once into a template database; every test gets its
own database cloned from it (CREATE DATABASE ... TEMPLATE), so tests are
isolated and a clone costs tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import uuid
from dataclasses import replace
from pathlib import Path
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from congvu.cli import main
from congvu.config import Listeners, Settings
from congvu.directory.service import Directory, NewAccount
from congvu.services import Services
from congvu.store.db import ConnectParams, Database, start_embedded
from congvu.store.migrate import apply_migrations

TEMPLATE = "congvu_template"
PASSWORD = "Mật-khẩu-2026!"  # strong, and not ASCII: exercises UTF-8 everywhere
DOMAIN = "hanoi.gov.vn"

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectParams]:
    """The embedded server for the whole run, with a migrated template database."""
    base = Path(os.environ.get("CONGVU_TEST_PGDIR") or tmp_path_factory.mktemp("pg"))
    params = start_embedded(base / "pgdata")
    server_params = params.with_database("postgres")

    async def make_template() -> None:
        conn = await asyncpg.connect(**server_params.kwargs())
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            await conn.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await conn.close()
        db = await Database.connect(params.with_database(TEMPLATE), min_size=1, max_size=1)
        try:
            await apply_migrations(db)
        finally:
            await db.close()

    asyncio.run(make_template())
    yield server_params


def new_database(server: ConnectParams) -> ConnectParams:
    """Clone the template into a fresh database, from synchronous code."""
    return asyncio.run(new_database_async(server))


async def new_database_async(server: ConnectParams) -> ConnectParams:
    name = f"t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(**server.kwargs())
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await conn.close()
    return server.with_database(name)


def params_url(p: ConnectParams) -> str:
    return f"postgresql://{p.user}@/{p.database}?host={p.host}" + (f"&port={p.port}" if p.port else "")


@pytest.fixture
def db_params(pg_params: ConnectParams) -> ConnectParams:
    """A fresh database for a synchronous test (e.g. the CLI run in-process)."""
    return new_database(pg_params)


@pytest.fixture
def cli(db_params, tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    """``congvu admin ...`` in-process on this test's database: returns (code, out, err)."""
    monkeypatch.setenv("CONGVU_DATABASE_URL", params_url(db_params))
    monkeypatch.setenv("CONGVU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CONGVU_CONFIG", raising=False)

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["admin", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings: every listener on an ephemeral port, no failure delay."""
    return Settings(
        data_dir=tmp_path / "data",
        hostname="mail.hanoi.gov.vn",
        listeners=Listeners(host="127.0.0.1", smtp=0, submission=0, submissions=0, imap=0,
                            imaps=0, http=0, https=0),
        auth_failure_delay=0.0,
        allow_plaintext_loopback=True,
    )


@pytest.fixture
async def db(pg_params: ConnectParams, settings: Settings) -> AsyncIterator[Database]:
    params = await new_database_async(pg_params)
    database = await Database.connect(params, min_size=1, max_size=10)
    try:
        yield database
    finally:
        await database.close()
        conn = await asyncpg.connect(**pg_params.kwargs())
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {params.database} WITH (FORCE)")
        finally:
            await conn.close()


@pytest.fixture
async def services(db: Database, settings: Settings) -> Services:
    async def no_sleep(_: float) -> None:
        return None

    from congvu.tlscert import server_context

    return Services.build(settings, db, tls=server_context(settings), sleep=no_sleep)


@pytest.fixture
def directory(services: Services) -> Directory:
    return services.directory


@pytest.fixture
async def org(directory: Directory) -> Directory:
    """A small organisation: a city, a department, a district with a ward, a few people.

    an (leader, so-tttt) delegates to thu (secretary) mail-read, mail-send-on-behalf and
    calendar-write. Every person has the password PASSWORD.
    """
    actor = "test"
    await directory.add_domain(DOMAIN, actor)
    await directory.add_unit("ubnd-tp", "UBND Thành phố Hà Nội", None, actor)
    await directory.add_unit("so-tttt", "Sở Thông tin và Truyền thông", "ubnd-tp", actor)
    await directory.add_unit("q-hk", "UBND quận Hoàn Kiếm", "ubnd-tp", actor)
    await directory.add_unit("p-ht", "UBND phường Hàng Trống", "q-hk", actor)
    people = [
        ("an.nv", "Nguyễn Văn An", "so-tttt", "Giám đốc", ()),
        ("thu.lt", "Lê Thị Thu", "so-tttt", "Thư ký", ("schedule-manager:so-tttt",)),
        ("binh.tq", "Trần Quốc Bình", "q-hk", "Chủ tịch", ()),
        ("hoa.nt", "Ngô Thị Hoa", "p-ht", "Công chức", ()),
        ("admin", "Quản trị", "ubnd-tp", "Quản trị viên", ("admin",)),
    ]
    for local, name, unit, title, roles in people:
        await directory.add_account(
            NewAccount(f"{local}@{DOMAIN}", name, unit, title, PASSWORD, roles=roles), actor
        )
    await directory.grant(f"an.nv@{DOMAIN}", f"thu.lt@{DOMAIN}",
                          "mail-read,mail-send-on-behalf,calendar-write", actor)
    return directory


def with_listeners(settings: Settings, **ports: int) -> Settings:
    return replace(settings, listeners=replace(settings.listeners, **ports))
