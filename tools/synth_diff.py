"""Offline change preview: what a change to the stacks will do to each environment, without AWS.

    python -m tools.synth_diff BASE HEAD [--allow-destroy] [--format markdown|text] [--output FILE]

BASE and HEAD are synth outputs (a ``cdktf.out`` folder, or any folder holding ``stacks/<id>/cdk.tf.json``)
or git refs, which are checked out into a scratch worktree and synthesized with this interpreter. Per
stack it lists the resources added, removed, changed (attribute by attribute) and replaced: those
Terraform will destroy and create again, because their address changed (a construct id was renamed: the
same physical name now sits at another address) or because an attribute the provider cannot update in
place changed (``FORCES_NEW``). Removing or replacing a stateful resource (``STATEFUL``: tables, buckets,
streams, keys, queues, log groups) loses data, so it is flagged loudly and makes the exit status 1 unless
``--allow-destroy`` is given. Exit status 2: the inputs could not be read or synthesized.

This reads the synthesized configuration only: it cannot see drift or values known after apply. The
pull-request workflow runs it before the real ``terraform plan`` of each environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

STATEFUL = frozenset(
    {
        "aws_dynamodb_table",
        "aws_s3_bucket",
        "aws_kinesis_stream",
        "aws_kms_key",
        "aws_sqs_queue",
        "aws_cloudwatch_log_group",
    }
)
"""Resource types whose destruction loses data (items, objects, records, key material, messages, logs)."""

FORCES_NEW: Mapping[str, frozenset[str]] = {
    "aws_dynamodb_table": frozenset({"name", "hash_key", "range_key", "local_secondary_index"}),
    "aws_s3_bucket": frozenset({"bucket", "bucket_prefix", "object_lock_enabled"}),
    "aws_kinesis_stream": frozenset({"name"}),
    "aws_kms_key": frozenset({"customer_master_key_spec", "key_usage", "multi_region", "xks_key_id"}),
    "aws_kms_alias": frozenset({"name", "name_prefix"}),
    "aws_sqs_queue": frozenset({"name", "name_prefix", "fifo_queue"}),
    "aws_sns_topic": frozenset({"name", "name_prefix", "fifo_topic"}),
    "aws_cloudwatch_log_group": frozenset({"name", "name_prefix", "log_group_class"}),
    "aws_lambda_function": frozenset({"function_name"}),
    "aws_lambda_event_source_mapping": frozenset({"event_source_arn", "starting_position"}),
    "aws_iam_role": frozenset({"name", "name_prefix", "path"}),
    "aws_iam_policy": frozenset({"name", "name_prefix", "path"}),
    "aws_glue_catalog_database": frozenset({"name", "catalog_id"}),
    "aws_glue_catalog_table": frozenset({"name", "database_name", "catalog_id"}),
    "aws_athena_workgroup": frozenset({"name"}),
    "aws_athena_named_query": frozenset({"name", "database", "query", "workgroup", "description"}),
    "aws_kinesis_firehose_delivery_stream": frozenset({"name", "destination"}),
    "aws_iot_topic_rule": frozenset({"name"}),
    "aws_iot_policy": frozenset({"name"}),
    "aws_cloudwatch_metric_alarm": frozenset({"alarm_name"}),
    "aws_cloudwatch_dashboard": frozenset({"dashboard_name"}),
    "aws_sns_topic_subscription": frozenset({"endpoint", "protocol", "topic_arn"}),
}
"""Top-level attributes the AWS provider (5.x/6.x) cannot change in place, for the types these stacks use
(from the provider's documentation; any other change is reported as an update in place)."""

IDENTITY = (
    "name", "bucket", "function_name", "alarm_name", "dashboard_name", "role", "policy_arn", "topic_arn",
    "event_source_arn", "target_key_id",
)  # fmt: skip
"""Attributes that identify a resource physically, to recognise one that only moved to another address."""


class InputError(Exception):
    """A BASE or HEAD that cannot be read or synthesized."""


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any


@dataclass
class StackDiff:
    stack: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[Change]] = field(default_factory=dict)
    replaced: dict[str, str] = field(default_factory=dict)
    """Address -> why it is destroyed and created again."""

    @property
    def destroys(self) -> list[str]:
        """Stateful resources this change removes or replaces (their data goes with them)."""
        doomed = [*self.removed, *self.replaced]
        return sorted(a for a in doomed if a.split(".", 1)[0] in STATEFUL)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.replaced)


