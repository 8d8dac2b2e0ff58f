"""The command line's grammar and help: every option explained, the worker's variables listed."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from archiver.app.cli.submit import TIMED_OUT
from archiver.app.cli.usage import WORKER_VARIABLES
from archiver.app.composition.settings import Settings


def _variables(names: Sequence[str]) -> str:
    """One line per variable, its description wrapped under it as argparse wraps options."""
    fields = Settings.model_fields
    lines = (f"  {name:<27}{fields[name.lower()].description}" for name in names)
    return "\n".join(textwrap.fill(line, 79, subsequent_indent=" " * 29) for line in lines)


WORKER_HELP = f"""required variables:
{_variables(WORKER_VARIABLES)}

often set:
{_variables(("ARCHIVE_BASE_URL", "S3_FILE_PREFIX", "S3_ALLOWED_SOURCE_BUCKETS", "DEV_MODE"))}
  AWS_REGION, credentials, AWS_ENDPOINT_URL: as for the AWS CLI

Every setting, with its default, is in the README's configuration table.
SIGTERM or Ctrl-C: take no new job, finish the running one (SHUTDOWN_GRACE_SECONDS)."""

SUBMIT_HELP = f"""exit status: 0 sent (with --wait: succeeded), 1 failed, 2 usage error,
{TIMED_OUT} no answer within --timeout.
--wait puts back every notification it reads: downstream consumers still get them.

examples:
  archiver submit job.json --wait
  archiver submit --source photos/a.png:album_1 --source s3://other/b.png --name "Holiday" """


FIFO_HELP = "FIFO queues (input-queue.fifo, output-queue.fifo) instead of standard ones"


def parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    top = argparse.ArgumentParser(
        prog="archiver",
        description="Streams S3 objects into one ZIP archive per job taken from SQS.",
    )
    top.add_argument("--version", action="version", version=f"archiver {version('archiver')}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "worker",
        help="take jobs from SQS_SOURCE_QUEUE and answer them (the ECS service)",
        description="Long-poll SQS_SOURCE_QUEUE, build each job's archive, notify\n"
        "SQS_DESTINATION_QUEUE, then delete the job.",
        epilog=WORKER_HELP,
        formatter_class=raw,
    )
    submit_parser = commands.add_parser(
        "submit",
        help="put a job on SQS_SOURCE_QUEUE (and wait for its answer)",
        description="Put a job on SQS_SOURCE_QUEUE and print its job id.",
        epilog=SUBMIT_HELP,
        formatter_class=raw,
    )
    submit_parser.add_argument(
        "job", type=Path, nargs="?", metavar="JOB.json", help="a job file (the message body)"
    )
    submit_parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="KEY[:FOLDER]",
        help="a file to archive instead of a job file: a key in S3_SOURCE_BUCKET or an "
        "s3://bucket/key URI, optionally placed in FOLDER; repeat for more",
    )
    submit_parser.add_argument("--name", help="the archive's file name (.zip added if missing)")
    submit_parser.add_argument(
        "--metadata", metavar="JSON", help="a JSON object echoed back in the notification"
    )
    submit_parser.add_argument(
        "--wait",
        action="store_true",
        help="wait for the answer on SQS_DESTINATION_QUEUE, print it, exit with its status",
    )
    submit_parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="with --wait: how long to wait for the answer (default 900)",
    )
    build_parser = commands.add_parser(
        "build",
        help="run one job without queues",
        description="Build one job's archive, to the destination bucket or a local file.",
    )
    build_parser.add_argument("job", type=Path, metavar="JOB.json", help="a job file")
    build_parser.add_argument(
        "--output", type=Path, help="write the archive to this local file instead of S3"
    )
    dev_parser = commands.add_parser(
        "dev",
        help="an embedded S3/SQS endpoint with buckets, queues and a worker",
        description="Start an embedded S3/SQS endpoint (moto), create buckets and queues, run a "
        "worker on them; Ctrl-C stops both. Overrides S3_* and SQS_* with its own.",
    )
    dev_parser.add_argument(
        "--port", type=int, default=4566, help="the endpoint's port on 127.0.0.1 (default 4566)"
    )
    dev_parser.add_argument("--fifo", action="store_true", help=FIFO_HELP)
    demo_parser = commands.add_parser(
        "demo",
        help="run a sample job end to end and show it",
        description="Upload samples to an embedded endpoint, run one job, check the archive.",
    )
    demo_parser.add_argument(
        "--port", type=int, default=0, help="the endpoint's port (default 0: any free port)"
    )
    demo_parser.add_argument("--fifo", action="store_true", help=FIFO_HELP)
    commands.add_parser(
        "healthcheck",
        help="exit 0 if the worker made progress recently",
        description="For the container's HEALTHCHECK: exit 0 if the worker touched HEALTH_FILE "
        "within HEALTHCHECK_MAX_AGE_SECONDS, else 1.",
    )
    schema_parser = commands.add_parser(
        "schema",
        help="write the JSON Schemas of the messages",
        description="Write the JSON Schemas of jobs and notifications.",
    )
    schema_parser.add_argument(
        "--output-dir", type=Path, default=Path("schemas"), help="where (default schemas/)"
    )
    return top
