"""`make deploy` (deploy/deploy.sh) as far as it can run without AWS: the commands it would run,
printed first, and the parameters it gives the template."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_deploy import TEMPLATE, CloudFormationLoader

SCRIPT = Path(__file__).parents[2] / "deploy" / "deploy.sh"
REQUIRED = {
    "AWS_REGION": "eu-west-3",
    "VPC_ID": "vpc-0abc",
    "SUBNET_IDS": "subnet-1,subnet-2",
    "SOURCE_BUCKET": "my-photos",
}


def deploy(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """The script with only these variables, and an `aws` that fails if it is ever called."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "aws").write_text("#!/bin/sh\necho 'aws: no credentials' >&2\nexit 255\n")
    (fake / "aws").chmod(0o755)
    environment = {"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path), **variables}
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def steps(output: str) -> list[list[str]]:
    lines = [line.strip() for line in output.splitlines() if line.startswith("  ")]
    return [shlex.split(line.split(". ", 1)[1]) for line in lines]


@pytest.mark.parametrize("builder", ["docker", "podman"])
def test_the_plan_is_printed_in_full_and_a_dry_run_stops_there(
    tmp_path: Path, builder: str
) -> None:
    result = deploy(
        tmp_path,
        **REQUIRED,
        ACCOUNT="111122223333",
        VERSION="v1.2.3",
        BUILDER=builder,
        DRY_RUN="1",
        PARAMETERS="MaxTasks=20 ExistingSourceQueueUrl=https://sqs.eu-west-3.amazonaws.com/1/q",
    )
    assert result.returncode == 0, result.stderr
    image = "111122223333.dkr.ecr.eu-west-3.amazonaws.com/archiver:v1.2.3"
    assert result.stdout.startswith(f"deploy: {image} to stack archiver in eu-west-3")
    repository, build, login, push, stack, outputs = steps(result.stdout)
    assert repository[:3] == ["aws", "ecr", "describe-repositories"]
    assert "create-repository" in repository
    if builder == "docker":
        assert build == ["docker", "build", "--platform", "linux/amd64", "--tag", image, "."]
    else:
        assert build == ["bash", "docker/podman/build.sh", image]
    assert login[-2:] == ["--password-stdin", "111122223333.dkr.ecr.eu-west-3.amazonaws.com"]
    assert push == [builder, "push", image]
    assert stack[:3] == ["aws", "cloudformation", "deploy"]
    assert outputs[:3] == ["aws", "cloudformation", "describe-stacks"]

    overrides = dict(
        item.split("=", 1) for item in stack[stack.index("--parameter-overrides") + 1 :]
    )
    template = yaml.load(TEMPLATE.read_text(), Loader=CloudFormationLoader)
    assert set(overrides) <= set(template["Parameters"])
    assert overrides["ImageUri"] == image
    assert overrides["SubnetIds"] == "subnet-1,subnet-2"
    assert overrides["MaxTasks"] == "20"
    required = {name for name, spec in template["Parameters"].items() if "Default" not in spec}
    assert required <= set(overrides)


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_variable_is_one_line_and_exit_2(tmp_path: Path, missing: str) -> None:
    variables = {name: value for name, value in REQUIRED.items() if name != missing}
    result = deploy(tmp_path, **variables, ACCOUNT="1", BUILDER="docker", DRY_RUN="1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"deploy: {missing}")
    assert result.stderr.count("\n") == 1


def test_without_an_account_it_asks_aws_and_says_when_it_cannot(tmp_path: Path) -> None:
    result = deploy(tmp_path, **REQUIRED, BUILDER="docker", DRY_RUN="1")
    assert result.returncode == 2
    assert "deploy: cannot reach AWS to learn the account" in result.stderr
    assert "set ACCOUNT" in result.stderr


def test_make_deploy_runs_the_script() -> None:
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert "\ndeploy:\n\tbash deploy/deploy.sh\n" in makefile
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize(
    "local", [{"AWS_ENDPOINT_URL": "http://localhost:4566"}, {"AWS_ACCESS_KEY_ID": "test"}]
)
def test_a_shell_pointed_at_the_local_endpoint_is_refused(
    tmp_path: Path, local: dict[str, str]
) -> None:
    """direnv loads the project's .envrc in this folder: deploy must not use it."""
    result = deploy(tmp_path, **REQUIRED, **local, ACCOUNT="1", BUILDER="docker", DRY_RUN="1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("deploy: this shell points at a local endpoint")
    assert "unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY" in result.stderr
