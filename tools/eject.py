"""Eject: one plain Terraform folder per stack, which plans and applies with no CDK, no Python, no Node.

    python -m tools.eject --env dev --out DIR [--from SYNTH_OUT]
    make eject ENV=dev OUT=DIR

For the environment's stack and the state bootstrap stack, ``DIR/<stack>/`` gets:

- ``main.tf.json``: the synthesized configuration with cdktf's ``//`` metadata removed (Terraform reads
  ``//`` keys as comments, so nothing changes) and each Lambda's ``source_code_hash`` computed from its
  zip by ``filebase64sha256`` (a rebuilt zip then shows in the plan);
- ``versions.tf.json``: Terraform >= 1.10 (S3 lockfiles) and hashicorp/aws in a range from the pin the
  bindings were generated for up to the next major version;
- ``backend.tf.json``: the real S3 backend (state bucket, per-environment key, KMS key, lockfile). With the
  placeholder account in the bucket name (``TF_STATE_ACCOUNT_ID`` and ``TF_STATE_BUCKET`` unset) eject
  stops with an error instead: that folder could never reach its state. The bootstrap keeps its local
  state, now in its own folder;
- ``assets/``: the Lambda zips, at the paths the state already records;
- ``.terraform.lock.hcl`` when a hashicorp/aws in that range is at hand in a local provider mirror;
- and ``DIR/README.md``: how to rebuild the zips and what the generated addresses mean.

The same state serves both: ``tests/test_deploy_local.py`` plans the ejected dev against the state that
the CDK output applied and finds no changes. HCL (``cdktf synth --hcl``) is not offered: see the README.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stacks.config import PLACEHOLDER_ACCOUNT_ID, PROFILES
from stacks.naming import BOOTSTRAP_STACK_ID, Namer
from tools.local.terraform_local import TerraformError, Toolchain, find_toolchain, run, version_key

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_VERSION = ">= 1.10"
"""The S3 backend's ``use_lockfile`` needs Terraform 1.10."""
BOOTSTRAP_STATE = f"terraform.{BOOTSTRAP_STACK_ID}.tfstate"


class EjectError(Exception):
    """Eject cannot produce a folder that would work; the message says what to do."""


def synthesize(outdir: Path, environ: Mapping[str, str] = os.environ) -> None:
    """``main.py`` with this interpreter (and so this CDK library) into ``outdir``."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        cwd=ROOT,
        env={**environ, "CDKTF_OUTDIR": str(outdir)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise EjectError(f"synth failed:\n{result.stderr[-4000:]}")


def without_metadata(value: Any) -> Any:
    """``value`` with every ``//`` key (cdktf's metadata; a comment to Terraform) left out."""
    if isinstance(value, dict):
        return {k: without_metadata(v) for k, v in value.items() if k != "//"}
    if isinstance(value, list):
        return [without_metadata(v) for v in value]
    return value


def provider_range(pin: str) -> str:
    """``6.25.0`` -> ``>= 6.25.0, < 7.0.0``: the bindings' version up to the next breaking release."""
    major = version_key(pin)[0]
    return f">= {pin}, < {major + 1}.0.0"


def in_range(version: str, pin: str) -> bool:
    return version_key(pin) <= version_key(version) < (version_key(pin)[0] + 1,)


