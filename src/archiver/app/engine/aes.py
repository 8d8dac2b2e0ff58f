"""WinZip AES-256 (AE-2) as archiver encrypts entries: a random salt per entry, keys from the
password by PBKDF2-HMAC-SHA1 (1,000 rounds), AES in CTR mode with a little-endian counter from
1, and an HMAC-SHA1 of the encrypted bytes (its first 10 bytes close the entry).

AES itself runs in OpenSSL (`cryptography`: hardware AES). Its CTR mode counts big-endian, so
the counter blocks are built here, a batch at a time as one integer (`first × ONES + STEPS`),
encrypted in ECB mode, and XORed with the data as integers: no Python loop runs per block.
Key derivation costs about half a millisecond an entry (`cryptography`'s OpenSSL: twice as fast
as `hashlib`'s here), more than encrypting a 256 KiB one: it runs ahead of the writer
(`KEYS_AHEAD`) on the process's key threads, which must be started by a thread that has not yet
run ISA-L's CRC-32 (`start_key_threads`, at start-up). That CRC's AVX-512 code leaves the vector
registers' upper halves dirty, which makes later SSE code (SHA-NI: PBKDF2's SHA-1) about three
times slower in that thread and in every thread it starts (measured: 0.49 → 1.40 ms a key).
"""

from __future__ import annotations

import hmac
import os
import queue
import threading
from collections import deque
from concurrent.futures import Future
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from archiver.domain.ports import Buffer
from archiver.domain.zipformat import AES_CHECK_BYTES, AES_CODE_BYTES, AES_SALT_BYTES

PBKDF2_ROUNDS: Final = 1000
KEYS_AHEAD: Final = 16  # entries' keys derived before the writer reaches them
_KEY_THREADS = 2
_KEY_BYTES = 32  # AES-256, and the HMAC key as long
_BLOCK = 16
_BATCH = 4096  # counter blocks built at once: 64 KiB of them
_ONES = int.from_bytes((1).to_bytes(_BLOCK, "little") * _BATCH, "little")
_STEPS = int.from_bytes(b"".join(i.to_bytes(_BLOCK, "little") for i in range(_BATCH)), "little")


class _KeyThreads:
    """Threads deriving entry keys for every job of the process (they never run ISA-L)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Future[EntryCipher], bytes]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            for number in range(_KEY_THREADS):
                name = f"aes-keys-{number}"
                threading.Thread(target=self._serve, name=name, daemon=True).start()
            self._started = True

    def derive(self, password: bytes) -> Future[EntryCipher]:
        self.start()
        future: Future[EntryCipher] = Future()
        self._requests.put((future, password))
        return future

    def _serve(self) -> None:
        while True:
            future, password = self._requests.get()
            try:
                if future.set_running_or_notify_cancel():  # else its job has ended
                    future.set_result(EntryCipher(password, os.urandom(AES_SALT_BYTES)))
            except BaseException as error:  # handed to the job that asked
                future.set_exception(error)
            finally:
                del future, password  # a job's password is not kept past its keys


_KEYS = _KeyThreads()


def start_key_threads() -> None:
    """Start the key threads now: at start-up, before any CRC-32 is computed (see above)."""
    _KEYS.start()


class Encryption:
    """One job's password, held only while the job runs (`close` when it ends): each entry's
    cipher is made from it with a salt of its own, a few entries ahead."""

    def __init__(self, password: str) -> None:
        if not password:
            raise ValueError("an empty password encrypts nothing")
        self._password = password.encode("utf-8")
        self._ahead: deque[Future[EntryCipher]] = deque()

    def __repr__(self) -> str:
        return "Encryption(password=<hidden>)"

    def entry(self) -> EntryCipher:
        if not self._password:
            raise RuntimeError("the job's encryption is closed")
        while len(self._ahead) < KEYS_AHEAD:
            self._ahead.append(_KEYS.derive(self._password))
        return self._ahead.popleft().result()

    def close(self) -> None:
        """The job ended: the keys asked for ahead are dropped, and the password."""
        for future in self._ahead:
            future.cancel()
        self._ahead.clear()
        self._password = b""


class EntryCipher:
    """One entry's encryption: `header` goes before its encrypted bytes, `finish()` after."""

    def __init__(self, password: bytes, salt: bytes) -> None:
        keys = PBKDF2HMAC(
            hashes.SHA1(),  # noqa: S303 (the AE-2 key derivation, not a signature)
            2 * _KEY_BYTES + AES_CHECK_BYTES,
            salt,
            PBKDF2_ROUNDS,
        ).derive(password)
        self.header = salt + keys[2 * _KEY_BYTES :]  # the salt, the password verification value
        self._ecb = Cipher(algorithms.AES(keys[:_KEY_BYTES]), modes.ECB()).encryptor()  # noqa: S305 (CTR, built here)
        self._mac = hmac.new(keys[_KEY_BYTES : 2 * _KEY_BYTES], digestmod="sha1")
        self._counter = 1  # of the next block
        self._spare = b""  # keystream of the last block, not used yet

    def encrypt(self, data: Buffer) -> bytes:
        size = len(data)
        if not size:
            return b""
        stream = self._keystream(size)
        out = (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
            size, "little"
        )
        self._mac.update(out)
        return out

    def finish(self) -> bytes:
        """The authentication code of everything encrypted."""
        return self._mac.digest()[:AES_CODE_BYTES]

    def _keystream(self, size: int) -> bytes:
        spare = self._spare
        if len(spare) < size:
            blocks = -(-(size - len(spare)) // _BLOCK)
            spare += self._ecb.update(self._counters(blocks))
        self._spare = spare[size:]
        return spare[:size]

    def _counters(self, count: int) -> bytes:
        """`count` counter blocks from the next one: 128-bit little-endian integers."""
        first = self._counter
        self._counter += count
        batches = []
        for start in range(first, first + count, _BATCH):
            batch = (start * _ONES + _STEPS).to_bytes(_BATCH * _BLOCK, "little")
            batches.append(batch[: (first + count - start) * _BLOCK])
        return b"".join(batches)
