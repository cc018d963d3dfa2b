"""``terraform validate`` of every synthesized stack, with the provider from the local filesystem mirror.

The prebuilt bindings pin hashicorp/aws 6.25.0 (cdktf) or 6.69.1 (cdktn); the mirror here holds 5.100.0.
The pin is relaxed only in a scratch copy through an ``*_override.tf.json``; the output users deploy is
not touched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from stacks import LIBRARY
from tests.conftest import terraform_validate

PROVIDER_PIN = {"cdktf": "6.25.0", "cdktn": "6.69.1"}


def test_every_stack_is_valid_terraform(
    cli_synth: Path, terraform_env: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, version = terraform_env
    stacks = sorted(p for p in (cli_synth / "stacks").iterdir() if p.is_dir())
    assert len(stacks) == 5
    for stack in stacks:
        scratch = tmp_path / stack.name
        shutil.copytree(stack, scratch)
        report = terraform_validate(scratch, env, version)
        assert report["valid"] is True and report["error_count"] == 0, (stack.name, report)
        # The synthesized file users deploy still pins the bindings' provider version.
        synthesized = json.loads((stack / "cdk.tf.json").read_text())
        assert synthesized["terraform"]["required_providers"]["aws"]["version"] == PROVIDER_PIN[LIBRARY.name]
