"""Encrypted archives (WinZip AES-256, AE-2): the cipher against a per-block reference, jobs
end to end on the fakes, and every bad secret answered once."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from archiver.adapters.memory import Checksum, MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.adapters.memory_secrets import ACCOUNT_PREFIX, MemorySecretStore
from archiver.app.composition.settings import Settings
from archiver.app.engine.aes import Encryption, EntryCipher
from archiver.app.worker.outcomes import Outcome
from archiver.domain.job import JobRequest, ObjectRef
from archiver.domain.notifications import JobFailed, JobSucceeded
from archiver.domain.plan import ArchivePolicy
from tests.aes import WrongPassword, decrypt_entry, decrypted
from tests.support import MIB, build_options, drive, make_worker
from tests.unit.conftest import DESTINATION, SENT, SOURCE, ServiceFactory
from tests.zipcheck import check_layout, unix_times

PASSWORD = "correct horse battery staple é"
POLICY = ArchivePolicy(SOURCE, DESTINATION, encryption_secrets=(ACCOUNT_PREFIX,))
rng = random.Random(24)


@pytest.mark.parametrize("pieces", [[0], [1], [15, 1, 17], [65_536 + 5, 3, 70_000], [200_000]])
def test_the_cipher_matches_the_spec_however_the_bytes_arrive(pieces: list[int]) -> None:
    data = rng.randbytes(sum(pieces))
    cipher = EntryCipher(PASSWORD.encode(), salt=bytes(range(16)))
    out, at = b"", 0
    for size in pieces:
        out += cipher.encrypt(memoryview(data)[at : at + size].tobytes())
        at += size
    framed = cipher.header + out + cipher.finish()
    assert len(framed) == len(data) + 28
    assert decrypt_entry(framed, PASSWORD) == data
    with pytest.raises(WrongPassword):
        decrypt_entry(framed, "wrong")


def test_each_entry_has_its_own_salt_and_the_password_is_never_shown() -> None:
    encryption = Encryption(PASSWORD)
    assert encryption.entry().header[:16] != encryption.entry().header[:16]
    assert PASSWORD not in repr(encryption)
    with pytest.raises(ValueError, match="empty"):
        Encryption("")
    encryption.close()  # the job ended: nothing of its password is left to derive from
    with pytest.raises(RuntimeError, match="closed"):
        encryption.entry()


def _sources(store: MemoryObjectStore) -> dict[str, bytes]:
    files = {
        "notes.txt": b"compressible line\n" * 200_000,  # deflated, streamed in chunks
        "photo.jpg": rng.randbytes(3 * MIB),  # stored
        "clip.mp4": rng.randbytes(12 * MIB),  # would be copied by the store, unencrypted
        "empty.bin": b"",
        "één.txt": "é".encode(),
    }
    for key, body in files.items():
        checksum = Checksum.FULL_OBJECT if key == "clip.mp4" else Checksum.NONE
        store.add(ObjectRef(SOURCE, key), body, checksum)
    return files


def _job(secret: str, keys: list[str]) -> JobRequest:
    return JobRequest.model_validate(
        {"files": [{"source": k} for k in keys], "archive": {"encryption": {"secret": secret}}}
    )


def test_an_encrypted_job_streams_every_entry_and_opens_with_the_password(
    store: MemoryObjectStore, secrets: MemorySecretStore, make_service: ServiceFactory
) -> None:
    files = _sources(store)
    secrets.add("archiver/job", PASSWORD)
    service = make_service(policy=POLICY, build=build_options(part_size=5 * MIB))
    plan = service.plan("job-1", _job("archiver/job", list(files)), SENT)
    archive = service.build(plan)

    data = store.objects[ObjectRef(DESTINATION, archive.key)]
    assert isinstance(data, bytes)
    assert decrypted(data, PASSWORD) == files
    assert store.copied_bytes == 0  # its bytes change: nothing copied
    check_layout(data)
    assert len(unix_times(data)) == len(files)
    with pytest.raises(WrongPassword):
        decrypted(data, PASSWORD + "x")
    assert PASSWORD.encode() not in data


def test_the_same_job_unencrypted_is_a_different_archive_for_a_redelivery(
    store: MemoryObjectStore, secrets: MemorySecretStore, make_service: ServiceFactory
) -> None:
    """The manifest's fingerprint names the secret: a plain archive is never reused for it."""
    store.add(ObjectRef(SOURCE, "a.txt"), b"a")
    secrets.add("archiver/job", PASSWORD)
    service = make_service(policy=POLICY)
    plain = service.plan("job-1", JobRequest.model_validate({"files": [{"source": "a.txt"}]}), SENT)
    encrypted = service.plan("job-1", _job("archiver/job", ["a.txt"]), SENT)
    service.build(plain)
    archive = service.build(encrypted, redelivered=True)
    data = store.objects[ObjectRef(DESTINATION, archive.key)]
    assert isinstance(data, bytes)
    assert decrypted(data, PASSWORD) == {"a.txt": b"a"}


Answered = Callable[..., JobFailed | JobSucceeded]


