"""IAM lint gate: every policy the stacks attach, rendered as AWS receives it, audited by parliament.

Identity, trust and resource policies of every stack (environments and the state bootstrap) are rendered
by ``tests/iam_policies.py`` with plausible ARNs (account 123456789012, the stack's region), then analysed
with ``parliament.analyze_policy_string``. IoT policies are not IAM policies and are left out.

Parliament lints every document the same way (duo-labs/parliament#14): it accepts a ``Principal`` but does
not know identity from resource policies, so ``test_principal_element_matches_policy_kind`` checks that
part (AWS: "You must use the Principal element in resource-based policies ... You cannot use the Principal
element in an identity-based policy"). A role trust policy has no ``Resource`` (the role is the resource),
which parliament rejects as MALFORMED (duo-labs/parliament#229), so it is linted with the role's ARN as
its ``Resource``. Accepted findings are listed, with reasons, in ``iam-lint-skips.json``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ROOT, Synth
from tests.iam_policies import ACCOUNT_ID, RenderedPolicy, UnresolvableReference, stack_policies

with warnings.catch_warnings():
    # parliament 1.6 imports pkg_resources (hence setuptools<81 in the Pipfile), which warns on import.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API", category=UserWarning)
    import parliament

SKIPS_FILE = ROOT / "iam-lint-skips.json"
SKIP_FIELDS = {"issue", "policies", "statements", "actions", "resources", "reason"}
ACTION_IN_DETAIL = re.compile(r"for action (\S+)$")


@dataclass(frozen=True)
class Finding:
    """One parliament finding, narrowed to one action where parliament's detail names one per action."""

    policy: RenderedPolicy
    sid: str  # "-" for findings about the whole policy
    issue: str
    detail: str
    action: str | None
    resources: tuple[str, ...]  # the statement's resources, as rendered

    def line(self) -> str:
        severity = parliament.config[self.issue]["severity"]
        return f"{self.policy.label} [{self.sid}] {self.issue} ({severity}): {self.detail}"


def parliament_document(policy: RenderedPolicy) -> dict[str, Any]:
    """The document as parliament must see it: a trust policy gets its role as ``Resource``."""
    if policy.kind != "trust":
        return policy.document
    statements = [{**s, "Resource": policy.role_arn} for s in policy.document["Statement"]]
    return {**policy.document, "Statement": statements}


def split_detail(issue: str, detail: Any) -> list[tuple[str, str | None]]:
    """(detail text, action) pairs: RESOURCE_MISMATCH lists one required resource format per action."""
    if issue == "RESOURCE_MISMATCH" and isinstance(detail, list):
        return [(f"{d['action']} needs a resource like {d['required_format']}", d["action"]) for d in detail]
    if isinstance(detail, list):
        return [(", ".join(map(str, detail)), None)]
    text = str(detail or "")
    match = ACTION_IN_DETAIL.search(text)
    return [(text, match.group(1) if match else None)]


def statement_resources(statement: dict[str, Any]) -> tuple[str, ...]:
    resources = statement.get("Resource", statement.get("NotResource", []))
    return (resources,) if isinstance(resources, str) else tuple(resources)


def lint(policy: RenderedPolicy) -> list[Finding]:
    """Parliament's findings on one policy (its built-in checks, as the ``parliament`` command runs them)."""
    document = parliament_document(policy)
    analysed = parliament.analyze_policy_string(
        json.dumps(document), filepath=policy.label, ignore_private_auditors=True
    )
    found: list[Finding] = []
    in_statements: set[int] = set()
    for statement, rendered in zip(analysed.statements, document["Statement"], strict=True):
        resources = statement_resources(rendered)
        for raw in statement.findings:
            in_statements.add(id(raw))
            for text, action in split_detail(raw.issue, raw.detail):
                found.append(Finding(policy, statement.sid or "-", raw.issue, text, action, resources))
    for raw in analysed.findings:
        if id(raw) not in in_statements:
            found.extend(Finding(policy, "-", raw.issue, t, a, ()) for t, a in split_detail(raw.issue, raw.detail))
    return found


