"""Password hashing (argon2id) and the strength rule for new passwords."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..store.errors import Invalid

# OWASP's argon2id baseline (m=19 MiB, t=2, p=1): ~20 ms a hash here, so a
# 2-core node can check logins quickly and a bulk import stays bearable.
# Changing these makes check_needs_rehash() true and hashes are renewed at the
# next successful login.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

# Verified against for unknown users so that they take as long as known ones.
_DUMMY_HASH = HASHER.hash("congvu-dummy-password-for-timing")

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def check_strength(password: str, address: str = "") -> None:
    """Refuse weak passwords: short, one kind of character, or containing the login."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"weak password: use at least {MIN_LENGTH} characters")
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < 3:
        raise Invalid(
            "weak password: mix at least three of lower case, upper case, digits and symbols"
        )
    local = address.partition("@")[0].lower()
    if len(local) >= 3 and local in password.lower():
        raise Invalid("weak password: it must not contain the account name")
    if password != password.strip() or "\n" in password:
        raise Invalid("weak password: no leading/trailing spaces or line breaks")
