"""Running the real terraform here: the binary, the provider from a filesystem mirror, nothing downloaded.

Shared by ``tools.local.deploy_local`` and the ``terraform validate`` test. The synthesized stacks pin the
provider version the prebuilt bindings were generated for; the mirror may hold another one, so the pin is
relaxed only in scratch copies, through ``*_override.tf.json`` files; the synthesized output is not edited.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MIRROR_CANDIDATES = ("/opt/tf-plugins", "/usr/share/terraform/plugins", "~/.terraform.d/plugins")
PROVIDER_DIR = "registry.terraform.io/hashicorp/aws"


@dataclass(frozen=True)
class Toolchain:
    binary: str
    mirror: Path
    provider_version: str


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split(".") if x.isdigit())


def find_toolchain() -> Toolchain | None:
    """The terraform binary and a mirror holding hashicorp/aws (``TAP_TF_PROVIDER_MIRROR`` first)."""
    binary = shutil.which("terraform")
    if binary is None:
        return None
    configured = os.environ.get("TAP_TF_PROVIDER_MIRROR")
    for raw in [*([configured] if configured else []), *MIRROR_CANDIDATES]:
        root = Path(raw).expanduser()
        versions = sorted((p.name for p in (root / PROVIDER_DIR).glob("*") if p.is_dir()), key=version_key)
        if versions:
            return Toolchain(binary, root, versions[-1])
    return None


def cli_environment(toolchain: Toolchain, workdir: Path) -> dict[str, str]:
    """Process environment for terraform: a CLI config that installs providers from the mirror only."""
    config = workdir / "terraform.tfrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{toolchain.mirror}"\n    include = ["{PROVIDER_DIR}"]\n  }}\n'
        "}\n"
    )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    return env


def relax_provider_version(stack_dir: Path, version: str) -> None:
    """Pin the mirror's provider version in the scratch copy only."""
    write_override(stack_dir, "provider_version", {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": version}}}
    })  # fmt: skip


def write_override(stack_dir: Path, name: str, content: Mapping[str, object]) -> Path:
    path = stack_dir / f"{name}_override.tf.json"
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    return path


def run(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    *,
    check: bool = True,
    timeout: int = 1800,
    log: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``terraform <args>`` in ``cwd`` (output also streamed to ``log``); on failure, raise with its output."""
    if log is None:
        result = subprocess.run(
            ["terraform", *args], cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
    else:
        with log.open("w") as sink:
            process = subprocess.run(
                ["terraform", *args], cwd=cwd, env=dict(env), stdout=sink, stderr=subprocess.STDOUT, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
        output = log.read_text()
        result = subprocess.CompletedProcess(process.args, process.returncode, output, "")
    if check and result.returncode != 0:
        raise TerraformError(args, cwd, result)
    return result


class TerraformError(RuntimeError):
    def __init__(self, args: Sequence[str], cwd: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"terraform {' '.join(args)} in {cwd} exited {result.returncode}\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        )
