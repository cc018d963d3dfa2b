"""moto's server, as ``tools.local.deploy_local`` runs it: ``python -m tools.local.emulator -H .. -p .. -c .. -k ..``.

The adjustments, all listed in ``tools/local/moto_gaps.py``:

- moto evaluates S3 bucket-policy statements without their conditions (its documented restriction) and
  reports any statement whose conditions fail as a Deny, so the stacks' TLS-only ``Deny`` (condition
  ``aws:SecureTransport = false``) refuses every object request. This server only listens over TLS,
  so it evaluates conditions with ``aws:SecureTransport = true``: the Deny then applies as in AWS.
- AWS IoT's provisioning templates and the tags of templates and thing groups (``tools.local.iot_fleet``);
- the response-encoding and Kinesis speed-ups of ``tools.local.moto_speedups`` (no change to what is stored).
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any

from tools.local import iot_fleet, moto_speedups

REQUEST_CONTEXT = {"aws:SecureTransport": "true"}
IOT_TAGS: dict[str, dict[str, str]] = {}
"""Tags of IoT resources by ARN (moto keeps none): written at creation, read by ListTagsForResource."""


def evaluate_bucket_policies_over_tls() -> None:
    """Evaluate each bucket-policy statement's conditions against what this server knows of a request.

    A statement whose conditions use keys the server cannot know, or that do not hold, does not apply
    (moto instead drops conditions, and reports a Deny for any statement whose conditions fail).
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult  # noqa: PLC0415
    from moto.s3.models import FakeBucket  # noqa: PLC0415

    def holds(conditions: dict[str, dict[str, Any]]) -> bool:
        for operator, tests in conditions.items():
            for key, expected in tests.items():
                values = [str(v).lower() for v in (expected if isinstance(expected, list) else [expected])]
                if operator not in ("Bool", "StringEquals") or key not in REQUEST_CONTEXT:
                    return False
                if REQUEST_CONTEXT[key].lower() not in values:
                    return False
        return True

    def get_permission(self: FakeBucket, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode())
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        applicable = [
            {k: v for k, v in statement.items() if k != "Condition"}
            for statement in statements
            if not statement.get("Condition") or holds(statement["Condition"])
        ]
        if not applicable:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": applicable})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def iot_tags() -> None:
    """Tags for IoT resources, which moto 5.2 does not implement (ListTagsForResource answers 500).

    The provider reads them after creating a policy or topic rule and retries the 500 for minutes; with
    no tags read back, the provider's default tags would also show as a perpetual diff.
    """
    from moto.core.responses import ActionResult, EmptyResult  # noqa: PLC0415
    from moto.iot.responses import IoTResponse  # noqa: PLC0415

    tags = IOT_TAGS

    def arn_of(response: IoTResponse, kind: str, name: str) -> str:
        return f"arn:aws:iot:{response.region}:{response.current_account}:{kind}/{name}"

    create_policy, create_topic_rule = IoTResponse.create_policy, IoTResponse.create_topic_rule

    def recorded_create_policy(self: IoTResponse) -> Any:
        result = create_policy(self)
        given = self._get_param("tags") or []
        tags[arn_of(self, "policy", self._get_param("policyName"))] = {t["Key"]: t.get("Value", "") for t in given}
        return result

    def recorded_create_topic_rule(self: IoTResponse) -> Any:
        result = create_topic_rule(self)
        header = self.headers.get("x-amz-tagging", "")
        parsed = dict(urllib.parse.parse_qsl(header, keep_blank_values=True))
        tags[arn_of(self, "rule", self._get_param("ruleName"))] = parsed
        return result

    def list_tags_for_resource(self: IoTResponse) -> Any:
        found = tags.get(self._get_param("resourceArn"), {})
        return ActionResult({"tags": [{"Key": k, "Value": v} for k, v in sorted(found.items())]})

    def tag_resource(self: IoTResponse) -> Any:
        target = tags.setdefault(self._get_param("resourceArn"), {})
        for tag in self._get_param("tags") or []:
            target[tag["Key"]] = tag.get("Value", "")
        return EmptyResult()

    def untag_resource(self: IoTResponse) -> Any:
        target = tags.setdefault(self._get_param("resourceArn"), {})
        for key in self.querystring.get("tagKeys", []):
            target.pop(key, None)
        return EmptyResult()

    IoTResponse.create_policy = recorded_create_policy  # type: ignore[method-assign]
    IoTResponse.create_topic_rule = recorded_create_topic_rule  # type: ignore[method-assign]
    IoTResponse.list_tags_for_resource = list_tags_for_resource  # type: ignore[attr-defined]
    IoTResponse.tag_resource = tag_resource  # type: ignore[attr-defined]
    IoTResponse.untag_resource = untag_resource  # type: ignore[attr-defined]


