"""The secret store's contract, on the fake and on Secrets Manager (LocalStack)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from archiver.adapters.memory_secrets import MemorySecretStore
from archiver.adapters.secrets import SecretsManagerStore
from archiver.domain.errors import ErrorCode, SecretUnreadable
from archiver.domain.ports import SecretStore
from tests.conftest import unique
from tests.contract.conftest import IMPLEMENTATIONS

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Make a secret (a SecretString, or bytes: a SecretBinary) by name: its ARN.
Make = Callable[[str, str | bytes], str]


@pytest.fixture(params=IMPLEMENTATIONS)
def secrets(request: pytest.FixtureRequest) -> tuple[SecretStore, Make]:
    if request.param == "memory":
        memory = MemorySecretStore()
        return memory, memory.add
    client: SecretsManagerClient = request.getfixturevalue("secretsmanager")

    def make(name: str, value: str | bytes) -> str:
        if isinstance(value, str):
            return client.create_secret(Name=name, SecretString=value)["ARN"]
        return client.create_secret(Name=name, SecretBinary=value)["ARN"]

    return SecretsManagerStore(client), make


def test_a_secret_reads_alike_by_name_and_by_arn(secrets: tuple[SecretStore, Make]) -> None:
    store, make = secrets
    name = unique("archiver/contract")
    arn = make(name, "pässword")
    for secret in (name, arn):
        value = store.read(secret)
        assert value.arn == arn
        assert value.text == "pässword"
    assert arn.startswith("arn:")
    assert arn.split(":secret:")[1].startswith(f"{name}-")  # the suffix Secrets Manager adds
    assert "pässword" not in repr(store.read(name))


def test_a_binary_secret_has_no_text(secrets: tuple[SecretStore, Make]) -> None:
    store, make = secrets
    name = unique("archiver/binary")
    make(name, b"\x00\x01")
    assert store.read(name).text is None


def test_an_unknown_secret_is_unreadable_naming_it(secrets: tuple[SecretStore, Make]) -> None:
    store, _ = secrets
    name = unique("archiver/missing")
    with pytest.raises(SecretUnreadable) as raised:
        store.read(name)
    assert raised.value.code is ErrorCode.ENCRYPTION_SECRET_UNREADABLE
    assert name in raised.value.message
    assert "no such secret" in raised.value.message
