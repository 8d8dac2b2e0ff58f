import pytest

from archiver.app.composition.settings import load_settings
from archiver.domain.errors import ConfigurationError
from archiver.domain.plan import CompressionMode

WORKER = ("SQS_SOURCE_QUEUE", "SQS_DESTINATION_QUEUE", "S3_SOURCE_BUCKET", "S3_DESTINATION_BUCKET")
ALL_VARIABLES = (
    *WORKER,
    "ARCHIVE_BASE_URL",
    "S3_FILE_PREFIX",
    "S3_ALLOWED_SOURCE_BUCKETS",
    "APP_DEBUG",
    "DEV_MODE",
    "MAX_FILES",
    "ARCHIVE_URL_TTL",
    "ARCHIVE_COMPRESSION",
    "MEMORY_BUDGET_MB",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_documented_table(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in WORKER:
        monkeypatch.setenv(name, name.lower().replace("_", "-"))
    settings = load_settings(WORKER)
    assert settings.s3_file_prefix == "download"
    assert settings.app_debug is False
    assert settings.dev_mode is False
    assert settings.archive_base_url is None
    assert settings.max_files == 100_000
    assert settings.archive_url_ttl == 604_800
    assert settings.archive_compression is CompressionMode.AUTO
    assert settings.s3_allowed_source_buckets == frozenset()
    assert settings.metrics_enabled is False  # not on ECS


def test_metrics_default_to_on_only_on_ecs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in WORKER:
        monkeypatch.setenv(name, name.lower().replace("_", "-"))
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc")
    assert load_settings(WORKER).metrics_enabled is True
    monkeypatch.setenv("METRICS_ENABLED", "0")
    assert load_settings(WORKER).metrics_enabled is False


def test_every_missing_and_malformed_variable_is_named_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3_SOURCE_BUCKET", "src")
    monkeypatch.setenv("MAX_FILES", "lots")
    monkeypatch.setenv("ARCHIVE_BASE_URL", "cdn.example.com")
    monkeypatch.setenv("APP_DEBUG", "maybe")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(WORKER)
    message = str(caught.value)
    for fragment in (
        "MAX_FILES",
        "ARCHIVE_BASE_URL: Value error, must start with https://",
        "APP_DEBUG",
        "SQS_SOURCE_QUEUE is required",
        "SQS_DESTINATION_QUEUE is required",
        "S3_DESTINATION_BUCKET is required",
    ):
        assert fragment in message
    assert "S3_SOURCE_BUCKET" not in message


def test_missing_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQS_SOURCE_QUEUE", "q")
    with pytest.raises(ConfigurationError, match="SQS_DESTINATION_QUEUE is required"):
        load_settings(WORKER)


def test_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ALLOWED_SOURCE_BUCKETS", " a-bucket , b-bucket,,")
    monkeypatch.setenv("APP_DEBUG", "1")
    monkeypatch.setenv("DEV_MODE", "true")
    monkeypatch.setenv("ARCHIVE_COMPRESSION", "stored")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("S3_FILE_PREFIX", "export")
    settings = load_settings()
    assert settings.s3_allowed_source_buckets == frozenset({"a-bucket", "b-bucket"})
    assert settings.app_debug is True
    assert settings.dev_mode is True
    assert settings.archive_compression is CompressionMode.STORED
    assert settings.aws_region == "eu-west-3"
    assert settings.policy().file_prefix == "export"


def test_aws_region_wins_over_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert load_settings().aws_region == "us-west-2"


def test_presigned_lifetime_is_capped_at_the_sigv4_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVE_URL_TTL", "604801")
    with pytest.raises(ConfigurationError, match="ARCHIVE_URL_TTL"):
        load_settings()


def test_a_budget_too_small_for_its_jobs_stops_the_start_naming_what_it_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three jobs in 128 MiB get 42 MiB each; one job with 8 MiB parts needs 56 (one part in
    flight, one being filled, three held, two 8 MiB ranges)."""
    monkeypatch.setenv("WORKER_CONCURRENCY", "3")
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    assert "WORKER_CONCURRENCY=3 jobs 42 MiB" in str(refused.value)
    assert "set it to 168 or more" in str(refused.value)
    monkeypatch.setenv("MEMORY_BUDGET_MB", "168")
    assert load_settings().worker_concurrency == 3
