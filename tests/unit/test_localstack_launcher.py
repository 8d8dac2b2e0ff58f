"""The suite's LocalStack launcher (tests/localstack.py), driven with a stand-in executable that
plays LocalStack's part: a health endpoint, a port clash, a crash, a child of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from tests import localstack
from tests.checksums import crc64nvme, crc64nvme_text
from tests.support import wait_until

STAND_IN = textwrap.dedent(
    """
    import http.server, os, pathlib, subprocess, sys, time
    state = pathlib.Path(os.environ["STAND_IN_STATE"])
    state.mkdir(exist_ok=True)
    starts = len(list(state.glob("start-*")))
    (state / f"start-{starts}").write_text(str(os.getpid()))
    mode = os.environ["STAND_IN_MODE"]
    if mode == "crash":
        print("Traceback: something broke at start-up", flush=True)
        sys.exit(3)
    if mode == "clash" and starts == 0:
        print("OSError: [Errno 98] Address already in use", flush=True)
        sys.exit(1)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (state / "child").write_text(str(child.pid))
    host, port = os.environ["GATEWAY_LISTEN"].split(":")

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    http.server.HTTPServer((host, int(port)), Health).serve_forever()
    """
)


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the stand-in records its starts; LOCALSTACK_PYTHON runs it."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    executable = tmp_path / "python"
    executable.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    executable.chmod(0o755)
    state = tmp_path / "state"
    monkeypatch.setenv("LOCALSTACK_PYTHON", str(executable))
    monkeypatch.setenv("STAND_IN_STATE", str(state))
    monkeypatch.setenv("STAND_IN_MODE", "serve")
    return state


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0: it has exited, only its parent has not reaped it yet.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def pids(state: Path) -> list[int]:
    return [int(path.read_text()) for path in sorted(state.iterdir())]


def test_it_answers_then_leaves_no_process_behind(stand_in: Path) -> None:
    with localstack.localstack_process() as url:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=2) as response:
            assert response.status == 200
        running = pids(stand_in)
        assert len(running) == 2
        assert all(alive(pid) for pid in running)
    assert not any(alive(pid) for pid in running)


def test_an_interrupted_run_stops_it_too(stand_in: Path) -> None:
    with pytest.raises(KeyboardInterrupt), localstack.localstack_process():
        raise KeyboardInterrupt
    assert not any(alive(pid) for pid in pids(stand_in))


def test_a_port_taken_before_it_binds_is_retried_on_another(
    stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAND_IN_MODE", "clash")
    with localstack.localstack_process() as url:
        assert url.startswith("http://127.0.0.1:")
    assert len(list(stand_in.glob("start-*"))) == 2


def test_a_failed_start_names_its_log_and_how_to_rerun_it(
    stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAND_IN_MODE", "crash")
    with pytest.raises(localstack.LocalStackError) as failed, localstack.localstack_process():
        pass
    message = str(failed.value)
    assert "exited with 3" in message
    log = Path(message.split("its log: ", 1)[1].split(";", 1)[0])
    assert "something broke" in log.read_text()
    assert "-m localstack.runtime.main" in message
    assert "GATEWAY_LISTEN=127.0.0.1:" in message


def test_a_missing_environment_says_how_to_make_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALSTACK_PYTHON", str(tmp_path / "nothing" / "bin" / "python"))
    missing = pytest.raises(localstack.LocalStackError, match="make localstack")
    with missing, localstack.localstack_process():
        pass


def test_it_dies_with_a_test_run_that_is_killed(stand_in: Path) -> None:
    """SIGKILL runs no clean-up: the parent-death signal stops LocalStack all the same."""
    runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from tests import localstack\n"
            "with localstack.localstack_process(): time.sleep(600)",
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        wait_until((stand_in / "child").exists, timeout=20)
        [server] = [int(path.read_text()) for path in stand_in.glob("start-*")]
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        wait_until(lambda: not alive(server), timeout=10)
    finally:
        runner.kill()
        runner.wait()
        child = int((stand_in / "child").read_text())
        if alive(child):  # the stand-in's own child has no parent-death signal of its own
            os.kill(child, signal.SIGKILL)


def test_crc64nvme_is_the_catalogues() -> None:
    assert crc64nvme(b"123456789") == 0xAE8B14860A799888  # CRC-64/NVME's check value
    assert crc64nvme_text(b"") == "AAAAAAAAAAA="
