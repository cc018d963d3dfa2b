"""Onboarding end to end on moto: by claim (the template, the hook, the claim policy) and in bulk
(``tools.fleet``), each new sensor then publishing through the data path; a crash at every AWS call of a
registration and the re-run; a revoked sensor refused; bad CSV rows; the sensors that never published."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from lambdas.common.aws import Backoff, Clients
from lambdas.provisioning.service import Provisioner, Settings
from stacks import capacity
from stacks.config import PROFILES
from stacks.layout import provisioning_environment
from tests.aws_fixtures import NOW, reading
from tools import fleet as fleet_tool
from tools.local import iot_fleet
from tools.local.simulate import ACCOUNT_ID, Message, RunOptions, Targets, in_moto, run

REGION = "us-east-1"


def time() -> float:
    return 1_780_000_000.0


CONFIG = PROFILES["dev"]


@dataclass
class World:
    clients: Clients
    targets: Targets
    setup: iot_fleet.FleetSetup
    fleet: fleet_tool.Fleet

    def hook(self, event: dict[str, Any]) -> dict[str, Any]:
        settings = Settings.from_env(
            provisioning_environment("dev", self.targets.metric_namespace, self.setup.allow_list_table)
        )
        return Provisioner(settings, clients=self.clients, backoff=Backoff(attempts=2)).handle(event)

    def claim(self, serial: str, csr: str | None = None) -> iot_fleet.Provisioned:
        return iot_fleet.provision_by_claim(
            self.clients,
            region=REGION,
            account=ACCOUNT_ID,
            template_name=self.setup.template_name,
            claim_certificate_id=self.setup.claim_certificate_id,
            parameters={"SerialNumber": serial},
            hook=self.hook,
            csr=csr,
        )

    def publish(self, certificate_id: str, thing: str, payload: bytes) -> Message:
        return iot_fleet.publish(
            self.clients, REGION, ACCOUNT_ID, environment="dev", certificate_id=certificate_id, thing=thing,
            payload=payload,
        )  # fmt: skip

    def ingest(self, messages: list[Message]) -> dict[str, Any]:
        return run(self.clients, self.targets, RunOptions(messages, NOW, CONFIG.batch_size, CONFIG), out=io.StringIO())

    def certificate(self, certificate_id: str) -> dict[str, Any]:
        return dict(self.clients["iot"].describe_certificate(certificateId=certificate_id)["certificateDescription"])


@pytest.fixture
def world() -> Iterator[World]:
    with in_moto("dev", CONFIG) as (clients, targets):
        setup = iot_fleet.create_fleet(clients, "dev", REGION, ACCOUNT_ID)
        names = fleet_tool.FleetNames.of("dev")
        yield World(clients, targets, setup, fleet_tool.Fleet(names, clients["iot"], clients["dynamodb"], time))


def a_reading(sensor: str) -> bytes:
    return reading(sensor, "seg-1", "2026-06-01T11:59:00Z")


def csr_for(sensor: str) -> tuple[str, str]:
    """A key and CSR made on the sensor (the operator's own CSR)."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sensor)]))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem_key.decode(), request.public_bytes(serialization.Encoding.PEM).decode()


def assert_onboarded(world: World, sensor: str, certificate_id: str) -> None:
    """The thing, its one ACTIVE certificate with the sensor policy, in the fleet's group."""
    iot = world.clients["iot"]
    certificate = world.certificate(certificate_id)
    assert certificate["status"] == "ACTIVE"
    assert iot.list_thing_principals(thingName=sensor)["principals"] == [certificate["certificateArn"]]
    policies = iot.list_attached_policies(target=certificate["certificateArn"])["policies"]
    assert [p["policyName"] for p in policies] == ["tap-sensor-dev"]
    assert sensor in iot.list_things_in_thing_group(thingGroupName="tap-sensors-dev")["things"]


# ------------------------------------------------------------------------------------------- by claim


def test_a_sensor_onboarded_by_claim_publishes_through_the_data_path(world: World) -> None:
    assert world.fleet.allow(["S-100", "S-101"]) == {"S-100": "allowed", "S-101": "allowed"}
    provisioned = world.claim("S-100")
    assert provisioned.thing_name == "S-100" and provisioned.private_key
    assert_onboarded(world, "S-100", provisioned.certificate_id)
    key, csr = csr_for("S-101")
    by_csr = world.claim("S-101", csr=csr)
    assert by_csr.private_key is None and key  # the key never left the sensor
    assert_onboarded(world, "S-101", by_csr.certificate_id)
    messages = [
        world.publish(provisioned.certificate_id, "S-100", a_reading("S-100")),
        world.publish(by_csr.certificate_id, "S-101", a_reading("S-101")),
    ]
    summary = world.ingest(messages)
    assert (summary["records_in"], summary["accepted"], summary["sensors"]) == (2, 2, 2)


def test_claims_the_allow_list_refuses_create_nothing_and_the_claim_certificate_cannot_publish(world: World) -> None:
    world.fleet.allow(["S-1"])
    world.claim("S-1")
    for serial in ("S-1", "S-2", "bad.serial"):  # claimed already, not allowed, not a thing name
        with pytest.raises(iot_fleet.Refused, match="ACCESS_DENIED"):
            world.claim(serial)
    things = world.clients["iot"].list_things()["things"]
    assert [t["thingName"] for t in things] == ["S-1"]
    with pytest.raises(iot_fleet.Refused, match="may not publish"):  # the claim policy: provisioning topics only
        world.publish(world.setup.claim_certificate_id, "S-1", a_reading("S-1"))


def test_a_disabled_template_or_an_inactive_claim_certificate_onboards_nothing(world: World) -> None:
    world.fleet.allow(["S-1"])
    iot = world.clients["iot"]
    iot.update_provisioning_template(templateName=world.setup.template_name, enabled=False)
    with pytest.raises(iot_fleet.Refused, match="disabled"):
        world.claim("S-1")
    iot.update_provisioning_template(templateName=world.setup.template_name, enabled=True)
    iot.update_certificate(certificateId=world.setup.claim_certificate_id, newStatus="INACTIVE")
    with pytest.raises(iot_fleet.Refused, match="claim certificate is INACTIVE"):
        world.claim("S-1")


# ------------------------------------------------------------------------------------------------ bulk


def write_csv(folder: Path, rows: list[str], csrs: dict[str, str] | None = None) -> Path:
    for name, text in (csrs or {}).items():
        (folder / name).write_text(text)
    path = folder / "sensors.csv"
    path.write_text("\n".join(["sensor_id,csr", *rows]) + "\n")
    return path


def register(world: World, csv_path: Path, out: Path, config: Any = CONFIG) -> tuple[int, str]:
    stream = io.StringIO()
    code = fleet_tool.run_register(world.fleet, config, csv_path, out, stream)
    return code, stream.getvalue()


def counting(world: World) -> dict[str, int]:
    calls: dict[str, int] = {}

    def count(model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    for service in ("iot", "dynamodb"):
        world.clients[service].meta.events.register("before-call", count)
    return calls


def test_bulk_registration_writes_one_bundle_each_and_a_rerun_changes_nothing(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, csr = csr_for("B-3")
    csv_path = write_csv(tmp_path, ["B-1,", "B-2,", "B-3,b3.csr"], {"b3.csr": csr})
    out = tmp_path / "bundles"
    calls = counting(world)
    assert register(world, csv_path, out) == (0, "")
    first = dict(calls)
    model = capacity.onboarding("bulk", 3, capacity.prices_for(REGION))  # what the capacity model counts
    assert sum(first.values()) == model.api_calls == 1 + 3 * 9, first
    registry = (*capacity.BULK_REGISTRY_OPERATIONS, "ListThingsInThingGroup")
    assert sum(first.get(operation, 0) for operation in registry) == model.registry_operations
    messages = []
    for sensor in ("B-1", "B-2", "B-3"):
        bundle = json.loads((out / sensor / "bundle.json").read_text())
        assert_onboarded(world, sensor, bundle["certificate_id"])
        assert bundle["publish_topic"] == f"$aws/rules/tap_ingest_dev/tap/dev/sensors/{sensor}/readings"
        key = out / sensor / "private.pem.key"
        if sensor == "B-3":
            assert not key.exists()  # the CSR's key stays on the sensor
        else:
            assert stat.S_IMODE(key.stat().st_mode) == 0o600
            assert "PRIVATE KEY" in key.read_text()
            assert key.read_text() not in capsys.readouterr().out
        messages.append(world.publish(bundle["certificate_id"], sensor, a_reading(sensor)))
    assert not list(out.glob(".*.partial"))
    assert world.ingest(messages)["accepted"] == 3
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    calls.clear()
    assert register(world, csv_path, out) == (0, "")
    assert calls == {"ListThingsInThingGroup": 1, "DescribeThing": 3}, "a re-run only reads"
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()} == before
    for sensor in ("B-1", "B-2", "B-3"):
        assert len(world.clients["iot"].list_thing_principals(thingName=sensor)["principals"]) == 1


def test_bad_rows_are_reported_with_their_line_and_reason_and_nothing_is_registered(
    world: World, tmp_path: Path
) -> None:
    csv_path = write_csv(
        tmp_path,
        ["G-1,", "bad.dot,", ",", "G-1,", "G-2,missing.csr", "G-3,notcsr.pem", "G-4,,extra"],
        {"notcsr.pem": "hello"},
    )
    code, report = register(world, csv_path, tmp_path / "out")
    assert code == 2
    lines = report.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [f"line {n}" for n in (3, 4, 5, 6, 7, 8)]
    assert "is not an AWS IoT thing name" in lines[0] and "missing serial" in lines[1]
    assert "repeats line 2" in lines[2] and "cannot read CSR" in lines[3] and "not a PEM" in lines[4]
    assert "more fields" in lines[5]
    assert world.clients["iot"].list_things()["things"] == [] and not (tmp_path / "out").exists()


def test_a_batch_past_the_declared_fleet_is_refused_naming_the_field(world: World, tmp_path: Path) -> None:
    small = replace(CONFIG, sensors=2, sensors_per_segment=2)
    code, report = register(world, write_csv(tmp_path, ["Z-1,", "Z-2,", "Z-3,"]), tmp_path / "out", small)
    assert code == 2 and "field 'sensors' = 2" in report
    assert world.clients["iot"].list_things()["things"] == []


def test_a_claimed_serial_is_not_registered_again_in_bulk(world: World, tmp_path: Path) -> None:
    world.fleet.allow(["C-1"])
    world.claim("C-1")
    code, _ = register(world, write_csv(tmp_path, ["C-1,"]), tmp_path / "out")
    assert code == 1
    assert len(world.clients["iot"].list_thing_principals(thingName="C-1")["principals"]) == 1


# ---------------------------------------------------------------------------------- crash and re-run


class Crash(Exception):
    pass


def crash_at(world: World, n: int, after: bool) -> Callable[[], int]:
    """Crash at the ``n``-th AWS call: before it is made, or after it was made (its response lost)."""
    seen = [0]

    def hook(**_: Any) -> None:
        seen[0] += 1
        if seen[0] == n:
            raise Crash(f"call {n}")

    event = "after-call" if after else "before-call"
    handlers = [(world.clients[s].meta.events, f"{event}.{s}") for s in ("iot", "dynamodb")]
    for events, name in handlers:
        events.register_first(name, hook)

    def remove() -> int:
        for events, name in handlers:
            events.unregister(name, hook)
        return seen[0]

    return remove


CALLS_OF_ONE_REGISTRATION = 10  # group size, then DescribeThing and the 8 writes of one sensor


@pytest.mark.parametrize("after", [False, True], ids=["before-call", "after-call"])
def test_a_crash_at_any_call_leaves_what_the_rerun_completes(after: bool, tmp_path: Path) -> None:
    for n in range(1, CALLS_OF_ONE_REGISTRATION + 1):
        with in_moto("dev", CONFIG) as (clients, targets):
            setup = iot_fleet.create_fleet(clients, "dev", REGION, ACCOUNT_ID)
            names = fleet_tool.FleetNames.of("dev")
            world = World(clients, targets, setup, fleet_tool.Fleet(names, clients["iot"], clients["dynamodb"], time))
            out = tmp_path / f"{n}-{after}"
            csv_path = write_csv(tmp_path, ["K-1,"])
            remove = crash_at(world, n, after)
            with pytest.raises(Crash):
                register(world, csv_path, out)
            remove()
            iot = clients["iot"]
            for certificate in iot.list_certificates()["certificates"]:  # activated last: whole, or inactive
                if certificate["certificateId"] != setup.claim_certificate_id and certificate["status"] == "ACTIVE":
                    assert_onboarded(world, "K-1", certificate["certificateId"])
            assert register(world, csv_path, out)[0] == 0, f"crash at call {n}: the re-run fails"
            bundle = json.loads((out / "K-1" / "bundle.json").read_text())
            assert_onboarded(world, "K-1", bundle["certificate_id"])
            assert iot.describe_thing(thingName="K-1")["attributes"]["registration"] == "complete"
            assert not list(out.glob(".*.partial"))
            others = [
                c for c in iot.list_certificates()["certificates"]
                if c["certificateId"] not in (setup.claim_certificate_id, bundle["certificate_id"])
            ]  # fmt: skip
            for certificate in others:  # only a response lost in CreateKeysAndCertificate leaves one
                assert certificate["status"] == "INACTIVE"
                assert iot.list_attached_policies(target=certificate["certificateArn"])["policies"] == []
                assert iot.list_principal_things(principal=certificate["certificateArn"])["things"] == []
            assert world.ingest([world.publish(bundle["certificate_id"], "K-1", a_reading("K-1"))])["accepted"] == 1


# ------------------------------------------------------------------------------------------- revoke


def test_a_revoked_sensor_is_refused_and_can_be_neither_claimed_nor_registered_again(
    world: World, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    csv_path = write_csv(tmp_path, ["R-1,"])
    register(world, csv_path, out)
    certificate_id = json.loads((out / "R-1" / "bundle.json").read_text())["certificate_id"]
    assert world.ingest([world.publish(certificate_id, "R-1", a_reading("R-1"))])["accepted"] == 1
    clients = (world.clients["iot"], world.clients["dynamodb"])
    assert fleet_tool.main(["revoke", "--env", "dev", "--sensor", "R-1"], clients=clients) == 0
    certificate = world.certificate(certificate_id)
    assert certificate["status"] == "REVOKED"
    iot = world.clients["iot"]
    assert iot.list_thing_principals(thingName="R-1")["principals"] == []
    assert iot.list_attached_policies(target=certificate["certificateArn"])["policies"] == []
    with pytest.raises(iot_fleet.Refused, match="REVOKED"):
        world.publish(certificate_id, "R-1", a_reading("R-1"))
    iot.update_certificate(certificateId=certificate_id, newStatus="ACTIVE")  # even if someone reactivated it:
    with pytest.raises(iot_fleet.Refused, match="may not connect"):  # detached from thing and policy
        world.publish(certificate_id, "R-1", a_reading("R-1"))
    with pytest.raises(iot_fleet.Refused):
        world.claim("R-1")
    assert register(world, csv_path, out)[0] == 1


# ------------------------------------------------------------------------------------------- status


def test_status_lists_the_sensors_that_never_published(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    register(world, write_csv(tmp_path, ["N-1,", "N-2,", "N-3,"]), out)
    certificate_id = json.loads((out / "N-2" / "bundle.json").read_text())["certificate_id"]
    world.ingest([world.publish(certificate_id, "N-2", a_reading("N-2"))])
    rows = {r["sensor_id"]: r["data"] for r in world.fleet.status()}
    assert rows == {"N-1": "never published", "N-2": "reporting", "N-3": "never published"}
    capsys.readouterr()
    argv = ["status", "--env", "dev", "--only", "never-published"]
    assert fleet_tool.main(argv, clients=(world.clients["iot"], world.clients["dynamodb"])) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["N-1", "N-3"]


def test_allow_puts_serials_on_the_allow_list_and_keeps_entries_already_there(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "serials.csv").write_text("serial\nA-1\nA-2\n")
    clients = (world.clients["iot"], world.clients["dynamodb"])
    world.fleet.allow(["A-1"])
    world.claim("A-1")
    capsys.readouterr()
    assert fleet_tool.main(["allow", "--env", "dev", "--serials", str(tmp_path / "serials.csv")], clients=clients) == 0
    assert capsys.readouterr().out.splitlines() == ["A-1: already on the allow-list", "A-2: allowed"]
    item = world.clients["dynamodb"].get_item(TableName=world.setup.allow_list_table, Key={"serial": {"S": "A-1"}})
    assert item["Item"]["status"]["S"] == "claimed"
    (tmp_path / "bad.csv").write_text("serial\nA-3\nbad.one\n")
    assert fleet_tool.main(["allow", "--env", "dev", "--serials", str(tmp_path / "bad.csv")], clients=clients) == 2
    assert "A-3" not in json.dumps(world.clients["dynamodb"].scan(TableName=world.setup.allow_list_table)["Items"])


def test_the_local_iot_authorization_denies_wins_and_unknown_conditions_do_not_grant() -> None:
    topic = "arn:aws:iot:us-east-1:1:topic/t/x"
    allow = {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:us-east-1:1:topic/t/*"}
    deny = {"Effect": "Deny", "Action": ["iot:*"], "Resource": [topic]}
    odd = {**allow, "Condition": {"ForAnyValue:StringLike": {"iot:ClientId": ["*"]}}}
    own = {**allow, "Resource": "arn:aws:iot:us-east-1:1:topic/t/${iot:Connection.Thing.ThingName}"}
    context = {"iot:Connection.Thing.ThingName": "x"}
    assert iot_fleet.policy_allows([{"Statement": [allow]}], "iot:Publish", topic, context)
    assert not iot_fleet.policy_allows([{"Statement": [allow]}, {"Statement": deny}], "iot:Publish", topic, context)
    assert not iot_fleet.policy_allows([{"Statement": [odd]}], "iot:Publish", topic, context)
    assert iot_fleet.policy_allows([{"Statement": [own]}], "iot:Publish", topic, context)
    assert not iot_fleet.policy_allows([{"Statement": [own]}], "iot:Publish", topic, {})
    assert not iot_fleet.policy_allows([{"Statement": [allow]}], "iot:Connect", topic, context)


def test_a_crash_while_writing_the_partial_bundle_is_completed_by_the_rerun(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the key was written and before bundle.json: that certificate was never referred to."""
    out, csv_path = tmp_path / "out", write_csv(tmp_path, ["W-1,"])
    original = fleet_tool._write_new

    def crash_at_the_bundle(path: Path, text: str, mode: int) -> None:
        if path.name.startswith("bundle.json"):
            raise Crash("bundle.json")
        original(path, text, mode)

    with monkeypatch.context() as patched:
        patched.setattr(fleet_tool, "_write_new", crash_at_the_bundle)
        with pytest.raises(Crash):
            register(world, csv_path, out)
    assert (out / ".W-1.partial" / "private.pem.key").exists()
    assert register(world, csv_path, out)[0] == 0
    bundle = json.loads((out / "W-1" / "bundle.json").read_text())
    assert_onboarded(world, "W-1", bundle["certificate_id"])
    assert "PRIVATE KEY" in (out / "W-1" / "private.pem.key").read_text()


def test_decommission_leaves_no_policy_attached_so_the_environment_can_be_destroyed(
    world: World, tmp_path: Path
) -> None:
    world.fleet.allow(["D-1"])
    world.claim("D-1")
    register(world, write_csv(tmp_path, ["D-2,", "D-3,"]), tmp_path / "out")
    iot = world.clients["iot"]
    done = world.fleet.decommission(world.setup.claim_policy)
    assert done == {"things": 3, "certificates": 4}  # three sensors' and the factory's claim certificate
    assert world.fleet.decommission(world.setup.claim_policy) == {"things": 0, "certificates": 0}
    for policy in (world.setup.sensor_policy, world.setup.claim_policy):
        assert iot.list_targets_for_policy(policyName=policy)["targets"] == []
        iot.delete_policy(policyName=policy)  # what terraform destroy does: no DeleteConflictException
    assert iot.list_things()["things"] == []


def test_decommission_refuses_production_and_wants_confirmation(world: World) -> None:
    clients = (world.clients["iot"], world.clients["dynamodb"])
    for argv in (["decommission", "--env", "prod", "--yes"], ["decommission", "--env", "dev"]):
        with pytest.raises(SystemExit):
            fleet_tool.main(argv, clients=clients)
