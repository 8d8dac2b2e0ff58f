"""The CloudFormation template keeps least privilege and the settings' variable names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from archiver.app.cli import WORKER_VARIABLES
from archiver.app.composition.settings import Settings
from archiver.app.worker.loop import POLL_SLACK_SECONDS
from archiver.app.worker.ops import NAMESPACE, emf_document

TEMPLATE = Path(__file__).parents[2] / "deploy" / "cloudformation" / "archiver.yaml"
# The only wildcards the APIs need: object keys in a bucket, task ids in a cluster.
ALLOWED_WILDCARD = re.compile(
    r"(:s3:::[^*/]+/(archiver-staging/)?\*|:s3:::[^*/]+/\*/checkpoint\.(json|\*\.tail|\*\.sent)"
    r"|:task/[^*/]+/\*|:secretsmanager:[^*]+:secret:[^*]*\*)$"
)


class CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !Sub, !GetAtt ... as {"Fn::Name": value} instead of failing on the tags."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CloudFormationLoader)
    return loaded


PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-3",
    "AWS::AccountId": "111122223333",
    "AWS::StackName": "archiver",
    "SourceBucketName": "photos",
    "OtherSourceBucketNames": ["shared-a", "shared-b"],
    "SourceKmsKeyArns": [
        "arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ],
    "SourceKmsRegions": ["eu-west-1", "us-east-1"],
    "ArchiveKmsKeyArn": (
        "arn:aws:kms:eu-west-3:111122223333:key/9876abcd-12ab-34cd-56ef-1234567890ab"
    ),
    "EncryptionSecretPrefixes": [
        "arn:aws:secretsmanager:eu-west-3:111122223333:secret:archiver/",
        "arn:aws:secretsmanager:eu-west-3:111122223333:secret:shared/zip-",
    ],
    "EncryptionSecretKmsKeyArns": [
        "arn:aws:kms:eu-west-3:111122223333:key/5555abcd-12ab-34cd-56ef-1234567890ab"
    ],
    "ArchiveBucket": "archiver-archivebucket-x",
    "ArchiveBucket.Arn": "arn:aws:s3:::archiver-archivebucket-x",
    "SourceQueue": "https://sqs.eu-west-3.amazonaws.com/111122223333/archiver-jobs",
    "SourceQueue.Arn": "arn:aws:sqs:eu-west-3:111122223333:archiver-jobs",
    "SourceQueue.QueueName": "archiver-jobs",
    "DeadLetterQueue.QueueName": "archiver-jobs-dlq",
    "DestinationQueue": "https://sqs.eu-west-3.amazonaws.com/111122223333/archiver-notifications",
    "DestinationQueue.Arn": "arn:aws:sqs:eu-west-3:111122223333:archiver-notifications",
    "ExistingSourceQueueUrl": "https://sqs.eu-west-3.amazonaws.com/444455556666/old-jobs",
    "ExistingDeadLetterQueueName": "old-jobs-dlq",
    "ExistingDestinationQueueUrl": "https://sqs.eu-west-3.amazonaws.com/444455556666/old-answers",
    "ExistingArchiveBucketName": "old-zips",
    "Cluster": "archiver",
    "Service.Name": "archiver",
    "BacklogPerTask": 10,
    "OldestJobAgeSeconds": 900,
}
# Every stack creates its queues and bucket, unless told to use existing ones.
CREATED = {"CreateSourceQueue": True, "CreateDestinationQueue": True, "CreateArchiveBucket": True}
EXISTING = dict.fromkeys(CREATED, False)
# Conditions a test does not name hold (every optional part present).
DEFAULT_CONDITIONS = {
    **CREATED,
    "WithDeadLetterQueue": True,
    "WithOtherSources": True,
    "WithSourceKeys": True,
    "WithSourceRegions": True,
    "WithArchiveKey": True,
    "WithEncryptionSecrets": True,
    "WithEncryptionSecretKeys": True,
}


def evaluate(value: Any, conditions: dict[str, bool], names: dict[str, Any] | None = None) -> Any:
    """Just enough of CloudFormation's intrinsics to read the policy's concrete ARNs."""
    names = {**PARAMETERS, **(names or {})}
    if isinstance(value, list):
        return [evaluate(item, conditions, names) for item in value]
    if not isinstance(value, dict) or len(value) != 1:
        return value
    if not next(iter(value)).startswith(("Fn::", "Ref")):
        return value
    [(function, argument)] = value.items()
    if function == "Ref":
        return names[argument]
    if function == "Fn::GetAtt":
        return names[argument if isinstance(argument, str) else ".".join(argument)]
    if function == "Fn::Sub":
        text, local = (argument, {}) if isinstance(argument, str) else argument
        local = {key: evaluate(item, conditions, names) for key, item in local.items()}
        return re.sub(r"\$\{([^}]+)\}", lambda m: str({**names, **local}[m.group(1)]), text)
    if function == "Fn::Join":
        delimiter, items = argument
        return delimiter.join(evaluate(items, conditions, names))
    if function == "Fn::Split":
        delimiter, text = argument
        return evaluate(text, conditions, names).split(delimiter)
    if function == "Fn::Select":
        index, items = argument
        return evaluate(items, conditions, names)[int(index)]
    if function == "Fn::If":
        condition, when_true, when_false = argument
        holds = {**DEFAULT_CONDITIONS, **conditions}[condition]
        return evaluate(when_true if holds else when_false, conditions, names)
    raise AssertionError(f"unsupported intrinsic {function}")


def task_role_statements(
    template: dict[str, Any], conditions: dict[str, bool] | None = None
) -> list[dict[str, Any]]:
    """The statements, a conditional one kept when its condition holds (all hold by default)."""
    role = template["Resources"]["TaskRole"]["Properties"]
    statements = []
    for policy in role["Policies"]:
        for written in policy["PolicyDocument"]["Statement"]:
            statement = written
            if "Fn::If" in written:
                condition, when_true, when_false = written["Fn::If"]
                holds = (conditions or {}).get(condition, True)
                statement = when_true if holds else when_false
            if statement != {"Ref": "AWS::NoValue"}:
                statements.append(statement)
    return statements


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_task_role_has_no_wildcard_actions(template: dict[str, Any]) -> None:
    statements = task_role_statements(template)
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in actions_of(statement)), statement["Sid"]
        assert "NotAction" not in statement
        assert "NotResource" not in statement


@pytest.mark.parametrize("other_sources", [True, False])
def test_task_role_resources_are_wildcard_free_but_for_keys_and_task_ids(
    template: dict[str, Any], other_sources: bool
) -> None:
    conditions = {"WithOtherSources": other_sources}
    resources: dict[str, list[str]] = {}
    for statement in task_role_statements(template, conditions):
        arns = evaluate(statement["Resource"], conditions)
        resources[statement["Sid"]] = arns if isinstance(arns, list) else [arns]
        for arn in resources[statement["Sid"]]:
            assert arn.startswith("arn:aws:"), arn
            if "*" in arn:
                assert ALLOWED_WILDCARD.search(arn), f"{statement['Sid']}: {arn}"
    expected_sources = ["arn:aws:s3:::photos/*"]
    if other_sources:
        expected_sources += ["arn:aws:s3:::shared-a/*", "arn:aws:s3:::shared-b/*"]
    assert resources["ReadSources"] == expected_sources
    assert resources["ListSources"] == [arn.removesuffix("/*") for arn in expected_sources]
    assert resources["DecryptSources"] == PARAMETERS["SourceKmsKeyArns"]
    assert resources["EncryptArchives"] == [PARAMETERS["ArchiveKmsKeyArn"]]
    assert resources["ReadEncryptionSecrets"] == [
        f"{prefix}*" for prefix in PARAMETERS["EncryptionSecretPrefixes"]
    ]
    assert resources["DecryptEncryptionSecrets"] == PARAMETERS["EncryptionSecretKmsKeyArns"]
    # Server-side copy's staging objects: deleted, listed, only under their own prefix.
    [archive_bucket] = resources["FindStagingObjectsLeftByKilledWorkers"]
    assert resources["RemoveStagingObjects"] == [f"{archive_bucket}/archiver-staging/*"]
    # A checkpoint's objects beside an archive, deleted once the job is answered.
    assert resources["RemoveCheckpoints"] == [
        f"{archive_bucket}/*/checkpoint.json",
        f"{archive_bucket}/*/checkpoint.*.tail",
        f"{archive_bucket}/*/checkpoint.*.sent",
    ]


@pytest.mark.parametrize("secrets", [True, False])
@pytest.mark.parametrize("archive_key", [True, False])
@pytest.mark.parametrize("source_keys", [True, False])
def test_task_role_grants_exactly_what_the_worker_calls(
    template: dict[str, Any], source_keys: bool, archive_key: bool, secrets: bool
) -> None:
    statements = task_role_statements(
        template,
        {
            "WithSourceKeys": source_keys,
            "WithArchiveKey": archive_key,
            "WithEncryptionSecrets": secrets,
            "WithEncryptionSecretKeys": secrets,
        },
    )
    granted = {action for statement in statements for action in actions_of(statement)}
    kms = {"kms:Decrypt"} if source_keys or secrets else set()
    kms |= {"kms:GenerateDataKey", "kms:Decrypt"} if archive_key else set()
    kms |= {"secretsmanager:GetSecretValue"} if secrets else set()
    assert granted - kms == {
        "s3:GetObject",
        "s3:GetObjectAttributes",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListBucketMultipartUploads",
        "s3:ListMultipartUploadParts",  # a checkpointed upload, resumed
        "s3:DeleteObject",  # staging objects and checkpoints only: see the test below
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "ecs:UpdateTaskProtection",
        "ecs:GetTaskProtection",
    }
    assert kms <= granted
    for statement in statements:
        if statement["Sid"] == "EncryptArchives":  # only through S3 in the task's region
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert evaluate(via, {}) == "s3.eu-west-3.amazonaws.com"
        if statement["Sid"] == "DecryptEncryptionSecrets":  # only through Secrets Manager
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert evaluate(via, {}) == "secretsmanager.eu-west-3.amazonaws.com"


@pytest.mark.parametrize("other_regions", [True, False])
def test_source_keys_decrypt_only_through_s3_in_the_regions_named(
    template: dict[str, Any], other_regions: bool
) -> None:
    conditions = {"WithSourceRegions": other_regions}
    [decrypt] = [s for s in task_role_statements(template) if s["Sid"] == "DecryptSources"]
    via = evaluate(decrypt["Condition"]["StringEquals"]["kms:ViaService"], conditions)
    if other_regions:
        assert via == [
            "s3.eu-west-3.amazonaws.com",
            "s3.eu-west-1.amazonaws.com",
            "s3.us-east-1.amazonaws.com",
        ]
    else:
        assert via == "s3.eu-west-3.amazonaws.com"


@pytest.mark.parametrize("archive_key", [True, False])
def test_a_created_bucket_uses_the_archive_key_when_one_is_given(
    template: dict[str, Any], archive_key: bool
) -> None:
    bucket = template["Resources"]["ArchiveBucket"]["Properties"]
    [rule] = evaluate(
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"],
        {"WithArchiveKey": archive_key},
    )
    default = rule["ServerSideEncryptionByDefault"]
    if archive_key:
        assert default == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Ref": "ArchiveKmsKeyArn"},
        }
        assert rule["BucketKeyEnabled"] is True
    else:
        assert default == {"SSEAlgorithm": "AES256"}


def test_container_environment_matches_the_settings(template: dict[str, Any]) -> None:
    [container] = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    names = {variable["Name"] for variable in container["Environment"]}
    known = {name.upper() for name in Settings.model_fields}
    assert names <= known, names - known
    assert set(WORKER_VARIABLES) <= names
    assert container["StopTimeout"] == 120
    assert container["HealthCheck"]["Command"] == ["CMD", "archiver", "healthcheck"]
    environment = {variable["Name"]: variable["Value"] for variable in container["Environment"]}
    grace = environment["SHUTDOWN_GRACE_SECONDS"]
    assert float(grace) < container["StopTimeout"]
    wait = int(environment.get("SQS_WAIT_TIME_SECONDS", Settings().sqs_wait_time_seconds))
    assert wait + POLL_SLACK_SECONDS + 5 < container["StopTimeout"]  # a stop finishes its poll


def test_bucket_and_queues_are_locked_down_and_clean_up(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    bucket = resources["ArchiveBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7  # a checkpointed job's upload outlives a day
    }
    assert "ExpirationInDays" in rules["expire-archives"]
    source = resources["SourceQueue"]["Properties"]
    assert source["MaximumMessageSize"] == 1024 * 1024
    assert "deadLetterTargetArn" in source["RedrivePolicy"]
    scaling = resources["BacklogPerTaskScaling"]["Properties"]
    metrics = scaling["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    expression = next(m for m in metrics["Metrics"] if m.get("ReturnData"))["Expression"]
    assert "visible / running" in expression
    assert resources["ScalableTarget"]["Properties"]["MinCapacity"] == {"Ref": "MinTasks"}


@pytest.mark.parametrize("resources", ["created", "existing"])
def test_existing_queues_and_bucket_replace_the_created_ones(
    template: dict[str, Any], resources: str
) -> None:
    """A team migrating from the old system keeps its queues (and may keep its bucket)."""
    conditions = CREATED if resources == "created" else EXISTING
    granted = {
        statement["Sid"]: evaluate(statement["Resource"], conditions)
        for statement in task_role_statements(template, conditions)
    }
    [container] = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    where = ("SQS_SOURCE_QUEUE", "SQS_DESTINATION_QUEUE", "S3_DESTINATION_BUCKET")
    environment = {
        variable["Name"]: evaluate(variable["Value"], conditions)
        for variable in container["Environment"]
        if variable["Name"] in where
    }
    if resources == "created":
        queues = ("archiver-jobs", "archiver-notifications", "111122223333")
        bucket = "archiver-archivebucket-x"
    else:
        queues = ("old-jobs", "old-answers", "444455556666")
        bucket = "old-zips"
    jobs, answers, account = queues
    assert granted["ConsumeJobs"] == f"arn:aws:sqs:eu-west-3:{account}:{jobs}"
    assert granted["Notify"] == f"arn:aws:sqs:eu-west-3:{account}:{answers}"
    assert granted["WriteArchivesAndManifests"] == f"arn:aws:s3:::{bucket}/*"
    assert granted["FindUploadsLeftByKilledWorkers"] == f"arn:aws:s3:::{bucket}"
    assert environment["SQS_SOURCE_QUEUE"].endswith(f"/{account}/{jobs}")
    assert environment["SQS_DESTINATION_QUEUE"].endswith(f"/{account}/{answers}")
    assert environment["S3_DESTINATION_BUCKET"] == bucket
    created = template["Resources"]
    for name, condition in [
        ("SourceQueue", "CreateSourceQueue"),
        ("DeadLetterQueue", "CreateSourceQueue"),
        ("DestinationQueue", "CreateDestinationQueue"),
        ("ArchiveBucket", "CreateArchiveBucket"),
        ("ArchiveBucketPolicy", "CreateArchiveBucket"),  # never rewrite a policy of yours
    ]:
        assert created[name]["Condition"] == condition


def test_stack_updates_leave_the_task_count_to_scaling(template: dict[str, Any]) -> None:
    assert "DesiredCount" not in template["Resources"]["Service"]["Properties"]


def properties(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A resource's properties."""
    found: dict[str, Any] = template["Resources"][name]["Properties"]
    return found