# ----------------------------------------------------------------------------------------- reading


def stacks_of(folder: Path) -> dict[str, dict[str, Any]]:
    """``{stack id: synthesized document}`` of a synth output folder."""
    root = folder / "stacks" if (folder / "stacks").is_dir() else folder
    found = {p.parent.name: p for p in sorted(root.glob("*/cdk.tf.json"))}
    if not found:
        raise InputError(f"{folder}: no stacks/<id>/cdk.tf.json in it (is it a synth output?)")
    try:
        return {stack: json.loads(path.read_text()) for stack, path in found.items()}
    except (OSError, ValueError) as error:
        raise InputError(f"{folder}: {error}") from error


def resources_of(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"type.name": attributes}``, cdktf's metadata left out."""
    found = {}
    for kind, named in document.get("resource", {}).items():
        for name, attributes in named.items():
            found[f"{kind}.{name}"] = {k: v for k, v in attributes.items() if k != "//"}
    return found


@dataclass
class Source:
    """A synth output folder, made from a git ref when needed (cleaned up on exit)."""

    spec: str
    environ: Mapping[str, str]
    _scratch: Path | None = None

    def __enter__(self) -> Path:
        given = Path(self.spec)
        if given.is_dir():
            return given
        self._scratch = Path(tempfile.mkdtemp(prefix="tap-synth-diff-"))
        try:
            return synthesize_ref(self.spec, self._scratch, self.environ)
        except BaseException:
            self.__exit__()  # __exit__ does not run when __enter__ raises
            raise

    def __exit__(self, *_: object) -> None:
        if self._scratch is not None:
            worktree = self._scratch / "tree"
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True,
                           check=False)  # fmt: skip
            shutil.rmtree(self._scratch, ignore_errors=True)


