"""The environment's customer-managed KMS key and the key policy that says who may use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from stacks.context import StackContext
from stacks.iam import Statement, policy_document
from stacks.naming import Kind

# Administration of the key by the account (no usage: usage goes through the statements below).
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# Services that encrypt this environment's data with the key on behalf of its roles.
SERVICES_USING_KEY = ("dynamodb", "kinesis", "lambda", "s3", "sns", "sqs")


@dataclass(frozen=True)
class SecurityProps:
    """Props of :class:`Security`."""

    log_group_names: Sequence[str]
    """Log groups encrypted with the key (CloudWatch Logs may use it only for these)."""
    alert_topic_name: str
    """SNS topic encrypted with the key, to which CloudWatch alarms publish."""
    alarm_names: Sequence[str]
    """The environment's CloudWatch alarms: the only alarms whose notifications may use the key."""


class Security(Construct):
    """Customer-managed KMS key with rotation, used by every encrypted resource of the environment."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: SecurityProps) -> None:
        super().__init__(scope, id_)
        root = ctx.arn("iam", "root", regional=False)
        in_account = {("StringEquals", "kms:CallerAccount"): [ctx.account_id]}
        via_services = {("StringEquals", "kms:ViaService"): [ctx.service_endpoint(s) for s in SERVICES_USING_KEY]}
        topic_arn = ctx.arn("sns", props.alert_topic_name)
        statements = [
            Statement(
                sid="AccountAdministersKey",
                actions=KEY_ADMIN_ACTIONS,
                resources=["*"],
                principals={"AWS": [root]},
            ),
            Statement(
                sid="UseThroughEnvironmentServices",
                actions=KEY_USE_ACTIONS,
                resources=["*"],
                principals={"AWS": [root]},
                conditions={**in_account, **via_services},
            ),
            Statement(
                sid="GrantsForEnvironmentServices",
                actions=("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"),
                resources=["*"],
                principals={"AWS": [root]},
                conditions={**in_account, **via_services, ("Bool", "kms:GrantIsForAWSResource"): ["true"]},
            ),
            Statement(
                sid="CloudWatchLogsForEnvironmentLogGroups",
                actions=KEY_USE_ACTIONS,
                resources=["*"],
                principals={"Service": [ctx.service_endpoint("logs")]},
                conditions={
                    ("ArnEquals", "kms:EncryptionContext:aws:logs:arn"): [
                        ctx.arn("logs", f"log-group:{name}") for name in props.log_group_names
                    ]
                },
            ),
            # As AWS's example for alarms publishing to an encrypted topic: the calling alarms by
            # aws:SourceArn and aws:SourceAccount (kms:ViaService is not documented for this call).
            Statement(
                sid="CloudWatchAlarmsToAlertTopic",
                actions=("kms:Decrypt", "kms:GenerateDataKey"),
                resources=["*"],
                principals={"Service": ["cloudwatch.amazonaws.com"]},
                conditions={
                    ("StringEquals", "aws:SourceAccount"): [ctx.account_id],
                    ("ArnEquals", "aws:SourceArn"): [ctx.arn("cloudwatch", f"alarm:{n}") for n in props.alarm_names],
                    ("StringEquals", "kms:EncryptionContext:aws:sns:topicArn"): [topic_arn],
                },
            ),
            # Budgets publishes forecast warnings to the encrypted alert topic: this account's budgets.
            Statement(
                sid="BudgetsToAlertTopic",
                actions=("kms:Decrypt", "kms:GenerateDataKey*"),
                resources=["*"],
                principals={"Service": ["budgets.amazonaws.com"]},
                conditions={
                    ("StringEquals", "aws:SourceAccount"): [ctx.account_id],
                    ("ArnLike", "aws:SourceArn"): [ctx.arn("budgets", "*", regional=False)],
                },
            ),
            # DynamoDB's documented statement for a table encrypted with a customer managed key: the
            # service reads the key's metadata (DescribeKey, GetKeyRotationStatus, ...) itself.
            Statement(
                sid="DynamoDBReadsKeyMetadata",
                actions=("kms:Describe*", "kms:Get*", "kms:List*"),
                resources=["*"],
                principals={"Service": ["dynamodb.amazonaws.com"]},
            ),
        ]
        self.policy_document = policy_document(self, "key-policy", statements)
        self.key = KmsKey(
            self,
            "key",
            description=f"Data key of traffic analytics environment {ctx.namer.environment_suffix}",
            enable_key_rotation=True,
            deletion_window_in_days=30 if ctx.production else 7,
            policy=self.policy_document.json,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if ctx.production else None,
        )
        self.alias = KmsAlias(self, "alias", name=ctx.namer.name(Kind.KMS_ALIAS, "data"), target_key_id=self.key.key_id)

    @property
    def key_arn(self) -> str:
        return self.key.arn
