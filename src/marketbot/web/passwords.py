"""Password checks with argon2: length rules, verification, rehashing on new defaults."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from marketbot.core.errors import ConfigError

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024


def check_password(password: str) -> str:
    """The password if its length is allowed (8-1024 characters), else a ConfigError."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ConfigError(f"the password must have at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ConfigError(f"the password must have at most {PASSWORD_MAX_LENGTH} characters")
    return password


def verify_password(hasher: PasswordHasher, password_hash: str | None, password: str) -> bool:
    """Whether the password matches; an unknown user costs as much time as a known one."""
    if len(password) > PASSWORD_MAX_LENGTH:
        return False
    if password_hash is None:
        # Hash anyway, so the answer's timing does not say whether the user exists.
        hasher.hash(password)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
