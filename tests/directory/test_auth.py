"""authenticate(): the one login check every protocol uses."""

from __future__ import annotations

from dataclasses import replace

from congvu.directory import passwords
from congvu.directory.auth import Authenticator
from congvu.directory.service import Directory

from ..conftest import DOMAIN, PASSWORD

AN = f"an.nv@{DOMAIN}"


async def test_success_and_failure_are_audited(org: Directory, services) -> None:
    ok = await services.auth.authenticate(AN.upper(), PASSWORD, "192.0.2.1", "imap")
    assert ok.ok and ok.account.address == AN
    bad = await services.auth.authenticate(AN, "wrong", "192.0.2.1", "imap")
    assert not bad.ok and bad.reason == "invalid"
    unknown = await services.auth.authenticate(f"nobody@{DOMAIN}", "x", "192.0.2.1", "smtp")
    assert not unknown.ok and unknown.reason == "invalid"
    entries = await org.audit(action="auth.", limit=10)
    assert [(e.action, e.target, e.remote_addr) for e in entries[:3]] == [
        ("auth.fail", f"nobody@{DOMAIN}", "192.0.2.1"),
        ("auth.fail", AN, "192.0.2.1"),
        ("auth.ok", AN, "192.0.2.1"),
    ]


async def test_unknown_users_cost_a_real_verification(org: Directory, services, monkeypatch) -> None:
    calls: list[str | None] = []
    real = passwords.verify

    def spy(stored: str | None, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify", spy)
    await services.auth.authenticate(f"nobody@{DOMAIN}", "x", None)
    assert calls == [None]  # verify() ran, against the dummy hash, as for a real user


async def test_disabled_and_room_accounts_cannot_log_in(org: Directory, services) -> None:
    await org.set_enabled(AN, False, "test")
    assert (await services.auth.authenticate(AN, PASSWORD, None)).reason == "disabled"


async def test_throttling_per_account_and_per_address(org: Directory, services) -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    settings = replace(services.settings, auth_max_failures_per_account=3,
                       auth_max_failures_per_ip=5, auth_failure_delay=0.5)
    auth = Authenticator(services.db, settings, sleep=sleep)
    for _ in range(3):
        assert (await auth.authenticate(AN, "wrong", "198.51.100.7")).reason == "invalid"
    # the right password no longer helps from anywhere while throttled
    assert (await auth.authenticate(AN, PASSWORD, "203.0.113.9")).reason == "throttled"
    # other accounts from the same address still work, until the address is throttled
    thu = f"thu.lt@{DOMAIN}"
    assert (await auth.authenticate(thu, PASSWORD, "198.51.100.7")).ok
    await auth.authenticate(thu, "wrong", "198.51.100.7")
    await auth.authenticate(thu, "wrong", "198.51.100.7")
    assert (await auth.authenticate(f"binh.tq@{DOMAIN}", PASSWORD, "198.51.100.7")).reason == "throttled"
    assert slept and all(s == 0.5 for s in slept)
    assert (await org.audit(action="auth.throttled", limit=1))[0].target == f"binh.tq@{DOMAIN}"


async def test_hash_is_renewed_when_parameters_change(org: Directory, services, monkeypatch) -> None:
    from argon2 import PasswordHasher

    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    account = await org.get_account(AN)
    async with services.db.connection() as conn:
        await conn.execute("UPDATE accounts SET password_hash = $2 WHERE id = $1", account.id, old)
    assert (await services.auth.authenticate(AN, PASSWORD, None)).ok
    renewed = (await org.get_account(AN)).password_hash
    assert renewed != old and not passwords.needs_rehash(renewed)
    assert (await services.auth.authenticate(AN, PASSWORD, None)).ok
