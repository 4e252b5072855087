"""DKIM signing of outbound mail (RFC 6376) and the DNS records to publish.

Keys are RSA 2048 (RFC 8301 §3.2: at least 1024, 2048 recommended), stored
per domain and selector in ``dkim_keys``. The TXT record is
``<selector>._domainkey.<domain>  "v=DKIM1; k=rsa; p=<base64 SPKI>"``
(RFC 6376 §3.6.1).
"""

from __future__ import annotations

import base64
from datetime import datetime

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["default_selector", "generate_key", "sign", "txt_record"]

# RFC 6376 §5.4: header fields to sign; From is mandatory. Listing a field
# once more than it occurs (over-signing) stops anyone adding one later.
SIGNED_HEADERS = [
    b"from", b"from", b"sender", b"reply-to", b"subject", b"subject", b"date", b"message-id",
    b"to", b"cc", b"in-reply-to", b"references", b"mime-version", b"content-type",
    b"content-transfer-encoding", b"list-unsubscribe",
]


def generate_key(bits: int = 2048) -> tuple[str, str]:
    """A new key: (private PEM, base64 public key for the ``p=`` tag)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode("ascii")
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(spki).decode("ascii")


def default_selector(now: datetime) -> str:
    """Selectors named after the month of creation make key rotation visible."""
    return now.strftime("cv%Y%m")


def txt_record(public_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_b64}"


def sign(raw: bytes, domain: str, selector: str, private_pem: str) -> bytes:
    """``raw`` with a DKIM-Signature field prepended (relaxed/relaxed, rsa-sha256)."""
    field = dkim.sign(raw, selector.encode("ascii"), domain.encode("idna"),
                      private_pem.encode("ascii"), canonicalize=(b"relaxed", b"relaxed"),
                      include_headers=SIGNED_HEADERS)
    return field + raw
