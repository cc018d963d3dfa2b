"""TAP_CDK selects cdktf or cdktn; the stacks' cdktf imports resolve to the selected library's modules."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stacks import LIBRARY, cdk_library
from tests.conftest import ROOT, library_python, run_main


def test_the_default_is_cdktf_and_each_name_selects_its_library() -> None:
    assert cdk_library.selected({}) == cdk_library.CDKTF == cdk_library.DEFAULT
    assert cdk_library.selected({"TAP_CDK": ""}) == cdk_library.CDKTF
    assert cdk_library.selected({"TAP_CDK": "cdktn"}) == cdk_library.CDKTN
    assert cdk_library.selected({"TAP_CDK": " cdktf "}) == cdk_library.CDKTF


def test_an_unknown_library_is_a_clear_error_naming_the_switch() -> None:
    with pytest.raises(cdk_library.CdkLibraryError, match=r"TAP_CDK='cdk8s': expected one of cdktf, cdktn"):
        cdk_library.selected({"TAP_CDK": "cdk8s"})


def test_only_the_core_and_provider_modules_are_aliased() -> None:
    alias = cdk_library.aliased_name
    tf, tn = cdk_library.CDKTF, cdk_library.CDKTN
    assert alias("cdktf", tf, tn) == "cdktn"
    assert alias("cdktf.testing_matchers", tf, tn) == "cdktn.testing_matchers"
    assert alias("cdktf_cdktf_provider_aws", tf, tn) == "cdktn_provider_aws"
    assert alias("cdktf_cdktf_provider_aws.s3_bucket", tf, tn) == "cdktn_provider_aws.s3_bucket"
    assert alias("cdktfx", tf, tn) is None
    assert alias("constructs", tf, tn) is None
    assert alias("cdktn", tf, tn) is None


def test_the_session_runs_on_the_selected_library() -> None:
    import cdktf  # noqa: PLC0415

    assert cdktf.__name__ == LIBRARY.core


ALIAS_PROBE = """
import json, sys
import stacks
import cdktf, cdktn
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
import cdktn_provider_aws.s3_bucket as real
import stacks.app
print(json.dumps({
    "library": stacks.LIBRARY.name,
    "same_core": cdktf is cdktn,
    "same_class": S3Bucket is real.S3Bucket,
    "spec": real.__spec__.name,
    "loaded": sorted(m for m in sys.modules if m.startswith("cdktn_provider_aws.")),
}))
"""


def test_on_cdktn_the_stacks_cdktf_imports_are_cdktns_own_modules() -> None:
    """One module object under both names: one class per type, one jsii registration, its own spec."""
    result = subprocess.run(
        [library_python("cdktn"), "-c", ALIAS_PROBE],
        cwd=ROOT,
        env={**os.environ, "TAP_CDK": "cdktn"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["library"] == "cdktn" and found["same_core"] and found["same_class"]
    assert found["spec"] == "cdktn_provider_aws.s3_bucket", "the alias does not rename the real module"
    assert "cdktn_provider_aws.s3_bucket" in found["loaded"]


def test_selecting_another_library_in_a_running_process_is_refused() -> None:
    """Types of two libraries in one jsii kernel would not mix: the switch is read once, at start."""
    import cdktf  # noqa: PLC0415, F401

    other = "cdktn" if LIBRARY.name == "cdktf" else "cdktf"
    assert cdk_library.install({"TAP_CDK": LIBRARY.name}) == LIBRARY
    with pytest.raises(cdk_library.CdkLibraryError, match=r"already (imported|installed) in this process"):
        cdk_library.install({"TAP_CDK": other})


def test_synth_with_an_unknown_library_stops_naming_the_switch(tmp_path: Path) -> None:
    result = run_main(tmp_path, {"TAP_CDK": "cdk8s"})
    assert result.returncode == 2
    assert "synth stopped: TAP_CDK='cdk8s': expected one of cdktf, cdktn" in result.stderr
    assert not (tmp_path / "cdktf.out").exists()
