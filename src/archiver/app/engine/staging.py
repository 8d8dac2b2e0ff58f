"""A staging object: how what follows a copied entry travels with it, whatever its size.

What the writer puts between two copied entries (the next local header, small entries) is
usually under 5 MiB, too small to be an archive part of its own. So the last part of every
copied range (`STAGED_BYTES`) is first copied into a staging object, as soon as the copy
begins: S3 answers with its CRC-32, which the entry's header needs. Then, once it is known
what follows:

- under 5 MiB before the next copy (`copy_staged`): it becomes the staging object's last part,
  the object is completed, and the archive copies it whole as one part;
- 5 MiB or more, or the end of the archive (`copy_direct`): the archive copies the range's
  last part from the source itself, and the staging object is dropped.

Staging objects live under `STAGING_PREFIX` in the archive's bucket and are deleted as soon as
the archive's part is copied from them, or when the archive is aborted (`discard`); a
redelivered job sweeps what a killed attempt left, and a lifecycle rule on the prefix is the
backstop.
"""

from __future__ import annotations

import threading

from isal import isal_zlib

from archiver.app.engine.copying import CopiedRange
from archiver.app.engine.sink import quietly
from archiver.domain.checksum import combine
from archiver.domain.errors import TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import staging_key
from archiver.domain.ports import Buffer, MultipartUpload, ObjectHeaders, ObjectStore

STAGING_HEADERS = ObjectHeaders(content_type="application/octet-stream")


class StagedPart:
    """The last part of a copied range, first copied into a staging object of its own."""

    def __init__(
        self,
        store: ObjectStore,
        archive: ObjectRef,
        number: int,
        copied: CopiedRange,
        source: ObjectRef,
        etag: str | None,
    ) -> None:
        self.ref = ObjectRef(archive.bucket, staging_key(archive.key, number))
        self.copied = copied
        self.part = len(copied.parts) - 1
        self.length = copied.parts[self.part][1]
        self.tail_crc = 0
        self.tail_length = 0
        self._store = store
        self._source = source
        self._etag = etag
        self._upload: MultipartUpload | None = None
        self._completed = False
        self._begun = threading.Event()

    def begin(self, _number: int) -> None:
        """Copy the range's last part into the staging object (on a copy thread): the range
        learns its CRC-32."""
        try:
            self._upload = self._store.start_upload(self.ref, STAGING_HEADERS)
            upload, store = self._upload, self._store
            self.copied.copy_part(1, upload, store, self._source, self._etag, self.part, exact=True)
        except BaseException as error:
            self.copied.failed(error)
            raise
        finally:
            self._begun.set()

    def copy_direct(self, number: int, archive: MultipartUpload) -> None:
        """The archive's part `number` is the range's last part, copied from the source."""
        start, length = self.copied.parts[self.part]
        archive.copy_part(number, self._source, start, length, self._etag)
        self._begun.wait()
        self.discard()

    def copy_staged(self, number: int, archive: MultipartUpload, tail: Buffer) -> None:
        """The archive's part `number` is the staging object, `tail` its last part."""
        self._begun.wait()
        upload = self._upload
        if upload is None:
            raise TransientError(f"{self.ref}: the staging object could not be begun")
        range_crc = self.copied.part_crc(self.part)
        self.tail_crc, self.tail_length = isal_zlib.crc32(tail), len(tail)
        upload.upload_part(2, tail)
        upload.complete(combine([(range_crc, self.length), (self.tail_crc, self.tail_length)]))
        self._completed = True
        archive.copy_part(number, self.ref, 0, self.length + self.tail_length, None)
        self.discard()  # the part holds its own copy of the bytes: done with, on this thread

    def discard(self) -> None:
        """Leave nothing behind: delete the staging object, or abort its upload."""
        if self._completed:
            quietly("staging_delete_failed", self.ref, lambda: self._store.delete(self.ref))
        elif self._upload is not None:
            quietly("staging_abort_failed", self.ref, self._upload.abort)
        self._completed, self._upload = False, None