def matches_any(value: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def covers(entry: dict[str, Any], finding: Finding) -> bool:
    """Whether a skip entry accepts a finding; ``actions`` and ``resources`` narrow an entry when given."""
    if finding.issue != entry["issue"] or not matches_any(finding.policy.source, entry["policies"]):
        return False
    if not matches_any(finding.sid, entry["statements"]):
        return False
    if "actions" in entry and finding.action not in entry["actions"]:
        return False
    resources = entry.get("resources")
    return resources is None or (bool(finding.resources) and all(matches_any(r, resources) for r in finding.resources))


def unused_parts(entry: dict[str, Any], covered: list[Finding]) -> list[str]:
    """Parts of a skip entry that no finding needs any more (the file must stay exact)."""
    if not covered:
        return ["the whole entry"]
    sources, sids = {f.policy.source for f in covered}, {f.sid for f in covered}
    parts = [f"policy {p}" for p in entry["policies"] if not fnmatch.filter(sources, p)]
    parts += [f"statement {s}" for s in entry["statements"] if not fnmatch.filter(sids, s)]
    parts += [f"action {a}" for a in entry.get("actions", []) if a not in {f.action for f in covered}]
    return parts


def skips() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(SKIPS_FILE.read_text())["skips"]
    return entries


@pytest.fixture(scope="module")
def policies(synth: Synth) -> list[RenderedPolicy]:
    return [p for stack_id, stack in synth.docs.items() for p in stack_policies(stack_id, stack.doc)]


@pytest.fixture(scope="module")
def findings(policies: list[RenderedPolicy]) -> list[Finding]:
    return [f for p in policies if p.kind != "iot" for f in lint(p)]


def test_skip_file_entries_are_complete() -> None:
    for entry in skips():
        assert {"issue", "policies", "statements", "reason"} <= set(entry) <= SKIP_FIELDS, entry
        assert entry["issue"] in parliament.config, f"{entry['issue']} is not a parliament issue key"
        assert entry["policies"] and entry["statements"], entry
        assert len(entry["reason"]) > 80 and "docs.aws.amazon.com" in entry["reason"], entry["issue"]


def test_every_stack_policy_is_rendered(synth: Synth, policies: list[RenderedPolicy]) -> None:
    assert {p.stack_id for p in policies} == set(synth.docs), "a stack without policies"
    assert "tap-state-bootstrap" in synth.docs
    for stack_id in synth.docs:
        kinds = {p.kind for p in policies if p.stack_id == stack_id}
        expected = {"resource"} if stack_id == "tap-state-bootstrap" else {"identity", "trust", "resource", "iot"}
        assert kinds == expected, stack_id
    for policy in policies:
        text = json.dumps(policy.document)
        assert "${data." not in text and "${aws_" not in text, policy.label
        accounts = set(re.findall(r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d*):", text))
        assert accounts <= {ACCOUNT_ID, ""}, (policy.label, accounts)


def test_principal_element_matches_policy_kind(policies: list[RenderedPolicy]) -> None:
    wrong = []
    for policy in (p for p in policies if p.kind != "iot"):
        for statement in policy.document["Statement"]:
            has_principal = "Principal" in statement or "NotPrincipal" in statement
            if has_principal != (policy.kind != "identity"):
                wrong.append(f"{policy.label} [{statement.get('Sid', '-')}] principal={has_principal}")
            if policy.kind == "trust" and ("Resource" in statement or "NotResource" in statement):
                wrong.append(f"{policy.label} [{statement.get('Sid', '-')}] a trust policy has no Resource")
    assert not wrong, "\n".join(wrong)


def test_parliament_reports_no_unexplained_finding(policies: list[RenderedPolicy], findings: list[Finding]) -> None:
    entries = skips()
    covered: dict[int, list[Finding]] = {i: [] for i in range(len(entries))}
    unexplained = []
    for finding in findings:
        matching = [i for i, entry in enumerate(entries) if covers(entry, finding)]
        for i in matching:
            covered[i].append(finding)
        if not matching:
            unexplained.append(finding.line())
    linted = sum(1 for p in policies if p.kind != "iot")
    print(f"parliament over {linted} policies: {len(findings)} findings, {len(findings) - len(unexplained)} accepted")
    assert not unexplained, "parliament findings outside iam-lint-skips.json:\n" + "\n".join(sorted(set(unexplained)))
    stale = [
        f"{entries[i]['issue']} {entries[i]['statements']}: {', '.join(unused)}"
        for i, found in covered.items()
        if (unused := unused_parts(entries[i], found))
    ]
    assert not stale, "iam-lint-skips.json entries (or parts) that match no finding any more:\n" + "\n".join(stale)


def test_lint_catches_an_action_on_the_wrong_resource_type() -> None:
    """The gate is live: ListStreams needs Resource "*", DescribeStream a stream ARN, not a table ARN."""
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/t"
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": ["dynamodb:ListStreams", "dynamodb:DescribeStream"],
                "Resource": table,
            }
        ],
    }
    found = lint(RenderedPolicy("stack", "doc", "aws_iam_role_policy.x.policy", "identity", document))
    assert {(f.issue, f.action) for f in found} == {
        ("RESOURCE_MISMATCH", "dynamodb:ListStreams"),
        ("RESOURCE_MISMATCH", "dynamodb:DescribeStream"),
    }


