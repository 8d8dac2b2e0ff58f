"""The composition root: one container, configured from Settings, typed by port."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from dependency_injector import containers, providers

from archiver.adapters.s3 import S3ObjectStore
from archiver.adapters.secrets import SecretsManagerStore
from archiver.adapters.sqs import SqsNotifier, SqsQueue
from archiver.app.composition.allocator import tune_allocator
from archiver.app.composition.settings import Settings
from archiver.app.engine.aes import start_key_threads
from archiver.app.jobs.answer import Jobs
from archiver.app.jobs.service import ArchiveService
from archiver.app.worker.loop import Ops, Worker
from archiver.app.worker.ops import Liveness, Metrics, ScaleInProtection
from archiver.app.worker.progress import ProgressTracker
from archiver.domain.errors import ConfigurationError
from archiver.domain.ports import Notifier, ObjectStore, Queue, SecretStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


def _session(settings: Settings) -> boto3.session.Session:
    session = boto3.session.Session(region_name=settings.aws_region)
    if session.region_name is None:
        raise ConfigurationError("AWS_REGION (or AWS_DEFAULT_REGION) is required")
    return session


def _s3_client(
    session: boto3.session.Session, settings: Settings, endpoint_url: str | None = None
) -> S3Client:
    # boto3 reads AWS_ENDPOINT_URL itself; a custom endpoint wants path-style addressing.
    config = Config(
        retries={"mode": settings.aws_retry_mode, "total_max_attempts": settings.aws_max_attempts},
        max_pool_connections=settings.worker_concurrency
        * (
            settings.download_concurrency
            + settings.upload_concurrency
            + settings.copy_concurrency
            + 2
        ),
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url or settings.aws_endpoint_url else "auto"},
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
    )
    return session.client("s3", config=config, endpoint_url=endpoint_url)


def _sqs_client(session: boto3.session.Session, settings: Settings) -> SQSClient:
    config = Config(
        retries={"mode": settings.aws_retry_mode, "total_max_attempts": settings.aws_max_attempts},
        connect_timeout=10,
        read_timeout=settings.sqs_wait_time_seconds + 20,  # a long poll is not a stalled read
    )
    return session.client("sqs", config=config)


def _secrets_client(session: boto3.session.Session, settings: Settings) -> SecretsManagerClient:
    config = Config(
        retries={"mode": settings.aws_retry_mode, "total_max_attempts": settings.aws_max_attempts},
        connect_timeout=10,
        read_timeout=30,
    )
    return session.client("secretsmanager", config=config)


def _secret_store(session: boto3.session.Session, settings: Settings) -> SecretStore:
    return SecretsManagerStore(_secrets_client(session, settings))


def _required(value: str | None, name: str) -> str:
    if not value:
        raise ConfigurationError(f"{name} is required")
    return value


def _object_store(
    client: S3Client, session: boto3.session.Session, settings: Settings
) -> ObjectStore:
    signer = None
    if settings.presign_endpoint_url:
        signer = _s3_client(session, settings, settings.presign_endpoint_url.rstrip("/"))
    return S3ObjectStore(client, signer=signer, requester_pays=settings.s3_requester_pays)


def _source_queue(client: SQSClient, settings: Settings) -> Queue:
    return SqsQueue(client, _required(settings.sqs_source_queue, "SQS_SOURCE_QUEUE"))


def _notifier(client: SQSClient, settings: Settings) -> Notifier:
    return SqsNotifier(client, _required(settings.sqs_destination_queue, "SQS_DESTINATION_QUEUE"))


def _service(store: ObjectStore, secrets: SecretStore, settings: Settings) -> ArchiveService:
    return ArchiveService(
        store, secrets, settings.policy(), settings.build_options(), settings.link_options()
    )


def _jobs(service: ArchiveService, notifier: Notifier, settings: Settings) -> Jobs:
    return Jobs(
        service,
        delete_offloaded=settings.delete_offloaded_payloads,
        message_bytes=notifier.max_bytes,
    )


def _progress(notifier: Notifier, liveness: Liveness, settings: Settings) -> ProgressTracker:
    return ProgressTracker(
        settings.progress_log_seconds, settings.progress_notify_seconds, notifier, liveness.beat
    )


class Container(containers.DeclarativeContainer):
    """Tests override the port providers: `container.object_store.override(MemoryObjectStore())`."""

    settings = providers.Dependency(instance_of=Settings)
    session = providers.Singleton(_session, settings)
    s3_client = providers.Singleton(_s3_client, session, settings)
    sqs_client = providers.Singleton(_sqs_client, session, settings)

    object_store = providers.Singleton(_object_store, s3_client, session, settings)
    source_queue = providers.Singleton(_source_queue, sqs_client, settings)
    notifier = providers.Singleton(_notifier, sqs_client, settings)
    secret_store = providers.Singleton(_secret_store, session, settings)

    service = providers.Singleton(_service, object_store, secret_store, settings)
    jobs = providers.Singleton(_jobs, service, notifier, settings)
    liveness = providers.Singleton(Liveness, settings.provided.health_file)
    ops = providers.Singleton(
        Ops,
        liveness=liveness,
        metrics=providers.Singleton(Metrics, enabled=settings.provided.metrics_enabled),
        protection=providers.Singleton(ScaleInProtection, settings.provided.ecs_agent_uri),
    )
    worker = providers.Factory(
        Worker,
        queue=source_queue,
        notifier=notifier,
        jobs=jobs,
        options=settings.provided.worker_options.call(),
        progress=providers.Singleton(_progress, notifier, liveness, settings),
        ops=ops,
    )


def build_container(settings: Settings) -> Container:
    tune_allocator()  # start-up: before the first large buffer is allocated
    start_key_threads()  # and before the first CRC-32 (app/engine/aes.py says why)
    return Container(settings=settings)
