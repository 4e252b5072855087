"""Delivery status notifications (RFC 3464): bounces and delay notices.

A ``multipart/report; report-type=delivery-status`` message (RFC 6522) with
a human-readable part (Vietnamese, then English), the machine-readable
``message/delivery-status`` part with one block per recipient, and the
returned message's header (``text/rfc822-headers``). It is sent with the
null reverse-path (RFC 5321 §4.5.5) and ``Auto-Submitted: auto-replied``
(RFC 3834 §5) so it is never bounced or auto-answered in turn.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from .headers import header_end

__all__ = ["DsnRecipient", "build_dsn"]


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    rcpt: str
    status: str  # RFC 3463 code, e.g. 5.1.1 or 4.4.1
    diagnostic: str  # the remote reply, or our own explanation
    remote_mta: str | None = None


def _clean(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def build_dsn(*, action: str, hostname: str, sender: str, original: bytes,
              recipients: Sequence[DsnRecipient], arrival: datetime, now: datetime,
              retry_until: datetime | None = None) -> bytes:
    """The notice for ``recipients`` (``action`` is ``failed`` or ``delayed``)."""
    boundary = "=_dsn_" + secrets.token_hex(12)
    lines = [f"  <{r.rcpt}>: {_clean(r.diagnostic)}" for r in recipients]
    if action == "failed":
        subject = "Undelivered Mail Returned to Sender"
        human = ("Thư của bạn không thể gửi tới các địa chỉ dưới đây.\n"
                 "Your message could not be delivered to the following addresses.\n")
    else:
        subject = "Delayed Mail (still being retried)"
        until = format_datetime(retry_until) if retry_until else ""
        human = ("Thư của bạn chưa gửi được tới các địa chỉ dưới đây; máy chủ vẫn đang thử lại"
                 f" cho tới {until}. Bạn không cần gửi lại.\n"
                 "Your message has not yet been delivered to the following addresses; "
                 f"delivery will be retried until {until}. You do not need to resend it.\n")
    text = human + "\n" + "\n".join(lines) + "\n"

    per_message = [f"Reporting-MTA: dns; {hostname}", f"Arrival-Date: {format_datetime(arrival)}"]
    blocks = ["\r\n".join(per_message)]
    for r in recipients:
        block = [f"Final-Recipient: rfc822; {r.rcpt}", f"Action: {action}", f"Status: {r.status}"]
        if r.remote_mta:
            block.append(f"Remote-MTA: dns; {r.remote_mta}")
        block.append(f"Diagnostic-Code: smtp; {_clean(r.diagnostic)}")
        block.append(f"Last-Attempt-Date: {format_datetime(now)}")
        if action == "delayed" and retry_until is not None:
            block.append(f"Will-Retry-Until: {format_datetime(retry_until)}")
        blocks.append("\r\n".join(block))
    status_part = "\r\n\r\n".join(blocks) + "\r\n"

    headers = original[:header_end(original)]
    message_id = f"<dsn.{secrets.token_hex(10)}@{hostname}>"
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
        f"To: <{sender}>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {format_datetime(now)}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"\r\n'
        "\r\n"
    )
    body = (
        f"This is a MIME-encapsulated delivery status notification.\r\n\r\n--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + text.replace("\n", "\r\n")
        + f"\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        + status_part
        + f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    )
    return (head + body).encode("utf-8") + headers + f"\r\n--{boundary}--\r\n".encode()