@pytest.fixture
def answered(
    store: MemoryObjectStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    make_service: ServiceFactory,
) -> Answered:
    """A job of one file encrypted with `secret`, run by a worker under `policy`: its one
    answer (the job deleted, no password logged or sent)."""

    def run(secret: str, policy: ArchivePolicy = POLICY) -> JobFailed | JobSucceeded:
        store.add(ObjectRef(SOURCE, "a.txt"), b"a")
        body = json.dumps(_job(secret, ["a.txt"]).model_dump(mode="json", exclude_none=True))
        queue.send(body, sent_at=SENT)
        worker = make_worker(queue, notifier, make_service(policy=policy), wait_seconds=0)
        with capture_logs() as logs:
            outcomes = drive(worker)
        assert PASSWORD not in json.dumps(logs, default=str)
        assert all(PASSWORD not in body for body in notifier.bodies)
        assert len(queue.deleted) == 1  # answered once, never retried
        [answer] = notifier.published
        assert isinstance(answer, JobFailed | JobSucceeded)
        succeeded = isinstance(answer, JobSucceeded)
        assert outcomes == [Outcome.SUCCEEDED if succeeded else Outcome.FAILED]
        return answer

    return run


@pytest.mark.parametrize(
    ("value", "secret", "code", "reason"),
    [
        (None, "archiver/unknown", "encryption_secret_unreadable", "no such secret"),
        (b"\x00binary", "archiver/job", "encryption_secret_unreadable", "binary"),
        ("", "archiver/job", "encryption_secret_unreadable", "empty password"),
        (PASSWORD, "arn:aws:secretsmanager:us-east-1:999:secret:x", "invalid_payload", "not under"),
    ],
)
def test_a_bad_secret_is_one_clear_failure(
    store: MemoryObjectStore,
    secrets: MemorySecretStore,
    answered: Answered,
    value: str | bytes | None,
    secret: str,
    code: str,
    reason: str,
) -> None:
    if value is not None:
        secrets.add("archiver/job", value)
    answer = answered(secret)
    assert isinstance(answer, JobFailed)
    assert answer.error.code == code
    assert reason in answer.error.message
    assert secret in answer.error.message
    assert not [ref for ref in store.objects if ref.bucket == DESTINATION]
    if code == "invalid_payload":
        assert secrets.reads == 0  # refused before the secret is read


def test_a_secret_named_but_outside_the_allowlist_is_refused_by_its_arn_unsaid(
    store: MemoryObjectStore, secrets: MemorySecretStore, answered: Answered
) -> None:
    arn = secrets.add("other/secret", PASSWORD)
    policy = ArchivePolicy(SOURCE, DESTINATION, encryption_secrets=(f"{ACCOUNT_PREFIX}archiver/",))
    answer = answered("other/secret", policy)
    assert isinstance(answer, JobFailed)
    assert answer.error.code == "invalid_payload"
    assert "other/secret" in answer.error.message
    assert arn not in answer.error.message  # the account's secrets are not the producer's


def test_encryption_is_refused_where_no_secret_is_allowed(
    store: MemoryObjectStore, secrets: MemorySecretStore, answered: Answered
) -> None:
    secrets.add("archiver/job", PASSWORD)
    policy = ArchivePolicy(SOURCE, DESTINATION)
    answer = answered("archiver/job", policy)
    assert isinstance(answer, JobFailed)
    assert answer.error.code == "invalid_payload"
    assert "ENCRYPTION_SECRETS is empty" in answer.error.message
    assert secrets.reads == 0


def test_a_good_secret_by_name_encrypts_the_archive(
    store: MemoryObjectStore, secrets: MemorySecretStore, answered: Answered
) -> None:
    secrets.add("archiver/job", PASSWORD)
    answer = answered("archiver/job")
    assert isinstance(answer, JobSucceeded)
    data = store.objects[ObjectRef(DESTINATION, answer.archive.key)]
    assert isinstance(data, bytes)
    assert decrypted(data, PASSWORD) == {"a.txt": b"a"}


def test_encryption_secrets_are_secrets_manager_arn_prefixes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:archiver/"
    monkeypatch.setenv("ENCRYPTION_SECRETS", f" {prefix} ,")
    assert Settings().policy().encryption_secrets == (prefix,)
    for broad in ("archiver/", "arn:aws:secretsmanager:", "arn:aws:s3:::bucket/a:b:c:d"):
        monkeypatch.setenv("ENCRYPTION_SECRETS", broad)
        with pytest.raises(ValueError, match="not a Secrets Manager ARN prefix"):
            Settings()
    monkeypatch.setenv("ENCRYPTION_SECRETS", "arn:aws:secretsmanager:eu-west-1::secret:x/")
    with pytest.raises(ValueError, match="must name its region, account"):
        Settings()


LOGGED = """
import structlog
from archiver.app.composition.logs import configure_logging
configure_logging(console={console})
def derive(password):
    raise RuntimeError("derivation failed")
try:
    derive("{password}")
except RuntimeError:
    structlog.get_logger().exception("job_crashed")
"""


@pytest.mark.parametrize("console", [False, True])
def test_a_crash_log_shows_no_local_variables(console: bool) -> None:
    """A password (or metadata) in a frame's locals never reaches the logs."""
    password = "plain-ascii-password"  # JSON would escape anything else
    script = LOGGED.format(console=console, password=password)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "derivation failed" in done.stderr
    assert "derive" in done.stderr  # the traceback is there
    assert password not in done.stderr
