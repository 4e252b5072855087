"""What every listener is handed: settings, the database and the directory services."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import datetime, UTC
from collections.abc import Awaitable, Callable

from .config import Settings
from .directory.auth import Authenticator
from .directory.authz import Authorizer
from .directory.service import Directory
from .store.db import Database


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    db: Database
    directory: Directory
    auth: Authenticator
    authz: Authorizer
    tls: ssl.SSLContext | None = None
    now: Callable[[], datetime] = field(default=_utcnow)

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Database,
        *,
        tls: ssl.SSLContext | None = None,
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> Services:
        auth = Authenticator(db, settings, sleep=sleep) if sleep else Authenticator(db, settings)
        return cls(
            settings=settings,
            db=db,
            directory=Directory(db, settings, now=now),
            auth=auth,
            authz=Authorizer(db, now=now),
            tls=tls,
            now=now,
        )
