"""Fleet provisioning by claim: a sensor presenting the factory claim certificate and its serial becomes a
thing named after the serial, with its own active certificate, the environment's sensor policy, and a
place in the environment's thing group
(https://docs.aws.amazon.com/iot/latest/developerguide/provision-wo-cert.html#claim-based).

- the claim certificate's IoT policy allows the provisioning MQTT API only: ``$aws/certificates/create/``,
  ``$aws/certificates/create-from-csr/`` and ``$aws/provisioning-templates/<template>/provision/``
  (publish and receive on the topics, subscribe on the filters), never a reading topic;
- the template (``FLEET_PROVISIONING``) declares the thing, the certificate (``ACTIVE``) and the policy
  by name; IoT assumes the provisioning role (trusted by ``iot.amazonaws.com`` from this account) to
  create them;
- the pre-provisioning hook (``lambdas/provisioning``) admits a serial of the allow-list once; IoT
  invokes it under a Lambda permission for ``iot.amazonaws.com`` bound to this template's ARN and this
  account (https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html).

Bulk registration of installed sensors (``python -m tools.fleet``) gives the same result without the claim.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.iot_policy import IotPolicy
from cdktf_cdktf_provider_aws.iot_provisioning_template import (
    IotProvisioningTemplate,
    IotProvisioningTemplatePreProvisioningHook,
)
from cdktf_cdktf_provider_aws.iot_thing_group import IotThingGroup
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from constructs import Construct

from lambdas.provisioning.logic import SERIAL_PARAMETER
from stacks.context import StackContext
from stacks.iam import ServiceRole, Statement, policy_document
from stacks.layout import provisioning_environment
from stacks.naming import Kind
from stacks.processing import Function

HOOK_PAYLOAD_VERSION = "2020-04-01"
"""The only payload version of pre-provisioning hooks (CreateProvisioningTemplate, ProvisioningHook)."""
CERTIFICATE_ID_PARAMETER = "AWS::IoT::Certificate::Id"
"""Set by IoT to the certificate the device created over MQTT (CreateKeysAndCertificate or
CreateCertificateFromCsr) before RegisterThing."""
ONBOARDED_BY = "onboarded_by"
"""Thing attribute saying how the sensor joined: ``claim`` here, ``bulk`` for ``tools.fleet``."""


def template_body(sensor_policy_name: str, thing_group_name: str) -> dict[str, Any]:
    """The fleet provisioning template: thing named after the serial, in the fleet's group; the device's
    new certificate activated; the sensor policy attached to it (by name: the template never creates
    a policy). IoT attaches the certificate to the thing itself."""
    return {
        "Parameters": {SERIAL_PARAMETER: {"Type": "String"}, CERTIFICATE_ID_PARAMETER: {"Type": "String"}},
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {
                    "ThingName": {"Ref": SERIAL_PARAMETER},
                    "AttributePayload": {"serial": {"Ref": SERIAL_PARAMETER}, ONBOARDED_BY: "claim"},
                    "ThingGroups": [thing_group_name],
                },
            },
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificateId": {"Ref": CERTIFICATE_ID_PARAMETER}, "Status": "ACTIVE"},
            },
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": sensor_policy_name}},
        },
    }


def claim_topics(template_name: str) -> tuple[str, ...]:
    """Topic prefixes of the provisioning MQTT API a claim certificate may use (JSON and CBOR payloads)."""
    return (
        "$aws/certificates/create/*",
        "$aws/certificates/create-from-csr/*",
        f"$aws/provisioning-templates/{template_name}/provision/*",
    )


def claim_policy_statements(arn: Callable[[str, str], str], template_name: str) -> list[Statement]:
    """The claim certificate's IoT policy: connect, and the provisioning MQTT API of this template only."""
    topics = claim_topics(template_name)
    return [
        Statement("Connect", ["iot:Connect"], [arn("iot", "client/*")]),
        Statement("ProvisioningRequests", ["iot:Publish", "iot:Receive"], [arn("iot", f"topic/{t}") for t in topics]),
        Statement("ProvisioningReplies", ["iot:Subscribe"], [arn("iot", f"topicfilter/{t}") for t in topics]),
    ]


@dataclass(frozen=True)
class ProvisioningProps:
    """Props of :class:`Provisioning`."""

    kms_key_arn: str
    """Key of the allow-list table, the hook's logs and dead-letter queue."""
    sensor_policy_name: str
    """The sensor policy (``stacks.ingestion``) each provisioned certificate gets."""
    allow_list_table_name: str
    allow_list_table_arn: str


