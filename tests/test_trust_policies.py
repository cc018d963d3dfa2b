"""Every service integration of every stack, evaluated against the policy AWS checks it with.

moto lets any service assume any role and publish anywhere; AWS checks the role's trust policy (and the
topic, key and bucket policies) against the request the service makes, with the ``aws:SourceArn`` and
``aws:SourceAccount`` values (or encryption context) each service documents that it sends. A trust policy
scoped to the wrong ARN deploys, and then the service cannot assume the role: Scheduler's CreateSchedule
validates the role and the provider gives up after two minutes.

So this module finds each integration in the synthesized stack (who assumes each role, which alarms and
budgets publish to the encrypted topic, which log groups and buckets use the key and the log bucket),
builds the request the service documents, and evaluates the rendered policy with principalmapper's local
policy simulator (conditions included: ``StringEquals``, ``ArnEquals``, ``ArnLike``...). Each request
must be allowed, and the same request from another account's resource must not be: a condition that
lets everything through fails here too.
"""

from __future__ import annotations

import collections
import collections.abc
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import Synth
from tests.iam_policies import ACCOUNT_ID, RenderedPolicy, StackRenderer, stack_policies
from tests.tfjson import walk_strings

# principalmapper 1.1.5 (its latest release) imports Mapping and MutableMapping from ``collections``, where
# Python 3.10 removed the aliases of ``collections.abc``; restoring them is all it needs.
for _alias in ("Mapping", "MutableMapping"):
    if not hasattr(collections, _alias):
        setattr(collections, _alias, getattr(collections.abc, _alias))

from principalmapper.querying.local_policy_simulation import (  # noqa: E402
    ResourcePolicyEvalResult,
    resource_policy_authorization,
)

OTHER_ACCOUNT = "999999999999"

IOT = "https://docs.aws.amazon.com/iot/latest/developerguide/cross-service-confused-deputy-prevention.html"
FIREHOSE = "https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html"
SCHEDULER = "https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html"
LAMBDA = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html"
ALARMS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html"
BUDGETS = "https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html"
LOGS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"
S3_LOGGING = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html"


@dataclass(frozen=True)
class Request:
    """What a service asks AWS for on the stack's behalf, as its documentation says it asks."""

    integration: str
    service: str
    action: str
    resource: str
    policy: str
    """The attribute whose policy decides: ``<type>.<name>.<attribute>``."""
    context: dict[str, str] = field(default_factory=dict)
    documented: str = ""

    def from_other_account(self) -> Request:
        """The same request made by a resource of another account (its ARN and account swapped)."""
        swapped = {k: v.replace(ACCOUNT_ID, OTHER_ACCOUNT) for k, v in self.context.items()}
        return Request(self.integration, self.service, self.action, self.resource, self.policy, swapped)


def _refs(value: Any, type_: str) -> list[str]:
    """``type.name`` of every reference to a resource of ``type_`` in ``value``."""
    pattern = re.compile(rf"\$\{{{type_}\.([A-Za-z0-9_-]+)\.")
    return [f"{type_}.{name}" for text in walk_strings(value) for name in pattern.findall(text)]


