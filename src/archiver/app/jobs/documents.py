"""The small JSON documents a job keeps beside its archive (its manifest, its checkpoint),
read back by a later receipt of the job."""

from __future__ import annotations

from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from archiver.domain.errors import ObjectUnavailable
from archiver.domain.job import ObjectRef
from archiver.domain.ports import ObjectStore

log = structlog.get_logger(__name__)

Document = TypeVar("Document", bound=BaseModel)


def read_document(
    store: ObjectStore, ref: ObjectRef, model: type[Document], max_bytes: int
) -> Document | None:
    """The document at `ref`; None when there is none, or none that reads as one (too large,
    not valid). A TransientError propagates: the job is tried again rather than taken for
    one that has no such document."""
    try:
        info = store.stat(ref)
        if info.size > max_bytes:
            log.warning("document_too_large", document=str(ref), size=info.size)
            return None
        return model.model_validate_json(store.fetch(ref, 0, info.size, info.etag))
    except ObjectUnavailable:
        return None
    except ValidationError:
        log.warning("document_unreadable", document=str(ref))
        return None
