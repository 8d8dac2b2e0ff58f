"""A memory store whose source reads take a while, so that a job outlives a short hold."""

import time
from dataclasses import dataclass, field

from archiver.adapters.memory import MemoryMultipartUpload, MemoryObjectStore
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import STAGING_PREFIX
from archiver.domain.ports import Buffer, ObjectHeaders


@dataclass
class RecordingUpload(MemoryMultipartUpload):
    log: list[tuple[str, int, int]] = field(default_factory=list)

    def upload_part(self, number: int, data: Buffer) -> None:
        super().upload_part(number, data)
        if not self.ref.key.startswith(STAGING_PREFIX):  # the archive's own parts
            self.log.append((self.upload_id, number, len(data)))


class SlowStore(MemoryObjectStore):
    """Every ranged read takes a while, so a job outlives a short hold; every part sent is
    logged, by upload and number."""

    def __init__(self, delay: float, source: str) -> None:
        super().__init__()
        self.delay = delay
        self.source = source  # the bucket whose reads are slow
        self.parts: list[tuple[str, int, int]] = []
        self.puts: list[tuple[str, int]] = []

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        if ref.bucket == self.source:
            time.sleep(self.delay)
        return super().fetch(ref, start, length, etag)

    def put(self, ref: ObjectRef, data: bytes, headers: ObjectHeaders) -> None:
        self.puts.append((ref.key, len(data)))
        super().put(ref, data, headers)

    def start_upload(self, ref: ObjectRef, headers: ObjectHeaders) -> MemoryMultipartUpload:
        self._check(ref, must_exist=False)
        upload = RecordingUpload(self, ref, headers, log=self.parts)
        self.uploads[upload.upload_id] = upload
        return upload
