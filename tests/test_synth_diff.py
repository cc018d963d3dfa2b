"""``tools.synth_diff`` on real synth outputs of these stacks: before/after pairs, destroys flagged."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SYNTH_ENV, run_main
from tools import synth_diff


def copy_with(source: Path, target: Path, stack: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    shutil.copytree(source, target)
    path = target / "stacks" / stack / "cdk.tf.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document, indent=2))
    return target


def table_address(document: dict[str, Any], concern: str) -> str:
    (name,) = [n for n, t in document["resource"]["aws_dynamodb_table"].items() if concern in t["name"]]
    return f"aws_dynamodb_table.{name}"


def run(base: Path | str, head: Path | str, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = synth_diff.main([str(base), str(head), *extra])
    return status, capsys.readouterr().out


def test_identical_outputs_show_no_change(cli_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    same = shutil.copytree(cli_synth, tmp_path / "same")
    status, report = run(cli_synth, same, capsys=capsys)
    assert status == 0
    assert "No resource changes in any stack." in report


def test_a_table_key_change_is_a_loud_replacement_that_fails_unless_allowed(
    cli_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((cli_synth / "stacks/tap-dev/cdk.tf.json").read_text())
    address = table_address(document, "sensor-windows")
    kind, name = address.split(".", 1)

    def rekey(doc: dict[str, Any]) -> None:
        doc["resource"][kind][name]["range_key"] = "window_start"

    head = copy_with(cli_synth, tmp_path / "head", "tap-dev", rekey)
    status, report = run(cli_synth, head, capsys=capsys)
    assert status == 1
    assert "[!CAUTION]" in report and f"`tap-dev`: `{address}`" in report
    assert f"**destroy and recreate** `{address}`: range_key cannot change in place" in report
    assert "| `range_key` | `window_part` | `window_start` |" in report
    assert "| `tap-staging` | 0 | 0 | 0 | 0 |" in report
    status, _ = run(cli_synth, head, "--allow-destroy", capsys=capsys)
    assert status == 0


def test_a_renamed_construct_id_is_a_replacement_not_an_update(
    cli_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((cli_synth / "stacks/tap-prod/cdk.tf.json").read_text())
    kind, name = table_address(document, "segment-aggregates").split(".", 1)

    def rename(doc: dict[str, Any]) -> None:
        doc["resource"][kind][f"{name}_renamed"] = doc["resource"][kind].pop(name)

    head = copy_with(cli_synth, tmp_path / "head", "tap-prod", rename)
    diffs = {d.stack: d for d in synth_diff.diff(synth_diff.stacks_of(cli_synth), synth_diff.stacks_of(head))}
    prod = diffs["tap-prod"]
    assert prod.replaced == {f"{kind}.{name}": f"its address changed to {kind}.{name}_renamed (a renamed construct id)"}
    assert prod.added == [] and prod.removed == []
    assert prod.destroys == [f"{kind}.{name}"]
    status, _ = run(cli_synth, head, capsys=capsys)
    assert status == 1


def test_an_in_place_change_is_listed_by_attribute_and_passes(
    cli_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((cli_synth / "stacks/tap-dev/cdk.tf.json").read_text())
    (group,) = [n for n, g in document["resource"]["aws_cloudwatch_log_group"].items() if "processor" in g["name"]]

    def retain_longer(doc: dict[str, Any]) -> None:
        doc["resource"]["aws_cloudwatch_log_group"][group]["retention_in_days"] = 30

    head = copy_with(cli_synth, tmp_path / "head", "tap-dev", retain_longer)
    status, report = run(cli_synth, head, "--format", "text", capsys=capsys)
    assert status == 0
    assert f"change aws_cloudwatch_log_group.{group}" in report
    assert "retention_in_days: 14 -> 30" in report
    assert "DESTROY" not in report


def test_removing_an_environment_destroys_its_stateful_resources(
    cli_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real pair: the same code synthesized with and without the ad-hoc environment."""
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    result = run_main(fewer, {k: v for k, v in SYNTH_ENV.items() if k != "ENVIRONMENT_SUFFIX"})
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = synth_diff.stacks_of(cli_synth), synth_diff.stacks_of(fewer / "cdktf.out")
    diffs = {d.stack: d for d in synth_diff.diff(before, after)}
    gone = diffs["tap-ci-test"]
    assert len(gone.removed) == len(synth_diff.resources_of(before["tap-ci-test"])) > 50 and not gone.added
    kinds = {address.split(".", 1)[0] for address in gone.destroys}
    assert {"aws_dynamodb_table", "aws_s3_bucket", "aws_kinesis_stream", "aws_kms_key"} <= kinds
    assert all(diffs[s].empty for s in ("tap-dev", "tap-staging", "tap-prod", "tap-state-bootstrap"))
    status, report = run(cli_synth, fewer / "cdktf.out", capsys=capsys)
    assert status == 1 and "`tap-ci-test`: `aws_s3_bucket." in report


def test_git_refs_are_synthesized_in_a_scratch_worktree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)  # the standing environments only
    inside = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    if inside.returncode != 0:
        pytest.skip("not a git checkout")
    status, report = run("HEAD", "HEAD", capsys=capsys)
    assert status == 0, report
    assert "No resource changes in any stack." in report
    listed = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "tap-synth-diff-" not in listed.stdout, "scratch worktrees must be removed"


def test_unreadable_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = synth_diff.main([str(tmp_path), "no-such-ref-anywhere"])
    assert status == 2
    assert "synth_diff:" in capsys.readouterr().err
