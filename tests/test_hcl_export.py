"""Why HCL export is not offered as a way off CDK: ``synth --hcl`` writes wrong Terraform for these stacks.

``cdktf synth --hcl`` (and ``cdktn synth --hcl``) only sets ``SYNTH_HCL_OUTPUT=true`` for the app, whose
library then writes ``cdk.tf`` instead of ``cdk.tf.json`` (cdktf's ``lib/app.js`` and
``lib/terraform-stack.js``). So the export runs here on both libraries without a CLI, and once more
through each CLI where it is installed (skipped with the reason otherwise). Terraform itself judges each
defect: ``terraform validate`` for the first two, ``terraform console`` evaluating the exported
expression for the other two, against the value the JSON synthesis gives:

1. the dashboard body is not valid JSON (quotes inside metric expressions lose their escaping);
2. the KMS key's ``lifecycle`` precondition is written as an argument, not a block;
3. every Athena named query gains a trailing newline (a heredoc), so a plan replaces all of them
   (``query`` forces replacement);
4. a string output (``aggregation_window_seconds``, ``"300"``) becomes a number.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks import LIBRARY, cdk_library
from tests.conftest import ROOT, SYNTH_ENV, library_python, run_main

EXPORT_ENV = {**SYNTH_ENV, "SYNTH_HCL_OUTPUT": "true"}
CLI_NODE = {"cdktf": (20, 0), "cdktn": (22, 19)}
"""The Node.js each CLI needs: cdktf-cli 0.21 declares no engine and runs on 20; cdktn-cli 0.24 declares
``>=22.19.0``."""
# The CLIs run `terraform fmt` over the export (indented, aligned); the library writes it unformatted.
HEREDOC = re.compile(r"^[ \t]*query[ \t]*=[ \t]*<<(?P<marker>[A-Z]+)\n.*?^[ \t]*(?P=marker)$", re.M | re.S)
OUTPUT_VALUE = re.compile(r'^output "aggregation_window_seconds" \{\n[ \t]*(value[ \t]*=.*)$', re.M)


def node_version() -> tuple[int, ...]:
    found = shutil.which("node")
    if found is None:
        return ()
    out = subprocess.run([found, "--version"], capture_output=True, text=True, check=False).stdout
    return tuple(int(x) for x in out.strip().lstrip("v").split(".")[:2])


def export_with_cli(library: str, folder: Path) -> Path:
    """``<cli> synth --hcl`` of the app on ``library``, or a skip naming what is missing."""
    cli = shutil.which(library)
    if cli is None:
        pytest.skip(f"{library}-cli is not installed (npm install -g {library}-cli); the library export runs")
    if node_version() < CLI_NODE[library]:
        wanted = ".".join(map(str, CLI_NODE[library]))
        pytest.skip(f"{library}-cli needs Node.js {wanted}+, this machine has {node_version()}")
    out = folder / "cdktf.out"
    result = subprocess.run(
        [cli, "synth", "--hcl", "--output", str(out), "--app", f"{library_python(library)} {ROOT / 'main.py'}"],
        cwd=ROOT,
        env={**os.environ, **EXPORT_ENV, cdk_library.SWITCH: library, "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


EXPORTS = ["cdktf", "cdktn", "cdktf-cli", "cdktn-cli"]


@pytest.fixture(scope="module", params=EXPORTS)
def export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(HCL export, JSON synthesis) of the same app on the same library."""
    library = str(request.param).removesuffix("-cli")
    folder = tmp_path_factory.mktemp(f"hcl-{request.param}")
    if str(request.param).endswith("-cli"):
        hcl = export_with_cli(library, folder)
    else:
        result = run_main(folder, EXPORT_ENV, library=library)
        assert result.returncode == 0, result.stderr[-3000:]
        hcl = folder / "cdktf.out"
    # The session's JSON synthesis of the same library (same environments, same state settings).
    plain: Path = request.getfixturevalue("cli_synth" if library == LIBRARY.name else "other_synth")
    return hcl / "stacks", plain / "stacks"


def validate_errors(stack_dir: Path, terraform_env: tuple[dict[str, str], str], scratch: Path) -> str:
    """``terraform validate`` of an exported stack (provider from the mirror); its diagnostics."""
    from tools.local.terraform_local import relax_provider_version  # noqa: PLC0415

    env, version = terraform_env
    shutil.copytree(stack_dir, scratch)
    relax_provider_version(scratch, version)
    outputs = []
    for command in (["init", "-backend=false", "-input=false", "-no-color"], ["validate", "-no-color"]):
        result = subprocess.run(["terraform", *command], cwd=scratch, env=env,
                                capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        outputs.append(result.stdout + result.stderr)
        if result.returncode != 0:  # init already reads the configuration: its errors are Terraform's too
            return "\n".join(outputs)
    raise AssertionError(f"terraform accepted the exported {stack_dir.name}")


def evaluate(hcl_locals: str, expression: str, scratch: Path) -> Any:
    """``terraform console``'s value of ``expression`` over ``locals { <hcl_locals> }``: Terraform's own
    reading of an exported attribute."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "main.tf").write_text(f"locals {{\n{hcl_locals}\n}}\n")
    result = subprocess.run(
        ["terraform", "console", "-no-color"],
        input=f"jsonencode({expression})\n",
        cwd=scratch,
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_dashboard_body_is_not_json(
    export: tuple[Path, Path], terraform_env: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    hcl, plain = export
    dashboards = json.loads((plain / "tap-dev" / "cdk.tf.json").read_text())["resource"]["aws_cloudwatch_dashboard"]
    json.loads(next(iter(dashboards.values()))["dashboard_body"])  # the JSON synthesis is fine
    errors = validate_errors(hcl / "tap-dev", terraform_env, tmp_path / "tap-dev")
    assert '"dashboard_body" contains an invalid JSON' in errors


def test_the_lifecycle_precondition_is_an_argument(
    export: tuple[Path, Path], terraform_env: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    hcl, _ = export
    errors = validate_errors(hcl / "tap-state-bootstrap", terraform_env, tmp_path / "bootstrap")
    assert 'An argument named "precondition" is not expected here' in errors


def test_every_named_query_gains_a_trailing_newline(export: tuple[Path, Path], tmp_path: Path) -> None:
    hcl, plain = export
    queries = json.loads((plain / "tap-dev" / "cdk.tf.json").read_text())["resource"]["aws_athena_named_query"]
    exported = [m.group(0) for m in HEREDOC.finditer((hcl / "tap-dev" / "cdk.tf").read_text())]
    assert len(queries) == len(exported) == 8
    by_text = {body["query"]: name for name, body in queries.items()}
    for index, heredoc in enumerate(exported):
        # ${...} made literal, as the JSON value carries it, so Terraform reads the text alone
        assert "$${" not in heredoc
        value = evaluate(heredoc.replace("${", "$${"), "local.query", tmp_path / str(index))
        assert value.endswith("\n") and value[:-1] in by_text, value[:200]
        assert value not in by_text, "Terraform reads a different query: the plan replaces it"


def test_a_string_output_becomes_a_number(export: tuple[Path, Path], tmp_path: Path) -> None:
    hcl, plain = export
    output = json.loads((plain / "tap-dev" / "cdk.tf.json").read_text())["output"]["aggregation_window_seconds"]
    assert output["value"] == "300"
    text = (hcl / "tap-dev" / "cdk.tf").read_text()
    block = OUTPUT_VALUE.search(text)
    assert block is not None
    assert evaluate(block.group(1), "local.value", tmp_path) == 300, "jsonencode gives a number, not a string"
