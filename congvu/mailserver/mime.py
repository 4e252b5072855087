"""Parse once, at delivery: everything IMAP and webmail need from a message.

DESIGN.md principle 3: message bytes are parsed exactly once, when they are
delivered or appended, and what FETCH ENVELOPE/BODY/BODYSTRUCTURE/BODY[…],
SEARCH, SORT and webmail need is stored beside the bytes (table
``message_blobs``).  This module is pure — no asyncio, no database, no I/O —
and never raises on garbage: broken mail is the normal case.

Usage::

    pm = parse_message(raw)
    row = pm.to_row()                    # columns of message_blobs
    section_bytes(raw, pm.part_map, "1.2.MIME")   # later, per FETCH

The work is split into helpers: ``mime_headers`` (fields, charsets,
RFC 2047), ``mime_params`` (Content-Type/Disposition, RFC 2231),
``mime_address`` (address lists), ``mime_structure`` (the MIME tree with
byte offsets and the part map), ``mime_imap`` (wire renderings),
``mime_text`` (body text, preview, base subject) and ``mime_section``
(BODY[section] slicing).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

from ..textfold import fold, fold_lines
from .mime_address import MISSING_DOMAIN, MISSING_MAILBOX, EnvAddress, parse_address_list
from .mime_headers import Headers, decode_words, to_text
from .mime_imap import render_body, render_envelope
from .mime_params import param_value, parse_disposition
from .mime_section import parse_section, render_header_fields, section_bytes
from .mime_structure import Part, build_part_map, scan_message
from .mime_text import DEFAULT_MAX_TEXT, base_subject, collect_text, decode_subject

__all__ = [
    "DEFAULT_MAX_TEXT",
    "PREVIEW_LENGTH",
    "Address",
    "Attachment",
    "ParsedMessage",
    "base_subject",
    "normalize_crlf",
    "parse_date",
    "parse_message",
    "parse_section",
    "render_header_fields",
    "section_bytes",
]

#: Length of :attr:`ParsedMessage.preview`, in characters.
PREVIEW_LENGTH = 200
# Subjects are cut to this before computing the RFC 5256 base subject.
_SORT_SUBJECT_MAX = 1000


class Address(NamedTuple):
    """A decoded mailbox for webmail and search: display name and address."""

    name: str  # decoded display name, "" if none
    address: str  # "local@domain" (local part may be UTF-8, RFC 6531)

    def __str__(self) -> str:
        if not self.name:
            return self.address
        return f"{self.name} <{self.address}>"


class Attachment(NamedTuple):
    """One attachment, enough for webmail to list it and fetch BODY[part]."""

    part: str  # IMAP part number, e.g. "2" or "1.3"
    filename: str  # decoded (RFC 2231 / RFC 2047), "" if none given
    content_type: str  # "application/pdf"
    octets: int  # encoded size as stored
    encoding: str  # Content-Transfer-Encoding, lower case


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What is stored beside a message's bytes; see :func:`parse_message`."""

    size: int
    # IMAP wire renderings (RFC 3501 §7.4.2), spliced into FETCH responses
    envelope: bytes
    body: bytes
    bodystructure: bytes
    # [part, header_start, body_start, body_end(, inner_body_start)] per part
    part_map: tuple[tuple[str | int, ...], ...]
    # decoded header fields (RFC 2047), for SEARCH/SORT/webmail
    subject: str
    from_addrs: tuple[Address, ...]
    sender_addrs: tuple[Address, ...]
    reply_to_addrs: tuple[Address, ...]
    to_addrs: tuple[Address, ...]
    cc_addrs: tuple[Address, ...]
    bcc_addrs: tuple[Address, ...]
    sent_date: datetime | None  # UTC; None when missing or unparsable
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    # RFC 5256 sort keys (case-folded)
    sort_subject: str
    sort_from: str
    sort_to: str
    sort_cc: str
    # folded search text (textfold.fold)
    search_headers: str
    search_body: str
    # webmail
    preview: str
    has_attachments: bool
    attachments: tuple[Attachment, ...]

    @property
    def from_text(self) -> str:
        return ", ".join(map(str, self.from_addrs))

    @property
    def to_text(self) -> str:
        return ", ".join(map(str, self.to_addrs))

    @property
    def cc_text(self) -> str:
        return ", ".join(map(str, self.cc_addrs))

    def part_map_json(self) -> str:
        """The part map as compact JSON, for a ``jsonb`` column."""
        return json.dumps(self.part_map, separators=(",", ":"))

    def to_row(self) -> dict[str, Any]:
        """The ``message_blobs`` columns derived from the message (all but sha256/raw)."""
        return {
            "size": self.size,
            "envelope": self.envelope,
            "body": self.body,
            "bodystructure": self.bodystructure,
            "part_map": self.part_map_json(),
            "sent_date": self.sent_date,
            "subject": self.subject,
            "from_text": self.from_text,
            "to_text": self.to_text,
            "cc_text": self.cc_text,
            "message_id": self.message_id,
            "sort_subject": self.sort_subject,
            "sort_from": self.sort_from,
            "sort_to": self.sort_to,
            "sort_cc": self.sort_cc,
            "search_headers": self.search_headers,
            "search_body": self.search_body,
            "preview": self.preview,
            "has_attachments": self.has_attachments,
        }


# --------------------------------------------------------------------------


