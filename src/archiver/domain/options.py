"""How a job wants its archive presented and its consumer told: the job's optional parts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EncryptionOptions(BaseModel):
    """The archive encrypted with WinZip AES-256 (AE-2), its password held in Secrets Manager."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^[A-Za-z0-9/_+=.@:-]+$",  # a name or an ARN
        description="The Secrets Manager secret (its name or ARN) whose SecretString is the "
        "password; it must be under ENCRYPTION_SECRETS. The password never travels in a "
        "message. Opened by 7-Zip, WinZip, bsdtar/libarchive, Keka and The Unarchiver (not by "
        "the Finder's or Explorer's built-in extractors); encrypted entries are never "
        "server-side copied.",
        examples=[
            "archiver/customer-42",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:archiver/customer-42-AbCdEf",
        ],
    )


class ArchiveOptions(BaseModel):
    """How the archive presents itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="The download's file name, and the last part of the archive's key "
        "({job_id}/{name}); sanitised like entry names, .zip added if missing. Default: "
        "{S3_FILE_PREFIX}-{date}.zip.",
        examples=["Wedding 2026.zip"],
    )
    encryption: EncryptionOptions | None = Field(
        default=None, description="Encrypt every entry with a password (absent: not encrypted)."
    )


class NotifyOptions(BaseModel):
    """What the job's consumer hears besides the answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    progress: bool = Field(
        default=False,
        description="Send `running` notifications while the job runs (at most every "
        "PROGRESS_NOTIFY_SECONDS), never after the final one.",
    )
