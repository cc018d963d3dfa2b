"""The cdktf/cdktn equivalence gate: the same stacks synthesized on both libraries are the same Terraform.

    python -m tools.cdk_equivalence CDKTF_OUT CDKTN_OUT [--schemas CDKTF_BINDINGS CDKTN_BINDINGS]

CDKTF_OUT and CDKTN_OUT are synth outputs (``make synth`` and ``make synth CDK=cdktn``). Every stack's
``cdk.tf.json`` must be equal leaf by leaf, and every asset (the Lambda zips) byte for byte, except
:data:`ALLOWED`: the CDK version in the metadata and the AWS provider's source and version, which each
library's prebuilt provider pins. Anything else is a difference and exits 1.

Because the two provider pins differ (cdktf's bindings were generated for hashicorp/aws 6.25.0, cdktn's
for 6.69.1), ``--schemas`` also checks every attribute the stacks set, at every nesting level, against
both bindings' schemas (their jsii assemblies: ``<provider package>/_jsii/*.jsii.tgz``) and lists each
attribute whose presence, type, optionality or deprecation differs between them.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import re
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.synth_diff import InputError, flatten, stacks_of

ALLOWED = frozenset(
    {
        "//.metadata.version",
        "terraform.required_providers.aws.source",
        "terraform.required_providers.aws.version",
    }
)
"""Leaves of a stack document that may differ between the libraries (every other leaf may not)."""

META_ARGUMENTS = frozenset({"//", "count", "depends_on", "for_each", "lifecycle", "provider", "provisioner"})
"""Terraform's own keys in a resource body: not provider attributes."""


def stack_differences(first: Path, second: Path) -> list[str]:
    """Every difference between two synth outputs that :data:`ALLOWED` does not cover."""
    a, b = stacks_of(first), stacks_of(second)
    found = [f"stack {stack}: only in {first if stack in a else second}" for stack in sorted(a.keys() ^ b.keys())]
    for stack in sorted(a.keys() & b.keys()):
        left, right = dict(flatten(a[stack])), dict(flatten(b[stack]))
        for path in sorted(left.keys() | right.keys()):
            if path not in ALLOWED and left.get(path, ...) != right.get(path, ...):
                found.append(f"{stack}: {path}: {_show(left.get(path, ...))} != {_show(right.get(path, ...))}")
        found.extend(
            f"{stack}: {problem}" for problem in _asset_differences(_stack_dir(first, stack), _stack_dir(second, stack))
        )
    return found


def allowed_differences(first: Path, second: Path) -> dict[str, tuple[Any, Any]]:
    """The :data:`ALLOWED` leaves that do differ, with both values (the same in every stack)."""
    a, b = stacks_of(first), stacks_of(second)
    found: dict[str, tuple[Any, Any]] = {}
    for stack in sorted(a.keys() & b.keys()):
        left, right = dict(flatten(a[stack])), dict(flatten(b[stack]))
        found.update({p: (left.get(p), right.get(p)) for p in ALLOWED if left.get(p) != right.get(p)})
    return found


def _stack_dir(outdir: Path, stack: str) -> Path:
    return (outdir / "stacks" if (outdir / "stacks").is_dir() else outdir) / stack


def _asset_differences(left: Path, right: Path) -> Iterator[str]:
    files = {
        side: {p.relative_to(root).as_posix() for p in (root / "assets").rglob("*") if p.is_file()}
        for side, root in (("left", left), ("right", right))
    }
    for name in sorted(files["left"] ^ files["right"]):
        yield f"asset {name}: only on one side"
    for name in sorted(files["left"] & files["right"]):
        if not filecmp.cmp(left / name, right / name, shallow=False):
            yield f"asset {name}: different bytes"


def _show(value: Any) -> str:
    return "(absent)" if value is ... else json.dumps(value)[:200]


# ------------------------------------------------------------------------------------ provider schemas


@dataclass(frozen=True)
class Attribute:
    """What a provider's bindings say about one attribute: its type, and whether optional or deprecated."""

    type: str
    optional: bool
    deprecated: bool

    def __str__(self) -> str:
        flags = [flag for flag, on in (("optional", self.optional), ("deprecated", self.deprecated)) if on]
        return f"{self.type} ({', '.join(flags) or 'required'})"


