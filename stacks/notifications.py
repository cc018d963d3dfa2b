"""The alert topic: congestion alerts from the alert function and alarm notifications land here."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from stacks.context import StackContext
from stacks.iam import Statement, policy_document
from stacks.naming import Kind


def budgets_arn(ctx: StackContext, resource: str) -> str:
    """``arn:<partition>:budgets::<account>:<resource>`` (Budgets is global: no region)."""
    return ctx.arn("budgets", resource, regional=False)


def alert_topic_name(ctx: StackContext) -> str:
    return ctx.namer.name(Kind.SNS_TOPIC, "alerts")


class Notifications(Construct):
    """KMS-encrypted SNS topic with a TLS-only policy and an optional e-mail subscription."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, kms_key_arn: str) -> None:
        super().__init__(scope, id_)
        self.topic = SnsTopic(self, "topic", name=alert_topic_name(ctx), kms_master_key_id=kms_key_arn)
        document = policy_document(
            self,
            "topic-policy-document",
            [
                Statement(
                    "CloudWatchAlarmsPublish",
                    ["sns:Publish"],
                    [self.topic.arn],
                    {
                        ("StringEquals", "aws:SourceAccount"): [ctx.account_id],
                        ("ArnLike", "aws:SourceArn"): [ctx.arn("cloudwatch", "alarm:*")],
                    },
                    principals={"Service": ["cloudwatch.amazonaws.com"]},
                ),
                # As the Budgets user guide documents it (budgets-sns-policy): this account's budgets only.
                Statement(
                    "BudgetsPublish",
                    ["sns:Publish"],
                    [self.topic.arn],
                    {
                        ("StringEquals", "aws:SourceAccount"): [ctx.account_id],
                        ("ArnLike", "aws:SourceArn"): [budgets_arn(ctx, "*")],
                    },
                    principals={"Service": ["budgets.amazonaws.com"]},
                ),
                Statement(
                    "DenyInsecureTransport",
                    ["sns:Publish", "sns:Subscribe"],
                    [self.topic.arn],
                    {("Bool", "aws:SecureTransport"): ["false"]},
                    principals={"AWS": ["*"]},
                    effect="Deny",
                ),
            ],
        )
        self.topic_policy = SnsTopicPolicy(self, "topic-policy", arn=self.topic.arn, policy=document.json)
        if ctx.config.alert_email:
            SnsTopicSubscription(
                self, "email", topic_arn=self.topic.arn, protocol="email", endpoint=ctx.config.alert_email
            )

    @property
    def topic_arn(self) -> str:
        return self.topic.arn
