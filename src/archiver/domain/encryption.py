"""Which secrets may encrypt archives, and what makes a secret's value a password."""

from __future__ import annotations

from collections.abc import Sequence

from archiver.domain.errors import InvalidPayload, SecretUnreadable
from archiver.domain.ports import SecretValue


def _allowed(arn: str, allowed: Sequence[str]) -> bool:
    return any(arn.startswith(prefix) for prefix in allowed)


def check_secret(secret: str, allowed: Sequence[str]) -> None:
    """Before anything is read: this archiver encrypts at all, and an ARN is one it may read
    (a name is checked by the ARN the store answers, `password_of`)."""
    if not allowed:
        raise InvalidPayload(
            "archive.encryption: this archiver encrypts no archives (ENCRYPTION_SECRETS is empty)"
        )
    if secret.startswith("arn:") and not _allowed(secret, allowed):
        raise InvalidPayload(f"archive.encryption.secret {secret} is not under ENCRYPTION_SECRETS")


def password_of(secret: str, value: SecretValue, allowed: Sequence[str]) -> str:
    """The password a secret holds: its whole SecretString, neither empty nor binary."""
    if not _allowed(value.arn, allowed):
        raise InvalidPayload(  # its ARN unsaid: the account's secrets are not the producer's
            f"archive.encryption.secret {secret} is not under ENCRYPTION_SECRETS"
        )
    if value.text is None:
        raise SecretUnreadable(secret, "holds binary data, not a SecretString password")
    if not value.text:
        raise SecretUnreadable(secret, "holds an empty password")
    return value.text