class Assembly:
    """A provider's jsii assembly, read straight from the bindings' tarball; types decoded on demand."""

    _TYPE_KEY = re.compile(r'\n    "(@[^"]+)": \{')

    def __init__(self, tarball: Path) -> None:
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/.jsii")
            if member is None:
                raise InputError(f"{tarball}: no package/.jsii in it")
            self._text = member.read().decode()
        name = re.search(r'\n  "name": "([^"]+)"', self._text)
        version = re.search(r'\n  "version": "([^"]+)"', self._text)
        if name is None or version is None:
            raise InputError(f"{tarball}: not a jsii assembly")
        self.name, self.version = name.group(1), version.group(1)
        self._offsets = {m.group(1): m.end() - 1 for m in self._TYPE_KEY.finditer(self._text)}
        self._decoded: dict[str, dict[str, Any]] = {}

    def type(self, fqn: str) -> dict[str, Any] | None:
        if fqn not in self._decoded:
            offset = self._offsets.get(fqn)
            if offset is None:
                return None
            self._decoded[fqn] = json.JSONDecoder().raw_decode(self._text, offset)[0]
        return self._decoded[fqn]

    def config_struct(self, namespace: str) -> str | None:
        """The props struct of the resource, data source or provider class in ``namespace``."""
        prefix = f"{self.name}.{namespace}."
        for fqn in self._offsets:
            if fqn.startswith(prefix) and fqn.endswith("Config") and "." not in fqn[len(prefix) :]:
                found = self.type(fqn) or {}
                interfaces = found.get("interfaces", [])
                if namespace == "provider" or any(i.endswith(".TerraformMetaArguments") for i in interfaces):
                    return fqn
        return None

    def describe(self, struct: str, path: Sequence[str]) -> tuple[Attribute | None, str | None]:
        """The attribute at ``path`` below ``struct`` and the struct it holds, if it holds blocks."""
        current: str | None = struct
        attribute: Attribute | None = None
        for key in path:
            found = self.type(current) if current else None
            prop = next((p for p in (found or {}).get("properties", []) if p["name"] == camel(key)), None)
            if prop is None:
                return None, None
            attribute = Attribute(
                self._signature(prop["type"]), bool(prop.get("optional")), "deprecated" in prop.get("docs", {})
            )
            current = self._struct_of(prop["type"])
        return attribute, current

    def _struct_of(self, type_ref: Mapping[str, Any]) -> str | None:
        if type_ref.get("fqn", "").startswith(f"{self.name}."):
            return str(type_ref["fqn"])
        if "collection" in type_ref:
            return self._struct_of(type_ref["collection"]["elementtype"])
        for option in type_ref.get("union", {}).get("types", []):
            if found := self._struct_of(option):
                return found
        return None

    def _signature(self, type_ref: Mapping[str, Any]) -> str:
        if "primitive" in type_ref:
            return str(type_ref["primitive"])
        if "fqn" in type_ref:
            fqn = str(type_ref["fqn"])
            return "block" if fqn.startswith(f"{self.name}.") else fqn.rsplit(".", 1)[-1]
        if "collection" in type_ref:
            return f"{type_ref['collection']['kind']}<{self._signature(type_ref['collection']['elementtype'])}>"
        return " | ".join(sorted(self._signature(t) for t in type_ref.get("union", {}).get("types", [])))


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def namespace_of(section: str, type_: str) -> str:
    """jsii namespace of a Terraform type: ``aws_s3_bucket`` -> ``s3Bucket``, data -> ``dataAwsX``."""
    return camel(f"data_{type_}") if section == "data" else camel(type_.removeprefix("aws_"))


def attribute_paths(body: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path a body sets: blocks are dicts or lists of dicts. Map-typed values (tags) are
    walked too; :meth:`Assembly.describe` stops where the schema says the value is not a block."""
    items = body if isinstance(body, list) else [body]
    for item in items:
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if not path and key in META_ARGUMENTS:
                continue
            yield (*path, key)
            yield from attribute_paths(value, (*path, key))


def used_attributes(outdir: Path) -> dict[tuple[str, str], set[tuple[str, ...]]]:
    """``{(namespace, terraform type): attribute paths}`` over every stack of a synth output."""
    used: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for document in stacks_of(outdir).values():
        for section in ("resource", "data"):
            for type_, named in document.get(section, {}).items():
                key = (namespace_of(section, type_), f"{section}.{type_}" if section == "data" else type_)
                for body in named.values():
                    used.setdefault(key, set()).update(attribute_paths(body))
        for body in document.get("provider", {}).get("aws", []):
            used.setdefault(("provider", "provider.aws"), set()).update(attribute_paths(body))
    return used


def schema_differences(outdir: Path, first: Assembly, second: Assembly) -> list[str]:
    """Attributes the stacks set whose schema differs between the two providers' bindings."""
    found = []
    for (namespace, type_), paths in sorted(used_attributes(outdir).items()):
        structs = (first.config_struct(namespace), second.config_struct(namespace))
        for path in sorted(paths):
            described = []
            for assembly, struct in zip((first, second), structs, strict=True):
                attribute, _ = assembly.describe(struct, path) if struct else (None, None)
                described.append(attribute)
            # Absent from both would mean this check cannot see the attribute: reported, never passed over.
            unseen = described[0] is None and described[1] is None
            if not _below_a_map(first, structs[0], path) and (described[0] != described[1] or unseen):
                shown = [str(d) if d else "absent" for d in described]
                found.append(f"{type_}.{'.'.join(path)}: {first.version} {shown[0]}; {second.version} {shown[1]}")
    return found


def _below_a_map(assembly: Assembly, struct: str | None, path: Sequence[str]) -> bool:
    """Whether ``path`` is a key inside a map-typed attribute (a tag name, not an attribute)."""
    for depth in range(1, len(path)):
        attribute, holds = assembly.describe(struct, path[:depth]) if struct else (None, None)
        if attribute is not None and holds is None:
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cdk_equivalence", description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="synth output on cdktf")
    parser.add_argument("second", type=Path, help="synth output on cdktn")
    parser.add_argument("--schemas", nargs=2, type=Path, metavar=("CDKTF_BINDINGS", "CDKTN_BINDINGS"))
    args = parser.parse_args(argv)
    try:
        differences = stack_differences(args.first, args.second)
        for path, (left, right) in sorted(allowed_differences(args.first, args.second).items()):
            print(f"allowed: {path}: {left} / {right}")
        for line in differences:
            print(f"DIFFERENT: {line}")
        if args.schemas:
            assemblies = [Assembly(next(p.glob("_jsii/*.jsii.tgz"), p)) for p in args.schemas]
            for line in schema_differences(args.first, *assemblies):
                print(f"schema: {line}")
    except InputError as error:
        print(f"cdk_equivalence: {error}", file=sys.stderr)
        return 2
    print(f"{len(differences)} difference(s) beyond the metadata version and the provider source and version")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
