"""Session fixtures: the provider is imported and every environment synthesized once per session."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from stacks import LIBRARY, cdk_library
from stacks.config import Platform, load
from tests.tfjson import StackDoc

ROOT = Path(__file__).resolve().parent.parent
# jsii's Node 20 end-of-life banner would bury test output; the bindings still run on it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
AD_HOC_SUFFIX = "ci-test"
ENVIRONMENTS = ("dev", "staging", "prod", AD_HOC_SUFFIX)
SYNTH_ENV = {"ENVIRONMENT_SUFFIX": AD_HOC_SUFFIX}
# No per-example deadline: it is a timed assertion, and on a loaded two-core machine an example of a
# property test can pass 200 ms (hypothesis then reports a flaky failure that says nothing of the code).
settings.register_profile("tap", deadline=None)
settings.load_profile("tap")


def require(tool: str) -> bool:
    """Whether a missing tool must fail the run (CI) rather than skip (a user's fresh machine)."""
    return os.environ.get(f"TAP_REQUIRE_{tool.upper()}") == "1"


def skip_or_fail(tool: str, reason: str) -> None:
    if require(tool):
        pytest.fail(f"{reason} (TAP_REQUIRE_{tool.upper()}=1: this run must not skip it)")
    pytest.skip(reason)


@dataclass
class Synth:
    platform: Platform
    docs: dict[str, StackDoc]
    hcl: dict[str, str]

    def env(self, suffix: str) -> StackDoc:
        return self.docs[f"tap-{suffix}"]


@pytest.fixture(scope="session")
def platform() -> Platform:
    return load(SYNTH_ENV)


@pytest.fixture(scope="session")
def synth(platform: Platform) -> Synth:
    """Every stack built in one fresh ``Testing.app()`` and synthesized once for the whole session."""
    # Imported here so that pure unit tests do not pay for loading the provider bindings.
    import cdktf  # noqa: PLC0415

    from stacks.app import build  # noqa: PLC0415

    app = cdktf.Testing.app()
    stacks = build(app, platform)
    docs = {sid: StackDoc(sid, json.loads(cdktf.Testing.synth(stack))) for sid, stack in stacks.items()}
    hcl = {sid: str(stack.to_hcl_terraform()["hcl"]) for sid, stack in stacks.items()}
    return Synth(platform, docs, hcl)


VENVS = {"cdktf": ROOT / ".venv", "cdktn": ROOT / ".venv-cdktn"}
"""Where ``make`` installs each CDK library (``make test`` installs both: the equivalence gate needs them)."""
OTHER_LIBRARY = next(name for name in cdk_library.LIBRARIES if name != LIBRARY.name)


def library_python(library: str) -> str:
    """The interpreter that runs on ``library``: this one for the session's, else its environment's."""
    if library == LIBRARY.name:
        return sys.executable
    python = VENVS[library] / "bin" / "python"
    if not python.exists():
        skip_or_fail("cdktn", f"{python} not found: `make cdktn` (or `make test`) installs it")
    return str(python)


def provider_package_dir(library: str) -> Path:
    """The provider bindings' package folder of ``library``, in this environment or in its own."""
    provider = cdk_library.LIBRARIES[library].provider
    if library == LIBRARY.name:
        spec = importlib.machinery.PathFinder.find_spec(provider)
        assert spec is not None and spec.origin is not None, provider
        return Path(spec.origin).parent
    library_python(library)  # skips, or fails in CI, when that environment is not installed
    (found,) = VENVS[library].glob(f"lib/python3*/site-packages/{provider}")
    return found


def run_main(
    cwd: Path, env: dict[str, str] | None = None, library: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``main.py`` as ``cdktf synth`` would, from ``cwd`` (on ``library``, default the session's)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("CDKTF_OUTDIR", "ENVIRONMENT_SUFFIX")}
    full_env[cdk_library.SWITCH] = library or LIBRARY.name
    full_env.update(env or {})
    return subprocess.run(
        [library_python(library or LIBRARY.name), str(ROOT / "main.py")],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def cli_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``main.py`` run from the project root into a scratch output folder: what users deploy."""
    out = tmp_path_factory.mktemp("cli-synth") / "cdktf.out"
    result = subprocess.run(
        [sys.executable, "main.py"],
        cwd=ROOT,
        env={**os.environ, **SYNTH_ENV, "CDKTF_OUTDIR": str(out)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def other_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``main.py`` on the other CDK library (cdktn in a default session), once per session."""
    folder = tmp_path_factory.mktemp(f"synth-{OTHER_LIBRARY}")
    result = run_main(folder, SYNTH_ENV, library=OTHER_LIBRARY)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "cdktf.out"


def stack_files(outdir: Path) -> dict[str, Any]:
    """Synthesized JSON of each stack, and the asset files it ships, keyed by stack id."""
    found: dict[str, Any] = {}
    for stack_dir in sorted((outdir / "stacks").iterdir()):
        assets = sorted(p.relative_to(stack_dir).as_posix() for p in (stack_dir / "assets").rglob("*") if p.is_file())
        found[stack_dir.name] = {"json": json.loads((stack_dir / "cdk.tf.json").read_text()), "assets": assets}
    return found


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """The process environment for terraform with the local provider mirror, and the mirror's version."""
    from tools.local.terraform_local import cli_environment, find_toolchain  # noqa: PLC0415

    toolchain = find_toolchain()
    if toolchain is None:
        skip_or_fail("terraform", "terraform binary or hashicorp/aws provider mirror not found")
    assert toolchain is not None
    return cli_environment(toolchain, tmp_path_factory.mktemp("terraform")), toolchain.provider_version


def terraform_validate(folder: Path, env: dict[str, str], version: str) -> dict[str, Any]:
    """``terraform init -backend=false`` and ``validate -json`` in ``folder``, the provider pin relaxed to
    the mirror's ``version`` by an override file (in ``folder``, so pass a scratch copy)."""
    from tools.local.terraform_local import relax_provider_version  # noqa: PLC0415

    relax_provider_version(folder, version)
    for command in (["init", "-backend=false", "-input=false", "-no-color"], ["validate", "-no-color", "-json"]):
        result = subprocess.run(
            ["terraform", *command], cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert result.returncode == 0, f"{folder.name}: terraform {command[0]}\n{result.stdout}\n{result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture
def scratch_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
