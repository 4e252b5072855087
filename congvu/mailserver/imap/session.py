"""One IMAP connection: I/O, the state machine and dispatch by name.

States (RFC 3501 §3): not authenticated → authenticated ⇄ selected → logout.
Each handler is a ``do_<command>`` method of one of the ``commands_*``
mixins, declaring the states it is allowed in with :func:`allowed_in`; the
dispatcher refuses a command in the wrong state with ``BAD`` before the
handler runs. Errors that know their reply (:class:`.errors.ImapError`,
store errors) become ``NO``/``BAD``; anything else is logged and answered
with ``* BYE`` — the connection ends, the server and its other sessions
live on (CONVENTIONS 3).

Reading goes through :class:`.framer.CommandFramer` (line and literal limits,
continuation requests) and :func:`.parser.parse_command`; a decompressor
sits in front of it once COMPRESS=DEFLATE is active (RFC 4978).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import zlib
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from congvu.store.accounts import Account
from congvu.store.errors import Conflict, Forbidden, Invalid, NotFound, StoreError

from . import commands as c
from . import responses as r
from .commands_auth import AuthCommands
from .commands_ext import ExtCommands
from .commands_fetch import FetchCommands
from .commands_list import ListCommands
from .commands_mailbox import MailboxCommands
from .commands_search import SearchCommands
from .commands_selected import SelectedCommands
from .errors import ImapBad, ImapError, ImapFatal, ImapNo
from .framer import CommandFramer, CommandReady, ContinuationNeeded, FramerEvent, Rejected
from .parser import parse_command
from .selected import SelectedMailbox
from .state import AUTHENTICATED, LOGOUT, NOT_AUTHENTICATED, SELECTED

if TYPE_CHECKING:
    from congvu.services import Services

    from .notify import NotifyHub

log = logging.getLogger(__name__)

__all__ = ["Session"]

#: Literal limit before login: a stranger may not make us buffer 64 MB.
PREAUTH_MAX_LITERAL = 64 * 1024
MAX_LINE = 64 * 1024
#: Poll the selected mailbox this often while idling even without a notification.
IDLE_POLL_SECONDS = 30.0
#: Close connections idle this long outside IDLE (RFC 3501 §5.4: at least 30 minutes).
AUTOLOGOUT_SECONDS = 31 * 60


class _Closed(Exception):
    """The client went away."""


class Session(AuthCommands, MailboxCommands, ListCommands, SelectedCommands, FetchCommands,
              SearchCommands, ExtCommands):
    """State of one connection; handlers come from the ``commands_*`` mixins."""

    def __init__(self, services: Services, hub: NotifyHub, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, tls_active: bool) -> None:
        self.services = services
        self.hub = hub
        self.reader = reader
        self.writer = writer
        self.tls_active = tls_active
        peer = writer.get_extra_info("peername")
        self.remote_ip: str | None = peer[0] if isinstance(peer, tuple) else None
        self.state = NOT_AUTHENTICATED
        self.account: Account | None = None
        self.selected: SelectedMailbox | None = None
        self.enabled: set[str] = set()
        self.framer = CommandFramer(max_line=MAX_LINE, max_literal=PREAUTH_MAX_LITERAL)
        self._events: collections.deque[FramerEvent] = collections.deque()
        self._out: list[bytes] = []
        self._inflate: Any = None
        self._deflate: Any = None
        self._read_task: asyncio.Task[bytes] | None = None
        self._wake: asyncio.Event | None = None

    # -- properties ---------------------------------------------------------------

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def login_disabled(self) -> bool:
        """RFC 3501 §6.2.3/§7.2.1: no plaintext passwords before TLS, except loopback tests."""
        if self.tls_active:
            return False
        return not (self.services.settings.allow_plaintext_loopback and self._loopback())

    def _loopback(self) -> bool:
        ip = self.remote_ip or ""
        return ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1")

    def mailbox_changed(self) -> None:
        """Called by the notification hub (any node changed our selected mailbox)."""
        if self.selected is not None:
            self.selected.dirty = True
        if self._wake is not None:
            self._wake.set()

    # -- output -----------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self._out.append(data)

    async def flush(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        if self._deflate is not None:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self.writer.write(data)
        await self.writer.drain()

    # -- input ------------------------------------------------------------------

    async def _read_chunk(self) -> bytes:
        data = await self.reader.read(65536)
        if not data:
            raise _Closed()
        if self._inflate is not None:
            data = self._inflate.decompress(data)
        return data

    async def next_event(self, wake: asyncio.Event | None = None,
                         timeout: float | None = None) -> FramerEvent | None:
        """The next framer event; None when ``wake`` fires or ``timeout`` passes first."""
        while not self._events:
            if self._read_task is None:
                self._read_task = asyncio.ensure_future(self._read_chunk())
            waits: set[asyncio.Future[Any]] = {self._read_task}
            wake_task = None
            if wake is not None:
                wake_task = asyncio.ensure_future(wake.wait())
                waits.add(wake_task)
            try:
                done, _ = await asyncio.wait(waits, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                if wake_task is not None and not wake_task.done():
                    wake_task.cancel()
            if self._read_task not in done:
                return None
            task, self._read_task = self._read_task, None
            data = task.result()
            self._events.extend(self.framer.feed(data))
        return self._events.popleft()

    async def next_line(self) -> bytes:
        """A raw line (SASL response, IDLE's DONE), framed like a command."""
        while True:
            ev = await self.next_event(timeout=AUTOLOGOUT_SECONDS)
            if ev is None:
                raise ImapFatal("Autologout; idle for too long")
            if isinstance(ev, CommandReady):
                return ev.data
            if isinstance(ev, ContinuationNeeded):
                self.send(r.CONTINUE_LITERAL)
                await self.flush()
            elif isinstance(ev, Rejected):
                raise ev.error

    # -- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        try:
            caps = " ".join(self.capabilities())
            self.send(r.untagged_ok(f"CAPABILITY {caps}", "Congvu IMAP ready"))
            await self.flush()
            while self.state != LOGOUT:
                ev = await self.next_event(timeout=AUTOLOGOUT_SECONDS)
                if ev is None:
                    raise ImapFatal("Autologout; idle for too long")
                if isinstance(ev, ContinuationNeeded):
                    self.send(r.CONTINUE_LITERAL)
                elif isinstance(ev, Rejected):
                    self.send(ev.error.response())
                else:
                    await self.handle(ev.data)
                await self.flush()
        except _Closed:
            pass
        except ImapFatal as exc:
            await self._bye(exc.response())
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            await self._bye(r.bye("Server shutting down", "UNAVAILABLE"))
            raise
        except Exception:
            log.exception("IMAP session failed unexpectedly (peer %s)", self.remote_ip)
            await self._bye(r.bye("Internal server error, closing connection", "SERVERBUG"))
        finally:
            await self.close()

    async def _bye(self, line: bytes) -> None:
        try:
            self._out.clear()
            self.send(line)
            await asyncio.wait_for(self.flush(), 5)
        except Exception:
            pass

    async def close(self) -> None:
        self.deselect()
        if self._read_task is not None:
            self._read_task.cancel()
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except Exception:
            pass

    async def handle(self, data: bytes) -> None:
        """Parse and run one command; every outcome is answered."""
        tag: str | None = None
        try:
            cmd = parse_command(data)
            tag = cmd.tag
            handler = self._handler(cmd)
            await self.before_command(cmd)
            await handler(cmd)
        except ImapFatal:
            raise
        except ImapError as exc:
            self.send(exc.response(tag if tag is not None else exc.tag))
            if tag is not None and self.state in (AUTHENTICATED, SELECTED):
                await self.report_updates(allow_expunge=False)
        except StoreError as exc:
            self.send(_store_error(exc).response(tag))

    def _handler(self, cmd: c.Command) -> Callable[[Any], Any]:
        method = getattr(self, "do_" + cmd.name.lower(), None)
        if method is None:
            raise ImapBad(f"{cmd.name} is not supported")
        states = getattr(method, "imap_states", ())
        if self.state not in states:
            # RFC 3501 §6: a command in the wrong state is a protocol error.
            raise ImapBad(f"{cmd.name} is not allowed in the {self.state} state",
                          code="CLIENTBUG")
        return method

    async def before_command(self, cmd: c.Command) -> None:
        """Re-check a delegate's grant on every command (an expired grant ends access)."""
        sel = self.selected
        if sel is None or not sel.ref.shared or self.account is None:
            return
        rights = await self.rights_for(sel.ref.owner_id)
        if "r" not in rights:
            self.deselect()
            self.state = AUTHENTICATED
            self.send(r.untagged_ok("CLOSED", "Access to the shared mailbox has ended"))
            if cmd.name not in ("LOGOUT", "CAPABILITY", "NOOP", "SELECT", "EXAMINE", "LIST",
                                "LSUB", "STATUS", "NAMESPACE", "ID", "ENABLE", "CREATE",
                                "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "APPEND",
                                "GETQUOTAROOT", "GETQUOTA", "MYRIGHTS", "GETACL",
                                "LISTRIGHTS", "IDLE"):
                raise ImapNo("Access to the shared mailbox has ended", code="NOPERM")
        elif rights != sel.ref.rights:
            from dataclasses import replace

            sel.ref = replace(sel.ref, rights=rights)
            if "w" not in rights and "s" not in rights:
                sel.readonly = True

    # -- selection -----------------------------------------------------------------

    def deselect(self) -> None:
        sel = self.selected
        if sel is not None:
            if sel.unwatch is not None:
                sel.unwatch()
            self.selected = None

    async def report_updates(self, *, allow_expunge: bool, force: bool = False,
                             with_uid: bool = False) -> None:
        """Send what changed in the selected mailbox since we last looked (RFC 3501 §7)."""
        sel = self.selected
        if sel is None:
            return
        if not (force or sel.dirty or (allow_expunge and sel.pending)):
            return
        sel.dirty = False
        from congvu.store.imap_messages import changes_since

        try:
            async with self.services.db.connection() as conn:
                changes = await changes_since(conn, sel.ref.owner_id, sel.ref.mailbox_id,
                                              sel.known_modseq, sel.ref.reader_id)
                if not changes and force:
                    from congvu.store.imapstore import get_mailbox_by_id

                    await get_mailbox_by_id(conn, sel.ref.owner_id, sel.ref.mailbox_id)
        except NotFound:
            raise ImapFatal("The selected mailbox was deleted", code="NONEXISTENT") from None
        for line in sel.apply(changes, allow_expunge=allow_expunge, condstore=self.condstore,
                              qresync=self.qresync, with_uid=with_uid):
            self.send(line)

    def ok(self, tag: str, text: str, code: str | None = None) -> None:
        self.send(r.format_response(tag, "OK", code, text))


def _store_error(exc: StoreError) -> ImapNo:
    # RFC 5530 response codes.
    if isinstance(exc, NotFound):
        return ImapNo(str(exc), code="NONEXISTENT")
    if isinstance(exc, Conflict):
        return ImapNo(str(exc), code="ALREADYEXISTS")
    if isinstance(exc, Forbidden):
        return ImapNo(str(exc), code="NOPERM")
    if isinstance(exc, Invalid):
        return ImapNo(str(exc), code="CANNOT")
    return ImapNo(str(exc))
