"""WinZip AES-256 (AE-2) as archiver encrypts entries: a random salt per entry, keys from the
password by PBKDF2-HMAC-SHA1 (1,000 rounds), AES in CTR mode with a little-endian counter from
1, and an HMAC-SHA1 of the encrypted bytes (its first 10 bytes close the entry).

AES itself runs in OpenSSL (`cryptography`: hardware AES). Its CTR mode counts big-endian, so
the counter blocks are built here, a batch at a time as one integer (`first × ONES + STEPS`),
encrypted in ECB mode, and XORed with the data as integers: no Python loop runs per block.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from archiver.domain.ports import Buffer
from archiver.domain.zipformat import AES_CHECK_BYTES, AES_CODE_BYTES, AES_SALT_BYTES

PBKDF2_ROUNDS: Final = 1000
_KEY_BYTES = 32  # AES-256, and the HMAC key as long
_BLOCK = 16
_BATCH = 4096  # counter blocks built at once: 64 KiB of them
_ONES = int.from_bytes((1).to_bytes(_BLOCK, "little") * _BATCH, "little")
_STEPS = int.from_bytes(b"".join(i.to_bytes(_BLOCK, "little") for i in range(_BATCH)), "little")


class Encryption:
    """One job's password, held only while the job runs: each entry's cipher is made from it
    with a salt of its own."""

    def __init__(self, password: str) -> None:
        if not password:
            raise ValueError("an empty password encrypts nothing")
        self._password = password.encode("utf-8")

    def __repr__(self) -> str:
        return "Encryption(password=<hidden>)"

    def entry(self) -> EntryCipher:
        return EntryCipher(self._password, os.urandom(AES_SALT_BYTES))


class EntryCipher:
    """One entry's encryption: `header` goes before its encrypted bytes, `finish()` after."""

    def __init__(self, password: bytes, salt: bytes) -> None:
        keys = hashlib.pbkdf2_hmac(
            "sha1", password, salt, PBKDF2_ROUNDS, 2 * _KEY_BYTES + AES_CHECK_BYTES
        )
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
