"""Deploy every environment for real, with terraform, against moto's server standing in for AWS.

    python -m tools.local.deploy_local [--env dev --env prod] [--keep-going] [--workdir DIR]

1. synthesizes all environments (``main.py``) into a scratch folder;
2. starts moto's server on a free loopback port (stopped at the end, whatever happens);
3. applies the state bootstrap stack, so the state bucket exists in the emulated S3;
4. for each environment, in a scratch copy of its stack: an ``aws_override.tf.json`` points the provider
   at the emulator (endpoints for every service, dummy credentials, skip-validation flags, path-style
   S3) and a ``provider_version_override.tf.json`` relaxes the provider pin to the mirror's version;
   the real S3 backend (bucket, per-environment key, encryption, lockfile) is initialised against the
   emulated S3 with a ``-backend-config`` file; the synthesized files are not edited;
5. ``terraform init`` (mirror only), ``plan``, ``apply``, a second ``plan`` that must show no changes,
   (with ``--eject STACK``) a plan of that stack's ejected plain Terraform folder (``tools.eject``)
   against the same state, which must show no changes either, and ``destroy`` for non-production
   environments, which must leave nothing behind;
6. after dev is applied, runs the local data path (``tools.local.simulate``) against the deployed resources,
   named by ``terraform output -json``, with ``--check-iam``: every AWS call of each function is checked
   against its role policy as applied (``tools/local/iam_check.py``); a denied call fails the environment;
   then the smoke test (``tools.smoke --process-locally``) on the same resources, and onboarding: one
   sensor by claim and one in bulk with what Terraform created, each publishing through IoT's
   authorization and the data path, and the bulk one refused once revoked (``tools.local.iot_fleet``).

Resources the emulator cannot create or read back are excluded in one place: ``EXCLUSIONS`` in
``tools/local/moto_gaps.py``, each with the exact error and whose gap it is.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.config import load
from tools.eject import synthesize as synthesize_stacks
from tools.local.simulate import ACCOUNT_ID  # the account moto's server answers for
from tools.local.terraform_local import (
    Toolchain,
    cli_environment,
    find_toolchain,
    relax_provider_version,
    run,
    write_override,
)

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# Every service the stacks talk to (the provider's endpoint names).
SERVICES = (
    "appautoscaling",
    "athena",
    "budgets",
    "cloudwatch",
    "dynamodb",
    "firehose",
    "glue",
    "iam",
    "iot",
    "kinesis",
    "kms",
    "lambda",
    "logs",
    "s3",
    "scheduler",
    "sns",
    "sqs",
    "sts",
)
DUMMY_CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}
# The traffic the local run sends through the deployed dev environment.
SIMULATE_SENSORS, SIMULATE_MINUTES, SIMULATE_NOW = 20, 30, "2026-06-01T12:00:00Z"
# Two of them stop halfway and one comes back, with the silence check every minute: every path of it runs.
SIMULATE_STOP, SIMULATE_RESUME, SIMULATE_CHECK_EVERY = 2, 1, 60


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA: clients verify TLS against it, nothing insecure."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tap local emulator")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "emulator.crt", folder / "emulator.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def moto_server(folder: Path) -> Iterator[tuple[str, Path]]:
    """moto's server over TLS on a free loopback port; yields its URL and CA bundle, always stops it.

    TLS, because the stacks' bucket policies deny insecure transport, and moto enforces them.
    """
    port = free_port()
    cert, key = self_signed_certificate(folder)
    listen = ["-H", "127.0.0.1", "-p", str(port), "-c", str(cert), "-k", str(key)]
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.local.emulator", *listen],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2, context=context):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)
        yield url, cert
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def provider_override(endpoint: str, ca_bundle: Path) -> dict[str, Any]:
    return {
        "provider": {
            "aws": {
                **DUMMY_CREDENTIALS,
                "custom_ca_bundle": str(ca_bundle),
                "skip_credentials_validation": True,
                "skip_metadata_api_check": True,
                "skip_region_validation": True,
                "skip_requesting_account_id": False,
                "s3_use_path_style": True,
                "endpoints": [dict.fromkeys(SERVICES, endpoint)],
            }
        }
    }


def backend_config(endpoint: str, ca_bundle: Path, path: Path) -> Path:
    """Settings that point the stack's own S3 backend at the emulated S3 (merged with its block)."""
    lines = [
        f'custom_ca_bundle = "{ca_bundle}"',
        f'endpoints = {{ s3 = "{endpoint}", sts = "{endpoint}" }}',
        "use_path_style = true",
        "skip_credentials_validation = true",
        "skip_requesting_account_id = true",
        "skip_metadata_api_check = true",
        "skip_region_validation = true",
        'access_key = "testing"',
        'secret_key = "testing"',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class EnvironmentRun:
    stack: str
    production: bool
    seconds: dict[str, float] = field(default_factory=dict)
    resources: int = 0
    simulate: dict[str, Any] | None = None
    smoke: dict[str, Any] | None = None
    ejected_plan: tuple[int, str] | None = None
    onboarding: dict[str, Any] | None = None


@dataclass
class Deployment:
    toolchain: Toolchain
    endpoint: str
    ca_bundle: Path
    workdir: Path
    env: dict[str, str]
    outdir: Path
    eject: frozenset[str] = frozenset()
    """Stacks whose ejected plain Terraform folder is planned against the applied state (``--eject``)."""
    runs: list[EnvironmentRun] = field(default_factory=list)

    def stage(self, stack: str, source: Path | None = None, scratch: Path | None = None) -> Path:
        """A scratch copy of the stack's folder (the synthesized one unless ``source``) set up for moto."""
        scratch = scratch or self.workdir / "stacks" / stack
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(source or self.outdir / "stacks" / stack, scratch)
        relax_provider_version(scratch, self.toolchain.provider_version)
        write_override(scratch, "aws", provider_override(self.endpoint, self.ca_bundle))
        from tools.local.moto_gaps import apply_exclusions  # noqa: PLC0415

        apply_exclusions(scratch)
        return scratch

    def init(self, record: EnvironmentRun, scratch: Path, phase: str = "init") -> None:
        """``terraform init`` from the mirror, with the stack's S3 backend pointed at the emulated S3."""
        init = ["init", "-input=false", "-no-color"]
        if record.stack != "tap-state-bootstrap":
            init.append(
                f"-backend-config={backend_config(self.endpoint, self.ca_bundle, scratch / 'moto.s3.tfbackend')}"
            )
        self.timed(record, phase, init, scratch)

    def plan_ejected(self, record: EnvironmentRun, scratch: Path) -> None:
        """Plan the plain Terraform folder ``tools.eject`` makes of this stack against the state just
        applied from the CDK output; ``record.ejected_plan`` keeps terraform's exit code and output."""
        from tools.eject import eject_stack  # noqa: PLC0415

        ejected = self.workdir / "ejected" / record.stack
        shutil.rmtree(ejected, ignore_errors=True)
        eject_stack(self.outdir / "stacks" / record.stack, ejected)
        staged = self.stage(record.stack, source=ejected, scratch=self.workdir / "ejected-staged" / record.stack)
        self.init(record, staged, "ejected-init")
        result = self.timed(
            record, "ejected-plan", ["plan", "-input=false", "-no-color", "-detailed-exitcode"], staged, check=False
        )
        record.ejected_plan = (result.returncode, result.stdout)

    def timed(self, record: EnvironmentRun, phase: str, args: Sequence[str], cwd: Path, **kw: Any) -> Any:
        started = time.monotonic()
        result = run(args, cwd, self.env, log=cwd / f"{phase}.log", **kw)
        record.seconds[phase] = round(time.monotonic() - started, 1)
        log(f"  {record.stack}: terraform {phase} {record.seconds[phase]} s")
        return result

    def deploy(self, stack: str, *, production: bool, simulate: bool) -> EnvironmentRun:
        record = EnvironmentRun(stack, production)
        self.runs.append(record)
        scratch = self.stage(stack)
        self.init(record, scratch)
        self.timed(record, "plan", ["plan", "-input=false", "-no-color", "-out=tfplan"], scratch)
        self.timed(record, "apply", ["apply", "-input=false", "-no-color", "-auto-approve", "tfplan"], scratch)
        state = json.loads(run(["show", "-json"], scratch, self.env).stdout)
        record.resources = len(state.get("values", {}).get("root_module", {}).get("resources", []))
        replan = self.timed(
            record, "replan", ["plan", "-input=false", "-no-color", "-detailed-exitcode"], scratch, check=False
        )
        if replan.returncode != 0:
            raise RuntimeError(
                f"{stack}: the second plan is not empty (exit {replan.returncode}):\n{replan.stdout[-8000:]}"
            )
        if stack in self.eject:
            self.plan_ejected(record, scratch)
        if simulate:
            record.simulate = self.simulate(stack, scratch)
            record.smoke = self.smoke(stack, scratch)
            record.onboarding = self.onboard(stack, scratch)
        if not production:
            self.timed(record, "destroy", ["destroy", "-input=false", "-no-color", "-auto-approve"], scratch)
            left = json.loads(run(["show", "-json"], scratch, self.env).stdout)
            remaining = left.get("values", {}).get("root_module", {}).get("resources", [])
            managed = [r["address"] for r in remaining if r.get("mode") == "managed"]
            if managed:
                raise RuntimeError(f"{stack}: destroy left {managed}")
        return record

    def simulate(self, stack: str, scratch: Path) -> dict[str, Any]:
        outputs = scratch / "outputs.json"
        outputs.write_text(run(["output", "-json"], scratch, self.env).stdout)
        summary = scratch / "simulate-summary.json"
        suffix = stack.removeprefix("tap-")
        return self.run_tool(
            stack,
            "local data path on the deployed resources",
            "tools.local.simulate",
            ["--env", suffix, "--endpoint-url", self.endpoint, "--outputs", str(outputs),
             "--sensors", str(SIMULATE_SENSORS), "--minutes", str(SIMULATE_MINUTES), "--now", SIMULATE_NOW,
             "--stop", str(SIMULATE_STOP), "--resume", str(SIMULATE_RESUME),
             "--check-every", str(SIMULATE_CHECK_EVERY), "--summary", str(summary), "--check-iam"],
            summary,
        )  # fmt: skip

    def smoke(self, stack: str, scratch: Path) -> dict[str, Any]:
        """``tools.smoke`` on the deployed environment (after ``simulate``, which wrote its outputs)."""
        report = scratch / "smoke-report.json"
        return self.run_tool(
            stack,
            "smoke test",
            "tools.smoke",
            ["--env", stack.removeprefix("tap-"), "--endpoint-url", self.endpoint,
             "--outputs", str(scratch / "outputs.json"), "--process-locally", "--timeout", "0",
             "--report", str(report)],
            report,
        )  # fmt: skip

    def onboard(self, stack: str, scratch: Path) -> dict[str, Any]:
        """A sensor onboarded each way with what Terraform created (claim template, policies, thing group,
        allow-list), its reading through IoT's authorization and the data path, and the revoked one refused
        (``tools.local.iot_fleet``; after ``simulate``, which wrote the outputs)."""
        summary = scratch / "onboarding.json"
        return self.run_tool(
            stack,
            "onboarding by claim and in bulk",
            "tools.local.iot_fleet",
            ["--env", stack.removeprefix("tap-"), "--endpoint-url", self.endpoint,
             "--outputs", str(scratch / "outputs.json"), "--workdir", str(scratch / "onboarding"),
             "--summary", str(summary)],
            summary,
        )  # fmt: skip

    def run_tool(self, stack: str, what: str, module: str, args: Sequence[str], report: Path) -> dict[str, Any]:
        """``python -m <module> <args>`` against the emulator, and the JSON ``report`` it wrote; a failure
        fails the environment."""
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env={
                **os.environ,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_CA_BUNDLE": str(self.ca_bundle),
            },
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        log(result.stdout.rstrip())
        if result.returncode != 0:
            raise RuntimeError(f"{what} on the deployed {stack} failed:\n{result.stderr[-6000:]}")
        log(f"  {stack}: {what} {time.monotonic() - started:.1f} s")
        loaded: dict[str, Any] = json.loads(report.read_text())
        return loaded


EMULATED_STATE = {"TF_STATE_ACCOUNT_ID": ACCOUNT_ID, "TF_STATE_BUCKET": ""}
"""The state bucket named after the emulator's account, as a real deployment names it after its own (the
bootstrap stack refuses a name carrying another account)."""


def synthesize(outdir: Path) -> None:
    started = time.monotonic()
    synthesize_stacks(outdir, {**os.environ, **EMULATED_STATE})
    log(f"synthesized in {time.monotonic() - started:.1f} s")


def deploy_all(workdir: Path, only: Sequence[str] = (), eject: Sequence[str] = ()) -> Deployment:
    toolchain = find_toolchain()
    if toolchain is None:
        raise RuntimeError("needs the terraform binary and a hashicorp/aws provider mirror")
    platform = load({**os.environ, **EMULATED_STATE})
    outdir = workdir / "cdktf.out"
    synthesize(outdir)
    with moto_server(workdir) as (endpoint, ca_bundle):
        log(f"moto server at {endpoint}")
        env = cli_environment(toolchain, workdir)
        deployment = Deployment(toolchain, endpoint, ca_bundle, workdir, env, outdir, frozenset(eject))
        deployment.deploy("tap-state-bootstrap", production=True, simulate=False)
        for env in platform.environments:
            if only and env.suffix not in only:
                continue
            deployment.deploy(f"tap-{env.suffix}", production=env.config.production, simulate=env.suffix == "dev")
        return deployment


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local.deploy_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", default=[], help="only these environments (default: all)")
    parser.add_argument("--workdir", type=Path, help="scratch folder to keep (default: a temporary one)")
    parser.add_argument("--report", type=Path, help="write per-environment timings as JSON")
    parser.add_argument(
        "--eject",
        action="append",
        default=[],
        metavar="STACK",
        help="also plan this stack's ejected plain Terraform folder (tools.eject) against the applied state; "
        "any change fails (e.g. --eject tap-dev)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tap-deploy-local-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        deployment = deploy_all(workdir, args.env, args.eject)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report = [
        {"stack": r.stack, "production": r.production, "resources": r.resources, "seconds": r.seconds}
        for r in deployment.runs
    ]
    for r in report:
        log(f"{r['stack']}: {r['resources']} resources, " + ", ".join(f"{k} {v} s" for k, v in r["seconds"].items()))
    log(f"total {time.monotonic() - started:.0f} s")
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    changed = [r for r in deployment.runs if r.ejected_plan is not None and r.ejected_plan[0] != 0]
    for r in changed:
        log(
            f"{r.stack}: the ejected folder's plan is not empty:\n{r.ejected_plan[1][-8000:] if r.ejected_plan else ''}"
        )
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
