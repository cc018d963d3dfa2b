"""``terraform validate`` of every synthesized stack, with the provider from the local filesystem mirror.

The prebuilt bindings pin hashicorp/aws 6.25.0; the mirror here holds 5.100.0. The pin is relaxed only
in a scratch copy through an ``*_override.tf.json``; the output users deploy is not touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tools.local.terraform_local import cli_environment, find_toolchain, relax_provider_version


@pytest.fixture(scope="module")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    toolchain = find_toolchain()
    if toolchain is None:
        skip_or_fail("terraform", "terraform binary or hashicorp/aws provider mirror not found")
    assert toolchain is not None
    return cli_environment(toolchain, tmp_path_factory.mktemp("terraform")), toolchain.provider_version


def test_every_stack_is_valid_terraform(
    cli_synth: Path, terraform_env: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, version = terraform_env
    stacks = sorted(p for p in (cli_synth / "stacks").iterdir() if p.is_dir())
    assert len(stacks) == 5
    for stack in stacks:
        scratch = tmp_path / stack.name
        shutil.copytree(stack, scratch)
        relax_provider_version(scratch, version)
        for command in (["init", "-backend=false", "-input=false", "-no-color"], ["validate", "-no-color", "-json"]):
            result = subprocess.run(
                ["terraform", *command], cwd=scratch, env=env, capture_output=True, text=True, timeout=600, check=False
            )
            assert result.returncode == 0, f"{stack.name}: terraform {command[0]}\n{result.stdout}\n{result.stderr}"
        report = json.loads(result.stdout)
        assert report["valid"] is True and report["error_count"] == 0, (stack.name, report)
        # The synthesized file users deploy still pins the bindings' provider version.
        synthesized = json.loads((stack / "cdk.tf.json").read_text())
        assert synthesized["terraform"]["required_providers"]["aws"]["version"] == "6.25.0"
