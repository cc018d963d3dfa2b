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

from stacks.config import PLACEHOLDER_ACCOUNT_ID, default_state_bucket
from tests.conftest import ROOT, Synth
from tests.tfjson import walk_strings

IAM = ROOT / "docs" / "iam"
PLAN = IAM / "plan-role-policy.json"
DEPLOY = IAM / "deploy-role-policy.json"

# Terraform resource type prefix -> IAM service prefix
SERVICE_OF = {
    "aws_appautoscaling_": "application-autoscaling",
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
FUNCTION_ENVIRONMENTS = "ReadFunctionEnvironments"
"""Lambda returns a function's (key-encrypted) environment variables only to a caller that may decrypt them:
without it every plan would show them changed."""


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
    by_sid = {s["Sid"]: s for s in plan}
    lock, key, environments = by_sid[STATE_LOCK], by_sid[STATE_KEY], by_sid[FUNCTION_ENVIRONMENTS]
    assert all(r.endswith(".tflock") for r in lock["Resource"]), "the plan role writes only the lock file"
    allowed = {(sid, a) for sid in (STATE_LOCK, STATE_KEY, FUNCTION_ENVIRONMENTS) for a in by_sid[sid]["Action"]}
    assert writes == allowed, writes
    assert sorted(key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert environments["Action"] == ["kms:Decrypt"]
    assert [v.split(".")[0] for v in environments["Condition"]["StringEquals"]["kms:ViaService"]] == ["lambda"]


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


def test_the_state_statements_name_the_backend_each_stack_synthesizes(synth: Synth) -> None:
    """The state bucket (for the runbook's example account and region), the key prefix and the state key's
    alias are the synthesized backend's: a copied policy with a wrong bucket would deny every plan."""
    example_bucket = default_state_bucket("111122223333", "eu-west-1")
    for path in (PLAN, DEPLOY):
        by_sid = {s["Sid"]: s for s in statements(path)}
        resources = [r for s in by_sid.values() if isinstance(s["Resource"], list) for r in s["Resource"]]
        state = [r for r in resources if "tfstate" in r]
        assert state and all(r.startswith(f"arn:aws:s3:::{example_bucket}") for r in state), state
        aliases = by_sid[STATE_KEY]["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"]
        for stack in synth.docs.values():
            backend = stack.doc["terraform"].get("backend", {}).get("s3")
            if backend is None:
                continue  # the bootstrap keeps local state
            assert backend["bucket"] == default_state_bucket(PLACEHOLDER_ACCOUNT_ID, backend["region"])
            prefix = backend["key"].split("/")[0]
            assert any(r.endswith(f"/{prefix}/*") for r in state), (prefix, state)
            assert aliases == [backend["kms_key_id"]]


def test_the_deploy_role_can_destroy_what_it_creates(synth: Synth) -> None:
    """Test environments are destroyed: the provider lists a role's instance profiles before deleting it, and
    empties a ``force_destroy`` bucket version by version; and it creates tables, streams, functions and
    queues with the environment's key, which KMS authorizes with the deploy role's own policy (the key
    policy delegates to IAM through those services)."""
    deploy = actions(DEPLOY)
    assert {"iam:ListInstanceProfilesForRole", "iam:DeleteRole", "iam:DeleteRolePolicy"} <= deploy
    buckets = [
        b for stack in synth.docs.values() for b in stack.doc.get("resource", {}).get("aws_s3_bucket", {}).values()
    ]
    if any(b.get("force_destroy") for b in buckets):
        assert {"s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion"} <= deploy
    (use,) = [s for s in statements(DEPLOY) if s["Sid"] == "UseEnvironmentKeysThroughServices"]
    assert {"kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"} <= set(use["Action"])
    services = {v.split(".")[0] for v in use["Condition"]["StringEquals"]["kms:ViaService"]}
    encrypted = {
        service_of(t)
        for stack in synth.docs.values()
        for t, by_name in stack.doc.get("resource", {}).items()
        for body in by_name.values()
        if any("aws_kms_key." in text for text in walk_strings(body)) and not t.startswith(("aws_kms_", "aws_iam_"))
    } - {"logs", "athena", "firehose", "cloudwatch", "glue"}  # these use the key with their own service role
    assert encrypted <= services, sorted(encrypted - services)
