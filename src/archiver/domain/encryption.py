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


def secret_prefixes(listed: str) -> tuple[str, ...]:
    """`ENCRYPTION_SECRETS`: Secrets Manager ARN prefixes, comma-separated, each naming its
    region, account and `:secret:` (ValueError otherwise)."""
    prefixes = tuple(item.strip() for item in listed.split(",") if item.strip())
    for prefix in prefixes:
        parts = prefix.split(":")
        if len(parts) < 7 or parts[0] != "arn" or parts[2:3] != ["secretsmanager"]:
            raise ValueError(
                f"{prefix!r} is not a Secrets Manager ARN prefix "
                "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:PATH/)"
            )
        if not all(parts[3:5]) or parts[5] != "secret":
            raise ValueError(f"{prefix!r} must name its region, account and :secret:")
    return prefixes
