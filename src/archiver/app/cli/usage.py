"""What the commands share: the settings they need, the one-line usage error, job files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from archiver.app.composition.container import Container, build_container
from archiver.app.composition.logs import configure_logging
from archiver.app.composition.settings import Settings, load_settings

WORKER_VARIABLES = (
    "SQS_SOURCE_QUEUE",
    "SQS_DESTINATION_QUEUE",
    "S3_SOURCE_BUCKET",
    "S3_DESTINATION_BUCKET",
)


class UsageError(Exception):
    """The command line names something that cannot be used: one line, exit 2."""


def configured(required: Sequence[str]) -> tuple[Settings, Container]:
    settings = load_settings(required)
    configure_logging(debug=settings.app_debug, console=settings.dev_mode)
    return settings, build_container(settings)


def job_text(job_file: Path) -> str:
    try:
        return job_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"the job file {job_file} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"the job file {job_file} cannot be read: {error}") from None
