"""What moto's server cannot create or read back, and the narrowest exclusion used for each.

Every entry names the resource (by Terraform type and, where it matters, attribute), the exact error
seen, whose gap it is, and the override applied to the scratch copy of the stack (never to the
synthesized output). The list is as short as moto allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Gap:
    resource_type: str
    error: str
    owner: str  # "moto" or "ours"
    exclusion: str
    attributes: dict[str, Any] | None = None
    """Attribute values set in an override for every resource of the type (None: skip the resource)."""


EXCLUSIONS: tuple[Gap, ...] = ()
"""Overrides applied to scratch copies. Empty so far: every gap met up to now is filled in the emulator
(``tools/local/emulator.py``) instead, so the stacks are deployed exactly as synthesized."""

FILLED_IN_THE_EMULATOR: tuple[Gap, ...] = (
    Gap(
        "aws_budgets_budget",
        "apply hangs: retrying Budgets/DescribeSubscribersForNotification and Budgets/ListTagsForResource "
        "(HTTP 500, 'The ... action has not been implemented')",
        "moto",
        "the emulator describes the subscribers moto keeps, and keeps budget tags given at creation "
        "(List/Tag/UntagResource)",
    ),
    Gap(
        "aws_appautoscaling_target",
        "apply hangs: 'Still creating... [5m40s elapsed]', retrying Application Auto Scaling/ListTagsForResource "
        "(HTTP 500, 'The list_tags_for_resource action has not been implemented')",
        "moto",
        "the emulator keeps the tags given at RegisterScalableTarget and answers List/Tag/UntagResource",
    ),
    Gap(
        "aws_s3_bucket_policy (TLS-only Deny)",
        'terraform init: Unable to access object "tap/dev/terraform.tfstate" in S3 bucket ... HeadObject, '
        "StatusCode: 403, api error Forbidden",
        "moto",
        "moto drops statement conditions (and reports failed conditions as Deny); the emulator runs over TLS "
        "and evaluates aws:SecureTransport = true",
    ),
    Gap(
        "aws_iot_policy, aws_iot_topic_rule",
        "apply hangs: retrying request IoT/ListTagsForResource (HTTP 500, 'The list_tags_for_resource action "
        "has not been implemented')",
        "moto",
        "the emulator keeps IoT tags given at creation and answers List/Tag/UntagResource",
    ),
    Gap(
        "aws_kinesis_stream",
        "second plan: ~ tags_all = { + Environment, + ManagedBy, + Project } (CreateStream Tags ignored)",
        "moto",
        "the emulator applies CreateStream's Tags",
    ),
    Gap(
        "aws_lambda_function",
        "second plan: + dead_letter_config, + logging_config (not returned by GetFunction)",
        "moto",
        "the emulator keeps and returns DeadLetterConfig and LoggingConfig",
    ),
    Gap(
        "aws_lambda_event_source_mapping (DynamoDB stream)",
        "local run on the deployed dev: 'alert: 0 window changes' (moto hands stream records to its Lambda "
        "model, which cannot run code without Docker, then drops them)",
        "moto",
        "the emulator leaves stream records for readers; the local run plays the mapping's part",
    ),
    Gap(
        "aws_athena_named_query",
        "destroy hangs: 'Still destroying... [8m40s elapsed]' (DeleteNamedQuery: action not implemented, 500)",
        "moto",
        "the emulator implements DeleteNamedQuery",
    ),
    Gap(
        "aws_iot_provisioning_template",
        "moto 5.2 has no provisioning templates: Create/Describe/Update/Delete/ListProvisioningTemplate(s) and "
        "CreateProvisioningTemplateVersion answer 500 ('... has not been implemented')",
        "moto",
        "tools.local.iot_fleet.install keeps templates on moto's IoT backend (body, role, hook, enabled, type, "
        "versions) and their tags",
    ),
    Gap(
        "aws_iot_thing_group",
        "second plan: ~ tags_all (CreateThingGroup's tags are not kept; ListTagsForResource has nothing to return)",
        "moto",
        "the emulator keeps the tags given at CreateThingGroup (tools.local.iot_fleet.install)",
    ),
    Gap(
        "fleet provisioning by claim (MQTT API: CreateKeysAndCertificate / CreateCertificateFromCsr, RegisterThing)",
        "not an API moto offers: the device side runs over MQTT, and RegisterThing with a template name, the "
        "pre-provisioning hook and the provisioning role exist nowhere in moto",
        "moto",
        "tools.local.iot_fleet.provision_by_claim: claim certificate ACTIVE and its policy allowing the provisioning "
        "topics; the certificate created inactive; the hook called with AWS's documented input (5 s deadline); the "
        "template's resources applied. Not modelled: the provisioning role's IAM (IoT assumes it; no IAM check "
        "runs the template's calls)",
    ),
    Gap(
        "IoT authorization of a device's connect and publish",
        "moto has no MQTT broker and never evaluates IoT policies",
        "moto",
        "tools.local.iot_fleet.authorize_publish: certificate ACTIVE, attached to the thing it connects as, its "
        "policies allowing iot:Connect and iot:Publish with IoT's policy variables; the local ingest of onboarded "
        "sensors (tools.local.iot_fleet.publish) puts only what this allows on the stream",
    ),
)

SLOW_BUT_CORRECT = (
    "aws_s3_bucket_lifecycle_configuration: each create takes ~55 s against moto: the provider polls "
    "GetBucketLifecycleConfiguration until it matches what it put, and moto's answer omits "
    "TransitionDefaultMinimumObjectSize, so the provider waits for its timeout before accepting. The "
    "second plan is clean, so no exclusion is used; it costs about a minute per apply (applies run the "
    "four buckets in parallel)."
)

OPEN: tuple[Gap, ...] = ()
"""Gaps found but not handled: none."""


def apply_exclusions(stack_dir: Path) -> None:
    """Write the exclusions for the resources this stack has into ``moto_gaps_override.tf.json`` (a
    synthesized stack's ``cdk.tf.json`` or an ejected one's ``main.tf.json``)."""
    config = stack_dir / "cdk.tf.json"
    synthesized = json.loads((config if config.is_file() else stack_dir / "main.tf.json").read_text())
    resources: dict[str, dict[str, Any]] = {}
    for gap in EXCLUSIONS:
        for name in synthesized.get("resource", {}).get(gap.resource_type, {}):
            resources.setdefault(gap.resource_type, {})[name] = dict(gap.attributes or {"count": 0})
    if resources:
        (stack_dir / "moto_gaps_override.tf.json").write_text(json.dumps({"resource": resources}, indent=2) + "\n")
