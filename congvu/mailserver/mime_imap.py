"""IMAP wire renderings of ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 §7.4.2).

Computed once at delivery and stored as the exact bytes a FETCH response
splices in.  Header text is shown as sent — encoded-words are *not* decoded
(RFC 3501 §7.4.2) — and strings that cannot be IMAP quoted strings (8-bit,
CR, LF) are sent as literals ``{n}\\r\\n…``, which every IMAP4rev1 client
reads and which stay valid under UTF8=ACCEPT (RFC 6855).

Sizes and line counts are measured on the stored bytes: ``octets`` is the
length of the part body as it appears in the message (still
transfer-encoded), ``lines`` is the number of LF characters in it — the
count Dovecot reports, so a last line without a line end is not counted.
"""

from __future__ import annotations

from .mime_address import EnvAddress, parse_address_list
from .mime_headers import Headers
from .mime_params import parse_disposition
from .mime_structure import Part

__all__ = ["envelope_addresses", "imap_nstring", "imap_string", "render_body", "render_envelope"]

_NIL = b"NIL"


def imap_string(value: str) -> bytes:
    """An IMAP ``string`` for a latin-1 byte string: quoted when possible, else a literal."""
    data = value.encode("latin-1")
    if b"\0" in data:
        data = data.replace(b"\0", b"")  # NUL is allowed in neither form (RFC 3501 §4.3)
    if data.isascii() and b"\r" not in data and b"\n" not in data:
        if b"\\" in data or b'"' in data:
            data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


def imap_nstring(value: str | None) -> bytes:
    """``NIL`` for None, else :func:`imap_string`."""
    return _NIL if value is None else imap_string(value)


# --------------------------------------------------------------------------
# ENVELOPE


def envelope_addresses(headers: Headers, name: str) -> list[EnvAddress]:
    return parse_address_list(headers.get(name))


def _address_list(addrs: list[EnvAddress]) -> bytes:
    # address-list = "(" 1*address ")" / nil ; no SP between addresses
    if not addrs:
        return _NIL
    out = [b"("]
    for a in addrs:
        out += (b"(", imap_nstring(a.name), b" ", imap_nstring(a.adl), b" ",
                imap_nstring(a.mailbox), b" ", imap_nstring(a.host), b")")
    out.append(b")")
    return b"".join(out)


def render_envelope(headers: Headers) -> bytes:
    """The ENVELOPE of a message header (RFC 3501 §7.4.2, RFC 9051 §7.5.2).

    Fields are the first occurrence of each header.  Sender and Reply-To
    default to From when absent or empty.
    """
    from_ = parse_address_list(headers.get("from"))
    sender = parse_address_list(headers.get("sender")) or from_
    reply_to = parse_address_list(headers.get("reply-to")) or from_
    return b"".join((
        b"(",
        imap_nstring(headers.get_stripped("date")), b" ",
        imap_nstring(headers.get_stripped("subject")), b" ",
        _address_list(from_), b" ",
        _address_list(sender), b" ",
        _address_list(reply_to), b" ",
        _address_list(parse_address_list(headers.get("to"))), b" ",
        _address_list(parse_address_list(headers.get("cc"))), b" ",
        _address_list(parse_address_list(headers.get("bcc"))), b" ",
        imap_nstring(headers.get_stripped("in-reply-to")), b" ",
        imap_nstring(headers.get_stripped("message-id")),
        b")",
    ))


# --------------------------------------------------------------------------
# BODY / BODYSTRUCTURE


def _params(params: list[tuple[str, str]]) -> bytes:
    # body-fld-param = "(" string SP string *(SP string SP string) ")" / nil
    if not params:
        return _NIL
    return b"(" + b" ".join(imap_string(k) + b" " + imap_string(v) for k, v in params) + b")"


def _disposition(headers: Headers) -> bytes:
    dsp = parse_disposition(headers.get("content-disposition"))
    if dsp is None:
        return _NIL
    return b"(" + imap_string(dsp[0]) + b" " + _params(dsp[1]) + b")"


def _language(headers: Headers) -> bytes:
    # body-fld-lang = nstring / "(" string *(SP string) ")"
    value = headers.get("content-language")
    if value is None:
        return _NIL
    tags = [t.strip() for t in value.replace(";", ",").split(",") if t.strip()]
    if not tags:
        return _NIL
    if len(tags) == 1:
        return imap_string(tags[0])
    return b"(" + b" ".join(imap_string(t) for t in tags) + b")"


_DEFAULT_CHARSET = [("charset", "us-ascii")]


def _body_fields(part: Part, raw_len: int) -> bytes:
    # body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP
    #               body-fld-enc SP body-fld-octets
    h = part.headers
    params = part.params
    if part.maintype == "text" and not any(k in ("charset", "charset*") for k, _ in params):
        # RFC 2045 §5.2: text without a charset is us-ascii; say so, as
        # Dovecot does, so clients need not know the default
        params = params + _DEFAULT_CHARSET
    return b" ".join((
        _params(params),
        imap_nstring(h.get_stripped("content-id")),
        imap_nstring(h.get_stripped("content-description")),
        imap_string(part.encoding),
        b"%d" % raw_len,
    ))


def render_body(raw: bytes, part: Part, extended: bool) -> bytes:
    """BODY (``extended=False``) or BODYSTRUCTURE (``extended=True``) of *part*."""
    out: list[bytes] = []
    _render(raw, part, extended, out)
    return b"".join(out)


def _render(raw: bytes, part: Part, extended: bool, out: list[bytes]) -> None:
    h = part.headers
    out.append(b"(")
    if part.children is not None:
        # body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        if part.children:
            for child in part.children:
                _render(raw, child, extended, out)
        else:
            # 1*body: an empty multipart is shown holding one empty text part,
            # as Dovecot does, so clients get a grammatical response.
            out.append(b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)')
        out += (b" ", imap_string(part.subtype))
        if extended:
            # body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang
            #                  [SP body-fld-loc]]]
            out += (b" ", _params(part.params), b" ", _disposition(h), b" ",
                    _language(h), b" ", imap_nstring(h.get_stripped("content-location")))
        out.append(b")")
        return
    # The part body as transmitted: the part body, or for a top-level
    # message the whole body after the header.
    size = part.be - part.bs
    maintype, subtype = part.maintype, part.subtype
    if maintype == "message" and subtype == "rfc822" and part.message is None:
        # Left opaque by the scanner (transfer-encoded or nested too deep):
        # "message" "rfc822" would promise an envelope that we cannot give.
        maintype, subtype = "application", "octet-stream"
    out += (imap_string(maintype), b" ", imap_string(subtype), b" ", _body_fields(part, size))
    if maintype == "text":
        # body-type-text: ... SP body-fld-lines
        out.append(b" %d" % raw.count(b"\n", part.bs, part.be))
    elif part.message is not None:
        # body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines
        out += (b" ", render_envelope(part.message.headers), b" ")
        _render(raw, part.message, extended, out)
        out.append(b" %d" % raw.count(b"\n", part.bs, part.be))
    if extended:
        # body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out += (b" ", imap_nstring(h.get_stripped("content-md5")), b" ", _disposition(h),
                b" ", _language(h), b" ", imap_nstring(h.get_stripped("content-location")))
    out.append(b")")
