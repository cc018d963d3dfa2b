"""AWS IoT's fleet side as the local run needs it, where moto 5.2 has nothing (``tools/local/moto_gaps.py``):

- **provisioning templates** (Create/Describe/Update/Delete/List ProvisioningTemplate,
  CreateProvisioningTemplateVersion) and the tags of templates and thing groups, patched into moto's IoT
  responses (:func:`install`): ``make deploy-local`` applies ``aws_iot_provisioning_template`` and
  ``aws_iot_thing_group`` through them, and the local run reads its template back;
- **fleet provisioning by claim** (:func:`provision_by_claim`), the device's side of the provisioning MQTT
  API that moto does not have: the claim certificate must be ACTIVE and its policy must allow the
  provisioning topics; CreateKeysAndCertificate / CreateCertificateFromCsr; RegisterThing calls the
  template's pre-provisioning hook with AWS's documented input and provisions only on
  ``{"allowProvisioning": true}``; then the template's resources (thing named after the serial, its
  thing group, the certificate ACTIVE, the policy attached, the certificate attached to the thing);
- **IoT's authorization of a publish** (:func:`authorize_publish`): the certificate must be ACTIVE and
  attached to the thing it connects as, and one of its policies must allow ``iot:Connect`` as that thing
  and ``iot:Publish`` on the topic, policy variables substituted as IoT does. The local ingest puts a
  message on the stream only when this allows it (:func:`publish`).

IoT policies are evaluated here with the IAM grammar they share: an explicit Deny wins, an Allow of the
action and resource (``*`` and ``?`` wildcards) allows, a statement with a condition this module does not
know does not apply (so it refuses rather than guesses).
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.aws import Clients

THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"
PROVISIONING_TOPIC = "$aws/provisioning-templates/{template}/provision/json"
CREATE_TOPIC = "$aws/certificates/create/json"
CREATE_FROM_CSR_TOPIC = "$aws/certificates/create-from-csr/json"
HOOK_DEADLINE_SECONDS = 5.0


# ----------------------------------------------------------------------------------- moto: templates


def install(tags: dict[str, dict[str, str]] | None = None) -> None:
    """Provisioning templates in moto's IoT; ``tags``: the emulator's IoT tag store (tags of templates and
    thing groups given at creation are kept there, as ``ListTagsForResource`` reads them)."""
    from moto.core.responses import ActionResult, EmptyResult  # noqa: PLC0415
    from moto.iot.exceptions import ResourceAlreadyExistsException, ResourceNotFoundException  # noqa: PLC0415
    from moto.iot.responses import IoTResponse  # noqa: PLC0415

    if getattr(IoTResponse, "_tap_templates", False):
        return
    kept = tags if tags is not None else {}

    def store(self: IoTResponse) -> dict[str, dict[str, Any]]:
        """The templates of this account and region, kept on moto's backend (reset with it)."""
        backend = self.iot_backend
        if not hasattr(backend, "tap_provisioning_templates"):
            backend.tap_provisioning_templates = {}
        return backend.tap_provisioning_templates  # type: ignore[no-any-return]

    def arn(self: IoTResponse, name: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.current_account}:provisioningtemplate/{name}"

    def name_from_path(self: IoTResponse) -> str:
        return str(self.path.split("/provisioning-templates/")[-1].split("/")[0])

    def found(self: IoTResponse) -> dict[str, Any]:
        name = name_from_path(self)
        template = store(self).get(name)
        if template is None:
            raise ResourceNotFoundException(f"The provisioning template {name} does not exist")
        return template

    def create_provisioning_template(self: IoTResponse) -> Any:
        name = self._get_param("templateName")
        if name in store(self):
            raise ResourceAlreadyExistsException(f"Template {name} already exists", name, arn(self, name))
        now = time.time()
        store(self)[name] = {
            "templateArn": arn(self, name),
            "templateName": name,
            "description": self._get_param("description") or "",
            "creationDate": now,
            "lastModifiedDate": now,
            "defaultVersionId": 1,
            "templateBody": self._get_param("templateBody"),
            "enabled": bool(self._get_param("enabled")),
            "provisioningRoleArn": self._get_param("provisioningRoleArn"),
            "type": self._get_param("type") or "FLEET_PROVISIONING",
            **({"preProvisioningHook": h} if (h := self._get_param("preProvisioningHook")) else {}),
        }
        kept[arn(self, name)] = {t["Key"]: t.get("Value", "") for t in self._get_param("tags") or []}
        return ActionResult({"templateArn": arn(self, name), "templateName": name, "defaultVersionId": 1})

    def describe_provisioning_template(self: IoTResponse) -> Any:
        return ActionResult(dict(found(self)))

    def update_provisioning_template(self: IoTResponse) -> Any:
        template = found(self)
        for field in ("description", "enabled", "provisioningRoleArn", "preProvisioningHook", "defaultVersionId"):
            value = self._get_param(field)
            if value is not None:
                template[field] = value
        if self._get_param("removePreProvisioningHook"):
            template.pop("preProvisioningHook", None)
        template["lastModifiedDate"] = time.time()
        return EmptyResult()

    def create_provisioning_template_version(self: IoTResponse) -> Any:
        template = found(self)
        version = int(template["defaultVersionId"]) + 1
        if self._get_param("setAsDefault") is not False:
            template.update(templateBody=self._get_param("templateBody"), defaultVersionId=version)
        return ActionResult(
            {"templateArn": template["templateArn"], "templateName": template["templateName"], "versionId": version,
             "isDefaultVersion": True}
        )  # fmt: skip

    def delete_provisioning_template(self: IoTResponse) -> Any:
        template = found(self)
        del store(self)[template["templateName"]]
        kept.pop(template["templateArn"], None)
        return EmptyResult()

    def list_provisioning_templates(self: IoTResponse) -> Any:
        mine = store(self).values()
        return ActionResult(
            {"templates": [{k: t[k] for k in ("templateArn", "templateName", "enabled")} for t in mine]}
        )

    create_thing_group = IoTResponse.create_thing_group

    def create_thing_group_with_tags(self: IoTResponse) -> Any:
        result = create_thing_group(self)
        name = self.path.split("/thing-groups/")[-1]
        group_arn = f"arn:aws:iot:{self.region}:{self.current_account}:thinggroup/{name}"
        kept[group_arn] = {t["Key"]: t.get("Value", "") for t in self._get_param("tags") or []}
        return result

    for function in (
        create_provisioning_template,
        describe_provisioning_template,
        update_provisioning_template,
        create_provisioning_template_version,
        delete_provisioning_template,
        list_provisioning_templates,
    ):
        setattr(IoTResponse, function.__name__, function)
    IoTResponse.create_thing_group = create_thing_group_with_tags  # type: ignore[method-assign]
    IoTResponse._tap_templates = True  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ IoT policies