class Provisioning(Construct):
    """Claim template, its provisioning role, pre-provisioning hook, claim policy and the fleet's thing group."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: ProvisioningProps) -> None:
        super().__init__(scope, id_)
        namer, onboarding = ctx.namer, ctx.config.onboarding
        self.template_name = namer.provisioning_template_name()
        self.template_arn = ctx.arn("iot", f"provisioningtemplate/{self.template_name}")
        self.thing_group_name = namer.fleet_thing_group()
        self.thing_group = IotThingGroup(self, "thing-group", name=self.thing_group_name)
        thing_group_arn = ctx.arn("iot", f"thinggroup/{self.thing_group_name}")
        any_thing, any_certificate = ctx.arn("iot", "thing/*"), ctx.arn("iot", "cert/*")
        sensor_policy_arn = ctx.arn("iot", f"policy/{props.sensor_policy_name}")
        # Things are named after serials and certificates after their hash, neither known in advance:
        # both are ``*`` of their type in this account and region; the group and policy are exact.
        self.role = ServiceRole(
            self,
            "role",
            name=namer.name(Kind.IAM_ROLE, "provisioning"),
            service="iot.amazonaws.com",
            trust_conditions={("StringEquals", "aws:SourceAccount"): [ctx.account_id]},
            description=f"Role IoT assumes to provision sensors with template {self.template_name}",
            statements=[
                Statement("CreateSensorThing", ["iot:CreateThing", "iot:DescribeThing"], [any_thing]),
                Statement("DescribeFleetGroup", ["iot:DescribeThingGroup"], [thing_group_arn]),
                Statement("JoinFleetGroup", ["iot:AddThingToThingGroup"], [thing_group_arn, any_thing]),
                Statement(
                    "ActivateCertificate", ["iot:DescribeCertificate", "iot:UpdateCertificate"], [any_certificate]
                ),
                # AttachThingPrincipal has no resource-level permissions (Service Authorization Reference,
                # AWS IoT): any other Resource than "*" would grant nothing.
                Statement("AttachCertificateToThing", ["iot:AttachThingPrincipal"], ["*"]),
                Statement("ReadSensorPolicy", ["iot:GetPolicy"], [sensor_policy_arn]),
                Statement("AttachSensorPolicy", ["iot:AttachPolicy"], [any_certificate]),
            ],
        )
        self.hook = Function(
            self,
            "hook",
            ctx,
            concern="provisioning",
            description="Pre-provisioning hook: admits each allow-listed serial once",
            settings=onboarding.hook,
            kms_key_arn=props.kms_key_arn,
            environment=provisioning_environment(
                namer.environment_suffix, namer.metric_namespace(), props.allow_list_table_name
            ),
            statements=[
                # One conditional write per request: allowed -> claimed (the refused entry comes back
                # with the failed condition, so no read is needed).
                Statement("ClaimSerial", ["dynamodb:UpdateItem"], [props.allow_list_table_arn]),
                Statement("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [props.kms_key_arn]),
            ],
        )
        self.hook_permission = LambdaPermission(
            self,
            "hook-permission",
            statement_id="AllowIoTProvisioningTemplate",
            action="lambda:InvokeFunction",
            function_name=self.hook.function.function_name,
            principal="iot.amazonaws.com",
            source_arn=self.template_arn,
            source_account=ctx.account_id,
        )
        self.template = IotProvisioningTemplate(
            self,
            "template",
            name=self.template_name,
            description="Fleet provisioning by claim: thing named after the serial, its certificate active, "
            "the sensor policy, the fleet's thing group",
            enabled=onboarding.claim_template_enabled,
            type="FLEET_PROVISIONING",
            provisioning_role_arn=self.role.arn,
            template_body=json.dumps(template_body(props.sensor_policy_name, self.thing_group_name), sort_keys=True),
            pre_provisioning_hook=IotProvisioningTemplatePreProvisioningHook(
                target_arn=self.hook.function.arn, payload_version=HOOK_PAYLOAD_VERSION
            ),
            depends_on=[self.role.policy, self.hook_permission, self.thing_group],
        )
        claim_policy = policy_document(
            self, "claim-policy-document", claim_policy_statements(ctx.arn, self.template_name)
        )
        self.claim_policy = IotPolicy(
            self, "claim-policy", name=namer.name(Kind.IOT_POLICY, "sensor-claim"), policy=claim_policy.json
        )