def synthesize_ref(ref: str, scratch: Path, environ: Mapping[str, str]) -> Path:
    """Check ``ref`` out into a scratch worktree and synthesize it there."""
    resolved = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if resolved.returncode != 0:
        raise InputError(f"{ref!r} is neither a folder nor a git commit of {ROOT}")
    tree, out = scratch / "tree", scratch / "cdktf.out"
    added = subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), resolved.stdout.strip()], cwd=ROOT, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    if added.returncode != 0:
        raise InputError(f"git worktree add {ref}: {added.stderr.strip()}")
    env = {**os.environ, **environ, "CDKTF_OUTDIR": str(out)}
    env.pop("TAP_PROVIDER_IMPORT", None)
    synth = subprocess.run(
        [sys.executable, "main.py"], cwd=tree, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if synth.returncode != 0:
        raise InputError(f"synthesizing {ref} failed:\n{synth.stderr[-3000:]}")
    return out


# --------------------------------------------------------------------------------------- comparing


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of a JSON value as (``a.b[0].c``, leaf) pairs; empty containers are leaves."""
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from flatten(value[key], f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def attribute_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    old, new = dict(flatten(dict(before))), dict(flatten(dict(after)))
    return [Change(p, old.get(p), new.get(p)) for p in sorted(old.keys() | new.keys()) if old.get(p) != new.get(p)]


def _top(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def identity(kind: str, attributes: Mapping[str, Any]) -> tuple[str, str] | None:
    for key in IDENTITY:
        value = attributes.get(key)
        if isinstance(value, str) and value and "${" not in value:
            return kind, f"{key}={value}"
    return None


def diff_stack(stack: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> StackDiff:
    old = resources_of(before or {})
    new = resources_of(after or {})
    result = StackDiff(stack)
    gone = sorted(old.keys() - new.keys())
    came = sorted(new.keys() - old.keys())
    # A resource whose physical identity reappears at another address is destroyed and created again.
    arriving = {identity(a.split(".", 1)[0], new[a]): a for a in came}
    arriving.pop(None, None)
    for address in gone:
        moved_to = arriving.pop(identity(address.split(".", 1)[0], old[address]), None)
        if moved_to is not None:
            result.replaced[address] = f"its address changed to {moved_to} (a renamed construct id)"
            came.remove(moved_to)
        else:
            result.removed.append(address)
    result.added = came
    for address in sorted(old.keys() & new.keys()):
        changes = attribute_changes(old[address], new[address])
        if not changes:
            continue
        result.changed[address] = changes
        forcing = sorted({_top(c.path) for c in changes} & FORCES_NEW.get(address.split(".", 1)[0], frozenset()))
        if forcing:
            result.replaced[address] = f"{', '.join(forcing)} cannot change in place"
    return result


def diff(base: Mapping[str, Mapping[str, Any]], head: Mapping[str, Mapping[str, Any]]) -> list[StackDiff]:
    return [diff_stack(s, base.get(s), head.get(s)) for s in sorted(base.keys() | head.keys())]


# --------------------------------------------------------------------------------------- reporting


def _show(value: Any) -> str:
    text = "(absent)" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


def render_markdown(diffs: Sequence[StackDiff], base: str, head: str, allow_destroy: bool) -> str:
    destroys = [(d.stack, a) for d in diffs for a in d.destroys]
    lines = [f"## Synth diff: `{base}` → `{head}`", ""]
    if destroys:
        verb = "allowed by --allow-destroy" if allow_destroy else "blocked: rerun with --allow-destroy if intended"
        lines += ["> [!CAUTION]", f"> **This change destroys {len(destroys)} stateful resource(s) ({verb}):**"]
        lines += [f"> - `{stack}`: `{address}`" for stack, address in destroys]
        lines.append("")
    if all(d.empty for d in diffs):
        lines.append("No resource changes in any stack.")
    lines += ["| stack | added | removed | replaced | changed in place |", "| --- | --- | --- | --- | --- |"]
    for d in diffs:
        in_place = len([a for a in d.changed if a not in d.replaced])
        lines.append(f"| `{d.stack}` | {len(d.added)} | {len(d.removed)} | {len(d.replaced)} | {in_place} |")
    for d in diffs:
        if d.empty:
            continue
        lines += ["", f"### `{d.stack}`", ""]
        lines += [f"- **destroy and recreate** `{a}`: {why}" for a, why in sorted(d.replaced.items())]
        lines += [f"- **destroy** `{a}`" for a in d.removed]
        lines += [f"- create `{a}`" for a in d.added]
        for address, changes in sorted(d.changed.items()):
            lines += ["", f"<details><summary><code>{address}</code>: {len(changes)} attribute(s)</summary>", ""]
            lines += ["| attribute | before | after |", "| --- | --- | --- |"]
            lines += [f"| `{c.path}` | `{_show(c.before)}` | `{_show(c.after)}` |" for c in changes]
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def render_text(diffs: Sequence[StackDiff], base: str, head: str, allow_destroy: bool) -> str:
    lines = [f"synth diff {base} -> {head}"]
    for d in diffs:
        if d.empty:
            lines.append(f"{d.stack}: no changes")
            continue
        lines.append(f"{d.stack}:")
        lines += [f"  DESTROY+CREATE {a}: {why}" for a, why in sorted(d.replaced.items())]
        lines += [f"  DESTROY {a}" for a in d.removed]
        lines += [f"  create {a}" for a in d.added]
        for address, changes in sorted(d.changed.items()):
            lines.append(f"  change {address}")
            lines += [f"    {c.path}: {_show(c.before)} -> {_show(c.after)}" for c in changes]
    destroys = [f"{d.stack}: {a}" for d in diffs for a in d.destroys]
    if destroys:
        lines.append(f"!!! destroys stateful resources{' (allowed)' if allow_destroy else ''}: " + "; ".join(destroys))
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.synth_diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="synth output folder or git ref (the state before the change)")
    parser.add_argument("head", help="synth output folder or git ref (the state after the change)")
    parser.add_argument("--allow-destroy", action="store_true", help="exit 0 even when stateful resources go")
    parser.add_argument("--format", choices=("markdown", "text"), default="markdown")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with Source(args.base, os.environ) as base_dir, Source(args.head, os.environ) as head_dir:
            diffs = diff(stacks_of(base_dir), stacks_of(head_dir))
    except InputError as error:
        print(f"synth_diff: {error}", file=sys.stderr)
        return 2
    render = render_markdown if args.format == "markdown" else render_text
    report = render(diffs, args.base, args.head, args.allow_destroy)
    sys.stdout.write(report)
    if args.output:
        args.output.write_text(report)
    destroys = any(d.destroys for d in diffs)
    return 1 if destroys and not args.allow_destroy else 0


if __name__ == "__main__":
    sys.exit(main())
