"""One LISTEN connection per node, fanning mailbox changes out to IMAP sessions.

Every writer (SMTP delivery, IMAP on any node, the admin tool) sends
``pg_notify('congvu_mail', '{"account_id": a, "mailbox_id": m, ...}')``
inside its transaction, so the notification arrives when the change is
committed. The hub marks every session watching that mailbox dirty and wakes
it: an IDLE session (RFC 2177) then polls the mailbox and reports EXISTS,
FETCH and EXPUNGE at once, whichever node made the change. If the LISTEN
connection drops, the hub reconnects and wakes every session so nothing
announced in between is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg

from congvu.store.db import Database
from congvu.store.flagcache import FlagCache, flag_state
from congvu.store.imapstore import NOTIFY_CHANNEL, UidCache

log = logging.getLogger(__name__)

__all__ = ["NotifyHub", "Watcher"]


class Watcher(Protocol):
    def mailbox_changed(self) -> None: ...


class NotifyHub:
    """Maps (account_id, mailbox_id) to the sessions that have it selected."""

    def __init__(self, db: Database, *, retry_delay: float = 1.0) -> None:
        self.db = db
        self.retry_delay = retry_delay
        self._watchers: dict[tuple[int, int], set[Watcher]] = {}
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._closing = False
        self.listening = asyncio.Event()
        #: This node's validated copy of selected mailboxes' UIDs (SELECT).
        self.uid_cache = UidCache()
        #: This node's validated copy of resynchronised mailboxes' flags (FETCH).
        self.flag_cache = FlagCache()
        self._warming: dict[tuple[int, int], asyncio.Task[None]] = {}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="imap-notify")
        await asyncio.wait_for(self.listening.wait(), 30)

    def warm_flags(self, account_id: int, mailbox_id: int) -> None:
        """Copy a mailbox's flags into :attr:`flag_cache` in the background.

        Called when a session answers a large FETCH (FLAGS) from the database
        (the first resync of a mailbox on this node): the answer is not held
        up by the copy, and the next resync is served from it.
        """
        key = (account_id, mailbox_id)
        if key in self._warming or self._closing:
            return

        async def run() -> None:
            try:
                async with self.db.connection() as conn:
                    await flag_state(conn, account_id, mailbox_id, self.flag_cache)
            except Exception:  # a deleted mailbox, a lost connection: no copy, no harm
                log.debug("flags of mailbox %s/%s not copied", account_id, mailbox_id,
                          exc_info=True)
            finally:
                self._warming.pop(key, None)

        self._warming[key] = asyncio.get_running_loop().create_task(run())

    async def stop(self) -> None:
        self._closing = True
        for task in tuple(self._warming.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_conn()

    async def _close_conn(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _run(self) -> None:
        while not self._closing:
            try:
                conn = await self.db.raw_connection()
                self._conn = conn
                self._lost.clear()
                conn.add_termination_listener(lambda _c: self._lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self.listening.set()
                self.wake_all()  # anything committed while we were away
                await self._lost.wait()
                log.warning("IMAP notification connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot LISTEN for mailbox changes; retrying")
            await self._close_conn()
            await asyncio.sleep(self.retry_delay)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
            key = (int(data["account_id"]), int(data["mailbox_id"]))
        except (ValueError, KeyError, TypeError):
            self.wake_all()  # a payload we do not understand: poll everything
            return
        for w in tuple(self._watchers.get(key, ())):
            w.mailbox_changed()

    def wake_all(self) -> None:
        for group in tuple(self._watchers.values()):
            for w in tuple(group):
                w.mailbox_changed()

    def watch(self, account_id: int, mailbox_id: int, watcher: Watcher) -> Callable[[], None]:
        key = (account_id, mailbox_id)
        self._watchers.setdefault(key, set()).add(watcher)

        def unwatch() -> None:
            group = self._watchers.get(key)
            if group is not None:
                group.discard(watcher)
                if not group:
                    del self._watchers[key]

        return unwatch
