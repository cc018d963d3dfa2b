"""The silence check (contract "Silent sensors"): its function, the schedule that runs it every minute,
and the role the schedule invokes it with."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.lambda_function_event_invoke_config import LambdaFunctionEventInvokeConfig
from cdktf_cdktf_provider_aws.scheduler_schedule import (
    SchedulerSchedule,
    SchedulerScheduleFlexibleTimeWindow,
    SchedulerScheduleTarget,
    SchedulerScheduleTargetDeadLetterConfig,
    SchedulerScheduleTargetRetryPolicy,
)
from cdktf_cdktf_provider_aws.scheduler_schedule_group import SchedulerScheduleGroup
from constructs import Construct

from stacks.context import StackContext
from stacks.iam import ServiceRole, Statement
from stacks.layout import OPEN_OUTAGES, SCHEDULE_GROUP, SILENCE_SCHEDULE, RuntimeNames, silence_environment
from stacks.naming import Kind
from stacks.processing import Function

SCHEDULE_EXPRESSION = "rate(1 minute)"
CHECK_RETRIES = 1
"""Retries of a failed run, by Scheduler (delivery) and by Lambda (the asynchronous invocation)."""
CHECK_EVENT_AGE_SECONDS = 120
"""A run not started within two minutes is dropped to the DLQ: every run polls the whole fleet, so a late
run would only repeat what the next one does."""


@dataclass(frozen=True)
class SilenceProps:
    """Props of :class:`SilenceCheck`: what it reads, writes and publishes to."""

    kms_key_arn: str
    names: RuntimeNames
    sensor_windows_table_arn: str
    sensor_outages_table_arn: str
    fleet_table_arn: str
    alert_topic_arn: str


class SilenceCheck(Construct):
    """The every-minute check for silent sensors: function, schedule, and their least-privilege roles."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: SilenceProps) -> None:
        super().__init__(scope, id_)
        namespace = ctx.namer.metric_namespace()
        windows, outages = props.sensor_windows_table_arn, props.sensor_outages_table_arn
        self.check = Function(
            self,
            "function",
            ctx,
            concern="silence",
            description="Finds silent sensors every minute; one alert per outage, one recovery notice",
            settings=ctx.config.silence,
            kms_key_arn=props.kms_key_arn,
            environment=silence_environment(props.names, ctx.config),
            statements=[
                # The registry's hash shards and the shards' watermarks; never a write.
                Statement("ReadFleet", ["dynamodb:Query"], [props.fleet_table_arn]),
                # Each member's window heads (BatchGetItem) and newest window items (Query); never a write.
                Statement("ReadSensorWindows", ["dynamodb:BatchGetItem", "dynamodb:Query"], [windows]),
                Statement(
                    "KeepOutages",  # conditional writes: one outage, one alert and one notice each
                    ["dynamodb:PutItem", "dynamodb:UpdateItem"],
                    [outages],
                ),
                Statement("ReadOpenOutages", ["dynamodb:Query"], [f"{outages}/index/{OPEN_OUTAGES.name}"]),
                Statement(
                    "PublishOwnMetrics",
                    ["cloudwatch:PutMetricData"],
                    ["*"],  # PutMetricData has no resource-level permissions; the namespace condition scopes it
                    {("StringEquals", "cloudwatch:namespace"): [namespace]},
                ),
                Statement("PublishAlerts", ["sns:Publish"], [props.alert_topic_arn]),
                Statement("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [props.kms_key_arn]),
            ],
        )
        function = self.check.function
        self.invoke_config = LambdaFunctionEventInvokeConfig(
            self,
            "async",
            function_name=function.function_name,
            maximum_retry_attempts=CHECK_RETRIES,
            maximum_event_age_in_seconds=CHECK_EVENT_AGE_SECONDS,
        )  # what still fails lands in the function's dead-letter queue (``Function``)
        schedule_name = ctx.namer.name(Kind.SCHEDULE, SILENCE_SCHEDULE)
        # The environment's own schedule group: Scheduler assumes the role with the *group's* ARN as
        # aws:SourceArn ("The ARN you specify must be a schedule group", Scheduler user guide,
        # cross-service confused deputy prevention), so the trust names the group, never the schedule.
        self.group = SchedulerScheduleGroup(self, "group", name=ctx.namer.name(Kind.SCHEDULE_GROUP, SCHEDULE_GROUP))
        self.scheduler_role = ServiceRole(
            self,
            "scheduler-role",
            name=ctx.namer.name(Kind.IAM_ROLE, "silence-schedule"),
            service="scheduler.amazonaws.com",
            description=f"Role {schedule_name} invokes {self.check.function_name} with",
            trust_conditions={
                ("StringEquals", "aws:SourceAccount"): [ctx.account_id],
                ("ArnEquals", "aws:SourceArn"): [self.group.arn],
            },
            statements=[
                Statement("InvokeCheck", ["lambda:InvokeFunction"], [function.arn]),
                Statement("DeadLetters", ["sqs:SendMessage"], [self.check.dlq.arn]),
                # The dead-letter queue is encrypted with the environment's key: SQS uses it on the
                # role's behalf (the key policy admits the account's roles via SQS).
                Statement("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [props.kms_key_arn]),
            ],
        )
        self.schedule = SchedulerSchedule(
            self,
            "schedule",
            name=schedule_name,
            description="Runs the silence check every minute (contract: silent sensors)",
            schedule_expression=SCHEDULE_EXPRESSION,
            group_name=self.group.name,
            flexible_time_window=SchedulerScheduleFlexibleTimeWindow(mode="OFF"),
            # No customer managed key: the only data Scheduler can encrypt with one is the target's input,
            # here the constant "{}"; it is encrypted at rest with an AWS owned key (Scheduler user guide,
            # "Encryption at rest"), and a CMK would need a key policy statement for Scheduler and a KMS
            # request every minute for nothing secret (checkov-skips.json, CKV_AWS_297).
            target=SchedulerScheduleTarget(
                arn=function.arn,
                role_arn=self.scheduler_role.arn,
                input="{}",
                retry_policy=SchedulerScheduleTargetRetryPolicy(
                    maximum_retry_attempts=CHECK_RETRIES, maximum_event_age_in_seconds=CHECK_EVENT_AGE_SECONDS
                ),
                dead_letter_config=SchedulerScheduleTargetDeadLetterConfig(arn=self.check.dlq.arn),
            ),
            depends_on=[self.scheduler_role.policy],
        )
