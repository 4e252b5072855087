"""The pool skips asyncpg's reset round trip only when no session state was left.

``congvu.store.db`` notes statements that may leave state in the session
(session advisory locks, SET, LISTEN ...) through asyncpg internals; these
tests fail if a new asyncpg stops routing statements through them, so a
session lock or setting can never leak to the next user of a connection.
"""

from __future__ import annotations

from congvu.store.db import ConnectParams, Database


async def _one_connection_pool(params: ConnectParams) -> Database:
    return await Database.connect(params, min_size=1, max_size=1)


async def test_session_advisory_lock_does_not_outlive_release(db_params: ConnectParams) -> None:
    db = await _one_connection_pool(db_params)
    try:
        for run in ("fetchval", "execute"):
            async with db.connection() as conn:
                pid = await conn.fetchval("SELECT pg_backend_pid()")
                if run == "fetchval":
                    assert await conn.fetchval("SELECT pg_try_advisory_lock(4242)")
                else:
                    await conn.execute("SELECT pg_advisory_lock(4242)")
            async with db.connection() as conn:
                assert await conn.fetchval("SELECT pg_backend_pid()") == pid  # same connection
                held = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1", pid)
                assert held == 0
    finally:
        await db.close()


async def test_session_settings_do_not_outlive_release(db_params: ConnectParams) -> None:
    db = await _one_connection_pool(db_params)
    try:
        async with db.connection() as conn:
            await conn.execute("SET application_name = 'leaked'")
        async with db.connection() as conn:
            assert await conn.fetchval("SHOW application_name") != "leaked"
        async with db.connection() as conn:
            await conn.fetchval("SELECT set_config('application_name', 'leaked2', false)")
        async with db.connection() as conn:
            assert await conn.fetchval("SHOW application_name") != "leaked2"
    finally:
        await db.close()


async def test_a_transaction_setting_needs_no_reset(db_params: ConnectParams) -> None:
    """SET LOCAL ends with its transaction: no reset round trip after it, and
    nothing of it reaches the next user; a session SET in the same text does
    get the reset."""
    db = await _one_connection_pool(db_params)
    try:
        async with db.connection() as conn:  # a fresh connection is reset once
            pass
        async with db.connection() as conn:
            async with conn.transaction():
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
            assert not conn._needs_reset
        async with db.connection() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
            async with conn.transaction():
                await conn.execute("SET LOCAL work_mem = '8MB'; SET application_name = 'leak'")
            assert conn._needs_reset
        async with db.connection() as conn:
            assert await conn.fetchval("SHOW application_name") != "leak"
    finally:
        await db.close()