def test_alarms_watch_the_oldest_job_and_failures_as_the_worker_reports_them(
    template: dict[str, Any],
) -> None:
    oldest = properties(template, "OldestJobAlarm")
    assert (oldest["Namespace"], oldest["MetricName"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
    )
    for branch, queue in [(CREATED, "archiver-jobs"), (EXISTING, "old-jobs")]:
        [dimension] = oldest["Dimensions"]
        assert evaluate(dimension["Value"], branch) == queue
    assert oldest["Threshold"] == {"Ref": "OldestJobAgeSeconds"}

    # The metric as the worker writes it: a failed job's EMF line, as CloudWatch reads it.
    document = emf_document({"Jobs": (1, "Count")}, {"Outcome": "failed", "Code": "internal_error"})
    [directive] = document["_aws"]["CloudWatchMetrics"]
    published = {
        tuple((name, document[name]) for name in dimension_set)
        for dimension_set in directive["Dimensions"]
    }
    for name in ("FailedJobsAlarm", "InternalErrorAlarm"):
        watched = properties(template, name)
        assert (watched["Namespace"], watched["MetricName"]) == (NAMESPACE, "Jobs")
        key = tuple((d["Name"], d["Value"]) for d in watched["Dimensions"])
        assert key in published, f"{name} watches a metric the worker never publishes: {key}"
        assert watched["Statistic"] == "Sum"
        assert "AlarmActions" in watched


def test_the_dashboard_is_valid_json_on_the_worker_metrics(template: dict[str, Any]) -> None:
    body = properties(template, "Dashboard")["DashboardBody"]
    for branch, queue in [(CREATED, "archiver-jobs"), (EXISTING, "old-jobs")]:
        dashboard = json.loads(evaluate(body, branch))
        titles = [widget["properties"]["title"] for widget in dashboard["widgets"]]
        assert any("Backlog per task" in title for title in titles)
        metrics = {
            metric[1]
            for widget in dashboard["widgets"]
            for metric in widget["properties"]["metrics"]
            if isinstance(metric[0], str)
        }
        assert {"Jobs", "JobDuration", "ArchiveBytes", "ApproximateAgeOfOldestMessage"} <= metrics
        assert f'"QueueName", "{queue}"' in json.dumps(dashboard)