def _substitute(text: str, variables: Mapping[str, str]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: variables.get(m.group(1), "\0unknown\0"), text)


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        for name, expected in tests.items():
            if operator not in ("Bool", "StringEquals") or name not in context:
                return False
            if context[name].lower() not in [str(v).lower() for v in _as_list(expected)]:
                return False
    return True


def policy_allows(
    documents: Iterable[Mapping[str, Any]], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    """Whether IoT policies allow ``action`` on ``resource`` (policy variables from ``context``)."""
    allowed = False
    for document in documents:
        for statement in _as_list(document.get("Statement", [])):
            actions = _as_list(statement.get("Action", []))
            if not any(fnmatch.fnmatchcase(action, a) for a in actions):
                continue
            resources = [_substitute(r, context) for r in _as_list(statement.get("Resource", []))]
            if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
                continue
            if statement.get("Condition") and not _condition_holds(statement["Condition"], context):
                continue
            if statement.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed


def _policies_of(iot: Any, certificate_arn: str) -> list[dict[str, Any]]:
    attached = iot.list_attached_policies(target=certificate_arn).get("policies", [])
    return [json.loads(iot.get_policy(policyName=p["policyName"])["policyDocument"]) for p in attached]


def _arn(region: str, account: str, resource: str) -> str:
    return f"arn:aws:iot:{region}:{account}:{resource}"


@dataclass(frozen=True)
class Refused(Exception):
    """IoT refused the request (the device sees an authorization error or a rejected reply)."""

    reason: str

    def __str__(self) -> str:
        return self.reason


def authorize_publish(
    clients: Clients, region: str, account: str, *, certificate_id: str, thing: str, topic: str
) -> None:
    """Raise :class:`Refused` unless IoT would let this certificate connect as ``thing`` and publish on
    ``topic``: ACTIVE, attached to the thing, and allowed by its policies."""
    iot = clients["iot"]
    try:
        certificate = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    except ClientError as error:
        raise Refused(f"unknown certificate {certificate_id}") from error
    if certificate["status"] != "ACTIVE":
        raise Refused(f"certificate {certificate_id} is {certificate['status']}")
    arn = certificate["certificateArn"]
    attached = (
        arn in iot.list_thing_principals(thingName=thing).get("principals", []) if _thing_exists(iot, thing) else False
    )
    context = {"iot:Connection.Thing.ThingName": thing, "iot:Connection.Thing.IsAttached": str(attached).lower()}
    policies = _policies_of(iot, arn)
    if not policy_allows(policies, "iot:Connect", _arn(region, account, f"client/{thing}"), context):
        raise Refused(f"certificate {certificate_id} may not connect as {thing}")
    if not policy_allows(policies, "iot:Publish", _arn(region, account, f"topic/{topic}"), context):
        raise Refused(f"certificate {certificate_id} may not publish on {topic}")


def _thing_exists(iot: Any, thing: str) -> bool:
    try:
        iot.describe_thing(thingName=thing)
    except ClientError:
        return False
    return True


# ---------------------------------------------------------------------------- provisioning by claim


@dataclass(frozen=True)
class Provisioned:
    thing_name: str
    certificate_id: str
    certificate_arn: str
    certificate_pem: str
    private_key: str | None


Hook = Callable[[dict[str, Any]], Mapping[str, Any]]
"""The pre-provisioning hook as IoT invokes it (here: the handler, in this process)."""


def provision_by_claim(
    clients: Clients,
    *,
    region: str,
    account: str,
    template_name: str,
    claim_certificate_id: str,
    parameters: Mapping[str, str],
    hook: Hook,
    csr: str | None = None,
    client_id: str = "factory-device",
) -> Provisioned:
    """What a device does with its claim certificate, and what IoT does in reply (see the module doc)."""
    iot = clients["iot"]
    claim = iot.describe_certificate(certificateId=claim_certificate_id)["certificateDescription"]
    if claim["status"] != "ACTIVE":
        raise Refused(f"claim certificate is {claim['status']}")
    policies = _policies_of(iot, claim["certificateArn"])
    context = {"iot:ClientId": client_id}
    create_topic = CREATE_TOPIC if csr is None else CREATE_FROM_CSR_TOPIC
    provision_topic = PROVISIONING_TOPIC.format(template=template_name)
    for action, topic in (("iot:Connect", f"client/{client_id}"), ("iot:Publish", f"topic/{create_topic}"),
                          ("iot:Publish", f"topic/{provision_topic}")):  # fmt: skip
        if not policy_allows(policies, action, _arn(region, account, topic), context):
            raise Refused(f"the claim certificate's policy does not allow {action} on {topic}")
    if csr is None:
        created = iot.create_keys_and_certificate(setAsActive=False)
        private_key = created["keyPair"]["PrivateKey"]
    else:
        created = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=False)
        private_key = None
    template = iot.describe_provisioning_template(templateName=template_name)
    if not template["enabled"]:
        raise Refused(f"template {template_name} is disabled")
    hook_input = {
        "claimCertificateId": claim_certificate_id,
        "certificateId": created["certificateId"],
        "certificatePem": created["certificatePem"],
        "templateArn": template["templateArn"],
        "clientId": client_id,
        "parameters": dict(parameters),
    }
    if "preProvisioningHook" in template:
        started = time.monotonic()
        answer = hook(hook_input)
        if time.monotonic() - started > HOOK_DEADLINE_SECONDS:
            raise Refused("ACCESS_DENIED: the pre-provisioning hook did not answer within 5 seconds")
        if answer.get("allowProvisioning") is not True:
            raise Refused("ACCESS_DENIED: the pre-provisioning hook refused")
        parameters = {**parameters, **dict(answer.get("parameterOverrides") or {})}
    body = json.loads(template["templateBody"])
    values = {**parameters, "AWS::IoT::Certificate::Id": created["certificateId"]}
    _apply(iot, body, values, created["certificateArn"])
    thing = _resolve(body["Resources"]["thing"]["Properties"]["ThingName"], values)
    return Provisioned(
        thing, created["certificateId"], created["certificateArn"], created["certificatePem"], private_key
    )


