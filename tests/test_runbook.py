"""Every command in docs/operations.md exists and is well-formed: checked against what defines it.

- ``make X``: a target of the Makefile;
- ``python -m tools.X ...``: parsed by that tool's own argument parser;
- ``aws <service> <operation> --param ...``: a real operation and parameters of botocore's service model;
- ``terraform [-chdir=cdktf.out/stacks/<stack>] <subcommand> [-flags]``: a real subcommand whose help lists
  the flags (with the terraform binary, when present), on a stack ``main.py`` synthesizes;
- ``cdktf <command> <stack>`` and ``git revert|checkout``: known commands, valid stack ids.
A line of any other kind fails the test, so nothing in the runbook goes unchecked.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache

import pytest

from stacks.naming import validate_suffix
from tests.conftest import ROOT

RUNBOOK = ROOT / "docs" / "operations.md"
PLACEHOLDER = re.compile(r"<[^>]+>")
AWS_GLOBAL = {"--output", "--region", "--query", "--profile", "--no-cli-pager", "--endpoint-url"}
TERRAFORM = {"init", "plan", "apply", "destroy", "output", "show", "validate", "state", "import"}
CDKTF = {"synth", "diff", "deploy", "destroy", "output", "list"}


def commands() -> Iterator[str]:
    in_block = False
    for line in RUNBOOK.read_text().splitlines():
        if line.lstrip().startswith("```"):  # fences inside list items are indented
            in_block = line.strip() == "```bash" if not in_block else False
            continue
        if in_block and line.strip() and not line.lstrip().startswith("#"):
            yield line.strip()


def words(command: str) -> list[str]:
    argv = shlex.split(command)
    while argv and (argv[0] == "export" or re.fullmatch(r"[A-Z_]+=\S*", argv[0])):
        argv = argv[1:] if argv[0] != "export" else argv[2:]
    return argv


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def parser_of(module: str) -> argparse.ArgumentParser:
    tool = importlib.import_module(module)
    assert hasattr(tool, "build_parser"), f"{module} has no argument parser to check against"
    return tool.build_parser()  # type: ignore[no-any-return]


@cache
def aws_operations(service: str) -> dict[str, set[str]]:
    import botocore.session  # noqa: PLC0415
    from botocore import xform_name  # noqa: PLC0415

    model = botocore.session.get_session().get_service_model(service)
    found = {}
    for name in model.operation_names:
        shape = model.operation_model(name).input_shape
        members = set(shape.members) if shape is not None else set()
        found[xform_name(name, "-")] = {f"--{xform_name(m, '-')}" for m in members}
    return found


CLI_SERVICES = {"s3api": "s3"}
"""AWS CLI command names that differ from botocore's service names."""


def check_aws(argv: list[str]) -> None:
    service, operation, *rest = argv[1:]
    operations = aws_operations(CLI_SERVICES.get(service, service))
    assert operation in operations, f"aws {service} has no operation {operation}"
    for word in rest:
        if word.startswith("--"):
            known = operations[operation] | AWS_GLOBAL
            negated = word.startswith("--no-") and f"--{word[5:]}" in known  # the CLI's --no-<boolean>
            assert word in known or negated, f"aws {service} {operation}: no parameter {word}"


def check_terraform(argv: list[str], stacks: set[str]) -> None:
    rest = argv[1:]
    if rest and rest[0].startswith("-chdir="):
        folder = rest.pop(0).split("=", 1)[1]
        assert folder.startswith("cdktf.out/stacks/"), folder
        stack = folder.removeprefix("cdktf.out/stacks/")
        assert stack in stacks or validate_suffix(stack.removeprefix("tap-")), stack
    subcommand, *flags = rest
    assert subcommand in TERRAFORM, f"terraform {subcommand}?"
    binary = shutil.which("terraform")
    if binary is None:
        return
    help_text = subprocess.run([binary, subcommand, "-help"], capture_output=True, text=True, check=False)
    assert help_text.returncode == 0, help_text.stderr
    for flag in flags:
        if flag.startswith("-"):
            name = flag.split("=", 1)[0]
            assert re.search(rf"^\s+{re.escape(name)}\b", help_text.stdout, re.MULTILINE), (
                f"terraform {subcommand} {name}?"
            )