def file_hash(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def check_backend(stack: str, backend: Mapping[str, Any]) -> None:
    s3 = backend.get("s3")
    if s3 is not None and PLACEHOLDER_ACCOUNT_ID in str(s3.get("bucket", "")):
        raise EjectError(
            f"{stack}: the state bucket {s3['bucket']!r} carries the placeholder account: TF_STATE_ACCOUNT_ID "
            "is not set. export TF_STATE_ACCOUNT_ID=<your 12-digit account id> (or TF_STATE_BUCKET=<your "
            "state bucket>) and eject again, so the folder's backend is the state the stacks were applied with"
        )


def eject_stack(stack_dir: Path, target: Path) -> dict[str, Any]:
    """Write one stack's plain Terraform folder; return its ``main.tf.json`` document."""
    document = json.loads((stack_dir / "cdk.tf.json").read_text())
    terraform = document.pop("terraform")
    check_backend(stack_dir.name, terraform.get("backend", {}))
    main = without_metadata(document)
    target.mkdir(parents=True)
    if (stack_dir / "assets").is_dir():
        shutil.copytree(stack_dir / "assets", target / "assets")
    for name, function in main.get("resource", {}).get("aws_lambda_function", {}).items():
        zip_file = target / function["filename"]
        if file_hash(zip_file) != function["source_code_hash"]:
            raise EjectError(f"{stack_dir.name}: {function['filename']} is not the zip {name} was synthesized with")
        function["source_code_hash"] = f'${{filebase64sha256("{function["filename"]}")}}'
    pin = terraform["required_providers"]["aws"]["version"]
    versions = {
        "terraform": {
            "required_version": TERRAFORM_VERSION,
            "required_providers": {"aws": {"source": "hashicorp/aws", "version": provider_range(pin)}},
        }
    }
    backend = terraform.get("backend", {})
    if "local" in backend:  # the bootstrap: its state file beside its configuration, not in the project
        backend = {"local": {**backend["local"], "path": BOOTSTRAP_STATE}}
    write_json(target / "main.tf.json", main)
    write_json(target / "versions.tf.json", versions)
    write_json(target / "backend.tf.json", {"terraform": {"backend": backend}})
    return dict(main)


def write_json(path: Path, content: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")


def lock_providers(folder: Path, toolchain: Toolchain) -> Path:
    """``terraform providers lock`` from the local mirror: the lock file ``terraform init`` would write."""
    try:
        run(["providers", "lock", f"-fs-mirror={toolchain.mirror}"], folder, {**os.environ, "CHECKPOINT_DISABLE": "1"})
    except TerraformError as error:
        raise EjectError(str(error)) from None
    return folder / ".terraform.lock.hcl"


def eject(synth_out: Path, env: str, out: Path, toolchain: Toolchain | None = None) -> list[str]:
    """Eject ``env``'s stack and the bootstrap from ``synth_out`` into ``out``; return what was done."""
    stacks_dir = synth_out / "stacks"
    stacks = [BOOTSTRAP_STACK_ID, Namer(env).stack_id()]
    missing = [s for s in stacks if not (stacks_dir / s / "cdk.tf.json").is_file()]
    if missing:
        known = ", ".join(sorted(p.name for p in stacks_dir.iterdir())) if stacks_dir.is_dir() else "none"
        raise EjectError(f"{', '.join(missing)} not in {synth_out} (stacks there: {known})")
    if out.exists() and any(out.iterdir()):
        raise EjectError(f"{out} is not empty: eject writes a new folder")
    synthesized = {s: json.loads((stacks_dir / s / "cdk.tf.json").read_text()) for s in stacks}
    for stack, document in synthesized.items():  # before anything is written
        check_backend(stack, document["terraform"].get("backend", {}))
    notes = []
    for stack in stacks:
        main = eject_stack(stacks_dir / stack, out / stack)
        pin = synthesized[stack]["terraform"]["required_providers"]["aws"]
        resources = sum(len(named) for named in main.get("resource", {}).values())
        note = f"{out / stack}: {resources} resources"
        if toolchain is not None and in_range(toolchain.provider_version, pin["version"]):
            lock_providers(out / stack, toolchain)
            note += f", .terraform.lock.hcl for hashicorp/aws {toolchain.provider_version}"
        else:
            note += f"; no hashicorp/aws {provider_range(pin['version'])} at hand: `terraform init` writes the lock"
        notes.append(note)
    write_readme(out, stacks, stacks_dir)
    return notes


def write_readme(out: Path, stacks: Sequence[str], stacks_dir: Path) -> None:
    example_stack = stacks[-1]
    document = json.loads((stacks_dir / example_stack / "cdk.tf.json").read_text())
    functions = document.get("resource", {}).get("aws_lambda_function", {})
    function_name, function = next(iter(functions.items()), ("<name>", {"filename": "assets/<path>.zip"}))
    (out / "README.md").write_text(
        README.format(
            stacks="\n".join(f"- `{s}/`" for s in stacks),
            bootstrap=BOOTSTRAP_STACK_ID,
            bootstrap_state=BOOTSTRAP_STATE,
            env_stack=example_stack,
            function=function_name,
            zip=function["filename"],
            renamed=function_name.rsplit("_", 1)[0],
        )
    )


README = """# Plain Terraform, ejected from the traffic analytics platform's CDK stacks

One folder per stack; each plans and applies with Terraform >= 1.10 alone (no CDK, Python or Node):

{stacks}

    cd {env_stack} && terraform init && terraform plan

`main.tf.json` is the synthesized configuration without CDK metadata, `versions.tf.json` the Terraform
and provider versions, `backend.tf.json` the state backend. `{env_stack}` uses the same S3 state (bucket,
key, KMS key, lockfile) the CDK deployment used, so its first plan shows no changes. `{bootstrap}` keeps
a local state: copy `{bootstrap_state}` from the project folder into `{bootstrap}/` before planning it.

## Lambda code

Each function's zip is under `assets/`, at the path its state records (`{zip}`), and
`source_code_hash` is `filebase64sha256` of that file. To change a function's code, rebuild the zip at
the same path with the same layout: the `lambdas` package at the top, holding `__init__.py`, the
function's own folder and `common/` (its handler is `lambdas.<function>.handler.handler`):

    mkdir src && cd src && unzip ../{zip}   # or start from the project's lambdas/ folder
    # edit lambdas/...
    rm ../{zip} && zip -X -r ../{zip} lambdas -i '*.py'

The next plan shows the function's code updated in place. (Keep the path: a new `filename` is a change too.)

## Generated addresses

cdktf named each resource after its construct path plus a hash, e.g.
`aws_lambda_function.{function}`. They are ordinary Terraform names now: keep them, or rename one by
changing every reference to it in `main.tf.json` and adding a `moved` block, so Terraform moves the
state instead of destroying and recreating the resource:

    {{"moved": [{{"from": "aws_lambda_function.{function}", "to": "aws_lambda_function.{renamed}"}}]}}

(in a file such as `moved.tf.json`; `terraform plan` then reports the move and no replacement).
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.eject", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="environment to eject (dev, staging, prod or an ad-hoc one)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write (must not exist or be empty)")
    parser.add_argument("--from", dest="synth_out", type=Path, help="an existing synth output (default: synthesize)")
    args = parser.parse_args(argv)
    toolchain = find_toolchain()
    try:
        if args.synth_out is not None:
            notes = eject(args.synth_out, args.env, args.out, toolchain)
        else:
            with tempfile.TemporaryDirectory(prefix="tap-eject-") as scratch:
                environ = dict(os.environ)
                if args.env not in PROFILES:  # an ad-hoc environment: synthesize it, on the dev profile
                    environ["ENVIRONMENT_SUFFIX"] = args.env
                synthesize(Path(scratch) / "cdktf.out", environ)
                notes = eject(Path(scratch) / "cdktf.out", args.env, args.out, toolchain)
    except EjectError as error:
        print(f"eject stopped: {error}", file=sys.stderr)
        return 2
    for note in notes:
        print(note)
    print(f"see {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
