"""Header-level MIME primitives for the parse-once layer (pure, no I/O).

Header text is handled as "byte strings": ``bytes.decode("latin-1")``, which
maps every byte to one code point and back.  That keeps raw 8-bit header
bytes (SMTPUTF8 UTF-8, or a legacy charset someone forgot to encode) intact
for the IMAP wire renderings, which must show the header *as sent*
(RFC 3501 §7.4.2: ENVELOPE strings are not decoded), while the same value
can be turned into real text with :func:`to_text` or :func:`decode_words`.

Contents:

- locating the end of a header block and splitting it into fields
  (RFC 5322 §2.2, §2.2.3 unfolding);
- RFC 2047 encoded-word decoding, tolerant of real-world breakage;
- charset lookup that refuses bytes-to-bytes codecs.

Content-Type and Content-Disposition parameters are in :mod:`mime_params`.
"""

from __future__ import annotations

import binascii
import codecs
import re
import unicodedata
from functools import lru_cache

__all__ = [
    "Headers",
    "codec_for",
    "decode_base64",
    "decode_bytes",
    "decode_words",
    "find_header_end",
    "to_text",
]

_CR, _LF = 0x0D, 0x0A


def find_header_end(raw: bytes, start: int, end: int) -> int:
    """Return the offset where the body of the entity at ``raw[start:end]`` starts.

    The header ends with the first empty line (RFC 5322 §2.1), which is
    included in the header (RFC 3501 §6.4.5: BODY[HEADER] keeps the blank
    line).  Bare-LF line ends are accepted.  An entity with no empty line is
    all header and has an empty body.
    """
    if start >= end:
        return end
    first = raw[start]
    if first == _LF:
        return start + 1
    if first == _CR and start + 1 < end and raw[start + 1] == _LF:
        return start + 2
    crlf = raw.find(b"\n\r\n", start, end)
    lf = raw.find(b"\n\n", start, end)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf + 3
    if lf >= 0:
        return lf + 2
    return end


class Headers:
    """The fields of one header block, in order, names lower-cased.

    Values are unfolded (RFC 5322 §2.2.3: CRLF before WSP removed) latin-1
    byte strings with the whitespace after the colon kept as sent.
    """

    __slots__ = ("_first", "fields")

    def __init__(self, block: bytes) -> None:
        fields: list[tuple[str, str]] = []
        text = block.decode("latin-1")
        name: str | None = None
        parts: list[str] = []
        for line in text.split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            if not line:
                continue  # the terminating blank line, or stray blank lines
            if line[0] in " \t":
                if name is not None:
                    parts.append(line)
                continue  # a continuation before any field: garbage, skip
            if name is not None:
                fields.append((name, "".join(parts)))
                name = None
            colon = line.find(":")
            if colon <= 0:
                continue  # not a header field (RFC 5322 §2.2): ignore the line
            name = line[:colon].strip().lower()
            parts = [line[colon + 1 :]]
            if not name or " " in name:
                name = None
        if name is not None:
            fields.append((name, "".join(parts)))
        self.fields = fields
        first: dict[str, str] = {}
        for key, value in fields:
            first.setdefault(key, value)
        self._first = first

    def get(self, name: str) -> str | None:
        """The first field called *name* (lower case), unfolded, or None."""
        return self._first.get(name)

    def get_stripped(self, name: str) -> str | None:
        value = self._first.get(name)
        return None if value is None else value.strip(" \t\r\n")

    def __contains__(self, name: str) -> bool:
        return name in self._first


# --------------------------------------------------------------------------
# Charsets


# WHATWG-style substitutions: mail labelled with these charsets is almost
# always written in the superset on the right.
_CHARSET_SUBST = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-9": "cp1254",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "x-user-defined": "cp1252",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-vietnamese": "cp1258",
    "x-viet-vps": "cp1258",  # no real codec; cp1258 is the common mislabel
    "tcvn": "cp1258",
}
# Labels meaning "probably ASCII": decode as UTF-8, falling back (below).
_AUTO_CHARSETS = frozenset({"", "us-ascii", "ascii", "ansi_x3.4-1968", "us", "x-unknown",
                            "unknown", "default", "unknown-8bit", "iso-646-us"})


