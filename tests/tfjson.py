"""Reading synthesized Terraform JSON the way Terraform would: resources, references, policies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

REF = re.compile(r"^\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}$")
DATA_REF = re.compile(r"^\$\{data\.([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}$")


@dataclass(frozen=True)
class Ref:
    type: str
    name: str
    attribute: str


def ref(value: Any) -> Ref | None:
    """The resource a whole-string reference like ``${aws_x.name.arn}`` points at."""
    if isinstance(value, str) and (m := REF.match(value)):
        return Ref(*m.groups())
    return None


@dataclass
class StackDoc:
    """A synthesized stack with helpers to navigate it."""

    stack_id: str
    doc: dict[str, Any]

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return dict(self.doc.get("resource", {}).get(type_, {}))

    def all_resources(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for type_, by_name in self.doc.get("resource", {}).items():
            for name, body in by_name.items():
                yield type_, name, body

    def resource_count(self) -> int:
        return sum(1 for _ in self.all_resources())

    def one(self, type_: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(type_)
        assert len(found) == 1, f"{self.stack_id}: expected one {type_}, found {sorted(found)}"
        return next(iter(found.items()))

    def get(self, r: Ref) -> dict[str, Any]:
        return self.doc["resource"][r.type][r.name]

    def resolve(self, value: Any) -> dict[str, Any]:
        r = ref(value)
        assert r is not None, f"{value!r} is not a reference"
        return self.get(r)

    def find(self, type_: str, **attrs: Any) -> tuple[str, dict[str, Any]]:
        matches = [(n, b) for n, b in self.resources(type_).items() if all(b.get(k) == v for k, v in attrs.items())]
        assert len(matches) == 1, f"{self.stack_id}: {type_} with {attrs}: {[n for n, _ in matches]}"
        return matches[0]

    def policy_statements(self, policy_ref: Any) -> list[dict[str, Any]]:
        """Statements of the ``aws_iam_policy_document`` a ``.json`` reference points at."""
        assert isinstance(policy_ref, str), policy_ref
        m = DATA_REF.match(policy_ref)
        assert m and m.group(1) == "aws_iam_policy_document" and m.group(3) == "json", policy_ref
        statements: list[dict[str, Any]] = self.doc["data"]["aws_iam_policy_document"][m.group(2)]["statement"]
        return statements

    def role_statements(self, role_ref: Any) -> list[dict[str, Any]]:
        """All permission statements of the role a ``${aws_iam_role.x.arn}`` reference points at."""
        r = ref(role_ref)
        assert r is not None and r.type == "aws_iam_role", role_ref
        policies = [
            b for b in self.resources("aws_iam_role_policy").values() if b["role"] == f"${{aws_iam_role.{r.name}.id}}"
        ]
        assert policies, f"role {r.name} has no inline policy"
        return [s for p in policies for s in self.policy_statements(p["policy"])]

    def actions_of(self, role_ref: Any) -> set[str]:
        return {a for s in self.role_statements(role_ref) if s.get("effect", "Allow") == "Allow" for a in s["actions"]}


def walk_strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)
