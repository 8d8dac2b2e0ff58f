"""Settings: the environment variables are the public interface, names kept exactly.

Every default lives here, once: the engine, the worker, the command line and the benchmarks read
them from the options this model builds, and a test holds the README's table to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from archiver.app.engine.budget import RANGE_BYTES
from archiver.app.jobs.service import BuildOptions, LinkOptions
from archiver.app.worker.loop import POLL_RETRY_SECONDS, WorkerOptions
from archiver.domain.checkpoint import RECEIPT_CAP_SECONDS
from archiver.domain.encryption import secret_prefixes
from archiver.domain.errors import ConfigurationError
from archiver.domain.memory import least_share
from archiver.domain.plan import S3_MAX_OBJECT_BYTES, ArchivePolicy, CompressionMode, MissingFiles

MIB = 1024 * 1024
SIGV4_MAX_EXPIRY = 604_800


ECS_METADATA = "ECS_CONTAINER_METADATA_URI_V4"  # set by ECS in every task


class Settings(BaseSettings):
    """Every variable archiver reads. Field names are the variable names, case-insensitive."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

    archive_base_url: str | None = Field(
        default=None,
        description="Base of download links (a CloudFront distribution); unset: presigned S3 URLs.",
    )
    sqs_source_queue: str | None = Field(
        default=None, description="Queue (URL or name) the worker takes jobs from."
    )
    sqs_destination_queue: str | None = Field(
        default=None, description="Queue (URL or name) that receives the notifications."
    )
    s3_source_bucket: str | None = Field(
        default=None, description="Bucket of sources given as bare keys."
    )
    s3_destination_bucket: str | None = Field(
        default=None, description="Bucket the archives are written to."
    )
    s3_file_prefix: str = Field(
        default="download", min_length=1, description="Archive file name prefix."
    )
    s3_allowed_source_buckets: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="Other buckets jobs may read (comma list; * for any).",
    )
    s3_requester_pays: bool = Field(
        default=False,
        description="Say on every source read, listing and copy that the worker pays for it, "
        "as Requester Pays buckets require (the task's account is charged).",
    )
    encryption_secrets: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="ARN prefixes of the Secrets Manager secrets jobs may encrypt archives "
        "with (comma list); empty: a job asking for encryption fails invalid_payload.",
    )
    app_debug: bool = Field(default=False, description="Debug log level.")
    dev_mode: bool = Field(default=False, description="Console logs instead of JSON.")
    max_files: int = Field(
        default=100_000, ge=1, description="Most files one job may list (prefixes counted)."
    )
    archive_url_ttl: int = Field(
        default=SIGV4_MAX_EXPIRY,
        ge=1,
        le=SIGV4_MAX_EXPIRY,
        description="Lifetime in seconds of presigned URLs (when ARCHIVE_BASE_URL is unset).",
    )
    presign_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#]+/?$",
        description="The S3 endpoint presigned links name, where users reach S3 at another "
        "address than the worker (docker compose: http://localhost:4566); unset: the worker's.",
    )
    archive_compression: CompressionMode = Field(
        default=CompressionMode.AUTO,
        description="auto (store already-compressed types, deflate the rest), stored or deflated.",
    )
    memory_budget_mb: int = Field(
        default=128, ge=32, description="Bytes of archive and source data buffered per process."
    )
    worker_concurrency: int = Field(
        default=1, ge=1, le=32, description="Jobs one worker process runs at once."
    )
    upload_part_size_mb: int = Field(
        default=8, ge=5, le=5 * 1024, description="Smallest multipart part size (grows as needed)."
    )
    upload_concurrency: int = Field(default=4, ge=1, le=64, description="Parts uploaded at once.")
    copy_concurrency: int = Field(
        default=16,
        ge=1,
        le=64,
        description="Parts S3 copies at once per job (server-side copy): S3's work, holding no "
        "bytes in the worker.",
    )
    server_side_copy: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: S3 copies large stored entries from their sources (UploadPartCopy),"
        " falling back to streaming for a job the store refuses; off: stream every byte.",
    )
    download_concurrency: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Source requests (size checks and ranged GETs) in flight at once, per job.",
    )
    sqs_wait_time_seconds: int = Field(
        default=20,
        ge=0,
        le=20,
        description="Long-poll wait of each receive; a stop lets the poll under way finish.",
    )
    sqs_visibility_timeout: int = Field(
        default=60,
        ge=5,
        le=43_200,
        description="Seconds a received job stays hidden; a heartbeat extends it every third.",
    )
    sqs_max_hold_seconds: int = Field(
        default=41_400,
        ge=1,
        lt=RECEIPT_CAP_SECONDS,
        description="How long one receipt of a job is held (SQS allows 12 h): then the job is"
        " checkpointed and carried on by a continuation message.",
    )
    shutdown_grace_seconds: float = Field(
        default=25.0, ge=0, description="On SIGTERM, how long the running job may still take."
    )
    retry_delay_seconds: int = Field(
        default=30, ge=0, le=900, description="First redelivery delay after a transient error."
    )
    missing_files: MissingFiles = Field(
        default=MissingFiles.FAIL,
        description="fail: a missing source fails the job; skip: archive the rest, list them.",
    )
    max_archive_bytes: int = Field(
        default=S3_MAX_OBJECT_BYTES, ge=1, description="Largest total of source sizes per job."
    )
    progress_log_seconds: float = Field(
        default=15.0, gt=0, description="A running job logs its progress this often."
    )
    progress_notify_seconds: float = Field(
        default=30.0,
        ge=1,
        description="At most this often a job that asked (notify.progress) is sent `running`.",
    )
    delete_offloaded_payloads: bool = Field(
        default=False,
        description="Delete an SQS Extended Client's offloaded body from S3 once its job is "
        "answered and deleted (the task role then needs s3:DeleteObject there).",
    )
    startup_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long start-up may try to reach the queues and buckets before exit 2.",
    )
    health_file: Path | None = Field(
        default=Path("/tmp/archiver-alive"),  # noqa: S108 - a marker, no secrets
        description="File the worker touches on progress; `archiver healthcheck` reads it.",
    )
    healthcheck_max_age_seconds: int = Field(
        default=120, ge=30, description="Longest time without progress that is still healthy."
    )
    metrics_enabled: bool = Field(
        default_factory=lambda: ECS_METADATA in os.environ,
        description="Job metrics as CloudWatch EMF JSON lines on stdout; default: on where they "
        "are collected (on ECS, where ECS_CONTAINER_METADATA_URI_V4 is set), off elsewhere.",
    )
    ecs_agent_uri: str | None = Field(
        default=None, description="Set by ECS; enables scale-in protection while jobs run."
    )
    aws_endpoint_url: str | None = Field(
        default=None, description="Custom S3/SQS endpoint (LocalStack, moto); read by boto3 too."
    )
    aws_retry_mode: Literal["standard", "adaptive"] = Field(
        default="standard", description="botocore retry mode (both back off with jitter)."
    )
    aws_max_attempts: int = Field(
        default=5, ge=1, le=20, description="Attempts per AWS request, the first included."
    )
    aws_region: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="AWS region (AWS_REGION, else AWS_DEFAULT_REGION).",
    )

    @field_validator("encryption_secrets", mode="before")
    @classmethod
    def _secret_prefixes(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return secret_prefixes(value)

    @field_validator("s3_allowed_source_buckets", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("archive_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value or None

    def memory_shortfall(self) -> str | None:
        """Why MEMORY_BUDGET_MB cannot run WORKER_CONCURRENCY jobs at the smallest part size."""
        share = self.memory_budget_mb * MIB // self.worker_concurrency
        least = least_share(self.upload_part_size_mb * MIB, RANGE_BYTES)
        if share >= least:
            return None
        return (
            f"MEMORY_BUDGET_MB: {self.memory_budget_mb} gives each of WORKER_CONCURRENCY="
            f"{self.worker_concurrency} jobs {share // MIB} MiB; a job needs at least "
            f"{least // MIB} MiB (one part of UPLOAD_PART_SIZE_MB={self.upload_part_size_mb} in "
            f"flight, one being filled, three held, two ranges fetched): set it to "
            f"{-(-least * self.worker_concurrency // MIB)} or more"
        )

    def build_options(self) -> BuildOptions:
        return BuildOptions(
            memory_budget=self.memory_budget_mb * MIB,
            part_size=self.upload_part_size_mb * MIB,
            upload_concurrency=self.upload_concurrency,
            copy_concurrency=self.copy_concurrency,
            download_concurrency=self.download_concurrency,
            worker_concurrency=self.worker_concurrency,
            server_side_copy=self.server_side_copy == "auto",
        )

    def link_options(self) -> LinkOptions:
        return LinkOptions(base_url=self.archive_base_url, presign_ttl=self.archive_url_ttl)

    def worker_options(self) -> WorkerOptions:
        return WorkerOptions(
            wait_seconds=self.sqs_wait_time_seconds,
            visibility_seconds=self.sqs_visibility_timeout,
            shutdown_grace=self.shutdown_grace_seconds,
            retry_delay_seconds=self.retry_delay_seconds,
            concurrency=self.worker_concurrency,
            poll_retry_seconds=POLL_RETRY_SECONDS,
            max_hold_seconds=self.sqs_max_hold_seconds,
        )

    def policy(self) -> ArchivePolicy:
        return ArchivePolicy(
            source_bucket=self.s3_source_bucket or "",
            destination_bucket=self.s3_destination_bucket or "",
            allowed_source_buckets=self.s3_allowed_source_buckets,
            max_files=self.max_files,
            file_prefix=self.s3_file_prefix,
            compression=self.archive_compression,
            missing_files=self.missing_files,
            max_archive_bytes=self.max_archive_bytes,
            encryption_secrets=self.encryption_secrets,
        )


def _problem(detail: Any) -> str:
    name = str(detail["loc"][0]).upper() if detail["loc"] else "settings"
    if detail["type"] == "missing":
        return f"{name} is required"
    return f"{name}: {detail['msg']} (got {detail.get('input')!r})"


def load_settings(required: Iterable[str] = (), **overrides: Any) -> Settings:
    """Read the environment once; name every missing or malformed variable in one error."""
    required = list(required)
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        problems = [_problem(detail) for detail in error.errors()]
        present = {name.upper() for name in os.environ if os.environ[name]}
        present |= {name.upper() for name in overrides}
        problems += [f"{name} is required" for name in required if name.upper() not in present]
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
    problems = [
        f"{name} is required" for name in required if getattr(settings, name.lower()) is None
    ]
    if (short := settings.memory_shortfall()) is not None:
        problems.append(short)
    if problems:
        raise ConfigurationError("invalid configuration: " + "; ".join(problems))
    return settings
