#!/usr/bin/env python
"""Synthesizes the traffic analytics platform: the state bootstrap stack and one stack per environment.

    pipenv run python main.py              # dev, staging, prod (+ bootstrap) into ./cdktf.out
    ENVIRONMENT_SUFFIX=pr123 ... main.py   # plus an ad-hoc environment on the dev profile

Configuration is validated before anything is built; a bad value exits with status 2, names the field,
and leaves any existing output untouched. Output is written to a scratch folder and moved into place
only when synthesis succeeded, so ``cdktf.out`` is never partial.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

try:
    from stacks.config import ConfigError, Platform, load
    from stacks.naming import NamingError
except ValueError as exc:  # stacks.cdk_library.CdkLibraryError: TAP_CDK names no library we support
    print(f"synth stopped: {exc}", file=sys.stderr)
    sys.exit(2)


def synthesize(platform: Platform, outdir: Path) -> None:
    """Build every stack and synthesize into ``outdir``, replacing it only on success."""
    # The provider bindings are imported only once the configuration is known to be valid.
    from cdktf import App  # noqa: PLC0415

    from stacks.app import build  # noqa: PLC0415

    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    scratch = outdir.with_name(f"{outdir.name}.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        app = App(outdir=str(scratch))
        build(app, platform)
        app.synth()
        previous = outdir.with_name(f"{outdir.name}.previous-{os.getpid()}")
        if outdir.exists():
            os.rename(outdir, previous)
        os.rename(scratch, outdir)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    try:
        platform = load(os.environ)
    except (ConfigError, NamingError) as exc:
        print(f"synth stopped: {exc}", file=sys.stderr)
        return 2
    outdir = Path(os.environ.get("CDKTF_OUTDIR") or "cdktf.out")
    synthesize(platform, outdir)
    names = ", ".join(env.suffix for env in platform.environments)
    print(f"synthesized environments {names} and the state bootstrap into {outdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    status = main()
    # Synthesis is complete and on disk: skip the interpreter's teardown of the provider bindings and
    # the jsii kernel's shutdown handshake (the kernel exits when our end of its pipe closes).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
