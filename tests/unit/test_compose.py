"""docker compose's worker: stops gracefully, reports health, and its links open on the host."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from archiver.app.composition.settings import Settings
from archiver.app.worker.loop import POLL_SLACK_SECONDS

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return loaded


def default(value: str) -> str:
    """The value of `${NAME:-default}` when NAME is not set in the shell."""
    matched = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return matched.group(1) if matched else value


def test_stop_grace_period_covers_the_shutdown_grace_and_a_long_poll(
    services: dict[str, Any],
) -> None:
    archiver = services["archiver"]
    grace = float(default(archiver["environment"]["SHUTDOWN_GRACE_SECONDS"]))
    assert grace == Settings().shutdown_grace_seconds
    # A stop lets the poll under way finish: its wait, and the slack its answer may take.
    poll = Settings().sqs_wait_time_seconds + POLL_SLACK_SECONDS
    period = re.fullmatch(r"(\d+)s", archiver["stop_grace_period"])
    assert period is not None
    assert int(period.group(1)) >= max(grace, poll) + 5  # hand back, notify, exit


def test_the_worker_reports_its_health(services: dict[str, Any]) -> None:
    assert services["archiver"]["healthcheck"]["test"] == ["CMD", "archiver", "healthcheck"]


def test_presigned_links_name_the_port_the_host_reaches(services: dict[str, Any]) -> None:
    environment = services["archiver"]["environment"]
    [published] = services["localstack"]["ports"]
    host, host_port, _container_port = published.split(":")
    assert default(environment["PRESIGN_ENDPOINT_URL"]) == f"http://localhost:{host_port}"
    assert host == "127.0.0.1"
    assert environment["AWS_ENDPOINT_URL"] == "http://localstack:4566"


def test_every_variable_is_a_setting(services: dict[str, Any]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    standard = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    assert set(services["archiver"]["environment"]) - fields - standard == set()
