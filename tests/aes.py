"""A reader of WinZip AES (AE-2) entries, written from the spec for tests: one AES block at a
time, nothing shared with the writer but the `cryptography` primitives."""

from __future__ import annotations

import hashlib
import hmac
import io
import struct
import zipfile
import zlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.zipcheck import LOCAL_HEADER, extra_fields

AES_METHOD = 99
AES_EXTRA = 0x9901


class WrongPassword(AssertionError):
    pass


def aes_fields(info: zipfile.ZipInfo) -> tuple[int, bytes, int, int]:
    """The 0x9901 field: (vendor version, vendor id, strength, actual method)."""
    version, vendor, strength, method = struct.unpack("<H2sBH", extra_fields(info.extra)[AES_EXTRA])
    return version, vendor, strength, method


def decrypt_entry(framed: bytes, password: str) -> bytes:
    """An entry's compressed bytes from its AES framing; WrongPassword if the check fails."""
    salt, check, body, code = framed[:16], framed[16:18], framed[18:-10], framed[-10:]
    keys = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 1000, 66)
    if keys[64:] != check:
        raise WrongPassword("the password verification value does not match")
    expected = hmac.new(keys[32:64], body, "sha1").digest()[:10]
    assert hmac.compare_digest(expected, code), "the authentication code does not match"
    block = Cipher(algorithms.AES(keys[:32]), modes.ECB()).encryptor()
    plain = bytearray()
    for number, start in enumerate(range(0, len(body), 16), start=1):
        stream = block.update(number.to_bytes(16, "little"))
        plain += bytes(a ^ b for a, b in zip(body[start : start + 16], stream, strict=False))
    return bytes(plain)


def decrypted(archive: bytes, password: str) -> dict[str, bytes]:
    """Every entry's content, each checked as a reader must (AE-2: its CRC field is 0)."""
    files = {}
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        for info in opened.infolist():
            assert info.compress_type == AES_METHOD, info.filename
            assert info.flag_bits & 1, info.filename
            assert info.CRC == 0, info.filename
            version, vendor, strength, method = aes_fields(info)
            assert (version, vendor, strength) == (2, b"AE", 3), info.filename
            fields = LOCAL_HEADER.unpack_from(archive, info.header_offset)
            start = info.header_offset + LOCAL_HEADER.size + fields[-2] + fields[-1]
            data = decrypt_entry(archive[start : start + info.compress_size], password)
            files[info.filename] = zlib.decompress(data, -15) if method == 8 else data
            assert len(files[info.filename]) == info.file_size, info.filename
    return files
