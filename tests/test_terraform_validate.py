"""``terraform validate`` of every synthesized stack, with the provider from the local filesystem mirror.

The prebuilt bindings pin hashicorp/aws 6.25.0; the mirror here holds 5.100.0. The pin is relaxed only
in a scratch copy through an ``*_override.tf.json``; the output users deploy is not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

MIRROR_CANDIDATES = ("/opt/tf-plugins", "/usr/share/terraform/plugins", "~/.terraform.d/plugins")
PROVIDER_DIR = "registry.terraform.io/hashicorp/aws"


def find_mirror() -> tuple[Path, str] | None:
    """A filesystem mirror holding hashicorp/aws, and the newest version in it."""
    candidates = [os.environ["TAP_TF_PROVIDER_MIRROR"]] if os.environ.get("TAP_TF_PROVIDER_MIRROR") else []
    for raw in [*candidates, *MIRROR_CANDIDATES]:
        root = Path(raw).expanduser()
        versions = sorted(
            (p.name for p in (root / PROVIDER_DIR).glob("*") if p.is_dir()),
            key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()),
        )
        if versions:
            return root, versions[-1]
    return None


@pytest.fixture(scope="module")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    binary = shutil.which("terraform")
    mirror = find_mirror()
    if binary is None or mirror is None:
        skip_or_fail("terraform", f"terraform binary ({binary}) or hashicorp/aws mirror ({mirror}) not found")
    assert mirror is not None
    root, version = mirror
    config = tmp_path_factory.mktemp("terraform") / "cli.tfrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{root}"\n    include = ["{PROVIDER_DIR}"]\n  }}\n'
        "}\n"
    )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    return env, version


def test_every_stack_is_valid_terraform(
    cli_synth: Path, terraform_env: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, version = terraform_env
    stacks = sorted(p for p in (cli_synth / "stacks").iterdir() if p.is_dir())
    assert len(stacks) == 5
    for stack in stacks:
        scratch = tmp_path / stack.name
        shutil.copytree(stack, scratch)
        (scratch / "provider_override.tf.json").write_text(
            json.dumps({"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": version}}}})
        )
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
