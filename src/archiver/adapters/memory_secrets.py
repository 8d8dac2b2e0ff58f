"""An in-memory secret store, answering as Secrets Manager does."""

from __future__ import annotations

from archiver.domain.errors import SecretUnreadable
from archiver.domain.ports import SecretValue

ACCOUNT_PREFIX = "arn:aws:secretsmanager:us-east-1:000000000000:secret:"


class MemorySecretStore:
    def __init__(self) -> None:
        self.secrets: dict[str, SecretValue] = {}  # by ARN
        self.reads = 0

    def add(self, name: str, value: str | bytes) -> str:
        """A secret (a SecretString, or bytes: a SecretBinary); its ARN."""
        arn = f"{ACCOUNT_PREFIX}{name}-AbCdEf"
        self.secrets[arn] = SecretValue(arn, value if isinstance(value, str) else None)
        return arn

    def read(self, secret: str) -> SecretValue:
        self.reads += 1
        for arn, value in self.secrets.items():
            if secret in (arn, arn.removeprefix(ACCOUNT_PREFIX)[: -len("-AbCdEf")]):
                return value
        raise SecretUnreadable(secret, "no such secret (ResourceNotFoundException)")
