"""Sensors to Kinesis: the IoT policy sensors connect with, the topic rule, and the data stream.

Sensors should publish through Basic Ingest, on ``$aws/rules/<rule>/tap/<env>/sensors/<thing>/readings``
(``Namer.sensor_publish_topic``). IoT hands such a message straight to the ingestion rule, without the
message broker: no messaging charge (rules and actions are still billed). The rule sees the topic
without the ``$aws/rules/<rule>/`` prefix, so ``topic(4)`` is still the thing name
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html). The contract's topic,
``tap/<env>/sensors/<thing>/readings``, stays allowed: firmware that publishes there keeps working,
billed as messaging. The rule's ``FROM`` is not applied to Basic Ingest messages, so the sensor policy
(a thing may publish on its own topic, in either form, and nothing else) is what keeps the thing name
at level 4 (the contract's origin rule). The price of Basic Ingest is flexibility: nothing can subscribe
to these topics (no other device, rule or MQTT client sees a reading), a second consumer needs another
action on this rule or a reader of the stream, and the rule's name is part of every sensor's topic.

AWS substitution templates (``${topic(4)}``, ``${iot:Connection.Thing.ThingName}``) are written
``$${...}`` so that Terraform passes them through instead of reading them as its own interpolation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.iot_policy import IotPolicy
from cdktf_cdktf_provider_aws.iot_topic_rule import (
    IotTopicRule,
    IotTopicRuleErrorAction,
    IotTopicRuleErrorActionS3,
    IotTopicRuleKinesis,
)
from cdktf_cdktf_provider_aws.kinesis_stream import KinesisStream, KinesisStreamStreamModeDetails
from constructs import Construct

from stacks.config import StreamMode
from stacks.context import StackContext
from stacks.iam import ServiceRole, Statement, policy_document
from stacks.naming import Kind, Namer

SQL_VERSION = "2016-03-23"
THING_NAME = "$${iot:Connection.Thing.ThingName}"
# Topic levels the rule sees: tap/<suffix>/sensors/<sensor id>/readings (the Basic Ingest prefix
# $aws/rules/<rule name>/ stripped); the sensor id is level 4.
SENSOR_ID_FROM_TOPIC = "$${topic(4)}"
IOT_ERROR_PREFIX = "iot-errors/"


def sensor_policy_statements(arn: Callable[[str, str], str], namer: Namer) -> list[Statement]:
    """The sensor policy: connect only as its own (attached) thing, publish only on its own topic.

    ``arn(service, resource)`` builds an ARN of the environment's account and region (``StackContext.arn``;
    the local run passes its own account's)."""
    return [
        Statement(
            "ConnectAsOwnThing",
            ["iot:Connect"],
            [arn("iot", f"client/{THING_NAME}")],
            {("Bool", "iot:Connection.Thing.IsAttached"): ["true"]},
        ),
        # Its own topic only, in both forms: the contract's (tap/<env>/sensors/<thing>/readings, what
        # existing firmware publishes on, billed as messaging) and the same topic through Basic Ingest
        # (no messaging charge; what the capacity model and the budget assume).
        Statement(
            "PublishOwnReadings",
            ["iot:Publish"],
            [
                arn("iot", f"topic/{namer.sensor_publish_topic(THING_NAME)}"),
                arn("iot", f"topic/{namer.sensor_topic_prefix()}/{THING_NAME}/readings"),
            ],
        ),
    ]


@dataclass(frozen=True)
class IngestionProps:
    """Props of :class:`Ingestion`."""

    kms_key_arn: str
    """Key encrypting the stream."""
    error_bucket_name: str
    """Bucket (the quarantine) where the rule's error action keeps messages it could not put."""
    error_bucket_arn: str


