"""`archiver build` refuses what it cannot use in one line, before reaching any endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver.app import cli


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_SOURCE_BUCKET", "source-images")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # The commands configure logging onto this test's captured stderr, closed after it.
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)


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
