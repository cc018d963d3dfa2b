"""Security gate: checkov over every synthesized stack rendered to HCL, zero unexplained findings.

Rendered to HCL (``stack.to_hcl_terraform()``) and scanned with the ``terraform`` framework: the JSON
mode misses the IAM checks. Accepted findings are listed, with reasons, in ``checkov-skips.json``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Synth, skip_or_fail

SKIPS_FILE = ROOT / "checkov-skips.json"


def checkov_binary() -> str | None:
    candidate = os.environ.get("TAP_CHECKOV") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    return candidate if Path(candidate).exists() else shutil.which("checkov")


@pytest.fixture(scope="module")
def reports(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    binary = checkov_binary()
    if binary is None:
        skip_or_fail("checkov", "checkov not installed (make test creates .venv-checkov)")
    assert binary is not None
    root = tmp_path_factory.mktemp("checkov")
    found = {}
    for stack_id, hcl in synth.hcl.items():
        folder = root / stack_id
        folder.mkdir()
        (folder / "main.tf").write_text(hcl)
        result = subprocess.run(
            [binary, "-d", str(folder), "--framework", "terraform", "--skip-download", "-o", "json", "--compact"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode in (0, 1), result.stderr[-2000:]
        report = json.loads(result.stdout)
        found[stack_id] = report[0] if isinstance(report, list) else report
    return found


def skips() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(SKIPS_FILE.read_text())["skips"]
    return entries


def applies(entry: dict[str, Any], stack_id: str, resource: str, production: bool) -> bool:
    if entry["environments"] == "non-production" and production:
        return False
    return any(fnmatch.fnmatchcase(resource, pattern) for pattern in entry["resources"])


def is_production(synth: Synth, stack_id: str) -> bool:
    if stack_id == "tap-state-bootstrap":
        return True
    return next(e.config.production for e in synth.platform.environments if f"tap-{e.suffix}" == stack_id)


def test_skip_file_entries_are_complete() -> None:
    for entry in skips():
        assert set(entry) == {"check", "resources", "environments", "reason"}, entry
        assert entry["environments"] in ("all", "non-production")
        assert len(entry["reason"]) > 40, entry["check"]


def test_checkov_parses_every_stack_and_sees_every_resource(synth: Synth, reports: dict[str, dict[str, Any]]) -> None:
    for stack_id, report in reports.items():
        summary = report["summary"]
        assert summary["parsing_errors"] == 0, stack_id
        assert summary["resource_count"] == synth.docs[stack_id].resource_count(), stack_id
        assert summary["passed"] > 50, stack_id
        checked_types = {c["resource"].split(".")[0] for c in report["results"]["passed_checks"]}
        assert "aws_iam_policy_document" in checked_types, "IAM checks did not run"


def test_no_failed_check_outside_the_skip_file(synth: Synth, reports: dict[str, dict[str, Any]]) -> None:
    entries = skips()
    used: set[int] = set()
    unexplained = []
    totals = {"passed": 0, "failed": 0, "accepted": 0}
    for stack_id, report in reports.items():
        production = is_production(synth, stack_id)
        totals["passed"] += report["summary"]["passed"]
        for failure in report["results"]["failed_checks"]:
            totals["failed"] += 1
            matches = [
                i
                for i, e in enumerate(entries)
                if e["check"] == failure["check_id"] and applies(e, stack_id, failure["resource"], production)
            ]
            if matches:
                used.update(matches)
                totals["accepted"] += 1
            else:
                unexplained.append(f"{stack_id}: {failure['check_id']} {failure['resource']} {failure['check_name']}")
    print(f"checkov totals over {len(reports)} stacks: {totals}")
    assert not unexplained, "\n".join(unexplained)
    stale = [entries[i]["check"] for i in range(len(entries)) if i not in used]
    assert not stale, f"skip entries that match no finding any more: {stale}"
