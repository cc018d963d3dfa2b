"""Fleet provisioning by claim: the synthesized template, role, hook permission and claim policy as AWS
documents them, and the pre-provisioning hook on moto (one serial admitted once; every refusal logged
with its reason and counted)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from lambdas.common.aws import Backoff, Clients
from lambdas.common.identity import serial_problem
from lambdas.provisioning import handler, logic
from lambdas.provisioning.service import Provisioner, Settings
from stacks.config import PROFILES
from stacks.layout import SENSOR_ALLOW_LIST, provisioning_environment
from stacks.naming import Kind, Namer
from tests.conftest import ENVIRONMENTS, Synth
from tests.tfjson import StackDoc
from tools.local import iam_check
from tools.local.simulate import ACCOUNT_ID, atomic_requests, create_tables, in_moto

# ------------------------------------------------------------------------------------------- the stack


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest, synth: Synth) -> tuple[str, StackDoc]:
    return request.param, synth.env(request.param)


def test_the_template_provisions_by_claim_with_the_hook_role_and_body_aws_requires(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, template = doc.one("aws_iot_provisioning_template")
    assert template["name"] == f"tap-sensor-claim-{suffix}" and len(template["name"]) <= 36
    assert template["type"] == "FLEET_PROVISIONING"
    assert template["pre_provisioning_hook"]["payload_version"] == "2020-04-01"
    hook = doc.resolve(template["pre_provisioning_hook"]["target_arn"])
    assert hook["function_name"] == f"tap-provisioning-{suffix}"
    assert hook["timeout"] <= 5, "IoT waits 5 seconds for the hook"
    body = json.loads(template["template_body"])
    assert set(body["Parameters"]) == {"SerialNumber", "AWS::IoT::Certificate::Id"}
    by_type = {r["Type"]: r["Properties"] for r in body["Resources"].values()}
    assert by_type["AWS::IoT::Thing"]["ThingName"] == {"Ref": "SerialNumber"}
    assert by_type["AWS::IoT::Thing"]["ThingGroups"] == [f"tap-sensors-{suffix}"]
    assert by_type["AWS::IoT::Certificate"] == {
        "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
        "Status": "ACTIVE",
    }
    assert by_type["AWS::IoT::Policy"] == {"PolicyName": f"tap-sensor-{suffix}"}
    _, group = doc.one("aws_iot_thing_group")
    assert group["name"] == f"tap-sensors-{suffix}"


def test_the_provisioning_role_is_trusted_by_iot_in_this_account_and_grants_only_the_templates_calls(
    env: tuple[str, StackDoc],
) -> None:
    suffix, doc = env
    _, template = doc.one("aws_iot_provisioning_template")
    role = doc.resolve(template["provisioning_role_arn"])
    (trust,) = doc.policy_statements(role["assume_role_policy"])
    assert trust["principals"] == [{"type": "Service", "identifiers": ["iot.amazonaws.com"]}]
    assert {c["variable"] for c in trust["condition"]} == {"aws:SourceAccount"}
    statements = doc.role_statements(template["provisioning_role_arn"])
    actions = {a for s in statements for a in s["actions"]}
    assert actions == {
        "iot:CreateThing", "iot:DescribeThing", "iot:DescribeThingGroup", "iot:AddThingToThingGroup",
        "iot:DescribeCertificate", "iot:UpdateCertificate", "iot:AttachThingPrincipal", "iot:GetPolicy",
        "iot:AttachPolicy",
    }  # fmt: skip
    for statement in statements:
        for resource in statement["resources"]:
            if "thinggroup/" in resource:
                assert resource.endswith(f":thinggroup/tap-sensors-{suffix}")
            if ":policy/" in resource:
                assert resource.endswith(f":policy/tap-sensor-{suffix}")


def test_only_iot_invokes_the_hook_and_only_for_this_template_in_this_account(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, permission = doc.one("aws_lambda_permission")
    assert permission["principal"] == "iot.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["source_arn"].endswith(f":provisioningtemplate/tap-sensor-claim-{suffix}")
    assert permission["source_account"] == "${data.aws_caller_identity.current.account_id}"
    hook_role = doc.resolve(doc.resolve(permission["function_name"].replace(".function_name", ".id"))["role"])
    assert hook_role["name"] == f"tap-provisioning-fn-{suffix}"


def test_the_claim_certificate_may_use_the_provisioning_topics_only(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    (claim,) = [p for p in doc.resources("aws_iot_policy").values() if p["name"] == f"tap-sensor-claim-{suffix}"]
    statements = {s["sid"]: s for s in doc.policy_statements(claim["policy"])}
    topics = {r.split(":topic/")[-1] for r in statements["ProvisioningRequests"]["resources"]}
    assert topics == {
        "$aws/certificates/create/*",
        "$aws/certificates/create-from-csr/*",
        f"$aws/provisioning-templates/tap-sensor-claim-{suffix}/provision/*",
    }
    filters = {r.split(":topicfilter/")[-1] for r in statements["ProvisioningReplies"]["resources"]}
    assert filters == topics
    assert statements["ProvisioningRequests"]["actions"] == ["iot:Publish", "iot:Receive"]
    assert not any("sensors" in r for s in statements.values() for r in s["resources"]), "no reading topic"


def test_the_hook_may_only_claim_allow_list_entries(env: tuple[str, StackDoc]) -> None:
    _, doc = env
    function = next(
        f for f in doc.resources("aws_lambda_function").values() if f["function_name"].startswith("tap-provisioning")
    )
    own = {a for s in doc.role_statements(function["role"]) for a in s["actions"]}
    assert own - {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "xray:PutTelemetryRecords",
                  "xray:PutTraceSegments", "kms:Decrypt", "kms:GenerateDataKey"} == {"dynamodb:UpdateItem"}  # fmt: skip
    assert function["environment"]["variables"]["ALLOW_LIST_TABLE"].startswith("${aws_dynamodb_table.")


# -------------------------------------------------------------------------------------------- the hook


@given(st.text(max_size=80))
def test_a_serial_is_admitted_only_if_it_is_a_sensor_id_and_a_thing_name(serial: str) -> None:
    import re  # noqa: PLC0415

    ok = bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_:-]{0,63}", serial))
    assert (serial_problem(serial) is None) == ok


def test_malformed_hook_input_is_refused_not_raised() -> None:
    for event in (None, [], {"parameters": "x"}, {"parameters": {"SerialNumber": 7}}, {}):
        request = logic.parse(event)
        decision = logic.precheck(request)
        assert decision is not None and not decision.allow and decision.reason == logic.MISSING_SERIAL
    assert logic.precheck(logic.parse({"parameters": {"SerialNumber": "a.b"}})).reason == logic.INVALID_SERIAL  # type: ignore[union-attr]


@pytest.fixture
def allow_list() -> Iterator[tuple[Any, str]]:
    with in_moto("dev", PROFILES["dev"]) as (clients, _):
        namer = Namer("dev")
        create_tables(namer, clients, (SENSOR_ALLOW_LIST,))
        yield clients["dynamodb"], namer.name(Kind.DYNAMODB_TABLE, SENSOR_ALLOW_LIST.concern)


def hook_event(serial: str | None, certificate: str = "c" * 64) -> dict[str, Any]:
    return {
        "claimCertificateId": "f" * 64,
        "certificateId": certificate,
        "certificatePem": "-----BEGIN CERTIFICATE-----\nsecret\n-----END CERTIFICATE-----",
        "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/tap-sensor-claim-dev",
        "clientId": "device",
        "parameters": {} if serial is None else {"SerialNumber": serial},
    }


def provisioner(dynamodb: Any, table: str) -> Provisioner:
    settings = Settings.from_env(provisioning_environment("dev", "TAP/Traffic/dev", table))
    clients = Clients(dynamodb=dynamodb)
    backoff = Backoff(attempts=2, sleep=lambda _: None)
    return Provisioner(settings, clients, clock=lambda: 1_780_000_000, backoff=backoff)


def put(dynamodb: Any, table: str, serial: str, status: str) -> None:
    dynamodb.put_item(TableName=table, Item={"serial": {"S": serial}, "status": {"S": status}})


def test_each_refusal_is_logged_with_its_reason_and_counted_and_the_pem_is_never_logged(
    allow_list: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    dynamodb, table = allow_list
    put(dynamodb, table, "S-1", logic.ALLOWED)
    put(dynamodb, table, "S-2", logic.REVOKED)
    put(dynamodb, table, "S-3", logic.REGISTERED)
    hook = provisioner(dynamodb, table)
    cases = [("S-1", True, None), ("S-1", False, logic.ALREADY_ONBOARDED), ("S-2", False, logic.REVOKED_SERIAL),
             ("S-3", False, logic.ALREADY_ONBOARDED), ("S-9", False, logic.NOT_ALLOWED),
             ("bad.serial", False, logic.INVALID_SERIAL), (None, False, logic.MISSING_SERIAL)]  # fmt: skip
    for serial, allowed, reason in cases:
        caplog.clear()
        with caplog.at_level("INFO", logger="tap"):
            assert hook.handle(hook_event(serial)) == {"allowProvisioning": allowed}
        lines = [json.loads(record.getMessage()) for record in caplog.records]
        assert "secret" not in json.dumps(lines)
        if allowed:
            assert lines[0]["event"] == "provisioning_allowed"
            assert lines[1]["ProvisioningAllowed"] == 1
            continue
        (log,) = [line for line in lines if line.get("event") == "provisioning_refused"]
        assert log["reason"] == reason and log["serial"] == serial
        (metric,) = [line for line in lines if "_aws" in line]
        assert metric["ProvisioningRefused"] == 1 and metric["Reason"] == reason
        assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TAP/Traffic/dev"
    item = dynamodb.get_item(TableName=table, Key={"serial": {"S": "S-1"}})["Item"]
    assert item["status"]["S"] == logic.CLAIMED and item["certificate_id"]["S"] == "c" * 64


def test_two_devices_claiming_one_serial_at_once_only_one_is_admitted(allow_list: tuple[Any, str]) -> None:
    dynamodb, table = allow_list
    put(dynamodb, table, "S-1", logic.ALLOWED)
    hook = provisioner(dynamodb, table)
    answers: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        answers.append(hook.handle(hook_event("S-1", certificate=f"{n:064d}"))["allowProvisioning"])

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    with atomic_requests():  # moto applies each request atomically, as DynamoDB does
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(answers) == [False] * 7 + [True]


def test_an_unreachable_allow_list_refuses_within_the_deadline(allow_list: tuple[Any, str]) -> None:
    dynamodb, table = allow_list
    put(dynamodb, table, "S-1", logic.ALLOWED)
    calls = []

    def throttle(**kwargs: Any) -> None:
        calls.append(1)
        raise ClientError(
            {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "UpdateItem"
        )

    dynamodb.meta.events.register_first("before-call.dynamodb.UpdateItem", throttle)
    assert provisioner(dynamodb, table).handle(hook_event("S-1")) == {"allowProvisioning": False}
    assert len(calls) == 2, "bounded: the hook answers IoT within its 5 seconds"


def test_the_handler_builds_its_service_from_the_stacks_environment(
    allow_list: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb, table = allow_list
    put(dynamodb, table, "S-7", logic.ALLOWED)
    for name, value in provisioning_environment("dev", "TAP/Traffic/dev", table).items():
        monkeypatch.setenv(name, value)
    handler.install(None)
    try:
        assert handler.handler(hook_event("S-7"), None) == {"allowProvisioning": True}
    finally:
        handler.install(None)
    assert (
        boto3.client("dynamodb").get_item(TableName=table, Key={"serial": {"S": "S-7"}})["Item"]["status"]["S"]
        == "claimed"
    )


def test_every_call_of_the_hook_is_granted_by_its_synthesized_role_and_every_grant_used(synth: Synth) -> None:
    """The IAM check of the data path's functions (``tools.local.iam_check``), run on the hook: each call
    it makes, admitting and refusing, against the role policy the dev stack synthesizes."""
    with in_moto("dev", PROFILES["dev"]) as (clients, _):
        namer = Namer("dev")
        create_tables(namer, clients, (SENSOR_ALLOW_LIST,))
        table = namer.name(Kind.DYNAMODB_TABLE, SENSOR_ALLOW_LIST.concern)
        put(clients["dynamodb"], table, "S-1", logic.ALLOWED)
        hook = provisioner(clients["dynamodb"], table)
        recorder = iam_check.Recorder()
        recorder.watch("provisioning", hook)
        assert [hook.handle(hook_event(s))["allowProvisioning"] for s in ("S-1", "S-1", "S-2")] == [True, False, False]
        stack = iam_check.stack_of(synth.env("dev").doc, clients, "us-east-1", ACCOUNT_ID)
        roles = {"provisioning": stack.role_policies("provisioning")}
        scope = iam_check.Scope(ACCOUNT_ID, iam_check.KeysByArn(stack.encryption()))
        report = iam_check.evaluate(recorder.calls, roles, scope)
    assert report.calls == {"provisioning": 3}
    assert report.passed, report.problems()
    without = [
        iam_check.Policy(
            p.name,
            {**p.document, "Statement": [st for st in p.document["Statement"] if st.get("Sid") != "ClaimSerial"]},
        )
        for p in roles["provisioning"]
    ]
    denied = iam_check.evaluate(recorder.calls, {"provisioning": without}, scope)
    assert [d.action for d in denied.denied] == ["dynamodb:UpdateItem"]
