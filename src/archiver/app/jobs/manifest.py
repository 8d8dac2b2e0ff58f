"""A completed archive's manifest (`{job_id}/manifest.json`): a redelivered job finds it and
answers again instead of building the archive twice."""

from __future__ import annotations

import structlog
from pydantic import ValidationError

from archiver.app.engine.sink import destination_errors
from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.notifications import ArchiveInfo, ArchiveManifest
from archiver.domain.plan import ArchivePlan
from archiver.domain.ports import ObjectHeaders, ObjectStore

log = structlog.get_logger(__name__)

MANIFEST_MAX_BYTES = 1024 * 1024


def record_archive(
    store: ObjectStore, plan: ArchivePlan, fingerprint: str, archive: ArchiveInfo
) -> None:
    manifest = ArchiveManifest(job_id=plan.job_id, fingerprint=fingerprint, archive=archive)
    headers = ObjectHeaders(content_type="application/json")
    data = manifest.model_dump_json().encode("utf-8")
    with destination_errors(plan.manifest):
        store.put(plan.manifest, data, headers)


def completed_archive(
    store: ObjectStore, plan: ArchivePlan, fingerprint: str
) -> ArchiveInfo | None:
    """The archive an earlier attempt of this very job completed, if there is one."""
    try:
        recorded = store.stat(plan.manifest)
        if recorded.size > MANIFEST_MAX_BYTES:
            return None
        manifest = ArchiveManifest.model_validate_json(
            store.fetch(plan.manifest, 0, recorded.size, recorded.etag)
        )
        stored = store.stat(plan.archive)
    except (ObjectUnavailable, TransientError):
        return None
    except ValidationError:
        log.warning("manifest_unreadable", manifest=str(plan.manifest))
        return None
    if manifest.job_id != plan.job_id or manifest.fingerprint != fingerprint:
        return None
    if stored.size != manifest.archive.size_bytes:
        return None
    return manifest.archive