@lru_cache(maxsize=256)
def codec_for(charset: str | None) -> str | None:
    """Python codec name for a MIME charset label, or None for "auto".

    None means: no usable label — try UTF-8 and fall back to windows-1252.
    Codecs that are not text encodings (``zlib``, ``base64``, ``rot13``…)
    are refused: a charset label must never make us decompress data.
    """
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    label = label.split("*", 1)[0]  # RFC 2231 §5 charset*language
    if label in _AUTO_CHARSETS:
        return None
    label = _CHARSET_SUBST.get(label, label)
    if not label.isascii() or not label.isprintable():
        return None
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode *data* in MIME charset *charset*; never raises."""
    codec = codec_for(charset)
    if codec is not None and codec != "utf-8":
        try:
            return data.decode(codec, "replace")
        except Exception:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if codec == "utf-8":
            return data.decode("utf-8", "replace")
        return data.decode("cp1252", "replace")


def to_text(lstr: str, fallback: str | None = None) -> str:
    """Turn a latin-1 byte string from a header into text.

    8-bit header bytes are UTF-8 when the message was sent with SMTPUTF8
    (RFC 6532 §3.2); otherwise the best guess is the message's own charset.
    """
    if lstr.isascii():
        return lstr
    return decode_bytes(lstr.encode("latin-1"), fallback)


# --------------------------------------------------------------------------
# RFC 2047 encoded words

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_NOT_ALPHABET = bytes(range(256)).translate(
    None, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)


def decode_base64(data: bytes) -> bytes:
    """Lenient base64: ignore non-alphabet bytes and broken padding."""
    clean = data.translate(None, _B64_NOT_ALPHABET)
    rem = len(clean) % 4
    if rem == 1:
        clean = clean[:-1]  # a lone sextet carries no whole byte
    elif rem:
        clean += b"=" * (4 - rem)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def _decode_q(text: str) -> bytes:
    # RFC 2047 §4.2: "_" is space, "=XX" an octet.
    data = text.replace("_", " ").encode("latin-1")
    return _Q_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), data)


def decode_words(lstr: str, fallback: str | None = None) -> str:
    """Decode RFC 2047 encoded-words in a header value; never raises.

    Whitespace between adjacent encoded-words is dropped (RFC 2047 §6.2).
    Consecutive words in the same charset are decoded together, because
    some mailers split a multibyte UTF-8 character across two words.  The
    result is NFC-normalized: windows-1258 spells Vietnamese tones as
    combining marks, other charsets precompose them.
    """
    if "=?" not in lstr:
        text = to_text(lstr, fallback)
        return text if text.isascii() else unicodedata.normalize("NFC", text)
    out: list[str] = []
    pending = bytearray()
    pending_cs = ""
    pos = 0

    def flush() -> None:
        nonlocal pending_cs
        if pending:
            out.append(decode_bytes(bytes(pending), pending_cs))
            pending.clear()
        pending_cs = ""

    for m in _ENCODED_WORD.finditer(lstr):
        between = lstr[pos : m.start()]
        if between and (not pending or between.strip(" \t\r\n")):
            flush()
            out.append(to_text(between, fallback))
        charset, enc, payload = m.group(1), m.group(2), m.group(3)
        charset = charset.split("*", 1)[0].lower()  # RFC 2231 §5 language
        data = decode_base64(payload.encode("latin-1")) if enc in "Bb" else _decode_q(payload)
        if pending and charset != pending_cs:
            flush()
        pending_cs = charset
        pending += data
        pos = m.end()
    flush()
    out.append(to_text(lstr[pos:], fallback))
    return unicodedata.normalize("NFC", "".join(out))
