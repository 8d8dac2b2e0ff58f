"""An archive's bytes, written into a sink in one pass with the domain's ZIP format.

An entry whose bytes are all in hand (most small files: one probe or one range) is checksummed
and compressed first, so its header goes out complete and nothing is held. A larger entry is
streamed: its header goes out with placeholders, the sink holds the part(s) it is in, and once
the data is written the header is patched in place (same length) and released. A stored entry
the store copies from its source goes out with its header, then as many of its first bytes as
the part before the copy needs, then the copy; when its CRC-32 was not known beforehand, the
header is held and patched once the copies tell it, while the writer goes on.

An encrypted archive (`aes.py`) frames every entry's compressed bytes with its cipher's header
and authentication code; it has no CRC-32 to compute (AE-2), and nothing of it is copied.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from isal import isal_zlib

from archiver.app.engine.aes import Encryption, EntryCipher
from archiver.app.engine.copying import CopiedRange
from archiver.app.engine.deflate import compressor
from archiver.app.engine.sink import ArchiveSink
from archiver.domain.checksum import crc32_of_rest
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import MIN_PART_BYTES
from archiver.domain.ports import Buffer
from archiver.domain.zipformat import (
    AES_OVERHEAD,
    DEFLATED,
    STORED,
    Entry,
    central_directory,
    local_header,
    needs_zip64,
    stamped,
)

HELD_COPIES = 64
"""Copied entries whose headers may wait for their CRC-32 at once: the writer goes on past
them while the parts their headers are in hold at most a part's worth (`holds_too_much`);
usually each holds only what was written since the copy before it."""


@dataclass
class _Unpatched:
    index: int  # in the stream's entries
    head_crc: int  # of the entry's bytes topped up before the copy
    copied: CopiedRange


@dataclass
class _Streaming:
    header: Entry  # as written, with placeholders
    compressor: isal_zlib.Compress | None
    cipher: EntryCipher | None
    crc: int = 0
    read: int = 0
    written: int = 0


class ZipStream:
    """Writes entries in the order given; `close` writes the central directory."""

    def __init__(
        self,
        sink: ArchiveSink,
        modified: datetime,
        encryption: Encryption | None,
        written: list[Entry] | None = None,
    ) -> None:
        """`modified`: the time of entries whose source gives none (the job's). `written`:
        the entries a resumed job wrote before its checkpoint."""
        self._sink = sink
        self._modified = modified
        self._encryption = encryption
        self._entries: list[Entry] = written or []
        self._streaming: _Streaming | None = None
        self._unpatched: deque[_Unpatched] = deque()

    def _times(self, modified: datetime | None) -> dict[str, Any]:
        stamp, mtime = stamped(modified or self._modified)
        return {"stamp": stamp, "mtime": mtime}

    def add(self, name: str, data: Buffer, deflate: bool, modified: datetime | None) -> None:
        """An entry whose bytes are all here: its header is complete before it is written."""
        self._check_idle()
        self._patch(HELD_COPIES)
        payload: Buffer = data
        if deflate:
            stream = compressor()
            payload = stream.compress(data) + stream.flush()
        method = DEFLATED if deflate else STORED
        pieces = [payload]  # written after the header
        crc = 0
        if self._encryption is None:
            crc = isal_zlib.crc32(data)
        else:
            cipher = self._encryption.entry()
            pieces = [cipher.header, cipher.encrypt(payload), cipher.finish()]
        entry = Entry(
            name, method, crc=crc, compressed=sum(len(piece) for piece in pieces),
            size=len(data), offset=self._sink.tell(), zip64=needs_zip64(len(data), method),
            encrypted=self._encryption is not None, **self._times(modified),
        )  # fmt: skip
        self._sink.write(local_header(entry))
        for piece in pieces:
            self._sink.write(piece)
        self._entries.append(entry)

    def copy(
        self,
        name: str,
        source: ObjectRef,
        etag: str | None,
        crc: int | None,
        size: int,
        first_bytes: Callable[[int], Buffer],
        modified: datetime | None,
    ) -> None:
        """A stored entry of `size` bytes the sink copies from `source`, after what top-up
        the sink needs (`first_bytes(n)`: the source's first n bytes). Without its CRC-32
        (`crc`), its header is held and patched once the copies tell it."""
        self._check_idle()
        if self._encryption is not None:
            raise RuntimeError("an encrypted entry cannot be copied: its bytes change")
        offset = self._sink.tell()
        entry = Entry(
            name, STORED, crc=crc or 0, compressed=size, size=size, offset=offset,
            zip64=needs_zip64(size, STORED), **self._times(modified),
        )  # fmt: skip
        if crc is None:
            self._sink.hold(offset)
        self._sink.write(local_header(entry))
        sent = self._sink.top_up()
        if size - sent < MIN_PART_BYTES:  # too little left to copy (`Copies` avoids it): whole
            self._write_whole(entry, first_bytes(size), placeholder=crc is None)
            return
        head = first_bytes(sent)
        self._sink.write(head)
        head_crc = isal_zlib.crc32(head)
        rest = None if crc is None else crc32_of_rest(crc, head_crc, size - sent)
        copied = self._sink.copy(source, sent, size - sent, etag, rest)
        self._entries.append(entry)
        if crc is None:
            self._unpatched.append(_Unpatched(len(self._entries) - 1, head_crc, copied))
            self._patch(HELD_COPIES)

    def _write_whole(self, entry: Entry, data: Buffer, placeholder: bool) -> None:
        """A copied entry's bytes, all here, written after its header after all."""
        self._sink.write(data)
        if placeholder:
            entry = replace(entry, crc=isal_zlib.crc32(data))
            self._rewrite_header(entry)
        self._entries.append(entry)

    def _patch(self, keep: int) -> None:
        """Patch the headers whose copies have answered, waiting for the oldest while more
        than `keep` are held (each holds the part its header is in)."""
        while self._unpatched and (
            len(self._unpatched) > keep
            or self._sink.holds_too_much()
            or self._unpatched[0].copied.done()
        ):
            unpatched = self._unpatched.popleft()
            entry = self._entries[unpatched.index]
            crc = isal_zlib.crc32_combine(
                unpatched.head_crc, unpatched.copied.crc(), unpatched.copied.length
            )
            entry = self._entries[unpatched.index] = replace(entry, crc=crc)
            self._rewrite_header(entry)

    def _rewrite_header(self, entry: Entry) -> None:
        """Patch an entry's held local header in place (same length) and let its part go."""
        end = self._sink.tell()
        self._sink.seek(entry.offset)
        self._sink.write(local_header(entry))
        self._sink.seek(end)
        self._sink.unhold(entry.offset)

    def begin(self, name: str, size: int, deflate: bool, modified: datetime | None) -> None:
        """An entry of `size` bytes that will arrive in pieces (`write`, then `end`)."""
        self._check_idle()
        self._patch(HELD_COPIES)
        method = DEFLATED if deflate else STORED
        offset = self._sink.tell()
        header = Entry(
            name, method, crc=0, compressed=0, size=size, offset=offset,
            zip64=needs_zip64(size, method), encrypted=self._encryption is not None,
            **self._times(modified),
        )  # fmt: skip
        self._sink.hold(offset)  # patched once the CRC and sizes are known
        self._sink.write(local_header(header))
        cipher = None if self._encryption is None else self._encryption.entry()
        if cipher is not None:
            self._sink.write(cipher.header)
        self._streaming = _Streaming(header, compressor() if deflate else None, cipher)

    def write(self, data: Buffer) -> None:
        streaming = self._streaming
        if streaming is None:
            raise RuntimeError("write outside an entry")
        streaming.read += len(data)
        out = data if streaming.compressor is None else streaming.compressor.compress(data)
        if streaming.cipher is None:
            streaming.crc = isal_zlib.crc32(data, streaming.crc)
        else:
            out = streaming.cipher.encrypt(out)
        streaming.written += len(out)
        self._sink.write(out)

    def end(self) -> None:
        streaming = self._streaming
        if streaming is None:
            raise RuntimeError("end outside an entry")
        if streaming.compressor is not None:
            tail = streaming.compressor.flush()
            if streaming.cipher is not None:
                tail = streaming.cipher.encrypt(tail)
            streaming.written += len(tail)
            self._sink.write(tail)
        if streaming.cipher is not None:
            self._sink.write(streaming.cipher.finish())
            streaming.written += AES_OVERHEAD
        if streaming.read != streaming.header.size:
            raise RuntimeError(
                f"{streaming.header.name}: {streaming.read} bytes written, "
                f"{streaming.header.size} announced"
            )
        entry = replace(streaming.header, crc=streaming.crc, compressed=streaming.written)
        self._rewrite_header(entry)
        self._entries.append(entry)
        self._streaming = None

    def settle(self) -> list[Entry]:
        """Patch every header still held (waiting for its copies): the entries written."""
        self._check_idle()
        self._patch(0)
        return self._entries

    def close(self) -> None:
        """Write the central directory and the end records after the last entry."""
        self.settle()
        start = self._sink.tell()
        for piece in central_directory(self._entries, start):
            self._sink.write(piece)

    def _check_idle(self) -> None:
        if self._streaming is not None:
            raise RuntimeError(f"{self._streaming.header.name} is still being written")
