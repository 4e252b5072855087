"""Numbered SQL migrations (``migrations/NNN_name.sql``), applied once.

Several nodes may start at the same moment against one database: each takes
the same transaction-level advisory lock, so exactly one applies a migration
and the others then see it recorded in ``schema_migrations`` and skip it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from .db import Database

log = logging.getLogger(__name__)

# Any constant works; it names "congvu schema changes" among advisory locks.
MIGRATION_LOCK = 0x436F6E67  # "Cong"

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    folder = resources.files("congvu.store") / "migrations"
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers: {versions}")
    return found


XID_CHECK_MIGRATION = 11


async def apply_migrations(db: Database) -> list[int]:
    """Apply what is missing; return the versions this call applied."""
    applied_now: list[int] = []
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for mig in load_migrations():
            if mig.version in done:
                continue
            log.info("applying migration %03d_%s", mig.version, mig.name)
            await conn.execute(mig.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                mig.version,
                mig.name,
            )
            applied_now.append(mig.version)
        # calendar change numbers are transaction ids: a restored dump in a
        # new cluster starts those again (migration 011)
        if (XID_CHECK_MIGRATION in done or XID_CHECK_MIGRATION in applied_now) and \
                await conn.fetchval("SELECT calendar_check_xids()"):
            log.warning("transaction ids started again below the stored calendar change "
                        "numbers (a restored dump?): renumbered; clients sync afresh")
    return applied_now