def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 §3.3 date as an aware UTC datetime, or None; never raises.

    A date without a zone (or ``-0000``) is taken as UTC (RFC 5322 §3.3).
    """
    if not value or not value.strip():
        return None
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    try:
        if dt.tzinfo is None:
            return dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


_MSG_ID = re.compile(r"<[^<>\s]*>")


def _msg_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = _MSG_ID.findall(value)
    if not ids and value.strip():
        ids = value.split()  # "abc@host" without brackets: keep what was sent
    return ids


def _decode_addresses(env: list[EnvAddress], fallback: str | None) -> tuple[Address, ...]:
    out: list[Address] = []
    for a in env:
        if a.is_group_marker:
            continue
        name = decode_words(a.name, fallback).strip() if a.name else ""
        mailbox = a.mailbox if a.mailbox and a.mailbox != MISSING_MAILBOX else ""
        address = mailbox if a.host in (None, MISSING_DOMAIN) else f"{mailbox}@{a.host}"
        out.append(Address(name, to_text(address, fallback)))
    return tuple(out)


def _sort_mailbox(env: list[EnvAddress]) -> str:
    # RFC 5256 §3: the addr-mailbox of the first address (group markers skipped)
    for a in env:
        if not a.is_group_marker and a.mailbox not in (None, MISSING_MAILBOX):
            return to_text(a.mailbox or "").casefold()
    return ""


def _header_text(headers: Headers, fallback: str | None, limit: int) -> str:
    lines: list[str] = []
    size = 0
    for name, value in headers.fields:
        line = f"{name}: {decode_words(value, fallback)}"
        lines.append(line)
        size += len(line) + 1
        if size >= limit:
            break
    return "\n".join(lines)[:limit]


def _attachments(part: Part, out: list[Attachment], top: bool = True) -> None:
    if part.children is not None:
        for child in part.children:
            _attachments(child, out, False)
        return
    dsp = parse_disposition(part.headers.get("content-disposition"))
    filename = (param_value(dsp[1], "filename") if dsp else None) or param_value(
        part.params, "name"
    )
    if dsp and dsp[0] == "attachment":
        is_attachment = True
    elif part.maintype == "message":
        is_attachment = not top  # a forwarded message
    elif part.maintype == "text":
        # a single-part text message is the message, not an attachment
        is_attachment = not top and bool(filename) and not (dsp and dsp[0] == "inline")
    else:
        # images in multipart/related are the HTML's own pictures
        is_attachment = part.parent_subtype != "related"
    if is_attachment:
        out.append(Attachment(
            part=str(part.extra.get("number", "1")),
            filename=(filename or "").strip(),
            content_type=f"{part.maintype}/{part.subtype}",
            octets=part.be - part.bs,
            encoding=part.encoding,
        ))


def parse_message(raw: bytes, *, max_text: int = DEFAULT_MAX_TEXT) -> ParsedMessage:
    """Parse *raw* once into everything stored beside it.  Never raises.

    *max_text* caps the characters of body text gathered for search (and
    the header text), so a huge attachment cannot blow up memory.
    """
    root = scan_message(raw)
    part_map = build_part_map(root)
    h = root.headers
    # 8-bit bytes in headers without SMTPUTF8 are most likely in the body's charset
    fallback = param_value(root.params, "charset") if root.maintype == "text" else None

    env_from = parse_address_list(h.get("from"))
    env_to = parse_address_list(h.get("to"))
    env_cc = parse_address_list(h.get("cc"))
    subject = decode_subject(h.get("subject"), fallback)

    def message_header_lines(msg: Part) -> str:
        return _header_text(msg.headers, fallback, max_text)

    text = collect_text(raw, root, max_text, message_header_lines)
    attachments: list[Attachment] = []
    _attachments(root, attachments)
    in_reply_to = _msg_ids(h.get("in-reply-to"))
    message_ids = _msg_ids(h.get("message-id"))

    return ParsedMessage(
        size=len(raw),
        envelope=render_envelope(h),
        body=render_body(raw, root, extended=False),
        bodystructure=render_body(raw, root, extended=True),
        part_map=tuple(tuple(e) for e in part_map),  # type: ignore[arg-type]
        subject=subject,
        from_addrs=_decode_addresses(env_from, fallback),
        sender_addrs=_decode_addresses(parse_address_list(h.get("sender")), fallback),
        reply_to_addrs=_decode_addresses(parse_address_list(h.get("reply-to")), fallback),
        to_addrs=_decode_addresses(env_to, fallback),
        cc_addrs=_decode_addresses(env_cc, fallback),
        bcc_addrs=_decode_addresses(parse_address_list(h.get("bcc")), fallback),
        sent_date=parse_date(h.get("date")),
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(_msg_ids(h.get("references"))),
        sort_subject=base_subject(subject[:_SORT_SUBJECT_MAX]).casefold(),
        sort_from=_sort_mailbox(env_from),
        sort_to=_sort_mailbox(env_to),
        sort_cc=_sort_mailbox(env_cc),
        search_headers=fold_lines(_header_text(h, fallback, max_text)),
        search_body=fold(text.text),
        preview=text.preview(PREVIEW_LENGTH),
        has_attachments=bool(attachments),
        attachments=tuple(attachments),
    )


_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")


def normalize_crlf(raw: bytes) -> bytes:
    """*raw* with every line ending CRLF, as IMAP requires (RFC 3501 §2.2).

    For APPEND and delivery to call before storing, so that RFC822.SIZE,
    octet counts and BODY[] all describe the bytes a client receives.
    """
    if b"\n" not in raw and b"\r" not in raw:
        return raw
    if raw.count(b"\r\n") == raw.count(b"\n") == raw.count(b"\r"):
        return raw
    return _BARE_LF.sub(b"\r\n", _BARE_CR.sub(b"\r\n", raw))
