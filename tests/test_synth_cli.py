"""``main.py`` as users run it: from any folder, identical output; bad input stops it cleanly."""

from __future__ import annotations

import base64
import filecmp
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SYNTH_ENV, run_main, stack_files

SHARED_CONTRACTS = ROOT.parent / "shared" / "contracts"


def test_synth_from_another_folder_gives_identical_output(cli_synth: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_main(elsewhere, SYNTH_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    here, there = stack_files(cli_synth), stack_files(elsewhere / "cdktf.out")
    assert sorted(here) == ["tap-ci-test", "tap-dev", "tap-prod", "tap-staging", "tap-state-bootstrap"]
    assert here == there
    for stack_id, files in here.items():
        for asset in files["assets"]:
            same = filecmp.cmp(
                cli_synth / "stacks" / stack_id / asset, elsewhere / "cdktf.out/stacks" / stack_id / asset
            )
            assert same, f"{asset} differs: packages must be reproducible"
    assert not list(elsewhere.glob("cdktf.out.*")), "scratch output left behind"


def test_lambda_archives_hold_the_function_and_shared_code_only(cli_synth: Path) -> None:
    stack_dir = cli_synth / "stacks" / "tap-dev"
    functions = json.loads((stack_dir / "cdk.tf.json").read_text())["resource"]["aws_lambda_function"]
    assert len(functions) == 4  # processor, alert, silence check, pre-provisioning hook
    for fn in functions.values():
        archive = stack_dir / fn["filename"]
        digest = base64.b64encode(hashlib.sha256(archive.read_bytes()).digest()).decode()
        assert fn["source_code_hash"] == digest, "source_code_hash must be the zip's base64 SHA-256"
        names = set(zipfile.ZipFile(archive).namelist())
        (function,) = {n.split("/")[1] for n in names if n.count("/") == 2 and not n.startswith("lambdas/common/")}
        assert f"lambdas/{function}/handler.py" in names and fn["function_name"] == f"tap-{function}-dev"
        assert "lambdas/__init__.py" in names and "lambdas/common/metrics.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"ENVIRONMENT_SUFFIX": "Bad_Suffix"}, "ENVIRONMENT_SUFFIX"),
        ({"ENVIRONMENT_SUFFIX": "prod"}, "ENVIRONMENT_SUFFIX"),
        ({"TF_STATE_BUCKET": "Not_A_Bucket"}, "state_bucket (TF_STATE_BUCKET)"),
        ({"TF_STATE_REGION": "mars-1"}, "region (TF_STATE_REGION)"),
    ],
)
def test_bad_input_stops_synth_without_output(tmp_path: Path, env: dict[str, str], field: str) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = run_main(fresh, env)
    assert result.returncode == 2
    assert field in result.stderr
    assert "Traceback" not in result.stderr
    assert list(fresh.iterdir()) == [], "a failed synth must not write cdktf.out"

    kept = tmp_path / "kept"
    (kept / "cdktf.out" / "stacks").mkdir(parents=True)
    marker = kept / "cdktf.out" / "stacks" / "marker"
    marker.write_text("previous output")
    assert run_main(kept, env).returncode == 2
    assert marker.read_text() == "previous output", "a failed synth must leave the previous output untouched"


@pytest.mark.skipif(not SHARED_CONTRACTS.is_dir(), reason="../shared/contracts is not beside this checkout")
def test_vendored_contract_matches_shared_contract() -> None:
    for name in ("traffic-reading.schema.json", "README.md"):
        assert (ROOT / "contracts" / name).read_bytes() == (SHARED_CONTRACTS / name).read_bytes(), name
