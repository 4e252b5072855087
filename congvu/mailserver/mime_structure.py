"""The MIME tree of a raw message with exact byte offsets (RFC 2045/2046).

Our own scanner rather than ``email.parser``: IMAP serves BODY[1.2],
BODY[1.2.MIME] and friends by slicing the stored bytes, so every part's
header and body must be located to the byte, and ``email`` does not report
offsets.  The scanner never copies body bytes; it only ``find``s boundaries,
so a message is scanned in (nesting depth × size) time with C-level
searches.

Offsets follow RFC 3501 §6.4.5 and RFC 2046 §5.1.1:

- a part's header runs from its first byte through the empty line;
- a body part of a multipart starts after the boundary line and ends
  *before* the CRLF that precedes the next delimiter (that CRLF "is
  conceptually attached to the boundary");
- preamble and epilogue belong to no part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .mime_headers import Headers, find_header_end
from .mime_params import parse_content_type

__all__ = ["MAX_DEPTH", "MAX_PARTS", "Part", "build_part_map", "scan_message"]

#: Nesting beyond this is not split further (Dovecot stops at 100; mail
#: nested this deep is an attack, not correspondence).
MAX_DEPTH = 50
#: At most this many parts per message are split out.
MAX_PARTS = 10_000

_IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})


@dataclass(eq=False)
class Part:
    """One MIME entity: a message, or a body part of a multipart."""

    hs: int  # header start offset in raw
    bs: int  # body start (just after the blank line)
    be: int  # body end (exclusive)
    headers: Headers
    maintype: str
    subtype: str
    params: list[tuple[str, str]]
    children: list[Part] | None = None  # set for multipart
    message: Part | None = None  # the encapsulated message of message/rfc822
    #: True for a top-level message or the encapsulated one in message/rfc822
    is_message: bool = False
    parent_subtype: str = ""  # subtype of the enclosing multipart, if any
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def encoding(self) -> str:
        value = self.headers.get_stripped("content-transfer-encoding")
        return (value or "7bit").lower()

    @property
    def is_multipart(self) -> bool:
        return self.children is not None


class _Budget:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = MAX_PARTS


def scan_message(raw: bytes) -> Part:
    """Scan the whole of *raw* as a message; never raises."""
    return _scan_entity(raw, 0, len(raw), 0, ("text", "plain"), True, "", _Budget())


def _scan_entity(
    raw: bytes,
    hs: int,
    end: int,
    depth: int,
    default: tuple[str, str],
    is_message: bool,
    parent_subtype: str,
    budget: _Budget,
) -> Part:
    bs = find_header_end(raw, hs, end)
    headers = Headers(raw[hs:bs])
    maintype, subtype, params = parse_content_type(headers.get("content-type"), default)
    part = Part(hs, bs, end, headers, maintype, subtype, params,
                is_message=is_message, parent_subtype=parent_subtype)
    budget.parts -= 1
    if maintype == "multipart":
        boundary = next((v for k, v in params if k == "boundary"), "")
        if not boundary or depth >= MAX_DEPTH or budget.parts <= 0:
            # RFC 2046 §5.1.1 requires a boundary; without one (or past our
            # limits) the body is shown as what it is to a reader: text.
            part.maintype, part.subtype, part.params = "text", "plain", [("charset", "us-ascii")]
            return part
        child_default = ("message", "rfc822") if subtype == "digest" else ("text", "plain")
        part.children = [
            _scan_entity(raw, s, e, depth + 1, child_default, False, subtype, budget)
            for s, e in _split_multipart(raw, bs, end, boundary.encode("latin-1"))
            if budget.parts > 0
        ]
    elif (
        maintype == "message"
        and subtype == "rfc822"
        and part.encoding in _IDENTITY_ENCODINGS
        and depth < MAX_DEPTH
    ):
        # RFC 2046 §5.2.1: the body is a complete message.  (A base64-encoded
        # message/rfc822 is illegal; it is left opaque.)
        part.message = _scan_entity(raw, bs, end, depth + 1, ("text", "plain"), True, "", budget)
    return part


def _split_multipart(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """(start, end) of each body part of the multipart body ``raw[start:end]``."""
    delim = b"--" + boundary
    dlen = len(delim)
    ranges: list[tuple[int, int]] = []
    part_start = -1  # -1: still in the preamble
    pos = start
    while True:
        i = raw.find(delim, pos, end)
        if i < 0:
            break
        # RFC 2046 §5.1.1: the delimiter must begin a line.
        if i != start and raw[i - 1] != 0x0A:
            pos = i + 1
            continue
        after = i + dlen
        nl = raw.find(b"\n", after, end)
        line_end = end if nl < 0 else nl
        rest = raw[after:line_end].rstrip(b" \t\r")
        is_close = rest.startswith(b"--")
        if rest and not is_close:
            pos = after  # "--boundaryX": a longer boundary, not ours
            continue
        # the CRLF (or bare LF) before the delimiter belongs to it
        pre = i
        if i > start and raw[i - 1] == 0x0A:
            pre = i - 1
            if pre > start and raw[pre - 1] == 0x0D:
                pre -= 1
        if part_start >= 0:
            ranges.append((part_start, max(part_start, pre)))
        if is_close:
            return ranges
        part_start = end if nl < 0 else nl + 1
        pos = part_start
    if part_start >= 0:
        ranges.append((part_start, end))  # no close delimiter: runs to the end
    return ranges


def build_part_map(root: Part) -> list[list[object]]:
    """The part map: one entry per addressable IMAP section part (RFC 3501 §6.4.5).

    Each entry is ``[part, header_start, body_start, body_end]`` and, for a
    message/rfc822 part, a fifth item: where the encapsulated message's body
    starts (its header is ``raw[body_start:that]``).  The first entry,
    ``["", 0, body_start, size]``, is the message itself.  A non-multipart
    message's "1" entry spans the message header and body, so BODY[1] is the
    body and BODY[1.MIME] the header, as Dovecot serves them.
    """
    out: list[list[object]] = [["", root.hs, root.bs, root.be]]
    _number_message(root, "", out)
    return out


def _number_message(msg: Part, prefix: str, out: list[list[object]]) -> None:
    if msg.children is not None:
        for k, child in enumerate(msg.children, 1):
            _number_part(child, f"{prefix}{k}", out)
    else:
        _number_part(msg, f"{prefix}1", out)


def _number_part(part: Part, number: str, out: list[list[object]]) -> None:
    part.extra["number"] = number
    entry: list[object] = [number, part.hs, part.bs, part.be]
    out.append(entry)
    if part.children is not None:
        for k, child in enumerate(part.children, 1):
            _number_part(child, f"{number}.{k}", out)
    elif part.message is not None:
        entry.append(part.message.bs)
        _number_message(part.message, number + ".", out)
