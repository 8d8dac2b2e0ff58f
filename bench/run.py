"""`make bench`: archiver against the design it replaces, the copy limit and the copy floor.

One run on an emulator on 127.0.0.1 (`--endpoint`: the embedded moto server, or LocalStack as a
host process, which is stricter and does its own checksum work), directly (local) and
through a proxy that makes it behave like S3 over a network (`bench/network.py`): uploads the
workloads,
runs every contender in a process of its own (wall time, CPU time, peak RSS of that process),
reads every archive back and checks it (CRC-32 and SHA-256 of each entry against its source),
prints one table and writes it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from tests.endpoint import TEST_CREDENTIALS, moto_server
from tests.localstack import localstack_process

from archiver.domain.checksum import crc32_text
from bench.network import LOCAL, S3_LIKE, Link, Profile, network_proxy

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
CONTENDERS = ("archiver", "naive", "copy limit")
COPYING = ("archiver", "copy floor", "copy limit")  # naive would hold 2 GiB in a BytesIO
ENCRYPTING = ("archiver", "archiver aes", "naive", "copy limit")  # aes: the same job, encrypted
PASSWORD = "bench password"


@dataclass(frozen=True)
class Workload:
    name: str
    count: int
    size: int
    profile: Profile = LOCAL
    compressible: bool = False  # text-like sources (else random bytes, which `auto` stores)
    checksum: str | None = None  # sources uploaded with: the SDK's default, "crc32", "none"
    contenders: tuple[str, ...] = CONTENDERS

    @property
    def label(self) -> str:
        size = f"{self.size // MIB} MiB" if self.size >= MIB else f"{self.size // 1024} KiB"
        text = " text" if self.compressible else ""
        checksum = {None: "", "crc32": " CRC32", "none": " no checksum"}[self.checksum]
        return f"{self.name}: {self.count} x {size}{text}{checksum}, {self.profile.name}"


WORKLOADS = {
    "W1": Workload("W1", 500, 256 * 1024, contenders=ENCRYPTING),
    "W2": Workload("W2", 100, 8 * MIB, contenders=ENCRYPTING),
    "W3": Workload("W3", 2, 1024 * MIB),
    "W1c": Workload("W1c", 500, 256 * 1024, compressible=True, contenders=ENCRYPTING),
    "W1s": Workload("W1", 500, 256 * 1024, S3_LIKE, contenders=ENCRYPTING),
    "W2s": Workload("W2", 100, 8 * MIB, S3_LIKE, contenders=ENCRYPTING),
    "W3s": Workload("W3", 2, 512 * MIB, S3_LIKE),
    "W4s": Workload("W4", 8, 256 * MIB, S3_LIKE, checksum="crc32", contenders=COPYING),
    "W4ns": Workload("W4", 8, 256 * MIB, S3_LIKE, checksum="none", contenders=COPYING),
}
ENDPOINTS = {
    "moto": (
        "moto server (one process on 127.0.0.1, sharing the cores)",
        "moto with one patch (`bench/moto_server.py`): moto reads the whole object for every "
        "GET, a ranged one included, which makes any ranged reader quadratic there; the patch "
        "keeps object bytes in memory so a range costs what it costs on S3.",
    ),
    "localstack": (
        "LocalStack as a host process (127.0.0.1, sharing the cores)",
        "LocalStack (`requirements/localstack.txt`) as a host process, unpatched: it checks "
        "every checksum it is sent, stamps unchecksummed uploads with CRC64NVME and computes "
        "the CRC-32 of what `UploadPartCopy` copies, as S3 does, so its CPU is the store's work "
        "too, on the same two cores.",
    ),
}
WORDS = [f"{word}".encode() for word in "the of and archive object bucket entry part".split()]


def text_like(size: int, seed: int) -> bytes:
    """Log-like lines (words, counters, hex ids): deflate shrinks them about 4 to 6 times."""
    rng = random.Random(seed)
    lines = []
    total = 0
    while total < size:
        words = b" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
        line = b"%d %08x %s %d\n" % (total, rng.getrandbits(32), words, rng.randint(0, 10**6))
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def s3_client(checksum: str | None = None) -> Any:
    """`none`: a client that sends no checksum unless required, as SDKs did before 2025."""
    when = "when_required" if checksum == "none" else "when_supported"
    config = Config(s3={"addressing_style": "path"}, request_checksum_calculation=when)
    return boto3.client("s3", config=config)


def upload_sources(s3: Any, bucket: str, workload: Workload) -> dict[str, str]:
    """Random bytes (so `auto` stores them) or text; returns the SHA-256 of every key."""
    digests = {}
    prefix = f"{workload.name}/{workload.count}x{workload.size}"
    for number in range(workload.count):
        key = f"{prefix}/{number:04d}.bin"
        if workload.size > 64 * MIB:
            digests[key] = _upload_large(s3, bucket, key, workload.size, workload.checksum)
        else:
            body = (
                text_like(workload.size, number)
                if workload.compressible
                else os.urandom(workload.size)
            )
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            digests[key] = hashlib.sha256(body).hexdigest()
    return digests


def _upload_large(s3: Any, bucket: str, key: str, size: int, checksum: str | None) -> str:
    """In 64 MiB parts; `crc32`: with a full-object CRC-32, as the SDKs' transfer managers
    upload since 2025."""
    digest = hashlib.sha256()
    whole = {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}
    create = whole if checksum == "crc32" else {}
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    parts = []
    crc = 0
    for number, start in enumerate(range(0, size, 64 * MIB), start=1):
        body = os.urandom(min(64 * MIB, size - start))
        digest.update(body)
        crc = zlib.crc32(body, crc)
        sent = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body)
        parts.append({"PartNumber": number, "ETag": sent["ETag"]})
    complete = {**whole, "ChecksumCRC32": crc32_text(crc)} if checksum == "crc32" else {}
    complete.pop("ChecksumAlgorithm", None)
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}, **complete
    )
    return digest.hexdigest()


def run_contender(name: str, spec_path: Path, endpoint: str) -> dict[str, Any]:
    environment = {**os.environ, **TEST_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
    environment["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT}"  # this tree, not what is installed
    result = subprocess.run(
        [sys.executable, "-m", "bench.contenders", name, str(spec_path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-4000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def verify_encrypted(s3: Any, bucket: str, key: str, digests: dict[str, str]) -> None:
    """Read an encrypted archive back: 7-Zip checks every entry's authentication code and
    extracts it, each file's SHA-256 against its source."""
    by_leaf = {source.rsplit("/", 1)[-1]: digest for source, digest in digests.items()}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "archive.zip"
        s3.download_file(bucket, key, str(path))
        out = Path(scratch) / "out"
        subprocess.run(
            ["7z", "x", "-y", f"-p{PASSWORD}", f"-o{out}", str(path)],
            capture_output=True,
            check=True,
            timeout=600,
        )
        found = {}
        for file in out.rglob("*"):
            if file.is_file():
                found[file.name] = hashlib.sha256(file.read_bytes()).hexdigest()
        assert found == by_leaf, "the encrypted archive does not hold its sources"


