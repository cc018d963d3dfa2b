"""What the CI plan role and the deploy role need (``docs/iam/*.json``, listed in docs/operations.md).

The policies are checked against the synthesized stacks and against AWS's own action catalogue (parliament's
copy of the Service Authorization Reference): every action exists; every service the stacks create resources
in can be read by the plan role and changed by the deploy role; the plan role changes nothing but the state's
lock file; the deploy role passes roles only to the services that assume them (the trust test's services).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Synth

IAM = ROOT / "docs" / "iam"
PLAN = IAM / "plan-role-policy.json"
DEPLOY = IAM / "deploy-role-policy.json"

# Terraform resource type prefix -> IAM service prefix
SERVICE_OF = {
    "aws_athena_": "athena",
    "aws_budgets_": "budgets",
    "aws_cloudwatch_log_": "logs",
    "aws_cloudwatch_": "cloudwatch",
    "aws_dynamodb_": "dynamodb",
    "aws_glue_": "glue",
    "aws_iam_": "iam",
    "aws_iot_": "iot",
    "aws_kinesis_firehose_": "firehose",
    "aws_kinesis_": "kinesis",
    "aws_kms_": "kms",
    "aws_lambda_": "lambda",
    "aws_s3_": "s3",
    "aws_scheduler_": "scheduler",
    "aws_sns_": "sns",
    "aws_sqs_": "sqs",
}
READ_LEVELS = {"Read", "List"}
STATE_LOCK = "StateLock"
"""The plan role's one write: Terraform's S3-native lock file (``use_lockfile``) beside the state object..."""
STATE_KEY = "StateKey"
"""... encrypted, like the state, with the state key (``kms:GenerateDataKey``; ``kms:Decrypt`` to read)."""


def service_of(resource_type: str) -> str:
    for prefix, service in SERVICE_OF.items():
        if resource_type.startswith(prefix):
            return service
    raise AssertionError(f"{resource_type}: no IAM service known for this resource type (add it to SERVICE_OF)")


@cache
def access_levels() -> dict[str, str]:
    """``service:Action`` (lower case) -> access level, from parliament's IAM definition."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parliament  # noqa: PLC0415

    definition = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    return {
        f"{service['prefix']}:{p['privilege']}".lower(): p["access_level"]
        for service in definition
        for p in service["privileges"]
    }


def statements(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    assert document["Version"] == "2012-10-17"
    return list(document["Statement"])


def actions(path: Path, *, sids: set[str] | None = None) -> set[str]:
    return {a for s in statements(path) if sids is None or s["Sid"] in sids for a in s["Action"]}


@pytest.mark.parametrize("path", [PLAN, DEPLOY], ids=["plan", "deploy"])
def test_every_action_exists_in_the_service_authorization_reference(path: Path) -> None:
    unknown = sorted(a for a in actions(path) if a.lower() not in access_levels())
    assert not unknown, unknown


def test_the_plan_role_reads_every_service_the_stacks_use_and_writes_only_the_lock(synth: Synth) -> None:
    used = {service_of(t) for stack in synth.docs.values() for t in stack.doc.get("resource", {})}
    levels = access_levels()
    plan = statements(PLAN)
    readable = {a.split(":")[0] for s in plan if s["Sid"] != STATE_LOCK for a in s["Action"]}
    assert used <= readable, sorted(used - readable)
    writes = {(s["Sid"], a) for s in plan for a in s["Action"] if levels[a.lower()] not in READ_LEVELS}
    (lock,) = [s for s in plan if s["Sid"] == STATE_LOCK]
    (key,) = [s for s in plan if s["Sid"] == STATE_KEY]
    assert all(r.endswith(".tflock") for r in lock["Resource"]), "the plan role writes only the lock file"
    assert writes == {(STATE_LOCK, a) for a in lock["Action"]} | {(STATE_KEY, a) for a in key["Action"]}, writes
    assert sorted(key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_the_deploy_role_can_change_every_service_the_stacks_use(synth: Synth) -> None:
    levels = access_levels()
    used = {service_of(t) for stack in synth.docs.values() for t in stack.doc.get("resource", {})}
    writable = {a.split(":")[0] for a in actions(DEPLOY) if levels[a.lower()] not in READ_LEVELS}
    assert used <= writable, sorted(used - writable)
    # The plan role's reads are the deploy role's too (apply refreshes before it changes anything).
    assert actions(PLAN) <= actions(DEPLOY)


def test_both_roles_tag_and_read_tags_of_buckets_through_s3_control() -> None:
    """Provider 6.23+ reads and writes bucket tags with ``s3:ListTagsForResource`` / ``s3:TagResource`` (S3
    Control's ABAC-ready API) and only falls back to the bucket tagging API on AccessDenied."""
    assert "s3:ListTagsForResource" in actions(PLAN)
    assert {"s3:TagResource", "s3:UntagResource", "s3:ListTagsForResource", "s3:PutBucketTagging"} <= actions(DEPLOY)


def test_the_deploy_role_passes_roles_only_to_the_services_that_assume_them(synth: Synth) -> None:
    (passing,) = [s for s in statements(DEPLOY) if "iam:PassRole" in s["Action"]]
    assert passing["Action"] == ["iam:PassRole"]
    passed_to = set(passing["Condition"]["StringEquals"]["iam:PassedToService"])
    # the services named in the stacks' trust policies (the roles they hand to a service)
    trusted = {
        service
        for stack in synth.docs.values()
        for body in stack.doc.get("data", {}).get("aws_iam_policy_document", {}).values()
        for statement in body.get("statement", [])
        if "sts:AssumeRole" in statement.get("actions", [])
        for principal in statement.get("principals", [])
        if principal["type"] == "Service"
        for service in principal["identifiers"]
    }
    assert passed_to == trusted
    assert passing["Resource"].endswith(":role/tap-*"), "only the platform's roles"