def minimal_stack(**resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "provider": {"aws": [{"region": "eu-west-1"}]},
        "data": {"aws_caller_identity": {"current": {}}, "aws_partition": {"partition": {}}},
        "resource": resources,
    }


def role_policy(policy: str) -> dict[str, Any]:
    return {"aws_iam_role_policy": {"p": {"role": "r", "policy": policy}}}


def test_rendering_resolves_references_to_plausible_arns() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "${aws_s3_bucket.lake.arn}/home/$${aws:username}/*",
    }
    doc = minimal_stack(
        aws_s3_bucket={"lake": {"bucket": "lake-${data.aws_caller_identity.current.account_id}"}},
        **role_policy(json.dumps({"Version": "2012-10-17", "Statement": [statement]})),
    )
    [policy] = stack_policies("s", doc)
    assert policy.kind == "identity"
    assert policy.document["Statement"][0]["Resource"] == f"arn:aws:s3:::lake-{ACCOUNT_ID}/home/${{aws:username}}/*"


def test_rendering_uses_the_stack_region_and_terraform_json_shape() -> None:
    doc = minimal_stack(
        aws_sqs_queue={"q": {"name": "jobs"}},
        aws_sqs_queue_policy={"qp": {"queue_url": "u", "policy": "${data.aws_iam_policy_document.d.json}"}},
    )
    doc["data"]["aws_iam_policy_document"] = {
        "d": {
            "statement": [
                {
                    "actions": ["sqs:SendMessage"],
                    "resources": ["${aws_sqs_queue.q.arn}"],
                    "principals": [{"type": "Service", "identifiers": ["sns.amazonaws.com"]}],
                    "condition": [{"test": "ArnEquals", "variable": "aws:SourceArn", "values": ["a", "b"]}],
                }
            ]
        }
    }
    [policy] = stack_policies("s", doc)
    assert policy.kind == "resource"
    assert policy.document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": f"arn:aws:sqs:eu-west-1:{ACCOUNT_ID}:jobs",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Condition": {"ArnEquals": {"aws:SourceArn": ["a", "b"]}},
            }
        ],
    }


@pytest.mark.parametrize(
    ("buckets", "reference", "message"),
    [
        (
            {"b": {"bucket_prefix": "x"}},
            "aws_s3_bucket.b.arn",
            r"\$\{aws_s3_bucket\.b\.arn\} needs aws_s3_bucket\.b\.bucket,",
        ),
        ({}, "aws_s3_bucket.b.arn", r"cannot resolve \$\{aws_s3_bucket\.b\.arn\} .*\(no such block"),
        (
            {"b": {"bucket": "x"}},
            "aws_s3_bucket.b.website_endpoint",
            r"cannot resolve \$\{aws_s3_bucket\.b\.website_endpoint\}",
        ),
        ({"b": {"bucket": "x"}}, 'join(",", aws_s3_bucket.b.arn)', r"is not a reference"),
    ],
)
def test_unresolvable_references_fail_naming_them(buckets: dict[str, Any], reference: str, message: str) -> None:
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"${{{reference}}}"}
    doc = minimal_stack(aws_s3_bucket=buckets, **role_policy(json.dumps({"Statement": [statement]})))
    with pytest.raises(UnresolvableReference, match=message):
        stack_policies("s", doc)


DOCUMENT_JSON = "${data.aws_iam_policy_document.d.json}"


@pytest.mark.parametrize(
    ("resources", "document", "message"),
    [
        (
            {"aws_ecr_repository_policy": {"r": {"policy": DOCUMENT_JSON}}},
            {"statement": []},
            r"attribute the linter does not know: aws_ecr_repository_policy\.r\.policy",
        ),
        ({}, {"statement": []}, r"no policy attribute uses: \['aws_iam_policy_document\.d'\]"),
        (role_policy(DOCUMENT_JSON), {"source_policy_documents": []}, r"fields the renderer does not know"),
        (role_policy(DOCUMENT_JSON), {"statement": [{"not_principals": [], "bogus": 1}]}, r"\['bogus'\]"),
    ],
)
def test_policies_in_unknown_places_or_shapes_fail_loudly(
    resources: dict[str, Any], document: dict[str, Any], message: str
) -> None:
    doc = minimal_stack(**resources)
    doc["data"]["aws_iam_policy_document"] = {"d": document}
    with pytest.raises(UnresolvableReference, match=message):
        stack_policies("s", doc)