def verify(s3: Any, bucket: str, key: str, digests: dict[str, str], zipped: bool) -> None:
    """Read the archive back: every entry's CRC (zipfile) and SHA-256 against its source."""
    total = sum(1 for _ in digests)
    with tempfile.TemporaryFile() as file:
        s3.download_fileobj(bucket, key, file)
        file.seek(0)
        if not zipped:
            return
        by_leaf = {source.rsplit("/", 1)[-1]: digest for source, digest in digests.items()}
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
            assert len(entries) == total, f"{len(entries)} entries, expected {total}"
            for info in entries:
                digest = hashlib.sha256()
                with archive.open(info) as entry:  # raises BadZipFile on a CRC mismatch
                    while block := entry.read(8 * MIB):
                        digest.update(block)
                assert digest.hexdigest() == by_leaf[info.filename], info.filename


@contextmanager
def endpoint_for(workload: Workload, direct: str) -> Iterator[Link]:
    """The endpoint a contender talks to: the proxy, shaped to the workload's profile (the
    local one only counts what goes through it)."""
    port = urlsplit(direct).port
    assert port is not None
    with network_proxy(port, workload.profile) as link:
        yield link


def run_workload(
    workload: Workload, direct: str, scratch: Path, rounds: int = 1
) -> dict[str, dict[str, Any]]:
    """Every contender `rounds` times, in turn (so drift in the endpoint falls on all of them);
    each contender's run of median wall time is its row, `runs_s` all its times. (On moto,
    which keeps every object read in memory here, a W4 takes about 10 GiB a round.)"""
    os.environ["AWS_ENDPOINT_URL"] = direct
    s3 = s3_client()
    for bucket in ("bench-sources", "bench-archives"):
        s3.create_bucket(Bucket=bucket)
    print(f"uploading {workload.label} ...", file=sys.stderr)
    digests = upload_sources(s3_client(workload.checksum), "bench-sources", workload)
    for key in digests:  # warm the endpoint, so no contender pays a first read
        s3.get_object(Bucket="bench-sources", Key=key, Range="bytes=0-0")["Body"].read()
    os.sync()  # moto spools large objects to disk: the first contender must not pay that
    spec = {
        "source_bucket": "bench-sources",
        "destination_bucket": "bench-archives",
        "keys": [[key, workload.size] for key in digests],
    }
    if "archiver aes" in workload.contenders:
        secrets = boto3.client("secretsmanager")
        name = f"bench/{uuid.uuid4().hex}"
        arn = secrets.create_secret(Name=name, SecretString=PASSWORD)["ARN"]
        spec.update(secret=name, secret_prefix=f"{arn.split(':secret:')[0]}:secret:bench/")
    spec_path = scratch / f"{workload.name}-{workload.profile.name}.json"
    spec_path.write_text(json.dumps(spec))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in workload.contenders}
    names = list(workload.contenders)
    # Rounds rotate, starting with the last contender (the copy limit, compared with nothing
    # but itself): the first run after the upload pays the endpoint's writeback, whoever it is.
    order = [
        names[(index - 1 - r) % len(names)] for r in range(rounds) for index in range(len(names))
    ]
    for name in order:
        with endpoint_for(workload, direct) as link:
            measured = run_contender(name, spec_path, link.url)
        measured.update(
            sent_mib=link.sent / MIB, read_mib=link.received / MIB, copied_mib=link.copied / MIB
        )
        if name == "archiver aes":
            verify_encrypted(s3, "bench-archives", measured["archive_key"], digests)
        else:
            zipped = name not in ("copy limit", "copy floor")
            verify(s3, "bench-archives", measured["archive_key"], digests, zipped)
        os.sync()  # the read-back's temporary file: written out before the next contender runs
        head = s3.head_object(Bucket="bench-archives", Key=measured["archive_key"])
        measured["archive_mib"] = head["ContentLength"] / MIB
        s3.delete_object(Bucket="bench-archives", Key=measured["archive_key"])
        runs[name].append(measured)
        print(
            f"{workload.label:<30} {name:<10} {measured['wall_s']:7.2f} s "
            f"{measured['cpu_s']:6.2f} CPU s {measured['peak_rss_mib']:6.0f} MiB  verified",
            file=sys.stderr,
        )
    measured_by_contender = {}
    for name, done in runs.items():
        ordered = sorted(done, key=lambda run: float(run["wall_s"]))
        measured_by_contender[name] = {
            **ordered[(len(ordered) - 1) // 2],
            "runs_s": [run["wall_s"] for run in done],
        }
    return measured_by_contender


@contextmanager
def emulator(kind: str) -> Iterator[str]:
    if kind == "localstack":
        with localstack_process() as url:
            yield url
    else:
        with moto_server("bench.moto_server") as url:
            yield url


def machine(kind: str) -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, endpoint: {ENDPOINTS[kind][0]}"
    )


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [
        "| workload | contender | seconds | MiB/s | CPU s | CPU s / GiB | peak RSS MiB "
        "| archive MiB | sent MiB | read MiB | copied MiB | × copy limit | × copy floor "
        "| × archiver | runs s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload_id, by_contender in results.items():
        workload = WORKLOADS[workload_id]
        megabytes = workload.count * workload.size / MIB
        limit = by_contender.get("copy limit", {}).get("wall_s")
        floor = by_contender.get("copy floor", {}).get("wall_s")
        plain = by_contender.get("archiver", {}).get("wall_s")
        for name, row in by_contender.items():
            ratio = f"{row['wall_s'] / limit:.2f}" if limit else "—"
            to_floor = f"{row['wall_s'] / floor:.2f}" if floor else "—"
            to_plain = f"{row['wall_s'] / plain:.2f}" if plain and name != "archiver" else "—"
            traffic = f"{row['sent_mib']:.1f} | {row['read_mib']:.1f} | {row['copied_mib']:.0f}"
            lines.append(
                f"| {workload.label} | {name} | {row['wall_s']:.2f} | "
                f"{megabytes / row['wall_s']:.0f} | {row['cpu_s']:.2f} | "
                f"{row['cpu_s'] / (megabytes / 1024):.1f} | {row['peak_rss_mib']:.0f} | "
                f"{row['archive_mib']:.0f} | {traffic} | {ratio} | {to_floor} | {to_plain} | "
                f"{' / '.join(f'{run:.2f}' for run in row['runs_s'])} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list")
    parser.add_argument("--endpoint", choices=list(ENDPOINTS), default="moto")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of every contender, in turn; median reported"
    )
    parser.add_argument(
        "--output", type=Path, help="default: docs/benchmarks.md, docs/benchmarks-localstack.md"
    )
    arguments = parser.parse_args()
    kind = arguments.endpoint
    output = arguments.output or ROOT / "docs" / (
        "benchmarks.md" if kind == "moto" else f"benchmarks-{kind}.md"
    )
    chosen = arguments.workloads.split(",")
    os.environ.update(TEST_CREDENTIALS)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for workload_id in chosen:
            # A fresh endpoint per workload: moto keeps everything in one process's memory.
            with emulator(kind) as direct:
                results[workload_id] = run_workload(
                    WORKLOADS[workload_id], direct, Path(scratch), arguments.rounds
                )
            # The read-back went through temporary files (GiB for W3): write them out now, or
            # the next workload's contenders pay for that writeback in wall and system time.
            os.sync()
    rendered = table(results)
    print(rendered)
    options = [f"--endpoint {kind}"] if kind != "moto" else []
    if arguments.workloads != ",".join(WORKLOADS):
        options.append(f"--workloads {arguments.workloads}")
    if arguments.rounds != 1:
        options.append(f"--rounds {arguments.rounds}")
    command = "make bench" + (f" BENCH_ARGS='{' '.join(options)}'" if options else "")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        "# Benchmarks\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} with `{command}` "
        "(`bench/run.py`).\n\n"
        f"Machine: {machine(kind)}.\n\n"
        "Each contender runs in a process of its own; seconds and CPU are the work's, peak RSS the "
        "process's. Every archive is read back and each entry's CRC-32 and SHA-256 checked "
        "against its source. Sources are random bytes (so `auto` stores them), but W1c's are "
        f"text (so it deflates them). The endpoint is {ENDPOINTS[kind][1]}\n\n"
        f"{rendered}\n" + _notes(),
        encoding="utf-8",
    )


def _notes() -> str:
    """Interpretation that does not change from run to run (targets, profiles): bench/notes.md."""
    notes = Path(__file__).with_name("notes.md")
    return "\n" + notes.read_text(encoding="utf-8") if notes.exists() else ""


if __name__ == "__main__":
    main()
