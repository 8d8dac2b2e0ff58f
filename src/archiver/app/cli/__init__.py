"""Command line: archiver worker, submit, build, healthcheck, dev, demo, schema.

May import every package of the app: it reads the settings and builds the container.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import NoReturn

import structlog

from archiver.app.cli.arguments import parser
from archiver.app.cli.progress import ProgressLine
from archiver.app.cli.submit import submit
from archiver.app.cli.usage import WORKER_VARIABLES, UsageError, configured, job_text
from archiver.app.composition.container import build_container
from archiver.app.composition.logs import configure_logging
from archiver.app.composition.settings import load_settings
from archiver.app.composition.startup import start_worker
from archiver.app.engine.sink import SinkResult
from archiver.app.jobs.service import ArchiveService
from archiver.app.stopping import STOP_POLL_SECONDS
from archiver.app.worker.ops import healthy
from archiver.domain.checksum import crc32_text
from archiver.domain.errors import ConfigurationError, PermanentError, TransientError
from archiver.domain.job import parse_job
from archiver.domain.plan import ArchivePlan

log = structlog.get_logger(__name__)

__all__ = ["WORKER_VARIABLES", "main", "run", "run_worker"]


def run_worker(stop: threading.Event | None = None) -> int:
    """Start-up and the worker loop run on a thread of their own; the main thread only waits
    for it. A signal handler runs on the main thread between two of its instructions: had it
    been running the loop, it could hold the very lock the handler takes (the stop event's,
    the log stream's) and the handler would wait for itself forever."""
    settings = load_settings(WORKER_VARIABLES)
    configure_logging(debug=settings.app_debug, console=settings.dev_mode)
    stop = stop or threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            worker = start_worker(build_container(settings), settings, stop)
            if worker is not None:
                worker.run(stop)
        except BaseException as error:  # handed to the main thread, which exits with it
            failure.append(error)

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():  # before start-up: it may hang
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    serving = threading.Thread(target=serve, name="worker")
    serving.start()
    while serving.is_alive():
        serving.join(STOP_POLL_SECONDS)
    if failure:
        raise failure[0]
    return 0


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder: give a file name, such as {output}/a.zip")
    if not output.parent.is_dir():
        raise UsageError(f"--output {output}: the folder {output.parent} does not exist")


def _build_to(service: ArchiveService, plan: ArchivePlan, output: Path) -> SinkResult:
    """Into a temporary file beside `output`, renamed once complete: a failed build leaves
    nothing behind, and never half of an archive under the final name."""
    descriptor, name = tempfile.mkstemp(
        dir=output.parent, prefix=f".{output.name}.", suffix=".partial"
    )
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "w+b") as file:
            result = service.build_to_file(plan, file, ProgressLine())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    umask = os.umask(0)
    os.umask(umask)
    partial.chmod(0o666 & ~umask)  # as the file would have been created (mkstemp: 0600)
    partial.replace(output)
    return result


def build(job_file: Path, output: Path | None) -> int:
    text = job_text(job_file)
    if output is not None:
        _check_output(output)
    required = ["S3_SOURCE_BUCKET"] if output else ["S3_SOURCE_BUCKET", "S3_DESTINATION_BUCKET"]
    _, container = configured(required)
    service = container.service()
    request = parse_job(text, f"the job file {job_file}")
    plan = service.plan(f"local-{uuid.uuid4()}", request, datetime.now(UTC))
    if output is not None:
        result = _build_to(service, plan, output)
        summary = {
            "output": str(output),
            "size_bytes": result.size_bytes,
            "crc32": crc32_text(result.crc32),
        }
    else:
        archive = service.build(plan, ProgressLine())
        summary = {"url": service.url(plan.archive), **archive.model_dump()}
    summary["file_count"] = len(plan.entries)
    print(json.dumps(summary, indent=2))
    return 0


def run_dev(port: int, *, fifo: bool = False) -> int:
    import os

    import boto3

    from archiver.app.cli.dev import banner, create_resources, embedded_endpoint

    with embedded_endpoint(port=port, fifo=fifo) as endpoint:
        resources = create_resources(
            boto3.client("s3"),
            boto3.client("sqs"),
            source_queue=os.environ["SQS_SOURCE_QUEUE"],
            destination_queue=os.environ["SQS_DESTINATION_QUEUE"],
        )
        print(banner(endpoint, resources), file=sys.stderr)
        return run_worker()


def healthcheck() -> int:
    """For the container's HEALTHCHECK: 0 only if the worker made progress recently."""
    settings = load_settings()
    if settings.health_file is None:
        print("unhealthy: HEALTH_FILE is empty, so progress is not recorded")
        return 1
    ok, reason = healthy(settings.health_file, settings.healthcheck_max_age_seconds)
    print(("healthy: " if ok else "unhealthy: ") + reason)
    return 0 if ok else 1


def write_schemas(directory: Path) -> int:
    from archiver.app.cli.schemas import write_schemas as write

    for path in write(directory):
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        match arguments.command:
            case "worker":
                return run_worker()
            case "submit":
                return submit(
                    arguments.job,
                    arguments.source,
                    name=arguments.name,
                    metadata=arguments.metadata,
                    wait=arguments.timeout if arguments.wait else None,
                )
            case "build":
                return build(arguments.job, arguments.output)
            case "dev":
                return run_dev(arguments.port, fifo=arguments.fifo)
            case "healthcheck":
                return healthcheck()
            case "demo":
                from archiver.app.cli.demo import run_demo

                return run_demo(arguments.port, fifo=arguments.fifo)
            case _:
                return write_schemas(arguments.output_dir)
    except (ConfigurationError, UsageError) as error:
        print(f"archiver: {error}", file=sys.stderr)
        return 2
    except (PermanentError, TransientError, ValueError) as error:
        print(f"archiver: {error}", file=sys.stderr)
        return 1


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The process's entry point (the `archiver` command, `python -m archiver`): main, then an
    exit that skips the interpreter's last full collection. With boto3's and moto's models
    loaded that collection alone takes most of a second, after the work is done and the
    output flushed; frozen, the objects are still freed, just not searched for cycles.
    Ctrl-C in a command that does not catch it (submit --wait, build) exits 130, quietly."""
    try:
        code = main(argv)
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    sys.stdout.flush()
    gc.freeze()
    sys.exit(code)
