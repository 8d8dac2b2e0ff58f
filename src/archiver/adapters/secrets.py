"""Secrets Manager as the store of archive passwords: read once per encrypted job, never kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from archiver.adapters.errors import error_code
from archiver.domain.errors import SecretUnreadable, TransientError
from archiver.domain.ports import SecretValue

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# What the job asked for and no retry changes (a fixed secret or grant is a new job's).
_REFUSED = {
    "ResourceNotFoundException": "no such secret",
    "AccessDeniedException": "this worker may not read it (secretsmanager:GetSecretValue)",
    "DecryptionFailure": "it cannot be decrypted (kms:Decrypt on its key)",
    "InvalidRequestException": "it cannot be read now (deleted or scheduled for deletion?)",
    "InvalidParameterException": "not a secret id or ARN",
    "ValidationException": "not a secret id or ARN",
}


class SecretsManagerStore:
    def __init__(self, client: SecretsManagerClient) -> None:
        self._client = client

    def read(self, secret: str) -> SecretValue:
        try:
            answer = self._client.get_secret_value(SecretId=secret)
        except ClientError as error:
            code = error_code(error)
            if code in _REFUSED:
                raise SecretUnreadable(secret, f"{_REFUSED[code]} ({code})") from None
            raise TransientError(f"secret {secret}: {code} (will retry)") from None
        except BotoCoreError as error:
            raise TransientError(f"secret {secret}: {error}") from None
        return SecretValue(arn=answer["ARN"], text=answer.get("SecretString"))