def service_requests(stack_id: str, doc: dict[str, Any]) -> Iterator[Request]:
    """Every request a service makes against one of the stack's policies (trust, topic, key, bucket)."""
    r = StackRenderer(stack_id, doc)
    resources = doc.get("resource", {})

    def arn(address: str) -> str:
        return r.evaluate(f"{address}.arn", stack_id)

    def assumed(
        holder: Any, integration: str, service: str, context: dict[str, str], documented: str
    ) -> Iterator[Request]:
        """``sts:AssumeRole`` of every role ``holder`` (a resource's body) hands to ``service``."""
        for role in set(_refs(holder, "aws_iam_role")):
            yield Request(integration, service, "sts:AssumeRole", arn(role), f"{role}.assume_role_policy", context,
                          documented)  # fmt: skip

    # Roles, by the resource that hands them to a service.
    for name, rule in resources.get("aws_iot_topic_rule", {}).items():
        context = {"aws:SourceArn": arn(f"aws_iot_topic_rule.{name}"), "aws:SourceAccount": ACCOUNT_ID}
        yield from assumed(rule, f"IoT rule {name}", "iot.amazonaws.com", context, IOT)
    for name, stream in resources.get("aws_kinesis_firehose_delivery_stream", {}).items():
        context = {
            "sts:ExternalId": ACCOUNT_ID,
            "aws:SourceAccount": ACCOUNT_ID,
            "aws:SourceArn": arn(f"aws_kinesis_firehose_delivery_stream.{name}"),
        }
        yield from assumed(stream, f"Firehose {name}", "firehose.amazonaws.com", context, FIREHOSE)
    for name, schedule in resources.get("aws_scheduler_schedule", {}).items():
        group_name = r.render_string(schedule.get("group_name", "default"), stack_id)
        group_arn = f"arn:aws:scheduler:{r.region()}:{ACCOUNT_ID}:schedule-group/{group_name}"
        context = {"aws:SourceArn": group_arn, "aws:SourceAccount": ACCOUNT_ID}
        yield from assumed(schedule, f"schedule {name}", "scheduler.amazonaws.com", context, SCHEDULER)
    for name, function in resources.get("aws_lambda_function", {}).items():
        yield from assumed(function["role"], f"function {name}", "lambda.amazonaws.com", {}, LAMBDA)
    for name, template in resources.get("aws_iot_provisioning_template", {}).items():
        template_name = r.render_string(template["name"], stack_id)
        template_arn = f"arn:aws:iot:{r.region()}:{ACCOUNT_ID}:provisioningtemplate/{template_name}"
        context = {"aws:SourceArn": template_arn, "aws:SourceAccount": ACCOUNT_ID}
        role = template["provisioning_role_arn"]
        yield from assumed(role, f"provisioning template {name}", "iot.amazonaws.com", context, IOT)

    # The encrypted alert topic: alarms and budgets publish to it and use the key that encrypts it.
    topic_policies = {
        body["arn"]: f"aws_sns_topic_policy.{name}.policy"
        for name, body in resources.get("aws_sns_topic_policy", {}).items()
    }
    for topic_name, topic in resources.get("aws_sns_topic", {}).items():
        topic_ref = f"${{aws_sns_topic.{topic_name}.arn}}"
        topic_arn = arn(f"aws_sns_topic.{topic_name}")
        keys = _refs(topic.get("kms_master_key_id", ""), "aws_kms_key")
        senders = []
        for name, alarm in resources.get("aws_cloudwatch_metric_alarm", {}).items():
            actions = [*alarm.get("alarm_actions", []), *alarm.get("ok_actions", [])]
            if topic_ref in actions:
                alarm_name = r.render_string(alarm["alarm_name"], stack_id)
                alarm_arn = f"arn:aws:cloudwatch:{r.region()}:{ACCOUNT_ID}:alarm:{alarm_name}"
                senders.append((f"alarm {name}", "cloudwatch.amazonaws.com", alarm_arn, ALARMS))
        for name, budget in resources.get("aws_budgets_budget", {}).items():
            if any(topic_ref in n.get("subscriber_sns_topic_arns", []) for n in budget.get("notification", [])):
                budget_arn = f"arn:aws:budgets::{ACCOUNT_ID}:budget/{r.render_string(budget['name'], stack_id)}"
                senders.append((f"budget {name}", "budgets.amazonaws.com", budget_arn, BUDGETS))
        for integration, service, source, documented in senders:
            context = {"aws:SourceArn": source, "aws:SourceAccount": ACCOUNT_ID}
            yield Request(
                integration, service, "sns:Publish", topic_arn, topic_policies[topic_ref], context, documented
            )
            for key in keys:
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    key_context = {**context, "kms:EncryptionContext:aws:sns:topicArn": topic_arn}
                    yield Request(integration, service, action, arn(key), f"{key}.policy", key_context, documented)

    # Encrypted log groups: CloudWatch Logs uses the key with the log group's ARN as encryption context.
    for name, group in resources.get("aws_cloudwatch_log_group", {}).items():
        for key in _refs(group.get("kms_key_id", ""), "aws_kms_key"):
            group_arn = f"arn:aws:logs:{r.region()}:{ACCOUNT_ID}:log-group:{r.render_string(group['name'], stack_id)}"
            for action in ("kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"):
                context = {"kms:EncryptionContext:aws:logs:arn": group_arn}
                yield Request(
                    f"log group {name}",
                    f"logs.{r.region()}.amazonaws.com",
                    action,
                    arn(key),
                    f"{key}.policy",
                    context,
                    LOGS,
                )

    # Server access logging: the logging service writes to the target bucket for each source bucket.
    bucket_policies = {
        body["bucket"]: f"aws_s3_bucket_policy.{name}.policy"
        for name, body in resources.get("aws_s3_bucket_policy", {}).items()
    }
    for name, logging in resources.get("aws_s3_bucket_logging", {}).items():
        target = logging["target_bucket"]
        (source,) = _refs(logging["bucket"], "aws_s3_bucket")
        target_arn = r.render_string(target.replace(".id}", ".arn}"), stack_id)
        prefix = r.render_string(logging.get("target_prefix", ""), stack_id)
        context = {"aws:SourceArn": arn(source), "aws:SourceAccount": ACCOUNT_ID}
        yield Request(
            f"access logs of {name}", "logging.s3.amazonaws.com", "s3:PutObject", f"{target_arn}/{prefix}object",
            bucket_policies[target], context, S3_LOGGING,
        )  # fmt: skip