def _resolve(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, Mapping) and set(value) == {"Ref"}:
        return values[value["Ref"]]
    if isinstance(value, Mapping):
        return {k: _resolve(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, values) for v in value]
    return value


def _apply(iot: Any, body: Mapping[str, Any], values: Mapping[str, str], certificate_arn: str) -> None:
    """RegisterThing's resources, in IoT's order: thing (and groups), certificate status, policy, attachment."""
    resources = body["Resources"].values()
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["Type"], []).append(_resolve(resource.get("Properties", {}), values))
    (thing,) = by_type["AWS::IoT::Thing"]
    name = thing["ThingName"]
    try:
        iot.create_thing(thingName=name, attributePayload={"attributes": dict(thing.get("AttributePayload", {}))})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    for group in thing.get("ThingGroups", []):
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
    for certificate in by_type.get("AWS::IoT::Certificate", []):
        iot.update_certificate(
            certificateId=certificate["CertificateId"], newStatus=certificate.get("Status", "ACTIVE")
        )
    for policy in by_type.get("AWS::IoT::Policy", []):
        iot.attach_policy(policyName=policy["PolicyName"], target=certificate_arn)
    iot.attach_thing_principal(thingName=name, principal=certificate_arn)


# --------------------------------------------------------------------------------- the environment


