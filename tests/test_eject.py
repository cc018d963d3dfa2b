"""``tools.eject``: plain Terraform folders from the synthesized stacks (the plan of the ejected dev against
the state the CDK output applied is in tests/test_deploy_local.py, which owns that deployment)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacks.naming import BOOTSTRAP_STACK_ID
from tests.conftest import ENVIRONMENTS, ROOT, SYNTH_ENV, run_main, skip_or_fail, terraform_validate
from tools import eject
from tools.local.terraform_local import find_toolchain, relax_provider_version

ACCOUNT = {"TF_STATE_ACCOUNT_ID": "123456789012"}


@pytest.fixture(scope="module")
def account_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthesis with the state account set, as an operator who ejects has it."""
    folder = tmp_path_factory.mktemp("eject-synth")
    result = run_main(folder, {**SYNTH_ENV, **ACCOUNT})
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "cdktf.out"


@pytest.fixture(scope="module")
def ejected(account_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every environment ejected, each into its own folder (with the bootstrap beside it)."""
    root = tmp_path_factory.mktemp("ejected")
    for env in ENVIRONMENTS:
        eject.eject(account_synth, env, root / env)
    return {env: root / env for env in ENVIRONMENTS}


def keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys(item)


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_every_ejected_stack_is_valid_terraform(
    ejected: dict[str, Path], terraform_env: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, version = terraform_env
    folders = [ejected["dev"] / BOOTSTRAP_STACK_ID, *(ejected[e] / f"tap-{e}" for e in ENVIRONMENTS)]
    for folder in folders:
        scratch = tmp_path / folder.name
        shutil.copytree(folder, scratch)
        report = terraform_validate(scratch, env, version)
        assert report["valid"] is True and report["error_count"] == 0, (folder.name, report)
    assert not list(ejected["dev"].rglob("*_override.tf.json")), "validated in scratch copies only"


def test_the_ejected_configuration_is_the_synthesized_one_without_cdk(
    account_synth: Path, ejected: dict[str, Path]
) -> None:
    for stack in ("tap-prod", BOOTSTRAP_STACK_ID):
        folder = ejected["prod"] / stack
        synthesized = load(account_synth / "stacks" / stack / "cdk.tf.json")
        main = load(folder / "main.tf.json")
        assert "//" not in set(keys(main)) and "terraform" not in main
        expected = eject.without_metadata({k: v for k, v in synthesized.items() if k != "terraform"})
        for function in expected.get("resource", {}).get("aws_lambda_function", {}).values():
            function["source_code_hash"] = f'${{filebase64sha256("{function["filename"]}")}}'
        assert main == expected
        pin = synthesized["terraform"]["required_providers"]["aws"]["version"]
        versions = load(folder / "versions.tf.json")["terraform"]
        assert versions["required_version"] == ">= 1.10"
        assert versions["required_providers"]["aws"] == {"source": "hashicorp/aws", "version": f">= {pin}, < 7.0.0"}
        assert not (folder / "cdk.tf.json").exists() and not (folder / "cdktf.json").exists()


def test_the_backend_is_the_real_state_and_the_bootstrap_keeps_its_state_beside_it(
    account_synth: Path, ejected: dict[str, Path]
) -> None:
    backend = load(ejected["staging"] / "tap-staging" / "backend.tf.json")["terraform"]["backend"]
    assert backend == load(account_synth / "stacks" / "tap-staging" / "cdk.tf.json")["terraform"]["backend"]
    assert backend["s3"]["bucket"] == "tap-traffic-tfstate-123456789012-us-east-1"
    assert backend["s3"]["key"] == "tap/staging/terraform.tfstate"
    assert backend["s3"]["use_lockfile"] is True and backend["s3"]["kms_key_id"] and backend["s3"]["encrypt"]
    bootstrap = load(ejected["staging"] / BOOTSTRAP_STACK_ID / "backend.tf.json")["terraform"]["backend"]
    assert bootstrap == {"local": {"path": "terraform.tap-state-bootstrap.tfstate"}}


def test_the_lambda_zips_travel_with_their_hash_computed_from_the_file(
    account_synth: Path, ejected: dict[str, Path]
) -> None:
    folder = ejected["dev"] / "tap-dev"
    synthesized = load(account_synth / "stacks" / "tap-dev" / "cdk.tf.json")["resource"]["aws_lambda_function"]
    functions = load(folder / "main.tf.json")["resource"]["aws_lambda_function"]
    assert set(functions) == set(synthesized) and len(functions) >= 4  # processor, alert, silence, provisioning hook
    for name, function in functions.items():
        zip_file = folder / function["filename"]
        assert zip_file.is_file()
        assert function["source_code_hash"] == f'${{filebase64sha256("{function["filename"]}")}}'
        assert eject.file_hash(zip_file) == synthesized[name]["source_code_hash"]


def test_an_unset_state_account_is_a_clear_error_and_writes_nothing(cli_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(eject.EjectError, match="TF_STATE_ACCOUNT_ID is not set"):
        eject.eject(cli_synth, "dev", out)
    assert not out.exists()


def test_a_zip_that_is_not_the_synthesized_one_is_refused(account_synth: Path, tmp_path: Path) -> None:
    copy = tmp_path / "cdktf.out"
    shutil.copytree(account_synth, copy)
    zip_file = next((copy / "stacks" / "tap-dev" / "assets").rglob("*.zip"))
    zip_file.write_bytes(zip_file.read_bytes() + b"\0")
    with pytest.raises(eject.EjectError, match="is not the zip"):
        eject.eject(copy, "dev", tmp_path / "out")


def test_the_command_line_refuses_an_unknown_environment_and_a_used_folder(
    account_synth: Path, ejected: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert eject.main(["--env", "nope", "--out", str(ejected["dev"].parent / "x"), "--from", str(account_synth)]) == 2
    assert "tap-nope not in" in capsys.readouterr().err
    assert eject.main(["--env", "dev", "--out", str(ejected["dev"]), "--from", str(account_synth)]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_make_eject_synthesizes_and_ejects_an_environment(tmp_path: Path) -> None:
    """The operator's command end to end: ``python -m tools.eject`` synthesizes, then ejects."""
    out = tmp_path / "ejected"
    result = subprocess.run(
        [sys.executable, "-m", "tools.eject", "--env", "staging", "--out", str(out)],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "ENVIRONMENT_SUFFIX"}, **ACCOUNT},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", BOOTSTRAP_STACK_ID, "tap-staging"])
    readme = (out / "README.md").read_text()
    assert "moved" in readme and "filebase64sha256" in readme and "aws_lambda_function." in readme


def test_a_lock_file_is_written_from_the_local_mirror(ejected: dict[str, Path], tmp_path: Path) -> None:
    """The mirror here holds 5.100.0, outside the 6.x range: the lock is shown on a copy whose pin is
    relaxed to it, the way ``eject`` writes one when a provider in range is at hand."""
    toolchain = find_toolchain()
    if toolchain is None:
        skip_or_fail("terraform", "terraform binary or hashicorp/aws provider mirror not found")
    assert toolchain is not None
    folder = tmp_path / "tap-dev"
    shutil.copytree(ejected["dev"] / "tap-dev", folder)
    assert not eject.in_range(toolchain.provider_version, "6.25.0")
    assert eject.in_range("6.69.1", "6.25.0") and not eject.in_range("7.0.0", "6.25.0")
    relax_provider_version(folder, toolchain.provider_version)
    lock = eject.lock_providers(folder, toolchain)
    text = lock.read_text()
    assert 'provider "registry.terraform.io/hashicorp/aws"' in text
    assert f'version     = "{toolchain.provider_version}"' in text and "h1:" in text
