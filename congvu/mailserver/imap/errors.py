"""IMAP errors that know their wire reply.

Every error raised by the pure layer (parser, framer, search) and by the
session layer is an :class:`ImapError`; the connection catches it and writes
``err.response(tag)``. :class:`ImapFatal` means "answer ``* BYE`` and close".

Response codes are given without brackets (``"TOOBIG"``,
``"BADCHARSET (US-ASCII UTF-8)"``); RFC 5530 lists the common ones.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadCharset",
    "ImapBad",
    "ImapError",
    "ImapFatal",
    "ImapNo",
    "ParseError",
    "format_status",
]


def format_status(tag: str | bytes | None, status: str, code: str | None, text: str) -> bytes:
    """``tag SP status SP [ "[" code "]" SP ] text CRLF`` (RFC 9051 §7.1).

    ``tag=None`` gives an untagged ``*`` response. CR/LF in ``text`` are
    replaced so a message can never inject a second response line.
    """
    if tag is None:
        tag_b = b"*"
    elif isinstance(tag, str):
        tag_b = tag.encode("ascii", "replace")
    else:
        tag_b = tag
    text = text.replace("\r", " ").replace("\n", " ") or status.capitalize()
    line = f" {status} [{code}] {text}\r\n" if code else f" {status} {text}\r\n"
    return tag_b + line.encode("utf-8")


class ImapError(Exception):
    """An IMAP failure with its status (NO/BAD/BYE), optional code and text."""

    status: ClassVar[str] = "NO"

    def __init__(self, text: str, *, code: str | None = None, tag: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        #: The tag of the failing command when the raiser knows it (parser).
        self.tag = tag

    def response(self, tag: str | bytes | None = None) -> bytes:
        """The complete reply line; ``tag`` defaults to the one the error carries."""
        if tag is None:
            tag = self.tag
        return format_status(tag if tag is not None else "*", self.status, self.code, self.text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r}, code={self.code!r}, tag={self.tag!r})"


class ImapNo(ImapError):
    """The command was understood but failed: ``tag NO [code] text``."""

    status = "NO"


class ImapBad(ImapError):
    """Protocol error in the command: ``tag BAD [code] text``."""

    status = "BAD"


class ParseError(ImapBad):
    """The command could not be parsed (syntax, limits, unknown command).

    ``tag`` is set whenever the tag could be read, so the reply is tagged; a
    line without a valid tag is answered ``* BAD`` (RFC 9051 §7.1.5).
    """


class BadCharset(ImapNo):
    """SEARCH/SORT CHARSET not supported (RFC 9051 §6.4.4: ``NO [BADCHARSET]``)."""

    def __init__(self, charset: str, supported: tuple[str, ...], *, tag: str | None = None) -> None:
        super().__init__(
            f"Unsupported charset {charset}",
            code="BADCHARSET (" + " ".join(supported) + ")",
            tag=tag,
        )


class ImapFatal(ImapError):
    """Input so broken the connection must end: ``* BYE [code] text``, then close."""

    status = "BYE"

    def response(self, tag: str | bytes | None = None) -> bytes:
        # BYE is always untagged (RFC 9051 §7.1.5).
        return format_status(None, "BYE", self.code, self.text)