STACKS = {"tap-state-bootstrap", "tap-dev", "tap-staging", "tap-prod"}


def check(command: str) -> str:
    argv = [PLACEHOLDER.sub("x", w) for w in words(command)]
    if not argv:  # only variable assignments (export X=...)
        assert re.fullmatch(r"(export )?[A-Z_]+=\S+", command), command
        return "export"
    program = argv[0]
    if program == "make":
        targets = [w for w in argv[1:] if not re.fullmatch(r"[A-Z_]+=\S+", w)]  # VAR=value sets a variable
        assert set(targets) <= make_targets(), f"{command}: no such make target"
    elif program == "python" and argv[1] == "-m":
        module = argv[2]
        assert module.startswith("tools."), command
        parser_of(module).parse_args(argv[3:])  # exits (fails the test) on an unknown or bad argument
    elif program == "aws":
        check_aws(argv)
    elif program == "terraform":
        check_terraform(argv, STACKS)
    elif program == "cdktf":
        assert argv[1] in CDKTF and (argv[2] in STACKS or validate_suffix(argv[2].removeprefix("tap-")))
    elif program == "git":
        assert argv[1] in {"revert", "checkout"}, command
    else:
        raise AssertionError(f"the runbook runs {program!r}, which this test cannot check: {command}")
    return program


def test_the_runbook_covers_what_operators_do() -> None:
    text = RUNBOOK.read_text()
    for section in ("First deployment", "Adding an environment", "Promoting", "Rolling back",
                    "Rotating a sensor's certificate", "Reading the dashboard and alarms",
                    "Redriving the dead-letter queue", "Querying with Athena"):  # fmt: skip
        assert f"## {section}" in text
    assert "docs/operations.md" in (ROOT / "README.md").read_text(), "the README links the runbook"


def test_the_first_deployment_checklist_covers_what_aws_would_refuse_or_cancel() -> None:
    """Issue 21: the schedule group and its trust, the schedule's key, Athena's cutoff per environment, the
    budget's actual-spend notifications, the smoke test's wait for the schedule, the plan and deploy roles."""
    text = RUNBOOK.read_text()
    checklist = text[text.index("### First real deployment: checklist") : text.index("## Capacity and cost")]
    for needed in ("tap-schedules-<env>", "must be a schedule", "CKV_AWS_297", "athena_bytes_scanned_cutoff",
                   "**actual** spend", "waits up to 5 minutes for its first", "iam/plan-role-policy.json",
                   "iam/deploy-role-policy.json", "s3:TagResource"):  # fmt: skip
        assert needed in checklist, needed
    for policy in ("plan-role-policy.json", "deploy-role-policy.json"):
        assert (ROOT / "docs" / "iam" / policy).is_file()


@pytest.mark.parametrize("command", list(commands()))
def test_every_runbook_command_exists(command: str) -> None:
    check(command)


def test_the_checks_catch_commands_that_do_not_exist() -> None:
    for wrong in (
        "make deploy-everything",
        "python -m tools.redrive --environment prod",
        "aws iot rotate-certificate --certificate-id x",
        "aws athena start-query-execution --workgroup x",
        "terraform -chdir=cdktf.out/stacks/tap-dev plan -outfile=tfplan",
        "rm -rf cdktf.out",
    ):
        with pytest.raises((AssertionError, SystemExit)):
            check(wrong)


def test_every_alarm_and_onboarding_task_is_in_the_runbook() -> None:
    from stacks.monitoring import ALARM_CONCERNS  # noqa: PLC0415

    text = RUNBOOK.read_text()
    missing = [concern for concern in ALARM_CONCERNS if f"`{concern}`" not in text]
    assert not missing, f"alarms the runbook does not explain: {missing}"
    for section in ("Onboarding sensors", "Rotating the claim certificate", "Revoking a stolen sensor"):
        assert section in text
    for command in ("python -m tools.fleet allow", "python -m tools.fleet register", "python -m tools.fleet revoke"):
        assert command in text