class Ingestion(Construct):
    """IoT Core topic rule and sensor policy, and the Kinesis data stream they feed."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: IngestionProps) -> None:
        super().__init__(scope, id_)
        namer, config = ctx.namer, ctx.config
        provisioned = config.stream_mode is StreamMode.PROVISIONED
        self.stream_name = namer.name(Kind.KINESIS_STREAM, "readings")
        self.stream = KinesisStream(
            self,
            "stream",
            name=self.stream_name,
            stream_mode_details=KinesisStreamStreamModeDetails(stream_mode=config.stream_mode.value),
            shard_count=config.shard_count if provisioned else None,
            retention_period=config.stream_retention_hours,
            encryption_type="KMS",
            kms_key_id=props.kms_key_arn,
            enforce_consumer_deletion=not ctx.production,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if ctx.production else None,
        )
        rule_name = namer.ingest_rule_name()
        rule_arn = ctx.arn("iot", f"rule/{rule_name}")
        from_this_rule = {
            ("StringEquals", "aws:SourceAccount"): [ctx.account_id],
            ("ArnEquals", "aws:SourceArn"): [rule_arn],
        }
        self.rule_role = ServiceRole(
            self,
            "rule-role",
            name=namer.name(Kind.IAM_ROLE, "iot-to-kinesis"),
            service="iot.amazonaws.com",
            trust_conditions=from_this_rule,
            description="Lets the ingestion topic rule put readings on the Kinesis stream",
            statements=[
                Statement("PutReadings", ["kinesis:PutRecord"], [self.stream.arn]),
                Statement(
                    "EncryptReadings",
                    ["kms:GenerateDataKey"],
                    [props.kms_key_arn],
                    {("StringEquals", "kms:ViaService"): [ctx.service_endpoint("kinesis")]},
                ),
            ],
        )
        self.error_role = ServiceRole(
            self,
            "rule-error-role",
            name=namer.name(Kind.IAM_ROLE, "iot-errors"),
            service="iot.amazonaws.com",
            trust_conditions=from_this_rule,
            description="Lets the ingestion topic rule keep messages it failed to put in the quarantine",
            statements=[
                Statement("KeepFailedMessages", ["s3:PutObject"], [f"{props.error_bucket_arn}/{IOT_ERROR_PREFIX}*"]),
                Statement(
                    "EncryptFailedMessages",
                    ["kms:GenerateDataKey"],
                    [props.kms_key_arn],
                    {("StringEquals", "kms:ViaService"): [ctx.service_endpoint("s3")]},
                ),
            ],
        )
        self.topic_filter = namer.topic_filter()
        self.rule = IotTopicRule(
            self,
            "rule",
            name=rule_name,
            description=f"Readings published on {self.topic_filter} to the Kinesis stream",
            enabled=True,
            sql=f"SELECT * FROM '{self.topic_filter}'",
            sql_version=SQL_VERSION,
            kinesis=[
                IotTopicRuleKinesis(
                    stream_name=self.stream.name,
                    partition_key=SENSOR_ID_FROM_TOPIC,
                    role_arn=self.rule_role.arn,
                )
            ],
            error_action=IotTopicRuleErrorAction(
                s3=IotTopicRuleErrorActionS3(
                    bucket_name=props.error_bucket_name,
                    key=f"{IOT_ERROR_PREFIX}{SENSOR_ID_FROM_TOPIC}/$${{timestamp()}}-$${{newuuid()}}.json",
                    role_arn=self.error_role.arn,
                )
            ),
            depends_on=[self.rule_role.policy, self.error_role.policy],
        )
        self.rule_name = rule_name
        self.publish_topic = namer.sensor_publish_topic("+")
        """What sensors publish on, ``+`` standing for their thing name (an output)."""
        # IoT policies share IAM's grammar; a policy document keeps the JSON well-formed in JSON and HCL output.
        sensor_policy = policy_document(self, "sensor-policy-document", sensor_policy_statements(ctx.arn, namer))
        self.sensor_policy_name = namer.name(Kind.IOT_POLICY, "sensor")
        """Plain name of the sensor policy (the claim template names it in its body)."""
        self.sensor_policy = IotPolicy(
            self,
            "sensor-policy",
            name=self.sensor_policy_name,
            policy=sensor_policy.json,
        )
