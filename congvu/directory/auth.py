"""One ``authenticate(address, password, remote_ip)`` for every protocol.

- Unknown users take as long as known ones (a dummy argon2 verification).
- After repeated failures per account or per remote address within a window,
  further attempts are refused without checking the password.
- Every failure and success is in the audit log; a failure is answered after
  an injectable delay (tests pass ``sleep`` that returns at once).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from collections.abc import Awaitable, Callable

from ..config import Settings
from ..store import accounts as accounts_repo
from ..store import audit as audit_repo
from ..store.accounts import Account
from ..store.db import Database
from ..store.errors import Invalid
from . import passwords
from .addresses import normalize_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthResult:
    account: Account | None
    reason: str = ""  # "", "invalid", "disabled", "throttled"

    @property
    def ok(self) -> bool:
        return self.account is not None


class Authenticator:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.settings = settings
        self.sleep = sleep

    async def authenticate(
        self, address: str, password: str, remote_ip: str | None, protocol: str = ""
    ) -> AuthResult:
        try:
            address = normalize_address(address)
        except Invalid:
            address = address.strip().lower()[:256]
        s = self.settings
        async with self.db.connection() as conn:
            by_addr, by_ip = await audit_repo.auth_failure_counts(
                conn, address, remote_ip, s.auth_window_seconds
            )
            if by_addr >= s.auth_max_failures_per_account or by_ip >= s.auth_max_failures_per_ip:
                await audit_repo.record(
                    conn, address, "auth.throttled", address, {"protocol": protocol}, remote_ip
                )
                await self.sleep(s.auth_failure_delay)
                return AuthResult(None, "throttled")
            account = await accounts_repo.get_by_address_for_login(conn, address)
        # argon2 is CPU-bound: keep it off the event loop.
        good = await asyncio.to_thread(
            passwords.verify, account.password_hash if account else None, password
        )
        reason = ""
        if not good:
            reason = "invalid"
        elif account is None or not account.enabled or account.kind != "person":
            reason = "disabled"
        async with self.db.transaction() as conn:
            if reason:
                await audit_repo.add_auth_failure(conn, address, remote_ip)
                await audit_repo.record(
                    conn, address, "auth.fail", address,
                    {"protocol": protocol, "reason": reason}, remote_ip,
                )
            else:
                assert account is not None and account.password_hash
                await audit_repo.record(
                    conn, address, "auth.ok", address, {"protocol": protocol}, remote_ip
                )
                if passwords.needs_rehash(account.password_hash):
                    await accounts_repo.update(
                        conn, account.id, password_hash=passwords.hash_password(password)
                    )
        if reason:
            await self.sleep(s.auth_failure_delay)
            return AuthResult(None, reason)
        return AuthResult(account)
