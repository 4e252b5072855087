"""Address and name syntax shared by the admin tool, SMTP and the directory."""

from __future__ import annotations

import re
import unicodedata

from ..store.errors import Invalid

# A pragmatic subset of RFC 5321 §4.1.2 Mailbox, extended by RFC 6531 (SMTPUTF8)
# to non-ASCII local parts, so Vietnamese addresses are possible.
_LOCAL_FORBIDDEN = re.compile(r"[\s<>()\[\]\\,;:\"@\x00-\x1f\x7f]")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def normalize_domain(domain: str) -> str:
    """Lower-case, IDNA-encode and validate a domain name."""
    name = domain.strip().rstrip(".").lower()
    if not name:
        raise Invalid("empty domain name")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise Invalid(f"malformed domain name: {domain!r}") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not all(_LABEL.match(x) for x in labels):
        raise Invalid(f"malformed domain name: {domain!r}")
    return ascii_name


def normalize_address(address: str) -> str:
    """Validate ``local@domain``; lower-case it (local parts are matched
    case-insensitively here, as every mail system an official meets does)."""
    text = unicodedata.normalize("NFC", address.strip())
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain:
        raise Invalid(f"malformed address: {address!r}")
    if len(local) > 64 or _LOCAL_FORBIDDEN.search(local) or local.startswith(".") \
            or local.endswith(".") or ".." in local:
        raise Invalid(f"malformed address: {address!r}")
    try:
        dom = normalize_domain(domain)
    except Invalid:
        raise Invalid(f"malformed address: {address!r}") from None
    return f"{local.lower()}@{dom}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def validate_slug(slug: str) -> str:
    s = slug.strip().lower()
    if not _SLUG.match(s):
        raise Invalid(
            f"malformed unit slug {slug!r}: use lower-case letters, digits and '-' (e.g. so-tttt)"
        )
    return s


def validate_display_name(name: str, what: str = "name") -> str:
    text = unicodedata.normalize("NFC", name.strip())
    if not text:
        raise Invalid(f"empty {what}")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text) or len(text) > 200:
        raise Invalid(f"malformed {what}: {name!r}")
    return text
