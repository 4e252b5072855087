"""Readable text of a message: body text for search and preview, base subject.

- Text parts are decoded per Content-Transfer-Encoding (RFC 2045 §6) and
  charset; HTML is reduced to text with the stdlib ``html.parser``.
- The amount of text gathered is capped, and so is the amount of encoded
  input read per part, so a 50 MB attachment costs no more than the cap.
- :func:`base_subject` implements RFC 5256 §2.1 for SORT and threading.
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from collections.abc import Callable
from html.parser import HTMLParser

from .mime_headers import decode_base64, decode_bytes, decode_words
from .mime_params import param_value
from .mime_structure import Part

__all__ = [
    "DEFAULT_MAX_TEXT",
    "BodyText",
    "base_subject",
    "collect_text",
    "decode_subject",
    "decode_transfer",
    "html_to_text",
]

#: Default cap on gathered body text, in characters (1 MiB).
DEFAULT_MAX_TEXT = 1 << 20


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); never raises."""
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        try:
            return binascii.a2b_qp(data)
        except (binascii.Error, ValueError):
            return data
    return data  # 7bit, 8bit, binary, and unknown encodings shown as-is


class _HTMLText(HTMLParser):
    """Collects the visible text of an HTML document."""

    _SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})
    _BLOCK = frozenset({
        "p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5",
        "h6", "blockquote", "pre", "hr", "section", "article", "header", "footer", "td",
        "th", "dd", "dt", "body",
    })

    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.size = 0
        self.limit = limit
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BLOCK:
            self.out.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self.skip:
                self.out.append(" " + alt + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip and self.size < self.limit:
            self.out.append(data)
            self.size += len(data)


def html_to_text(html: str, limit: int = DEFAULT_MAX_TEXT) -> str:
    """Visible text of *html*, block elements on their own lines; never raises."""
    parser = _HTMLText(limit)
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        pass
    text = "".join(parser.out)
    # Non-breaking spaces are spaces to a reader.
    return text.replace("\xa0", " ")


class BodyText:
    """Text gathered from a message's parts, within a budget of characters."""

    def __init__(self, limit: int) -> None:
        self.pieces: list[str] = []
        self.remaining = limit
        self.plain: str | None = None  # first inline text/plain part
        self.html: str | None = None  # first inline text/html part (as text)

    def add(self, text: str) -> None:
        if self.remaining <= 0 or not text:
            return
        if len(text) > self.remaining:
            text = text[: self.remaining]
        self.pieces.append(text)
        self.remaining -= len(text)

    @property
    def text(self) -> str:
        return "\n".join(self.pieces)

    def preview(self, length: int = 200) -> str:
        """First *length* characters of the readable body, whitespace collapsed."""
        source = self.plain if self.plain is not None and self.plain.strip() else self.html
        if not source:
            return ""
        # collapse a bounded prefix only: the source may be a megabyte
        words = source[: length * 8].split()
        return " ".join(words)[:length]


def _part_text(raw: bytes, part: Part, budget: int, fallback: str | None) -> str:
    # Transfer encodings expand at most ~3x (quoted-printable); HTML markup
    # more, so read a generous but bounded slice of the encoded body.
    end = min(part.be, part.bs + budget * 8 + 4096)
    data = decode_transfer(raw[part.bs : end], part.encoding)
    charset = param_value(part.params, "charset")
    text = decode_bytes(data, charset or fallback)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if part.subtype == "html":
        text = html_to_text(text, budget)
    return text


def _is_attachment(part: Part) -> bool:
    dsp = part.headers.get_stripped("content-disposition")
    return dsp is not None and dsp.lower().startswith("attachment")


def collect_text(raw: bytes, root: Part, limit: int = DEFAULT_MAX_TEXT,
                 header_lines: Callable[[Part], str] | None = None) -> BodyText:
    """Gather the text of every text/* part (and encapsulated headers) of *root*.

    All alternatives of a multipart/alternative are searched (a match in any
    one is a match); the preview prefers text/plain.
    """
    body = BodyText(limit)
    stack: list[Part] = [root]
    while stack and body.remaining > 0:
        part = stack.pop()
        if part.children is not None:
            stack.extend(reversed(part.children))
            continue
        if part.message is not None:
            if header_lines is not None:
                # a forwarded message's headers are part of the outer body text
                body.add(header_lines(part.message))
            stack.append(part.message)
            continue
        if part.maintype != "text":
            continue
        text = _part_text(raw, part, body.remaining, None)
        body.add(text)
        if not _is_attachment(part):
            if part.subtype == "plain" and body.plain is None:
                body.plain = text
            elif part.subtype == "html" and body.html is None:
                body.html = text
    return body


# --------------------------------------------------------------------------
# RFC 5256 §2.1 base subject

_WS = re.compile(r"[ \t\r\n]+")
_BLOB = r"\[[^\[\]]*\][ \t]*"
# subj-leader = (*subj-blob subj-refwd) / WSP
# subj-refwd  = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_LEADER = re.compile(r"^(?:(?:" + _BLOB + r")*(?:re|fwd?)[ \t]*(?:" + _BLOB + r")?:|[ \t]+)",
                     re.IGNORECASE)
_LEADING_BLOB = re.compile(r"^" + _BLOB)


def _strip_trailers(s: str) -> str:
    # subj-trailer = "(fwd)" / WSP, removed repeatedly; a loop, not a regex
    # anchored at "$", which would backtrack quadratically on long subjects
    end = len(s)
    while end:
        if s[end - 1] in " \t":
            end -= 1
        elif end >= 5 and s[end - 5 : end].lower() == "(fwd)":
            end -= 5
        else:
            break
    return s[:end]


def base_subject(subject: str) -> str:
    """The RFC 5256 §2.1 base subject of an (already decoded) subject.

    Case is not folded here; SORT compares with :func:`str.casefold`.
    Callers should bound the input (a sort key needs no more than a few
    hundred characters): step (5) is quadratic in the number of blobs.
    """
    s = _WS.sub(" ", subject)  # (1) tabs/continuations -> space, one space
    while True:
        s = _strip_trailers(s)  # (2)
        while True:  # (5) repeat (3) and (4)
            m = _LEADER.match(s)  # (3)
            if m and m.end():
                s = s[m.end():]
                continue
            m = _LEADING_BLOB.match(s)  # (4) only if something remains
            if m and s[m.end():]:
                s = s[m.end():]
                continue
            break
        # (6) "[fwd: ...]" wrapper: unwrap and start again from (2)
        if s[:5].lower() == "[fwd:" and s.endswith("]"):
            s = s[5:-1]
            continue
        return s


def decode_subject(value: str | None, fallback: str | None = None) -> str:
    """Decoded subject text with folding whitespace collapsed to single spaces."""
    if value is None:
        return ""
    return _WS.sub(" ", decode_words(value, fallback)).strip()
