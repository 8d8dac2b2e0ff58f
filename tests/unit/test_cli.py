"""The commands refuse what they cannot use in one line, before reaching any endpoint, and
explain every option."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from archiver.app import cli
from archiver.app.cli import arguments, usage
from archiver.app.cli.submit import job_request


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_SOURCE_BUCKET", "source-images")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # The commands configure logging onto this test's captured stderr, closed after it.
    for module in (cli, usage):
        monkeypatch.setattr(module, "configure_logging", lambda *args, **kwargs: None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def test_a_missing_job_file_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run(capsys, "build", str(tmp_path / "nope.json"), "--output", "x.zip")
    assert code == 2
    assert err == f"archiver: the job file {tmp_path / 'nope.json'} does not exist\n"


@pytest.mark.parametrize("where", ["folder", "missing-folder"])
def test_an_unusable_output_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    job = tmp_path / "job.json"
    job.write_text('{"files": [{"source": "a.png"}]}')
    output = tmp_path if where == "folder" else tmp_path / "no" / "such" / "a.zip"
    code, err = run(capsys, "build", str(job), "--output", str(output))
    assert code == 2
    assert err.count("\n") == 1
    assert ("is a folder" if where == "folder" else "does not exist") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.json"]


def test_a_job_file_that_is_not_json_is_named_as_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    job = tmp_path / "job.json"
    job.write_text("files: [a.png]")
    code, err = run(capsys, "build", str(job), "--output", str(tmp_path / "a.zip"))
    assert code == 1
    assert err.startswith(f"archiver: the job file {job} is not JSON")
    assert "message body" not in err
    assert not (tmp_path / "a.zip").exists()


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [("{not json", "--metadata is not JSON"), ("[1, 2]", "--metadata must be a JSON object")],
)
def test_bad_metadata_names_the_option(
    capsys: pytest.CaptureFixture[str], metadata: str, reason: str
) -> None:
    code, err = run(capsys, "submit", "--source", "a.png", "--metadata", metadata)
    assert code == 2
    assert err.startswith(f"archiver: {reason}")
    assert err.count("\n") == 1


def test_the_dev_banner_says_where_things_are_and_what_to_paste() -> None:
    from archiver.app.cli.dev import DevResources, banner

    resources = DevResources(
        "source-images",
        "zip-storage",
        "http://127.0.0.1:4566/123456789012/input-queue",
        "http://127.0.0.1:4566/123456789012/input-queue-dlq",
        "http://127.0.0.1:4566/123456789012/output-queue",
    )
    text = banner("http://127.0.0.1:4566", resources)
    assert "DevResources(" not in text
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_ACCESS_KEY_ID=test" in text
    assert "aws s3 cp photo.png s3://source-images/example/photo.png" in text
    assert (
        "aws sqs send-message --queue-url http://127.0.0.1:4566/123456789012/input-queue "
        '--message-body \'{"files": [{"source": "example/photo.png"}]}\''
    ) in text
    assert "S3_* and SQS_*" in text
    assert "--message-group-id" not in text


def test_the_dev_banner_on_fifo_queues_sends_with_a_group_and_a_deduplication_id() -> None:
    from archiver.app.cli.dev import DevResources, banner

    queues = "http://127.0.0.1:4566/123456789012/input-queue"
    resources = DevResources(
        "source-images",
        "zip-storage",
        f"{queues}.fifo",
        f"{queues}-dlq.fifo",
        "http://127.0.0.1:4566/123456789012/output-queue.fifo",
    )
    text = banner("http://127.0.0.1:4566", resources)
    assert "--message-group-id job-1 --message-deduplication-id job-1" in text


def test_submit_takes_a_job_file_and_sets_its_name_and_metadata(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"files": [{"source": "a.png", "destination": "d"}]}))
    request = job_request(job, [], "Holiday 2026", '{"user": 7}')
    assert [(item.source, item.destination) for item in request.files] == [("a.png", "d")]
    assert request.archive.name == "Holiday 2026"
    assert request.metadata == {"user": 7}
    kept = job_request(job, [], None, None)
    assert kept.archive.name is None
    assert kept.metadata == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit"], "archiver: give a job file (archiver submit job.json) or at least one"),
        (["submit", "JOB", "--source", "a.png"], "archiver: give a job file or --source options"),
        (["submit", "MISSING"], "archiver: the job file MISSING does not exist"),
        (["submit", "NOT_JSON"], "archiver: the job file NOT_JSON is not JSON"),
        (["submit", "JOB", "--name", ""], "archiver: the job is not valid: archive.name:"),
        (["submit", "--source", "../up.png"], "archiver: the job is not valid: files.0.source:"),
    ],
)  # fmt: skip
def test_submit_refuses_what_it_cannot_send_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    paths = {"JOB": tmp_path / "job.json", "MISSING": tmp_path / "gone.json"}
    paths["NOT_JSON"] = tmp_path / "job.yaml"
    paths["JOB"].write_text('{"files": [{"source": "a.png"}]}')
    paths["NOT_JSON"].write_text("files: [a.png]")
    argv = [str(paths.get(word, word)) for word in argv]
    message = message.replace("MISSING", str(paths["MISSING"]))
    message = message.replace("NOT_JSON", str(paths["NOT_JSON"]))
    code, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith(message), err
    assert err.count("\n") == 1


def _commands() -> dict[str, argparse.ArgumentParser]:
    [choices] = [
        action.choices
        for action in arguments.parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    return dict(choices)


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_option_is_explained_in_plain_text(command: str) -> None:
    parser = _commands()[command]
    unexplained = [action.dest for action in parser._actions if not action.help]
    assert unexplained == []
    assert parser.description
    assert "`" not in parser.format_help()


def test_the_top_level_help_lists_every_command_in_plain_text() -> None:
    text = arguments.parser().format_help()
    assert "`" not in text
    assert all(command in text for command in _commands())


def test_worker_help_lists_the_variables_it_needs() -> None:
    text = _commands()["worker"].format_help()
    required = text[text.index("required variables:") : text.index("often set:")]
    named = [line.split()[0] for line in required.splitlines() if line.startswith("  S")]
    assert named == list(cli.WORKER_VARIABLES)
    assert "ARCHIVE_BASE_URL" in text
