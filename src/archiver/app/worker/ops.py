"""Running inside an ECS task: liveness for the health check, EMF metrics, scale-in protection."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

import structlog

log = structlog.get_logger(__name__)

NAMESPACE = "Archiver"


class Liveness:
    """A file whose modification time says when the worker last made progress."""

    def __init__(self, path: Path | None, min_interval: float = 1.0) -> None:
        self._path = path
        self._min_interval = min_interval
        self._last = 0.0
        self._lock = threading.Lock()

    def beat(self) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._min_interval:
                return
            self._last = now
        try:
            self._path.touch()
        except OSError as error:
            log.warning("liveness_file_unwritable", path=str(self._path), error=str(error))


def healthy(path: Path, max_age: float, now: float | None = None) -> tuple[bool, str]:
    """The health check's verdict: progress (a poll or a job's bytes) within `max_age` seconds."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"no liveness file at {path}: the worker has not started"
    if age > max_age:
        return False, f"no progress for {age:.0f} s (limit {max_age:.0f} s)"
    return True, f"progress {age:.0f} s ago"


class Metrics:
    """CloudWatch embedded metric format: one JSON line per job on stdout, no agent needed."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self._enabled = enabled
        self._stream = stream
        self._lock = threading.Lock()

    def job(
        self,
        outcome: str,
        *,
        code: str | None = None,
        duration_s: float,
        queue_wait_s: float,
        archive_bytes: int = 0,
        file_count: int = 0,
    ) -> None:
        if not self._enabled:
            return
        values: dict[str, tuple[float, str]] = {
            "Jobs": (1, "Count"),
            "JobDuration": (duration_s, "Seconds"),
            "QueueWait": (max(queue_wait_s, 0.0), "Seconds"),
        }
        if outcome == "succeeded":
            values |= {
                "ArchiveBytes": (archive_bytes, "Bytes"),
                "FileCount": (file_count, "Count"),
                "Throughput": (archive_bytes / max(duration_s, 1e-3), "Bytes/Second"),
            }
        dimensions = {"Outcome": outcome, **({"Code": code} if code else {})}
        self._write(emf_document(values, dimensions))

    def _write(self, document: dict[str, Any]) -> None:
        line = json.dumps(document, separators=(",", ":"))
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()


def emf_document(
    values: dict[str, tuple[float, str]], dimensions: dict[str, str]
) -> dict[str, Any]:
    """Each metric under every leading run of the dimensions: none (all jobs), `Outcome`
    alone (what alarms read: they cannot sum over a dimension), `Outcome` and `Code`."""
    names = list(dimensions)
    sets = [names[:count] for count in range(len(names) + 1)]
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": sets,
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **dimensions,
        **{name: value for name, (value, _) in values.items()},
    }


class ScaleInProtection:
    """Protect the ECS task from scale-in while it runs jobs (ECS agent's task-protection API).

    Active only where ECS sets ECS_AGENT_URI; elsewhere every call is a no-op. Failures are
    logged, never raised: protection is an optimisation, the job's safety rests on SQS.
    """

    def __init__(
        self, agent_uri: str | None, expires_minutes: int = 60, timeout: float = 3
    ) -> None:
        self._endpoint = f"{agent_uri.rstrip('/')}/task-protection/v1/state" if agent_uri else None
        self._expires = expires_minutes
        self._timeout = timeout
        self._running = 0
        self._protected_at: float | None = None
        self._lock = threading.Lock()

    def job_started(self) -> None:
        with self._lock:
            self._running += 1
            if self._running == 1:
                self._set(True)

    def job_ended(self) -> None:
        with self._lock:
            self._running = max(self._running - 1, 0)
            if self._running == 0:
                self._set(False)

    def refresh(self) -> None:
        """Renew before expiry while jobs keep the task busy (called from the worker loop)."""
        with self._lock:
            started = self._protected_at
            if self._running and started and time.monotonic() - started > self._expires * 30:
                self._set(True)

    def _set(self, enabled: bool) -> None:
        if self._endpoint is None:
            return
        body: dict[str, Any] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self._expires
        request = urllib.request.Request(  # noqa: S310 - the agent's own http URI
            self._endpoint,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        self._protected_at = time.monotonic() if enabled else None
        try:
            with urllib.request.urlopen(request, timeout=self._timeout):  # noqa: S310
                log.debug("scale_in_protection", enabled=enabled)
        except (urllib.error.URLError, OSError) as error:
            log.warning("scale_in_protection_failed", enabled=enabled, error=str(error))
