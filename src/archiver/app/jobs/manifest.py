"""A completed archive's manifest (`{job_id}/manifest.json`): a redelivered job finds it and
answers again instead of building the archive twice."""

from __future__ import annotations

from archiver.app.engine.sink import destination_errors
from archiver.app.jobs.documents import read_document
from archiver.domain.errors import ObjectUnavailable
from archiver.domain.notifications import ArchiveInfo, ArchiveManifest
from archiver.domain.plan import ArchivePlan
from archiver.domain.ports import ObjectHeaders, ObjectStore

MANIFEST_MAX_BYTES = 1024 * 1024


def record_archive(
    store: ObjectStore,
    plan: ArchivePlan,
    fingerprint: str,
    archive: ArchiveInfo,
    token: str | None = None,
) -> None:
    manifest = ArchiveManifest(
        job_id=plan.job_id, fingerprint=fingerprint, archive=archive, token=token
    )
    headers = ObjectHeaders(content_type="application/json")
    data = manifest.model_dump_json().encode("utf-8")
    with destination_errors(plan.manifest):
        store.put(plan.manifest, data, headers)


def completed_archive(
    store: ObjectStore, plan: ArchivePlan, fingerprint: str
) -> ArchiveInfo | None:
    """The archive an earlier attempt of this very job completed, if there is one
    (TransientError: ask again later, rather than build it twice)."""
    manifest = read_document(store, plan.manifest, ArchiveManifest, MANIFEST_MAX_BYTES)
    if manifest is None or manifest.job_id != plan.job_id or manifest.fingerprint != fingerprint:
        return None
    try:
        stored = store.stat(plan.archive)
    except ObjectUnavailable:
        return None
    if stored.size != manifest.archive.size_bytes:
        return None
    return manifest.archive
