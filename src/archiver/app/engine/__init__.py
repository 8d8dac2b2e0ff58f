"""The archive engine: a job's sources streamed into one ZIP archive in a multipart upload.

May import the domain only (and `stopping`); `transfer.py` is its bottom: what its modules pass
each other (`Transfer`, `Chunk`) and the narrow view the chunk feed takes of the sizing.

Data flow, and who runs where (one job; `WORKER_CONCURRENCY` jobs share the byte budget):

    size ──▶ fetch ──▶ write ──▶ upload
    pool      pool      job's     part
    threads   threads   thread    threads

- size (`sizing.py`): every distinct source, in job order, on the job's `DOWNLOAD_CONCURRENCY`
  pool threads (`pool.py`: the earliest entry's request first). One ranged GET of its first
  MiB sizes a source and keeps those bytes (`budget.py`, `FirstChunks`); past the budget, a
  HEAD. Once all are sized the job's policy applies (`domain/policy.py`).
- fetch (`fetching.py`, `chunks.py`): every entry cut into chunks (its kept first bytes, then
  8 MiB ranged GETs pinned to the sized ETag), submitted to the same pool in job order as far
  ahead as the byte budget allows (`budget.py`, `ByteBudget`).
- write (`archive.py`, `zipstream.py`, `deflate.py`): the job's thread takes chunks in job
  order and writes the ZIP format (`domain/zipformat.py`): an entry all in hand complete, a
  larger one streamed with its header patched afterwards; ISA-L deflate and CRC-32. An
  encrypted job's entries are encrypted there too (`aes.py`), their keys derived ahead on the
  process's two key threads.
- upload (`multipart_sink.py`): the stream cut into parts, `UPLOAD_CONCURRENCY` part threads; a
  part holding an unpatched header waits, the others go out as soon as full. Part CRC-32s are
  combined into the archive's. `file_sink.py` is the same for a local file (`archiver build`).
- copy (`copying.py`, `staging.py`): a large stored entry is not uploaded: S3 copies it from
  its source (`UploadPartCopy`, `COPY_CONCURRENCY` copy threads beside the upload threads),
  its last part through a staging object that carries what the writer puts before the next
  copy. Its CRC-32 is the source's stored one, or S3's answers to the copies (the header is
  patched once they come); only the first copied entry of a job is topped up.
"""
