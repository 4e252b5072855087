"""SMTP replies that know their wire form: ``SmtpError(code, enhanced, text)``.

Policy code raises these; the connection code turns them into the reply
line. Enhanced status codes are RFC 3463 (registry: RFC 5248); reply codes
RFC 5321 §4.2.
"""

from __future__ import annotations

__all__ = ["SmtpError", "reply"]


def reply(code: int, enhanced: str, text: str) -> str:
    """One reply line, e.g. ``250 2.0.0 OK`` (RFC 2034 puts the enhanced code first)."""
    return f"{code} {enhanced} {text}"


class SmtpError(Exception):
    """A refusal with its SMTP reply (4xx temporary, 5xx permanent)."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text

    @property
    def line(self) -> str:
        return reply(self.code, self.enhanced, self.text)

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


# Named replies, so tests and code say what they mean.
OK = reply(250, "2.0.0", "OK")
SENDER_OK = reply(250, "2.1.0", "Sender OK")
RCPT_OK = reply(250, "2.1.5", "Recipient OK")
# RFC 5321 §3.6.2 / RFC 3463 5.7.1: an unauthenticated client may not relay.
RELAY_DENIED = SmtpError(550, "5.7.1", "Relaying denied: this server does not relay")
# RFC 3463 §3.2: X.1.1 bad destination mailbox address
NO_SUCH_USER = SmtpError(550, "5.1.1", "No such user here")
# RFC 3463 §3.2: X.2.1 mailbox disabled, not accepting messages
DISABLED = SmtpError(550, "5.2.1", "Mailbox disabled, not accepting messages")
# RFC 3463 §3.2: X.2.2 mailbox full (temporary: 452, RFC 5321 §4.2.2)
MAILBOX_FULL = SmtpError(452, "4.2.2", "Mailbox full, try again later")
# RFC 5321 §4.5.3.1.10: too many recipients is 452; RFC 3463 X.5.3
TOO_MANY_RCPTS = SmtpError(452, "4.5.3", "Too many recipients")
# RFC 1870 §6 / RFC 3463 X.3.4: message too big for system
TOO_BIG = SmtpError(552, "5.3.4", "Message size exceeds fixed maximum message size")
TOO_MANY_HEADERS = SmtpError(552, "5.3.4", "Too many header fields")
# RFC 5321 §4.5.3.1.6 / §4.2.2: 500 line too long; RFC 3463 X.5.2 syntax error
LINE_TOO_LONG = SmtpError(500, "5.5.2", "Line too long")
# RFC 3463 X.7.1: delivery not authorized
SENDER_DENIED = SmtpError(550, "5.7.1", "Sender address not allowed for this login")
AUTH_REQUIRED = SmtpError(530, "5.7.0", "Authentication required")
LOCAL_ERROR = SmtpError(451, "4.3.0", "Temporary server error, please try again later")
DMARC_REJECT = SmtpError(550, "5.7.1", "Message rejected by the sender domain's DMARC policy")