def decision(request: Request, policies: dict[str, RenderedPolicy]) -> ResourcePolicyEvalResult:
    policy = policies[request.policy]
    return resource_policy_authorization(
        request.service, ACCOUNT_ID, policy.document, request.action, request.resource, dict(request.context)
    )


@pytest.fixture(scope="module")
def stacks(synth: Synth) -> list[tuple[list[Request], dict[str, RenderedPolicy]]]:
    found = []
    for stack_id, stack in synth.docs.items():
        doc = stack.doc
        policies = {p.attached_to: p for p in stack_policies(stack_id, doc)}
        found.append((list(service_requests(stack_id, doc)), policies))
    return found


def test_every_service_integration_is_allowed_by_the_policy_aws_checks(
    stacks: list[tuple[list[Request], dict[str, RenderedPolicy]]],
) -> None:
    refused = [
        f"{r.integration}: {r.service} {r.action} on {r.resource} with {json.dumps(r.context)} ({r.documented})"
        for requests, policies in stacks
        for r in requests
        if decision(r, policies) is not ResourcePolicyEvalResult.SERVICE_MATCH
    ]
    assert not refused, "\n".join(refused)


def test_the_same_requests_from_another_accounts_resources_are_refused(
    stacks: list[tuple[list[Request], dict[str, RenderedPolicy]]],
) -> None:
    """Confused-deputy protection: a condition that would let another account's rule, schedule, alarm or
    budget through fails here (the Lambda and DynamoDB integrations carry no source to swap)."""
    allowed = [
        f"{r.integration}: {r.action} with {json.dumps(r.context)}"
        for requests, policies in stacks
        for r in requests
        if r.context and decision(r.from_other_account(), policies) is ResourcePolicyEvalResult.SERVICE_MATCH
    ]
    assert not allowed, "\n".join(allowed)


def test_every_role_and_service_statement_is_reached_by_some_integration(
    stacks: list[tuple[list[Request], dict[str, RenderedPolicy]]],
) -> None:
    """A role or a service statement no integration exercises would go unchecked: each trust policy and each
    service principal of a resource policy must be the target of at least one request above."""
    unchecked = []
    for requests, policies in stacks:
        reached = {(r.policy, r.service) for r in requests}
        for attached_to, policy in policies.items():
            for statement in policy.document["Statement"]:
                principal = statement.get("Principal")
                if not isinstance(principal, dict) or "Service" not in principal:
                    continue
                services = principal["Service"] if isinstance(principal["Service"], list) else [principal["Service"]]
                for service in services:
                    if service == "dynamodb.amazonaws.com":
                        continue  # reads the key's metadata itself; unconditioned, nothing to scope
                    if (attached_to, service) not in reached:
                        unchecked.append(f"{attached_to}: {service}")
    assert not unchecked, "\n".join(unchecked)


def test_a_schedule_role_trusting_the_schedule_instead_of_its_group_is_refused(
    stacks: list[tuple[list[Request], dict[str, RenderedPolicy]]],
) -> None:
    """The evaluator tells the two apart: the trust of every stack before its schedule group existed named
    the schedule's own ARN, which Scheduler never sends."""
    for requests, policies in stacks:
        for r in requests:
            if r.service != "scheduler.amazonaws.com":
                continue
            policy = policies[r.policy]
            schedule_arn = r.context["aws:SourceArn"].replace(":schedule-group/", ":schedule/") + "/check"
            wrong = json.loads(json.dumps(policy.document).replace(r.context["aws:SourceArn"], schedule_arn))
            assert (
                resource_policy_authorization(r.service, ACCOUNT_ID, wrong, r.action, r.resource, dict(r.context))
                is not ResourcePolicyEvalResult.SERVICE_MATCH
            )
