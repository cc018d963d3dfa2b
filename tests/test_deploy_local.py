"""Every environment planned, applied, re-planned with no changes and (non-prod) destroyed with terraform
against moto's server, and the data path run on the deployed dev environment (``tools.local.deploy_local``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.oracle import Sent, assert_summary, expected
from tests.test_smoke import ON_THE_EMULATOR
from tools.local import deploy_local, simulate
from tools.local.terraform_local import find_toolchain


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> deploy_local.Deployment:
    if find_toolchain() is None:
        skip_or_fail("terraform", "terraform binary or hashicorp/aws provider mirror not found")
    return deploy_local.deploy_all(tmp_path_factory.mktemp("deploy-local"), eject=("tap-dev",))


def test_every_environment_deploys_replans_clean_and_non_prod_destroys(deployment: deploy_local.Deployment) -> None:
    runs = {r.stack: r for r in deployment.runs}
    assert set(runs) == {"tap-state-bootstrap", "tap-dev", "tap-staging", "tap-prod"}
    for stack, run in runs.items():
        # deploy() raises on a non-empty second plan or on anything left after destroy
        assert {"init", "plan", "apply", "replan"} <= set(run.seconds), stack
        assert ("destroy" in run.seconds) is (not run.production), stack
        assert run.resources > (15 if stack == "tap-state-bootstrap" else 90), (stack, run.resources)


def test_the_ejected_dev_plans_no_changes_against_the_state_the_cdk_output_applied(
    deployment: deploy_local.Deployment,
) -> None:
    """``tools.eject``'s plain Terraform folder of dev, with its own backend, versions and zips, planned
    with the S3 state the synthesized stack was applied with (before dev is destroyed)."""
    (dev,) = [r for r in deployment.runs if r.stack == "tap-dev"]
    assert dev.ejected_plan is not None and {"ejected-init", "ejected-plan"} <= set(dev.seconds)
    code, output = dev.ejected_plan
    assert code == 0, output[-8000:]
    assert "No changes." in output
    ejected = deployment.workdir / "ejected" / "tap-dev"
    files = ["assets", "backend.tf.json", "main.tf.json", "versions.tf.json"]
    assert sorted(p.name for p in ejected.iterdir()) == files
    assert '"//":' not in (ejected / "main.tf.json").read_text(), "no CDK metadata key left"
    assert [r.stack for r in deployment.runs if r.ejected_plan is not None] == ["tap-dev"]


def test_the_data_path_runs_on_the_deployed_dev_environment(deployment: deploy_local.Deployment) -> None:
    (dev,) = [r for r in deployment.runs if r.stack == "tap-dev"]
    summary = dev.simulate
    assert summary is not None
    # The same generated traffic tools.local.deploy_local sends, checked against the contract independently.
    now = simulate.parse_instant(deploy_local.SIMULATE_NOW)
    messages = simulate.generate(
        deploy_local.SIMULATE_SENSORS,
        deploy_local.SIMULATE_MINUTES,
        start_ns=simulate.first_minute(now, deploy_local.SIMULATE_MINUTES),
        now_ns=now,
        stop=deploy_local.SIMULATE_STOP,
        resume=deploy_local.SIMULATE_RESUME,
    )
    assert_summary(summary, expected([Sent(m.thing, m.payload, now) for m in messages]), checks="rounds")
    stopped, minutes = deploy_local.SIMULATE_STOP, deploy_local.SIMULATE_MINUTES
    assert summary["accepted"] == deploy_local.SIMULATE_SENSORS * minutes - stopped * minutes // 2 + (
        deploy_local.SIMULATE_RESUME * (minutes - minutes * 3 // 4)
    )
    kinds = [a.get("alert_type") for a in summary["alerts"]]
    assert (kinds.count("sensor_silent"), kinds.count("sensor_recovered")) == (stopped, deploy_local.SIMULATE_RESUME)
    assert summary["run"]["partials"] > 0, "the folder read the deployed partials stream"
    assert summary["alerts"], "congestion in the generated traffic raised alerts on the deployed topic"
    # Every AWS call of each function, checked against its role policy as applied in the emulator's IAM.
    iam = summary["iam"]
    assert iam["passed"], iam["problems"]
    assert not iam["denied"] and not iam["unmapped"]
    assert iam["calls"]["processor"] > 0 and iam["calls"]["folder"] > 0 and iam["calls"]["silence"] > 0
    assert {"s3:PutObject", "kms:GenerateDataKey"} <= set(iam["used"]["processor"]), "SSE-KMS quarantine writes"
    assert {"dynamodb:UpdateItem", "sns:Publish", "kms:Decrypt", "cloudwatch:PutMetricData"} <= set(
        iam["used"]["folder"]
    ), "alerts to the encrypted topic, and metrics"
    assert all(u["reason"] for u in iam["unused"])


def test_scratch_copies_leave_the_synthesized_output_untouched(deployment: deploy_local.Deployment) -> None:
    for stack in ("tap-dev", "tap-prod"):
        synthesized = deployment.outdir / "stacks" / stack
        assert not list(synthesized.glob("*_override.tf.json"))
        assert not (synthesized / ".terraform").exists()
        assert list((deployment.workdir / "stacks" / stack).glob("*_override.tf.json"))
    assert isinstance(deployment.workdir, Path)


def test_the_smoke_test_passes_on_the_deployed_dev_environment(deployment: deploy_local.Deployment) -> None:
    """What the emulator can run passes; what it cannot (lake, alarm action) is skipped, never passed."""
    (dev,) = [r for r in deployment.runs if r.stack == "tap-dev"]
    assert dev.smoke is not None
    status = {c["name"]: c["status"] for c in dev.smoke["checks"]}
    assert status == ON_THE_EMULATOR


def test_a_sensor_onboarded_each_way_on_the_deployed_dev_publishes_and_a_revoked_one_is_refused(
    deployment: deploy_local.Deployment,
) -> None:
    (dev,) = [r for r in deployment.runs if r.stack == "tap-dev"]
    onboarding = dev.onboarding
    assert onboarding is not None
    assert (onboarding["claimed"], onboarding["registered"]) == ("onboard-claim-1", "registered")
    assert onboarding["published"] == onboarding["records_in"] == onboarding["stored"] == 2
    assert "REVOKED" in onboarding["revoked_refused"]
    # taken off before destroy (IoT refuses to delete an attached policy): the destroy test above passes
    assert onboarding["decommissioned"]["things"] == 2