@dataclass(frozen=True)
class FleetSetup:
    template_name: str
    claim_certificate_id: str
    claim_private_key: str
    sensor_policy: str
    claim_policy: str
    thing_group: str
    allow_list_table: str


def create_fleet(clients: Clients, environment: str, region: str, account: str) -> FleetSetup:
    """The environment's fleet resources on the emulator, from the stack's own definitions: sensor and
    claim policies, thing group, allow-list table, the claim template (hook: the local one), and a
    factory claim certificate with the claim policy."""
    from stacks.ingestion import sensor_policy_statements  # noqa: PLC0415 - loads the provider bindings
    from stacks.layout import SENSOR_ALLOW_LIST  # noqa: PLC0415
    from stacks.naming import Kind, Namer  # noqa: PLC0415
    from stacks.provisioning import claim_policy_statements, template_body  # noqa: PLC0415
    from tools.local.simulate import create_tables  # noqa: PLC0415

    install()
    namer = Namer(environment)
    iot = clients["iot"]
    arn = lambda service, resource: f"arn:aws:{service}:{region}:{account}:{resource}"  # noqa: E731
    sensor_policy, claim_policy = namer.name(Kind.IOT_POLICY, "sensor"), namer.name(Kind.IOT_POLICY, "sensor-claim")
    template_name, group = namer.provisioning_template_name(), namer.fleet_thing_group()
    iot.create_policy(policyName=sensor_policy, policyDocument=render(sensor_policy_statements(arn, namer)))
    iot.create_policy(policyName=claim_policy, policyDocument=render(claim_policy_statements(arn, template_name)))
    iot.create_thing_group(thingGroupName=group)
    create_tables(namer, clients, (SENSOR_ALLOW_LIST,))
    iot.create_provisioning_template(
        templateName=template_name,
        templateBody=json.dumps(template_body(sensor_policy, group)),
        enabled=True,
        provisioningRoleArn=f"arn:aws:iam::{account}:role/{namer.name(Kind.IAM_ROLE, 'provisioning')}",
        preProvisioningHook={"targetArn": arn("lambda", f"function:{namer.name(Kind.LAMBDA_FUNCTION, 'provisioning')}"),
                             "payloadVersion": "2020-04-01"},
        type="FLEET_PROVISIONING",
    )  # fmt: skip
    claim = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=claim_policy, target=claim["certificateArn"])
    return FleetSetup(
        template_name=template_name,
        claim_certificate_id=claim["certificateId"],
        claim_private_key=claim["keyPair"]["PrivateKey"],
        sensor_policy=sensor_policy,
        claim_policy=claim_policy,
        thing_group=group,
        allow_list_table=namer.name(Kind.DYNAMODB_TABLE, SENSOR_ALLOW_LIST.concern),
    )


