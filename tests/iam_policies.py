"""Every IAM policy a synthesized stack emits, rendered as the JSON document AWS would receive.

Policies are ``aws_iam_policy_document`` data sources (or, should one appear, inline JSON strings) attached
through a policy attribute (``assume_role_policy``, ``aws_iam_role_policy.policy``, bucket, key, topic or
queue policies). Terraform references inside them are replaced by plausible values of the right shape: ARNs
built from the referenced resource's configured name in the stack's region and account ``123456789012``,
so a linter can match resource ARN formats against actions. A reference, attribute or policy field this
module does not know raises :class:`UnresolvableReference` naming it: nothing is skipped silently.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from tools.local.iam_check import interpolate

ACCOUNT_ID = "123456789012"
PARTITION = "aws"
# The shape of a DynamoDB stream label (the stream's creation time).
STREAM_LABEL = "2025-01-01T00:00:00.000"

PolicyKind = Literal["identity", "resource", "trust", "iot"]

# Which attribute of which resource carries a policy, and what kind of policy AWS takes it as.
POLICY_ATTRIBUTES: dict[tuple[str, str], PolicyKind] = {
    ("aws_iam_role", "assume_role_policy"): "trust",
    ("aws_iam_role_policy", "policy"): "identity",
    ("aws_iam_policy", "policy"): "identity",
    ("aws_iam_user_policy", "policy"): "identity",
    ("aws_iam_group_policy", "policy"): "identity",
    ("aws_s3_bucket_policy", "policy"): "resource",
    ("aws_kms_key", "policy"): "resource",
    ("aws_sns_topic", "policy"): "resource",
    ("aws_sns_topic_policy", "policy"): "resource",
    ("aws_sqs_queue", "policy"): "resource",
    ("aws_sqs_queue_policy", "policy"): "resource",
    ("aws_kinesis_resource_policy", "policy"): "resource",
    ("aws_cloudwatch_log_resource_policy", "policy_document"): "resource",
    ("aws_glue_resource_policy", "policy"): "resource",
    ("aws_iot_policy", "policy"): "iot",
}

# What a ``${type.name.attribute}`` reference evaluates to. Fields are the stack's ``partition``, ``region``
# and ``account``, a synthetic ``key_id`` or ``stream_label``, or the referenced resource's own attribute.
RESOURCE_VALUES: dict[tuple[str, str], str] = {
    ("aws_s3_bucket", "arn"): "arn:{partition}:s3:::{bucket}",
    ("aws_s3_bucket", "id"): "{bucket}",
    ("aws_s3_bucket", "bucket"): "{bucket}",
    ("aws_kinesis_stream", "arn"): "arn:{partition}:kinesis:{region}:{account}:stream/{name}",
    ("aws_kinesis_stream", "name"): "{name}",
    (
        "aws_kinesis_firehose_delivery_stream",
        "arn",
    ): "arn:{partition}:firehose:{region}:{account}:deliverystream/{name}",
    ("aws_kms_key", "arn"): "arn:{partition}:kms:{region}:{account}:key/{key_id}",
    ("aws_kms_key", "key_id"): "{key_id}",
    ("aws_kms_key", "id"): "{key_id}",
    ("aws_kms_alias", "arn"): "arn:{partition}:kms:{region}:{account}:{name}",
    # The provider's log group ``arn`` has no trailing ``:*`` (it strips the one the API returns).
    ("aws_cloudwatch_log_group", "arn"): "arn:{partition}:logs:{region}:{account}:log-group:{name}",
    ("aws_cloudwatch_log_group", "name"): "{name}",
    ("aws_dynamodb_table", "arn"): "arn:{partition}:dynamodb:{region}:{account}:table/{name}",
    (
        "aws_dynamodb_table",
        "stream_arn",
    ): "arn:{partition}:dynamodb:{region}:{account}:table/{name}/stream/{stream_label}",
    ("aws_dynamodb_table", "name"): "{name}",
    ("aws_dynamodb_table", "id"): "{name}",
    ("aws_sns_topic", "arn"): "arn:{partition}:sns:{region}:{account}:{name}",
    ("aws_sns_topic", "id"): "arn:{partition}:sns:{region}:{account}:{name}",
    ("aws_sns_topic", "name"): "{name}",
    ("aws_sqs_queue", "arn"): "arn:{partition}:sqs:{region}:{account}:{name}",
    ("aws_sqs_queue", "name"): "{name}",
    ("aws_sqs_queue", "url"): "https://sqs.{region}.amazonaws.com/{account}/{name}",
    ("aws_sqs_queue", "id"): "https://sqs.{region}.amazonaws.com/{account}/{name}",
    ("aws_glue_catalog_database", "name"): "{name}",
    ("aws_glue_catalog_table", "name"): "{name}",
    ("aws_iam_role", "arn"): "arn:{partition}:iam::{account}:role/{name}",
    ("aws_iam_role", "name"): "{name}",
    ("aws_iam_role", "id"): "{name}",
    ("aws_lambda_function", "arn"): "arn:{partition}:lambda:{region}:{account}:function:{function_name}",
    ("aws_lambda_function", "function_name"): "{function_name}",
    ("aws_iot_topic_rule", "arn"): "arn:{partition}:iot:{region}:{account}:rule/{name}",
    ("aws_iot_topic_rule", "name"): "{name}",
    ("aws_athena_workgroup", "arn"): "arn:{partition}:athena:{region}:{account}:workgroup/{name}",
    ("aws_athena_workgroup", "name"): "{name}",
    ("aws_scheduler_schedule_group", "arn"): "arn:{partition}:scheduler:{region}:{account}:schedule-group/{name}",
    ("aws_scheduler_schedule_group", "name"): "{name}",
}

# What a ``${data.type.name.attribute}`` reference evaluates to.
DATA_VALUES: dict[tuple[str, str], str] = {
    ("aws_partition", "partition"): "{partition}",
    ("aws_partition", "dns_suffix"): "amazonaws.com",
    ("aws_caller_identity", "account_id"): "{account}",
    ("aws_region", "name"): "{region}",
    ("aws_region", "region"): "{region}",
}

DOCUMENT_FIELDS = {"//", "statement", "version", "policy_id"}
STATEMENT_FIELDS = {
    "sid",
    "effect",
    "actions",
    "not_actions",
    "resources",
    "not_resources",
    "principals",
    "not_principals",
    "condition",
}
TRAVERSAL = re.compile(r"^(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)$")
POLICY_DOCUMENT_REF = re.compile(r"^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}$")


class UnresolvableReference(Exception):
    """A Terraform reference, attribute or policy construct the renderer cannot turn into a plausible value."""


@dataclass(frozen=True)
class RenderedPolicy:
    """One policy as attached to one resource attribute, as AWS would receive it."""

    stack_id: str
    source: str  # ``aws_iam_policy_document.<name>`` or, for an inline policy, the attribute's address
    attached_to: str  # ``<type>.<name>.<attribute>``
    kind: PolicyKind
    document: dict[str, Any]
    role_arn: str | None = None  # for a trust policy, the role it is attached to (its implicit resource)

    @property
    def label(self) -> str:
        return f"{self.stack_id} {self.source} -> {self.attached_to}"


class StackRenderer:
    """Resolves Terraform references of one synthesized stack to plausible AWS values."""

    def __init__(self, stack_id: str, doc: dict[str, Any]) -> None:
        self.stack_id = stack_id
        self.doc = doc

    def region(self, body: dict[str, Any] | None = None) -> str:
        """The region of the provider a resource uses (its ``provider`` alias, or the default one)."""
        wanted = (body or {}).get("provider", "aws").removeprefix("aws").removeprefix(".") or None
        for provider in self.doc.get("provider", {}).get("aws", []):
            if provider.get("alias") == wanted:
                return str(self.render_string(provider["region"], "provider region"))
        raise UnresolvableReference(f"{self.stack_id}: no aws provider with alias {wanted!r}")

    def render_string(self, text: str, where: str) -> str:
        """``text`` with every ``${...}`` replaced by its value and ``$${`` unescaped."""
        if "%{" in text.replace("%%{", ""):
            raise UnresolvableReference(f"{self.stack_id}: template directive in {where}: {text!r}")
        return interpolate(text, lambda expression: self.evaluate(expression, where))

    def render(self, value: Any, where: str) -> Any:
        """``value`` (any JSON) with every string rendered."""
        if isinstance(value, str):
            return self.render_string(value, where)
        if isinstance(value, list):
            return [self.render(v, where) for v in value]
        if isinstance(value, dict):
            return {k: self.render(v, where) for k, v in value.items()}
        return value

    def evaluate(self, expression: str, where: str) -> str:
        """The value of one ``type.name.attribute`` or ``data.type.name.attribute`` traversal."""
        match = TRAVERSAL.match(expression)
        if match is None:
            raise UnresolvableReference(f"{self.stack_id}: expression ${{{expression}}} in {where} is not a reference")
        is_data, type_, name, attribute = match.groups()
        block = self.doc.get("data" if is_data else "resource", {}).get(type_, {})
        templates = DATA_VALUES if is_data else RESOURCE_VALUES
        if name not in block or (type_, attribute) not in templates:
            raise UnresolvableReference(
                f"{self.stack_id}: cannot resolve ${{{expression}}} in {where}"
                + ("" if name in block else " (no such block in the stack)")
            )
        body = block[name]
        return self.fill(templates[(type_, attribute)], body, f"{type_}.{name}", f"${{{expression}}}")

    def fill(self, template: str, body: dict[str, Any], address: str, expression: str) -> str:
        values: dict[str, str] = {}
        for _, field, _, _ in string.Formatter().parse(template):
            if field is None or field in values:
                continue
            values[field] = self.field_value(field, body, address, expression)
        return template.format(**values)

    def field_value(self, field: str, body: dict[str, Any], address: str, expression: str) -> str:
        synthetic: dict[str, Callable[[], str]] = {
            "partition": lambda: PARTITION,
            "account": lambda: ACCOUNT_ID,
            "region": lambda: self.region(body),
            "key_id": lambda: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack_id}/{address}")),
            "stream_label": lambda: STREAM_LABEL,
        }
        if field in synthetic:
            return synthetic[field]()
        if not isinstance(body.get(field), str):
            raise UnresolvableReference(f"{self.stack_id}: {expression} needs {address}.{field}, which is not set")
        return self.render_string(body[field], f"{address}.{field}")


def collapse(values: list[str]) -> str | list[str]:
    """Terraform's ``aws_iam_policy_document`` writes a one-element list as a plain string."""
    return values[0] if len(values) == 1 else values


def principals_json(blocks: list[dict[str, Any]]) -> str | dict[str, str | list[str]]:
    if len(blocks) == 1 and blocks[0]["type"] == "*" and blocks[0]["identifiers"] == ["*"]:
        return "*"
    merged: dict[str, list[str]] = {}
    for block in blocks:
        merged.setdefault(block["type"], []).extend(block["identifiers"])
    return {kind: collapse(ids) for kind, ids in merged.items()}


def conditions_json(blocks: list[dict[str, Any]]) -> dict[str, dict[str, str | list[str]]]:
    merged: dict[str, dict[str, list[str]]] = {}
    for block in blocks:
        merged.setdefault(block["test"], {}).setdefault(block["variable"], []).extend(block["values"])
    return {test: {var: collapse(vals) for var, vals in by_var.items()} for test, by_var in merged.items()}


def statement_json(statement: dict[str, Any], where: str) -> dict[str, Any]:
    """One statement of an ``aws_iam_policy_document`` as it appears in the document's ``json``."""
    unknown = set(statement) - STATEMENT_FIELDS
    if unknown:
        raise UnresolvableReference(f"{where}: statement fields the renderer does not know: {sorted(unknown)}")
    out: dict[str, Any] = {}
    if statement.get("sid"):
        out["Sid"] = statement["sid"]
    out["Effect"] = statement.get("effect", "Allow")
    for field, element in (("actions", "Action"), ("not_actions", "NotAction")):
        if field in statement:
            out[element] = collapse(statement[field])
    for field, element in (("resources", "Resource"), ("not_resources", "NotResource")):
        if field in statement:
            out[element] = collapse(statement[field])
    for field, element in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
        if field in statement:
            out[element] = principals_json(statement[field])
    if "condition" in statement:
        out["Condition"] = conditions_json(statement["condition"])
    return out


def document_json(body: dict[str, Any], where: str) -> dict[str, Any]:
    """An ``aws_iam_policy_document`` data source's ``json``, references still unresolved."""
    unknown = set(body) - DOCUMENT_FIELDS
    if unknown:
        raise UnresolvableReference(f"{where}: document fields the renderer does not know: {sorted(unknown)}")
    out: dict[str, Any] = {"Version": body.get("version", "2012-10-17")}
    if "policy_id" in body:
        out["Id"] = body["policy_id"]
    out["Statement"] = [statement_json(s, where) for s in body.get("statement", [])]
    return out


def attribute_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a resource attribute, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from attribute_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from attribute_strings(v, f"{path}[{i}]")


def inline_policy(value: str) -> dict[str, Any] | None:
    """A policy written as a JSON string rather than a data source reference, if ``value`` is one."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and "Statement" in parsed else None


def attached_policies(stack_id: str, doc: dict[str, Any]) -> Iterator[tuple[str, str, PolicyKind, dict[str, Any]]]:
    """(source, attached_to, kind, unrendered document) of every policy attribute of every resource.

    A policy document reference or a JSON policy anywhere outside a known policy attribute is an error, so
    a new kind of policy attachment fails loudly until it is added to ``POLICY_ATTRIBUTES``.
    """
    data_docs = doc.get("data", {}).get("aws_iam_policy_document", {})
    for type_, by_name in doc.get("resource", {}).items():
        for name, body in by_name.items():
            for attribute, value in body.items():
                address = f"{type_}.{name}.{attribute}"
                kind = POLICY_ATTRIBUTES.get((type_, attribute))
                for path, text in attribute_strings(value, address):
                    is_policy = "data.aws_iam_policy_document." in text or inline_policy(text) is not None
                    if is_policy and (kind is None or path != address):
                        raise UnresolvableReference(
                            f"{stack_id}: policy in an attribute the linter does not know: {path}"
                        )
                if kind is None:
                    continue
                if not isinstance(value, str):
                    raise UnresolvableReference(f"{stack_id}: {address} is not a string: {value!r}")
                if match := POLICY_DOCUMENT_REF.match(value):
                    source = f"aws_iam_policy_document.{match.group(1)}"
                    if match.group(1) not in data_docs:
                        raise UnresolvableReference(f"{stack_id}: {address} references missing {source}")
                    yield source, address, kind, document_json(data_docs[match.group(1)], f"{stack_id} {source}")
                elif (parsed := inline_policy(value)) is not None:
                    yield address, address, kind, parsed
                else:
                    raise UnresolvableReference(
                        f"{stack_id}: {address} is neither a policy document nor JSON: {value!r}"
                    )


def stack_policies(stack_id: str, doc: dict[str, Any]) -> list[RenderedPolicy]:
    """Every policy the stack attaches, rendered; fails on a policy document that nothing attaches."""
    renderer = StackRenderer(stack_id, doc)
    rendered = []
    for source, attached_to, kind, document in attached_policies(stack_id, doc):
        where = f"{source} -> {attached_to}"
        role_arn = None
        if kind == "trust":
            type_, name, _ = attached_to.split(".")
            role_arn = renderer.evaluate(f"{type_}.{name}.arn", where)
        rendered.append(RenderedPolicy(stack_id, source, attached_to, kind, renderer.render(document, where), role_arn))
    attached = {p.source for p in rendered}
    unattached = sorted(
        f"aws_iam_policy_document.{n}"
        for n in doc.get("data", {}).get("aws_iam_policy_document", {})
        if f"aws_iam_policy_document.{n}" not in attached
    )
    if unattached:
        raise UnresolvableReference(f"{stack_id}: policy documents no policy attribute uses: {unattached}")
    return rendered
