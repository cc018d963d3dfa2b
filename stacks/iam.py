"""IAM helpers: policy documents as Terraform data sources, and least-privilege service roles.

Policies are ``aws_iam_policy_document`` data sources rather than JSON strings, so Terraform
normalises them (no perpetual diffs) and checkov's IAM checks can read them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

# What a consumer of a Kinesis stream needs (Lambda event source mappings, Firehose sources).
KINESIS_READ_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)

# (test, variable) -> values
Conditions = Mapping[tuple[str, str], Sequence[str]]


@dataclass(frozen=True)
class Statement:
    """One policy statement; ``principals`` maps a principal type to identifiers."""

    sid: str
    actions: Sequence[str]
    resources: Sequence[str] | None = None
    conditions: Conditions = field(default_factory=dict)
    principals: Mapping[str, Sequence[str]] = field(default_factory=dict)
    effect: str = "Allow"

    def __post_init__(self) -> None:
        for action in self.actions:
            if self.effect == "Allow" and (action == "*" or action.endswith(":*")):
                raise ValueError(f"statement {self.sid}: wildcard action {action!r} is not allowed")

    def to_cdktf(self) -> DataAwsIamPolicyDocumentStatement:
        return DataAwsIamPolicyDocumentStatement(
            sid=self.sid,
            effect=self.effect,
            actions=list(self.actions),
            resources=list(self.resources) if self.resources is not None else None,
            condition=[
                DataAwsIamPolicyDocumentStatementCondition(test=test, variable=variable, values=list(values))
                for (test, variable), values in self.conditions.items()
            ]
            or None,
            principals=[
                DataAwsIamPolicyDocumentStatementPrincipals(type=kind, identifiers=list(ids))
                for kind, ids in self.principals.items()
            ]
            or None,
        )


def policy_document(scope: Construct, id_: str, statements: Sequence[Statement]) -> DataAwsIamPolicyDocument:
    """An ``aws_iam_policy_document`` with the given statements."""
    return DataAwsIamPolicyDocument(scope, id_, statement=[s.to_cdktf() for s in statements])


def policy_json(statements: Sequence[Statement]) -> str:
    """The policy as AWS receives it, for callers outside Terraform (the local run): Terraform's ``$${``
    escapes undone, conditions and principals in IAM's JSON grammar."""

    def plain(value: str) -> str:
        return value.replace("$${", "${")

    rendered = []
    for s in statements:
        statement: dict[str, object] = {"Sid": s.sid, "Effect": s.effect, "Action": list(s.actions)}
        if s.resources is not None:
            statement["Resource"] = [plain(r) for r in s.resources]
        if s.principals:
            statement["Principal"] = {kind: list(ids) for kind, ids in s.principals.items()}
        if s.conditions:
            condition: dict[str, dict[str, list[str]]] = {}
            for (test, variable), values in s.conditions.items():
                condition.setdefault(test, {})[variable] = [plain(v) for v in values]
            statement["Condition"] = condition
        rendered.append(statement)
    return json.dumps({"Version": "2012-10-17", "Statement": rendered}, sort_keys=True)


def deny_insecure_transport(resources: Sequence[str]) -> Statement:
    """The TLS-only statement of a bucket policy (a Deny, so the wildcard action is safe)."""
    return Statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        actions=["s3:*"],
        resources=resources,
        principals={"AWS": ["*"]},
        conditions={("Bool", "aws:SecureTransport"): ["false"]},
    )


class ServiceRole(Construct):
    """An IAM role assumable by one AWS service, with one inline least-privilege policy."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        service: str,
        statements: Sequence[Statement],
        trust_conditions: Conditions | None = None,
        description: str,
    ) -> None:
        super().__init__(scope, id_)
        trust = policy_document(
            self,
            "trust",
            [
                Statement(
                    sid="AssumeByService",
                    actions=["sts:AssumeRole"],
                    principals={"Service": [service]},
                    conditions=trust_conditions or {},
                )
            ],
        )
        self.role = IamRole(self, "role", name=name, assume_role_policy=trust.json, description=description)
        self.policy_document = policy_document(self, "permissions", statements)
        self.policy = IamRolePolicy(
            self, "policy", role=self.role.id, name=f"{name}-permissions", policy=self.policy_document.json
        )

    @property
    def arn(self) -> str:
        return self.role.arn

    @property
    def name(self) -> str:
        return self.role.name