def render(statements: Sequence[Any]) -> str:
    """A policy as AWS receives it (Terraform's ``$${`` escapes undone)."""
    from stacks.iam import policy_json  # noqa: PLC0415

    return policy_json(statements)


def publish(
    clients: Clients, region: str, account: str, *, environment: str, certificate_id: str, thing: str, payload: bytes
) -> Any:
    """A reading published by a device holding ``certificate_id`` as ``thing`` on its Basic Ingest topic:
    the message the topic rule hands to the stream, or :class:`Refused` when IoT would refuse it."""
    from stacks.naming import Namer  # noqa: PLC0415
    from tools.local.simulate import Message  # noqa: PLC0415

    topic = Namer(environment).sensor_publish_topic(thing)
    authorize_publish(clients, region, account, certificate_id=certificate_id, thing=thing, topic=topic)
    return Message(thing, payload)


# ------------------------------------------------------------------- onboarding on a deployed environment

ONBOARD_NOW = "2026-06-01T12:00:00Z"


def onboard_deployed(environment: str, endpoint_url: str, outputs: Mapping[str, Any], workdir: Any) -> dict[str, Any]:
    """Onboard one sensor each way on an environment deployed to the emulator (``tools.local.deploy_local``),
    with the template, policies, group and allow-list Terraform created from the synthesized stack; publish
    a reading from each through IoT's authorization and the data path; revoke the bulk one and check that it
    is refused. Returns what happened; raises on anything unexpected."""
    import boto3  # noqa: PLC0415

    from lambdas.common.contract import parse_instant  # noqa: PLC0415
    from lambdas.provisioning.service import Provisioner  # noqa: PLC0415
    from lambdas.provisioning.service import Settings as HookSettings  # noqa: PLC0415
    from stacks.config import PROFILES  # noqa: PLC0415
    from stacks.layout import provisioning_environment  # noqa: PLC0415
    from tools import fleet as fleet_tool  # noqa: PLC0415
    from tools.local.simulate import (  # noqa: PLC0415
        ACCOUNT_ID,
        RunOptions,
        Targets,
        endpoint_clients,
        run,
        sensor_state,
    )

    value = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in outputs.items()}
    config = PROFILES.get(environment) or PROFILES["dev"].with_name(environment)
    region = config.region
    data_path = endpoint_clients(endpoint_url, region)
    iot_client = boto3.client("iot", endpoint_url=endpoint_url, region_name=region)
    services = ("dynamodb", "dynamodbstreams", "kinesis", "s3", "sns", "sqs", "cloudwatch", "lambda")
    clients = Clients(iot=iot_client, **{s: data_path[s] for s in services})
    iot, dynamodb = clients["iot"], clients["dynamodb"]
    fleet = fleet_tool.Fleet(fleet_tool.FleetNames.of(environment), iot, dynamodb, time.time)
    claimed_serial, bulk_serial = "onboard-claim-1", "onboard-bulk-1"
    fleet.allow([claimed_serial])
    claim = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=value["iot_claim_policy_name"], target=claim["certificateArn"])
    settings = HookSettings.from_env(
        provisioning_environment(environment, value["metric_namespace"], value["sensor_allow_list_table_name"])
    )
    hook = Provisioner(settings, clients)
    provisioned = provision_by_claim(
        clients, region=region, account=ACCOUNT_ID, template_name=value["iot_provisioning_template_name"],
        claim_certificate_id=claim["certificateId"], parameters={"SerialNumber": claimed_serial}, hook=hook.handle,
    )  # fmt: skip
    sensors_csv = workdir / "onboard-sensors.csv"
    sensors_csv.write_text(f"sensor_id\n{bulk_serial}\n")
    rows, bad = fleet_tool.read_sensors(sensors_csv)
    assert not bad, bad
    outcome = fleet.register(rows[0], workdir / "bundles")
    bundle = json.loads((workdir / "bundles" / bulk_serial / "bundle.json").read_text())
    now = parse_instant(ONBOARD_NOW)

    def reading(sensor: str) -> bytes:
        return json.dumps({"sensor_id": sensor, "segment_id": "onboard-seg", "timestamp": "2026-06-01T11:59:00Z",
                           "vehicle_count": 3, "average_speed_kmh": 40, "occupancy_percent": 10}).encode()  # fmt: skip

    sent = [
        publish(clients, region, ACCOUNT_ID, environment=environment, certificate_id=certificate, thing=thing,
                payload=reading(thing))
        for certificate, thing in (
            (provisioned.certificate_id, claimed_serial),
            (bundle["certificate_id"], bulk_serial),
        )
    ]  # fmt: skip
    targets = Targets.from_outputs(environment, region, outputs)
    summary = run(clients, targets, RunOptions(sent, now, config.batch_size, config), out=io_sink())
    fleet.revoke(bulk_serial)
    try:
        publish(clients, region, ACCOUNT_ID, environment=environment, certificate_id=bundle["certificate_id"],
                thing=bulk_serial, payload=reading(bulk_serial))  # fmt: skip
    except Refused as refused:
        after_revoke = str(refused)
    else:
        raise AssertionError("a revoked sensor's certificate was not refused")
    # What an operator runs before destroying the environment (IoT refuses to delete an attached policy).
    decommissioned = fleet.decommission(value["iot_claim_policy_name"])
    return {
        "decommissioned": decommissioned,
        "claimed": provisioned.thing_name,
        "registered": outcome.result,
        "published": len(sent),
        "records_in": summary["records_in"],
        "stored": sum(
            sensor_state(clients, targets.sensor_windows_table, sensor) is not None
            for sensor in (claimed_serial, bulk_serial)
        ),
        "revoked_refused": after_revoke,
    }


def io_sink() -> Any:
    import io  # noqa: PLC0415

    return io.StringIO()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.local.iot_fleet --env dev --endpoint-url URL --outputs outputs.json --workdir DIR
    --summary onboarding.json``: :func:`onboard_deployed` (``tools.local.deploy_local`` runs it on dev)."""
    import argparse  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m tools.local.iot_fleet", description=main.__doc__)
    parser.add_argument("--env", required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--outputs", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--summary", type=Path, required=True)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    result = onboard_deployed(args.env, args.endpoint_url, json.loads(args.outputs.read_text()), args.workdir)
    args.summary.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"onboarding on the deployed {args.env}: {result}")
    return 0 if result["stored"] == result["published"] == result["records_in"] else 1


if __name__ == "__main__":
    import sys

    sys.exit(main())