def lambda_configuration() -> None:
    """moto 5.2 drops a function's DeadLetterConfig and LoggingConfig: keep and return them."""
    from moto.awslambda.models import LambdaFunction  # noqa: PLC0415

    init, get_configuration = LambdaFunction.__init__, LambdaFunction.get_configuration

    def recording_init(self: LambdaFunction, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        init(self, account_id, spec, *args, **kwargs)
        self._kept = {k: spec[k] for k in ("DeadLetterConfig", "LoggingConfig") if spec.get(k)}  # type: ignore[attr-defined]

    def configuration(self: LambdaFunction, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**get_configuration(self, *args, **kwargs), **getattr(self, "_kept", {})}

    LambdaFunction.__init__ = recording_init  # type: ignore[method-assign]
    LambdaFunction.get_configuration = configuration  # type: ignore[method-assign]


def kinesis_tags_on_create() -> None:
    """moto 5.2 ignores the Tags of CreateStream: apply them as AddTagsToStream would."""
    from moto.kinesis.responses import KinesisResponse  # noqa: PLC0415

    create_stream = KinesisResponse.create_stream

    def create_with_tags(self: KinesisResponse) -> Any:
        result = create_stream(self)
        if tags := self._get_param("Tags"):
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return result

    KinesisResponse.create_stream = create_with_tags  # type: ignore[method-assign]


def keep_table_stream_records() -> None:
    """Leave DynamoDB stream records for their readers.

    With an event source mapping on a table's stream, moto 5.2 hands each record to its Lambda model
    (which cannot run code without Docker) and then drops the records, so nothing is left to read; the
    local run plays the mapping's part instead.
    """
    from moto.awslambda.models import LambdaBackend  # noqa: PLC0415

    LambdaBackend.send_dynamodb_items = lambda self, *args, **kwargs: None  # type: ignore[method-assign]


def athena_delete_named_query() -> None:
    """moto 5.2 does not implement DeleteNamedQuery (destroy then retries for many minutes)."""
    from moto.athena.responses import AthenaResponse  # noqa: PLC0415

    def delete_named_query(self: AthenaResponse) -> str:
        self.athena_backend.named_queries.pop(self._get_param("NamedQueryId"), None)
        return "{}"

    AthenaResponse.delete_named_query = delete_named_query  # type: ignore[attr-defined]


def budgets_subscribers_and_tags() -> None:
    """moto 5.2 keeps a budget's notification subscribers but cannot describe them, and has no tags for
    budgets: the provider reads both after creating a budget (and fails on the 500s)."""
    from moto.budgets.responses import BudgetsResponse  # noqa: PLC0415

    tags: dict[str, dict[str, str]] = {}
    create_budget = BudgetsResponse.create_budget

    def budget_arn(response: BudgetsResponse, name: str) -> str:
        return f"arn:aws:budgets::{response._get_param('AccountId')}:budget/{name}"

    def recorded_create_budget(self: BudgetsResponse) -> str:
        result = create_budget(self)
        given = self._get_param("ResourceTags") or []
        tags[budget_arn(self, self._get_param("Budget")["BudgetName"])] = {t["Key"]: t["Value"] for t in given}
        return result

    def describe_subscribers_for_notification(self: BudgetsResponse) -> str:
        budget = self.backend.budgets[self._get_param("AccountId")][self._get_param("BudgetName")]
        wanted = self._get_param("Notification")
        (found,) = [n for n in budget.notifications if n.details == wanted]
        return json.dumps({"Subscribers": found.subscribers})

    def list_tags_for_resource(self: BudgetsResponse) -> str:
        found = tags.get(self._get_param("ResourceARN"), {})
        return json.dumps({"ResourceTags": [{"Key": k, "Value": v} for k, v in sorted(found.items())]})

    def tag_resource(self: BudgetsResponse) -> str:
        target = tags.setdefault(self._get_param("ResourceARN"), {})
        target.update({t["Key"]: t["Value"] for t in self._get_param("ResourceTags") or []})
        return json.dumps({})

    def untag_resource(self: BudgetsResponse) -> str:
        target = tags.setdefault(self._get_param("ResourceARN"), {})
        for key in self._get_param("ResourceTagKeys") or []:
            target.pop(key, None)
        return json.dumps({})

    BudgetsResponse.create_budget = recorded_create_budget  # type: ignore[method-assign]
    BudgetsResponse.describe_subscribers_for_notification = describe_subscribers_for_notification  # type: ignore[attr-defined]
    BudgetsResponse.list_tags_for_resource = list_tags_for_resource  # type: ignore[attr-defined]
    BudgetsResponse.tag_resource = tag_resource  # type: ignore[attr-defined]
    BudgetsResponse.untag_resource = untag_resource  # type: ignore[attr-defined]


def application_autoscaling_tags() -> None:
    """moto 5.2 keeps no tags for scalable targets and answers List/Tag/UntagResource with 500: the provider
    reads a target's tags after RegisterScalableTarget and retries until its timeout."""
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse as Response  # noqa: PLC0415

    tags: dict[str, dict[str, str]] = {}
    register = Response.register_scalable_target

    def recorded_register(self: Response) -> str:
        result = register(self)
        arn = json.loads(result)["ScalableTargetARN"]
        tags.setdefault(arn, {}).update(self._get_param("Tags") or {})
        return result

    def list_tags_for_resource(self: Response) -> str:
        return json.dumps({"Tags": dict(sorted(tags.get(self._get_param("ResourceARN"), {}).items()))})

    def tag_resource(self: Response) -> str:
        tags.setdefault(self._get_param("ResourceARN"), {}).update(self._get_param("Tags") or {})
        return json.dumps({})

    def untag_resource(self: Response) -> str:
        target = tags.setdefault(self._get_param("ResourceARN"), {})
        for key in self._get_param("TagKeys") or []:
            target.pop(key, None)
        return json.dumps({})

    Response.register_scalable_target = recorded_register  # type: ignore[method-assign]
    Response.list_tags_for_resource = list_tags_for_resource  # type: ignore[attr-defined]
    Response.tag_resource = tag_resource  # type: ignore[attr-defined]
    Response.untag_resource = untag_resource  # type: ignore[attr-defined]


def main(argv: list[str]) -> None:
    if "-c" not in argv and "--ssl-cert" not in argv:
        raise SystemExit("the emulator only runs over TLS (pass -c CERT -k KEY)")
    evaluate_bucket_policies_over_tls()
    iot_tags()
    iot_fleet.install(IOT_TAGS)
    lambda_configuration()
    kinesis_tags_on_create()
    keep_table_stream_records()
    athena_delete_named_query()
    budgets_subscribers_and_tags()
    application_autoscaling_tags()
    moto_speedups.install()
    from moto.server import main as moto_main  # noqa: PLC0415

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
