"""Frame IMAP commands out of a byte stream (RFC 9051 §2.2, RFC 7888 LITERAL+/-).

The connection feeds every received chunk to :meth:`CommandFramer.feed` and
acts on the events it returns, in order:

* :class:`CommandReady` — a complete command (line, literals, final CRLF)
  for :func:`.parser.parse_command`;
* :class:`ContinuationNeeded` — a synchronizing literal ``{n}`` was
  announced: send ``+ Ready for literal data`` (RFC 9051 §7.5) now;
* :class:`Rejected` — the command broke a limit: write
  ``event.error.response()`` (``tag BAD [TOOBIG] ...``); the framer has
  already dropped the command and skips whatever the client still sends of
  it (the rest of an overlong line, the bytes of an oversized
  non-synchronizing literal), so the next command is framed cleanly.

:class:`.errors.ImapFatal` is raised when the stream is beyond repair
(an overlong line that goes on past ``max_discard``): answer ``* BYE`` and
close. Memory is bounded by ``max_line`` plus ``max_command``; an overlong
line is never buffered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from .errors import ImapFatal, ParseError

__all__ = ["CommandFramer", "CommandReady", "ContinuationNeeded", "FramerEvent", "Rejected"]

_TAG = re.compile(rb'[^\x00-\x20\x7f(){%*"\\+]+(?= )')
_LITERAL_END = re.compile(rb"~?\{([0-9]{1,20})(\+?)\}\r?\n\Z")


@dataclass(frozen=True, slots=True)
class CommandReady:
    """A complete command buffer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ContinuationNeeded:
    """Send a continuation request: the client waits before sending ``size`` bytes."""

    tag: str | None
    size: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """The current command was dropped; write ``error.response()``."""

    error: ParseError


FramerEvent: TypeAlias = CommandReady | ContinuationNeeded | Rejected


class CommandFramer:
    """Incremental command framer; one per connection.

    ``max_line``: longest line (between literals) accepted, CRLF excluded.
    ``max_literal``: largest literal (an APPEND message). ``max_command``:
    all lines and literals of one command together. ``max_nonsync_literal``:
    cap for ``{n+}`` when only LITERAL- is advertised (RFC 7888 §5: 4096).
    ``max_discard``: how long an overlong line may go on before the
    connection is closed.
    """

    def __init__(
        self,
        *,
        max_line: int = 64 * 1024,
        max_literal: int = 64 * 1024 * 1024,
        max_command: int | None = None,
        max_nonsync_literal: int | None = None,
        max_discard: int = 64 * 1024 * 1024,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = max_command if max_command is not None else max_literal + 4 * max_line
        self.max_nonsync_literal = max_nonsync_literal
        self.max_discard = max_discard
        self._line = bytearray()  # the line being received
        self._parts: list[bytes] = []  # finished lines and literals of this command
        self._size = 0  # bytes in _parts
        self._literal = 0  # literal bytes still expected
        self._tag: str | None = None  # tag of the command in progress
        self._dropping = False  # command rejected: consume it without keeping it
        self._overlong = False  # inside a line longer than max_line
        self._discarded = 0  # bytes of the overlong line so far
        self._tail = b""  # last bytes of the overlong line (may announce a literal)

    @property
    def idle(self) -> bool:
        """True between commands (nothing buffered): e.g. safe to start TLS or COMPRESS."""
        return not (self._line or self._parts or self._literal or self._overlong)

    def feed(self, data: bytes) -> list[FramerEvent]:
        """Consume received bytes; return the events they complete, in order."""
        events: list[FramerEvent] = []
        i, n = 0, len(data)
        while i < n:
            if self._literal:
                take = min(self._literal, n - i)
                if not self._dropping:
                    self._parts.append(data[i : i + take])
                i += take
                self._literal -= take
                continue
            j = data.find(b"\n", i)
            if self._overlong:
                i = self._skip_overlong(data, i, j, events)
                continue
            if j < 0:
                self._line += data[i:]
                if len(self._line) > self.max_line:
                    self._start_overlong(events)
                return events
            self._line += data[i : j + 1]
            i = j + 1
            line = bytes(self._line)
            self._line.clear()
            if len(line.rstrip(b"\r\n")) > self.max_line:
                self._reject(events, "Command line too long", line[: self.max_line])
                self._finish_line(line, events, keep=False)
                continue
            self._finish_line(line, events, keep=True)
        return events

    # -- internals ----------------------------------------------------------

    def _reject(self, events: list[FramerEvent], text: str, head: bytes | None = None) -> None:
        if self._dropping:
            return  # one reply per command
        tag = self._tag
        if tag is None and head is not None and not self._parts:
            m = _TAG.match(head)
            tag = m.group(0).decode("ascii", "replace") if m else None
        events.append(Rejected(ParseError(text, code="TOOBIG", tag=tag)))
        self._dropping = True
        self._parts.clear()
        self._size = 0

    def _finish_line(self, line: bytes, events: list[FramerEvent], keep: bool) -> None:
        """A complete line of the current command: does a literal follow?"""
        if self._tag is None and not self._parts:
            m = _TAG.match(line)
            self._tag = m.group(0).decode("ascii", "replace") if m else None
        m = _LITERAL_END.search(line[-32:]) if line.endswith(b"}\r\n") or line.endswith(
            b"}\n"
        ) else None
        if keep and not self._dropping:
            self._parts.append(line)
            self._size += len(line)
            if self._size > self.max_command:
                self._reject(events, "Command too long")
        if m is None:
            self._end_command(events)
            return
        size, nonsync = int(m.group(1)), bool(m.group(2))
        limit = self.max_literal
        if nonsync and self.max_nonsync_literal is not None:
            limit = min(limit, self.max_nonsync_literal)
        if not self._dropping and (size > limit or self._size + size > self.max_command):
            self._reject(events, f"Literal of {size} octets is too large (limit {limit})")
        if self._dropping and not nonsync:
            # The client waits for "+" which never comes; our tagged BAD ends
            # the command for it (RFC 9051 §7.5, RFC 7888 §4).
            self._end_command(events)
            return
        self._literal = size
        if not nonsync:
            events.append(ContinuationNeeded(self._tag, size))

    def _end_command(self, events: list[FramerEvent]) -> None:
        if not self._dropping:
            events.append(CommandReady(b"".join(self._parts)))
        self._parts.clear()
        self._size = 0
        self._tag = None
        self._dropping = False

    def _start_overlong(self, events: list[FramerEvent]) -> None:
        head = bytes(self._line[:256])
        self._reject(events, "Command line too long", head)
        self._overlong = True
        self._discarded = len(self._line)
        self._tail = bytes(self._line[-32:])
        self._line.clear()
        if self._discarded > self.max_discard:
            raise ImapFatal("Command line far too long", code="TOOBIG")

    def _skip_overlong(self, data: bytes, i: int, j: int, events: list[FramerEvent]) -> int:
        end = len(data) if j < 0 else j + 1
        self._discarded += end - i
        self._tail = (self._tail + data[max(i, end - 32) : end])[-32:]
        if self._discarded > self.max_discard:
            raise ImapFatal("Command line far too long", code="TOOBIG")
        if j >= 0:
            self._overlong = False
            # Still dropping: a literal announced at the end is skipped too.
            self._finish_line(self._tail, events, keep=False)
        return end
