"""JSON Schemas of the messages, generated from the models (checked in under schemas/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archiver.domain.job import JobRequest
from archiver.domain.notifications import NOTIFICATION_ADAPTER

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schemas() -> dict[str, dict[str, Any]]:
    job = JobRequest.model_json_schema()
    notification = NOTIFICATION_ADAPTER.json_schema()
    notification["title"] = "ArchiveNotification"
    return {
        "job.schema.json": {"$schema": SCHEMA_DIALECT, **job},
        "notification.schema.json": {"$schema": SCHEMA_DIALECT, **notification},
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
