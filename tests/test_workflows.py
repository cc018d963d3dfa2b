"""The GitHub Actions workflows: schema-valid, pinned, least privilege, and wired to real stacks.

actionlint has no binary wheel on PyPI (its package downloads the binary from GitHub when built), so the
files are validated with check-jsonschema against the GitHub workflow and action schemas it ships (no
network), and the rules that matter here are checked on the parsed YAML.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.naming import Namer, validate_suffix
from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
UNTRUSTED = re.compile(r"\$\{\{\s*github\.event\.(pull_request\.(title|body|head\.ref|head\.label)|issue\.|comment\.)")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def steps(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in document.get("jobs", {}).values():
        yield from job.get("steps", [])
    yield from document.get("runs", {}).get("steps", [])


def check_jsonschema() -> str:
    found = shutil.which("check-jsonschema") or str(Path(sys.executable).with_name("check-jsonschema"))
    if not Path(found).exists():
        pytest.fail("check-jsonschema is a development dependency: run pipenv sync --dev")
    return found


def test_there_are_workflows_for_pull_requests_main_and_ephemeral_environments() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"pull-request.yml", "deploy.yml", "ephemeral.yml", "terraform-environment.yml"} <= names


@pytest.mark.parametrize(
    ("schema", "files"), [("vendor.github-workflows", WORKFLOWS), ("vendor.github-actions", ACTIONS)]
)
def test_files_validate_against_the_github_schemas(schema: str, files: list[Path]) -> None:
    result = subprocess.run(
        [check_jsonschema(), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_external_action_is_pinned_to_a_full_commit_sha_with_its_version() -> None:
    for path in [*WORKFLOWS, *ACTIONS]:
        lines = path.read_text().splitlines()
        for step in steps(load(path)):
            uses = step.get("uses")
            if uses is None or uses.startswith("./"):
                continue
            assert PINNED.match(uses), f"{path.name}: {uses} is not pinned to a commit SHA"
            (line,) = [line for line in lines if f"uses: {uses}" in line][:1]
            assert re.search(r"# v\d+\.\d+\.\d+$", line), f"{path.name}: {uses} lacks its '# vX.Y.Z' comment"
    for path in WORKFLOWS:  # reusable workflows are local files
        for job in load(path)["jobs"].values():
            if "uses" in job:
                assert job["uses"].startswith("./.github/workflows/"), job["uses"]


def test_least_privilege_and_no_long_lived_keys() -> None:
    for path in WORKFLOWS:
        document = load(path)
        assert document.get("permissions") == {"contents": "read"}, f"{path.name}: default to read-only"
        text = path.read_text()
        assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text and "secrets." not in text
        for name, job in document["jobs"].items():
            granted = job.get("permissions", {})
            assert "write-all" not in str(granted), f"{path.name}:{name}"
            uses_aws = any("configure-aws-credentials" in s.get("uses", "") for s in job.get("steps", []))
            if uses_aws:
                assert granted.get("id-token") == "write", f"{path.name}:{name}: OIDC needs id-token: write"
        for step in steps(document):
            assert not UNTRUSTED.search(step.get("run", "")), f"{path.name}: untrusted input in a script"


def test_applies_run_in_a_github_environment_one_at_a_time_per_state() -> None:
    reusable = load(ROOT / ".github/workflows/terraform-environment.yml")
    plan, apply = reusable["jobs"]["plan"], reusable["jobs"]["apply"]
    assert apply["environment"] == "${{ inputs.github-environment }}"
    for job in (plan, apply):
        assert job["concurrency"] == {"group": "tap-state-${{ inputs.suffix }}", "cancel-in-progress": False}
    plan_scripts = "\n".join(s.get("run", "") for s in plan["steps"])
    assert "-lock=false" in plan_scripts and "-out=tfplan" in plan_scripts
    plan_role = next(s for s in plan["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    apply_role = next(s for s in apply["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert plan_role["with"]["role-to-assume"] == "${{ vars[inputs.plan-role-variable] }}", "plans run code: read-only"
    assert apply_role["with"]["role-to-assume"] == "${{ vars[inputs.apply-role-variable] }}"
    assert not any("make" in s.get("run", "") for s in apply["steps"]), "the apply job runs no project code"
    scripts = [s.get("run", "") for s in apply["steps"]]
    assert any("apply -input=false -lock-timeout=10m tfplan" in s for s in scripts), "apply exactly the saved plan"
    assert not any("-auto-approve" in s for s in scripts)
    downloaded = [s for s in apply["steps"] if "download-artifact" in s.get("uses", "")]
    uploaded = [s for s in plan["steps"] if "upload-artifact" in s.get("uses", "")]
    assert downloaded[0]["with"]["name"] == uploaded[0]["with"]["name"]


def test_main_promotes_dev_then_staging_then_prod() -> None:
    jobs = load(ROOT / ".github/workflows/deploy.yml")["jobs"]
    assert (jobs["dev"]["needs"], jobs["staging"]["needs"], jobs["prod"]["needs"]) == ("test", "dev", "staging")
    for env in ("dev", "staging", "prod"):
        assert jobs[env]["with"]["github-environment"] == env
        assert jobs[env]["with"]["suffix"] == env
        assert Namer(env).stack_id() == f"tap-{env}"
        assert jobs[env]["with"]["plan-role-variable"] == f"AWS_PLAN_ROLE_ARN_{env.upper()}"
        assert jobs[env]["with"]["apply-role-variable"] == f"AWS_APPLY_ROLE_ARN_{env.upper()}"
    document = load(ROOT / ".github/workflows/deploy.yml")
    assert document["concurrency"] == {"group": "deploy-main", "cancel-in-progress": False}
    assert jobs["test"]["if"] == "github.ref == 'refs/heads/main'"


def test_pull_requests_plan_every_environment_with_read_only_roles_and_comment_once() -> None:
    document = load(ROOT / ".github/workflows/pull-request.yml")
    jobs = document["jobs"]
    matrix = jobs["plan"]["strategy"]["matrix"]["include"]
    assert [(m["environment"], m["role"]) for m in matrix] == [
        (env, f"AWS_PLAN_ROLE_ARN_{env.upper()}") for env in ("dev", "staging", "prod")
    ]
    assert jobs["plan"]["env"]["STACK_DIR"] == "cdktf.out/stacks/tap-${{ matrix.environment }}"
    assert jobs["comment"]["permissions"] == {"pull-requests": "write"}
    assert "<!-- tap-plan-summary -->" in jobs["comment"]["steps"][-1]["with"]["script"]
    scripts = "\n".join(s.get("run", "") for s in jobs["synth-diff"]["steps"])
    assert "python -m tools.synth_diff" in scripts


def test_ephemeral_environments_are_valid_ad_hoc_suffixes_destroyed_on_close() -> None:
    jobs = load(ROOT / ".github/workflows/ephemeral.yml")["jobs"]
    assert (
        jobs["deploy"]["with"]["suffix"]
        == jobs["destroy"]["with"]["suffix"]
        == "pr${{ github.event.pull_request.number }}"
    )
    assert jobs["destroy"]["with"]["destroy"] is True and "destroy" not in jobs["deploy"]["with"]
    assert "github.event.action == 'closed'" in jobs["destroy"]["if"]
    for number in (1, 4711, 9_999_999_999_999):
        assert validate_suffix(f"pr{number}") == f"pr{number}"
    # An environment with onboarded sensors is destroyable: IoT refuses to delete a policy that is still
    # attached to a certificate, so a destroy takes the sensors off before applying the destroy plan.
    steps = load(ROOT / ".github/workflows/terraform-environment.yml")["jobs"]["apply"]["steps"]
    names = [s.get("name", "") for s in steps]
    off = next(i for i, s in enumerate(steps) if "tools.fleet decommission" in s.get("run", ""))
    assert steps[off]["if"] == "inputs.destroy" and off < names.index("Apply the reviewed plan")


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    result = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert not PINNED.match("actions/checkout@v4") and not PINNED.match("actions/checkout@11bd719")
