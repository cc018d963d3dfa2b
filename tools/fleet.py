"""Onboard installed sensors in bulk, revoke a stolen one, and list the sensors that never published.

    python -m tools.fleet allow    --env dev --serials serials.csv       # serials that may onboard by claim
    python -m tools.fleet register --env dev --sensors sensors.csv --out bundles/
    python -m tools.fleet revoke   --env dev --sensor <sensor id>
    python -m tools.fleet status   --env dev [--only never-published|silent|pending]
    python -m tools.fleet decommission --env pr123 --yes                  # before destroying an environment

``register`` reads a CSV with a ``sensor_id`` column (and optionally ``csr``: the path, relative to the
CSV, of a PEM certificate signing request the operator made on the sensor). For each sensor it creates
the thing (named after the sensor: the contract's ``sensor_id`` is the thing name), a key pair and
certificate (or a certificate from the CSR), attaches the environment's sensor policy and the thing,
puts the thing in the fleet's thing group, activates the certificate last, and writes one bundle per
sensor under ``--out/<sensor id>/`` (``private.pem.key`` mode 0600, ``certificate.pem.crt``,
``bundle.json``). A key is never logged or printed, and an existing bundle is never overwritten.

Crash safety: the thing is created with the attribute ``registration=pending`` and only marked
``complete`` after everything else; the certificate is created inactive, its id and key are written to
``--out/.<sensor id>.partial/`` before anything refers to it, and it is activated only once policy,
thing and group are in place. A re-run finds a ``pending`` thing and completes it with the certificate
of its partial bundle (detaching and deleting any other certificate a crash left on that thing), and
skips ``complete`` things after one ``DescribeThing``. The one thing a crash can leave is an inactive
certificate with no thing and no policy, when the crash falls between ``CreateKeysAndCertificate`` and
the partial bundle's ``bundle.json`` (nothing refers to it; it cannot connect; the re-run makes another).

A bad CSV row is reported with its line and reason, and then nothing is registered: fix the file and
run again. A batch that would take the fleet's thing group past the environment's declared size
(``EnvironmentConfig.sensors``, what the capacity model and the budget are sized for) is refused too.

``revoke`` sets every certificate of the sensor's thing to ``REVOKED`` first (IoT refuses it from then
on), then detaches the policies and the thing, marks the thing ``registration=revoked`` and the serial
``revoked`` on the allow-list (it can be neither claimed nor registered again). ``status`` joins the
thing group with the sensor windows table (a sensor with no window item never published, or not within
``window_ttl_days``, 8 days at prod) and the open outages (``lambdas.silence``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.identity import serial_problem
from lambdas.provisioning import logic as claim
from lambdas.provisioning.service import move_serial
from lambdas.silence.logic import OPEN
from stacks.config import PROFILES, EnvironmentConfig
from stacks.layout import OPEN_OUTAGES, SENSOR_ALLOW_LIST, SENSOR_OUTAGES, SENSOR_WINDOWS
from stacks.naming import Kind, Namer, NamingError

REGISTRATION = "registration"
"""Thing attribute of a bulk-registered sensor: ``pending`` until complete, ``complete``, ``revoked``."""
PENDING, COMPLETE, REVOKED = "pending", "complete", "revoked"
ONBOARDED_BY = "onboarded_by"
KEY_FILE, CERT_FILE, BUNDLE_FILE = "private.pem.key", "certificate.pem.crt", "bundle.json"
CSR_HEADER = "-----BEGIN CERTIFICATE REQUEST-----"
ASK = object()


# ------------------------------------------------------------------------------------------------ input


@dataclass(frozen=True)
class Row:
    line: int
    sensor_id: str
    csr: str | None = None
    """PEM text of the operator's CSR, or ``None``: AWS IoT creates the key pair."""


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def read_sensors(path: Path) -> tuple[list[Row], list[BadRow]]:
    """The CSV's rows, and every bad one with its line (1 is the header) and reason."""
    rows: list[Row] = []
    bad: list[BadRow] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [], [BadRow(0, f"cannot read {path}: {error}")]
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "sensor_id" not in [f.strip() for f in reader.fieldnames]:
        return [], [BadRow(1, "the header has no sensor_id column")]
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            bad.append(BadRow(line, "more fields than the header"))
            continue
        values = {(k or "").strip(): (v or "").strip() for k, v in record.items()}
        sensor_id = values.get("sensor_id", "")
        problem = serial_problem(sensor_id)
        if problem:
            bad.append(BadRow(line, problem))
            continue
        if sensor_id in seen:
            bad.append(BadRow(line, f"{sensor_id} repeats line {seen[sensor_id]}"))
            continue
        seen[sensor_id] = line
        csr = None
        if values.get("csr"):
            csr_path = path.parent / values["csr"]
            try:
                csr = csr_path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as error:
                bad.append(BadRow(line, f"cannot read CSR {values['csr']}: {error}"))
                continue
            if CSR_HEADER not in csr:
                bad.append(BadRow(line, f"{values['csr']} is not a PEM certificate signing request"))
                continue
        rows.append(Row(line, sensor_id, csr))
    return rows, bad


def read_serials(path: Path) -> tuple[list[str], list[BadRow]]:
    """Serials for the allow-list: a CSV with a ``serial`` (or ``sensor_id``) column."""
    text = path.read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines())
    column = next((c for c in ("serial", "sensor_id") if c in (reader.fieldnames or [])), None)
    if column is None:
        return [], [BadRow(1, "the header has no serial column")]
    serials, bad = [], []
    for record in reader:
        serial = (record.get(column) or "").strip()
        problem = serial_problem(serial)
        if problem:
            bad.append(BadRow(reader.line_num, problem))
        else:
            serials.append(serial)
    return serials, bad


# ------------------------------------------------------------------------------------------------ names


@dataclass(frozen=True)
class FleetNames:
    """Physical names ``tools.fleet`` works on, from the naming helper (as the stack names them)."""

    environment: str
    thing_group: str
    sensor_policy: str
    allow_list_table: str
    sensor_windows_table: str
    sensor_outages_table: str
    publish_topic: str
    """``$aws/rules/<rule>/tap/<env>/sensors/{thing}/readings``"""

    @classmethod
    def of(cls, environment: str) -> FleetNames:
        namer = Namer(environment)
        table = lambda concern: namer.name(Kind.DYNAMODB_TABLE, concern)  # noqa: E731
        return cls(
            environment=environment,
            thing_group=namer.fleet_thing_group(),
            sensor_policy=namer.name(Kind.IOT_POLICY, "sensor"),
            allow_list_table=table(SENSOR_ALLOW_LIST.concern),
            sensor_windows_table=table(SENSOR_WINDOWS.concern),
            sensor_outages_table=table(SENSOR_OUTAGES.concern),
            publish_topic=namer.sensor_publish_topic("{thing}"),
        )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _pages(call: Callable[..., dict[str, Any]], key: str, **params: Any) -> Iterator[Any]:
    token: str | None = None
    while True:
        page = call(**params, **({"nextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return


def _write_new(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``mode`` (never replacing a file: ``O_EXCL``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)


# ----------------------------------------------------------------------------------------- registration


@dataclass(frozen=True)
class Outcome:
    sensor_id: str
    result: str
    """``registered``, ``completed`` (a crashed run's sensor finished), ``already registered`` or ``refused``."""
    detail: str = ""


class Fleet:
    """Bulk registration, revocation and status of one environment's sensors."""

    def __init__(self, names: FleetNames, iot: Any, dynamodb: Any, clock: Callable[[], float]) -> None:
        self.names = names
        self.iot = iot
        self.dynamodb = dynamodb
        self.clock = clock

    # register ---------------------------------------------------------------------------------------

    def fleet_size(self) -> int:
        return sum(
            1 for _ in _pages(self.iot.list_things_in_thing_group, "things", thingGroupName=self.names.thing_group)
        )

    def register(self, row: Row, out: Path, thing: dict[str, Any] | object | None = ASK) -> Outcome:
        """Register one sensor (``thing``: its ``DescribeThing``, ``None`` if it has none, when the caller
        already asked)."""
        sensor = row.sensor_id
        if thing is ASK:
            thing = self.describe_thing(sensor)
        assert thing is None or isinstance(thing, dict)
        attributes = (thing or {}).get("attributes", {})
        if thing is not None and attributes.get(REGISTRATION) == COMPLETE:
            return Outcome(sensor, "already registered")
        if thing is not None and attributes.get(REGISTRATION) != PENDING:
            state = attributes.get(REGISTRATION) or f"onboarded by {attributes.get(ONBOARDED_BY, 'another tool')}"
            return Outcome(sensor, "refused", f"thing {sensor} exists ({state})")
        refusal = self._reserve_serial(sensor)
        if refusal:
            return Outcome(sensor, "refused", refusal)
        if thing is None:
            self.iot.create_thing(
                thingName=sensor,
                attributePayload={"attributes": {REGISTRATION: PENDING, ONBOARDED_BY: "bulk", "serial": sensor}},
            )
        partial, final = out / f".{sensor}.partial", out / sensor
        bundle = self._read_bundle(final) or self._read_bundle(partial)
        if thing is not None:  # a crashed run: drop any certificate on the thing that is not the bundle's
            for principal in _pages(self.iot.list_thing_principals, "principals", thingName=sensor):
                if bundle is None or principal != bundle["certificate_arn"]:
                    self._discard(sensor, principal)
        if bundle is None:
            if partial.exists():  # a crash before its bundle.json: that certificate was never referred to
                shutil.rmtree(partial)
            bundle = self._new_certificate(row, partial)
        arn = bundle["certificate_arn"]
        self.iot.attach_thing_principal(thingName=sensor, principal=arn)
        self.iot.attach_policy(policyName=self.names.sensor_policy, target=arn)
        self.iot.add_thing_to_thing_group(thingGroupName=self.names.thing_group, thingName=sensor)
        self.iot.update_certificate(certificateId=bundle["certificate_id"], newStatus="ACTIVE")
        if partial.is_dir():
            os.rename(partial, final)  # fails if ``final`` exists: a bundle is never overwritten
        self.iot.update_thing(
            thingName=sensor, attributePayload={"attributes": {REGISTRATION: COMPLETE}, "merge": True}
        )
        return Outcome(sensor, "completed" if thing is not None else "registered")

    def describe_thing(self, sensor: str) -> dict[str, Any] | None:
        try:
            return dict(self.iot.describe_thing(thingName=sensor))
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return None
            raise

    def _reserve_serial(self, sensor: str) -> str | None:
        """Mark the serial ``registered`` on the allow-list (so it cannot also be claimed), unless it was
        claimed or revoked: then the reason, and nothing is created."""
        old = move_serial(
            self.dynamodb,
            self.names.allow_list_table,
            sensor,
            claim.REGISTERED,
            now=self.clock(),
            allowed_from=(claim.ALLOWED, claim.REGISTERED),
            if_absent=True,
        )
        return None if old is None else f"serial is {old.get('status', '?')} on the allow-list"

    def _read_bundle(self, folder: Path) -> dict[str, Any] | None:
        path = folder / BUNDLE_FILE
        return dict(json.loads(path.read_text())) if path.is_file() else None

    def _new_certificate(self, row: Row, partial: Path) -> dict[str, Any]:
        """An inactive certificate, written to the partial bundle before anything refers to it."""
        if row.csr is None:
            created = self.iot.create_keys_and_certificate(setAsActive=False)
        else:
            created = self.iot.create_certificate_from_csr(certificateSigningRequest=row.csr, setAsActive=False)
        partial.mkdir(mode=0o700, parents=True, exist_ok=True)
        if row.csr is None:
            _write_new(partial / KEY_FILE, created["keyPair"]["PrivateKey"], 0o600)
        _write_new(partial / CERT_FILE, created["certificatePem"], 0o644)
        bundle = {
            "sensor_id": row.sensor_id,
            "thing_name": row.sensor_id,
            "environment": self.names.environment,
            "certificate_id": created["certificateId"],
            "certificate_arn": created["certificateArn"],
            "policy_name": self.names.sensor_policy,
            "publish_topic": self.names.publish_topic.format(thing=row.sensor_id),
            "private_key": KEY_FILE if row.csr is None else "kept on the sensor (its CSR was registered)",
        }
        # Written last and whole (a rename): a partial bundle with a bundle.json is complete.
        _write_new(partial / f"{BUNDLE_FILE}.tmp", json.dumps(bundle, indent=2, sort_keys=True) + "\n", 0o644)
        os.rename(partial / f"{BUNDLE_FILE}.tmp", partial / BUNDLE_FILE)
        return bundle

    def _discard(self, sensor: str, principal: str) -> None:
        """Take a certificate off a pending thing and delete it (it was never handed out)."""
        certificate_id = principal.rsplit("/", 1)[-1]
        self.iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
        for policy in _pages(self.iot.list_attached_policies, "policies", target=principal):
            self.iot.detach_policy(policyName=policy["policyName"], target=principal)
        self.iot.detach_thing_principal(thingName=sensor, principal=principal)
        self.iot.delete_certificate(certificateId=certificate_id)

    # revoke -----------------------------------------------------------------------------------------

    def revoke(self, sensor: str) -> list[str]:
        """Revoke every certificate of the sensor's thing (first), then detach it; the serial is revoked
        on the allow-list. Returns the certificate ids revoked. Idempotent: a re-run finishes a crashed one."""
        revoked = []
        principals = list(_pages(self.iot.list_thing_principals, "principals", thingName=sensor))
        for principal in principals:
            certificate_id = principal.rsplit("/", 1)[-1]
            self.iot.update_certificate(certificateId=certificate_id, newStatus="REVOKED")
            revoked.append(certificate_id)
        for principal in principals:
            for policy in _pages(self.iot.list_attached_policies, "policies", target=principal):
                self.iot.detach_policy(policyName=policy["policyName"], target=principal)
            self.iot.detach_thing_principal(thingName=sensor, principal=principal)
        revoked_attribute = {"attributes": {REGISTRATION: REVOKED}, "merge": True}
        self.iot.update_thing(thingName=sensor, attributePayload=revoked_attribute)
        move_serial(
            self.dynamodb, self.names.allow_list_table, sensor, claim.REVOKED, now=self.clock(), allowed_from=None
        )
        return revoked

    # decommission -----------------------------------------------------------------------------------

    def decommission(self, claim_policy: str) -> dict[str, int]:
        """Take every sensor off the environment before it is destroyed: each thing of the fleet's group
        revoked (``revoke``) and deleted with its certificates, and every certificate still carrying the
        sensor or claim policy deactivated, detached and deleted. IoT refuses to delete a policy that is
        attached (DeleteConflictException), so ``terraform destroy`` needs this first. Idempotent."""
        members = _pages(self.iot.list_things_in_thing_group, "things", thingGroupName=self.names.thing_group)
        things = [t for t in members if self.describe_thing(t) is not None]  # moto keeps deleted members
        certificates: set[str] = set()
        for sensor in things:
            certificates.update(self.revoke(sensor))
            self.iot.delete_thing(thingName=sensor)
        for policy in (self.names.sensor_policy, claim_policy):
            for target in _pages(self.iot.list_targets_for_policy, "targets", policyName=policy):
                certificate_id = target.rsplit("/", 1)[-1]
                if target.split(":")[-1].startswith("cert/"):
                    self.iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
                    certificates.add(certificate_id)
                self.iot.detach_policy(policyName=policy, target=target)
        for certificate_id in sorted(certificates):
            self.iot.delete_certificate(certificateId=certificate_id)
        return {"things": len(things), "certificates": len(certificates)}

    # allow ------------------------------------------------------------------------------------------

    def allow(self, serials: Sequence[str]) -> dict[str, str]:
        """Put serials on the allow-list; an entry already there (claimed, registered, revoked) is kept."""
        results = {}
        for serial in serials:
            old = move_serial(
                self.dynamodb, self.names.allow_list_table, serial, claim.ALLOWED, now=self.clock(), allowed_from=(),
                if_absent=True,
            )  # fmt: skip
            results[serial] = "allowed" if old is None else "already on the allow-list"
        return results

    # status -----------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, str]]:
        """Every thing of the fleet's group: registration state and whether it ever published."""
        members = set(_pages(self.iot.list_things_in_thing_group, "things", thingGroupName=self.names.thing_group))
        attributes = {
            t["thingName"]: t.get("attributes", {})
            for t in _pages(self.iot.list_things, "things")
            if t["thingName"] in members
        }
        silent = set()
        outages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.names.sensor_outages_table,
            IndexName=OPEN_OUTAGES.name,
            KeyConditionExpression="outage_open = :open",
            ExpressionAttributeValues={":open": {"S": OPEN}},
            ProjectionExpression="sensor_id",
        )
        for page in outages:
            silent.update(item["sensor_id"]["S"] for item in page.get("Items", []))
        rows = []
        for sensor in sorted(members):
            found = self.dynamodb.query(
                TableName=self.names.sensor_windows_table,
                KeyConditionExpression="sensor_id = :s",
                ExpressionAttributeValues={":s": {"S": sensor}},
                ProjectionExpression="sensor_id",
                Limit=1,
            )
            published = "silent" if sensor in silent else "reporting" if found.get("Count") else "never published"
            attrs = attributes.get(sensor, {})
            registration = attrs.get(REGISTRATION) or f"by {attrs.get(ONBOARDED_BY, 'claim')}"
            rows.append({"sensor_id": sensor, "registration": registration, "data": published})
        return rows


# ------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", help="AWS region (default: the environment profile's)")
    parser.add_argument("--endpoint-url", help="send every AWS call here (an emulator)")
    commands = parser.add_subparsers(dest="command", required=True)
    allow = commands.add_parser("allow", help="put serials on the allow-list (fleet provisioning by claim)")
    allow.add_argument("--env", required=True)
    allow.add_argument("--serials", type=Path, help="CSV with a serial column (default: onboarding.allow_list_source)")
    register = commands.add_parser("register", help="register installed sensors from a CSV")
    register.add_argument("--env", required=True)
    register.add_argument("--sensors", type=Path, required=True, help="CSV: sensor_id[,csr]")
    register.add_argument("--out", type=Path, default=Path("bundles"), help="folder of the credentials bundles")
    revoke = commands.add_parser("revoke", help="revoke a (stolen) sensor's certificates and detach them")
    revoke.add_argument("--env", required=True)
    revoke.add_argument("--sensor", required=True)
    decommission = commands.add_parser(
        "decommission", help="before destroying a non-production environment: take every sensor off it"
    )
    decommission.add_argument("--env", required=True)
    decommission.add_argument("--yes", action="store_true", help="confirm: every sensor's identity is deleted")
    status = commands.add_parser("status", help="the fleet's things: registration and whether they published")
    status.add_argument("--env", required=True)
    status.add_argument("--only", choices=("never-published", "silent", "pending"))
    return parser


def config_of(environment: str) -> EnvironmentConfig:
    return PROFILES.get(environment) or PROFILES["dev"].with_name(environment)


def clients_for(endpoint_url: str | None, region: str) -> tuple[Any, Any]:
    import boto3  # noqa: PLC0415

    return (
        boto3.client("iot", region_name=region, endpoint_url=endpoint_url),
        boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url),
    )


def run_register(fleet: Fleet, config: EnvironmentConfig, sensors: Path, out: Path, stream: Any) -> int:
    rows, bad = read_sensors(sensors)
    if bad:
        print(f"{sensors}: {len(bad)} bad row(s); nothing registered:", file=stream)
        for row in bad:
            print(f"  {row}", file=stream)
        return 2
    size = fleet.fleet_size()
    things = {r.sensor_id: fleet.describe_thing(r.sensor_id) for r in rows}
    new = [r for r in rows if things[r.sensor_id] is None]
    if size + len(new) > config.sensors:
        print(
            f"the batch would take environment {config.name!r} to {size + len(new):,} sensors, more than its declared "
            f"fleet (field 'sensors' = {config.sensors:,}, what the capacity model and budget are sized for): "
            "raise it first; nothing registered",
            file=stream,
        )
        return 2
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    failed = 0
    for row in rows:
        outcome = fleet.register(row, out, things[row.sensor_id])
        failed += outcome.result == "refused"
        print(f"line {row.line}: {row.sensor_id}: {outcome.result}{': ' + outcome.detail if outcome.detail else ''}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None, clients: tuple[Any, Any] | None = None) -> int:
    import time  # noqa: PLC0415

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        names = FleetNames.of(args.env)
    except NamingError as error:
        parser.error(str(error))
    config = config_of(args.env)
    iot, dynamodb = clients or clients_for(args.endpoint_url, args.region or config.region)
    fleet = Fleet(names, iot, dynamodb, time.time)
    if args.command == "register":
        return run_register(fleet, config, args.sensors, args.out, sys.stderr)
    if args.command == "revoke":
        revoked = fleet.revoke(args.sensor)
        print(f"{args.sensor}: revoked {len(revoked)} certificate(s) {', '.join(revoked)}; detached; serial revoked")
        return 0
    if args.command == "decommission":
        if config.production:
            parser.error(f"{args.env} is a production environment: revoke sensors one by one (revoke --sensor)")
        if not args.yes:
            parser.error("decommission deletes every sensor's thing and certificates: add --yes to confirm")
        done = fleet.decommission(Namer(args.env).name(Kind.IOT_POLICY, "sensor-claim"))
        print(f"{args.env}: {done['things']} thing(s) and {done['certificates']} certificate(s) deleted")
        return 0
    if args.command == "allow":
        source = args.serials or (
            Path(config.onboarding.allow_list_source) if config.onboarding.allow_list_source else None
        )
        if source is None:
            parser.error("--serials is required: the environment has no onboarding.allow_list_source")
        serials, bad = read_serials(source)
        if bad:
            print("\n".join([f"{source}: bad row(s); nothing allowed:", *[f"  {b}" for b in bad]]), file=sys.stderr)
            return 2
        for serial, result in fleet.allow(serials).items():
            print(f"{serial}: {result}")
        return 0
    rows = fleet.status()
    wanted: Mapping[str, Callable[[dict[str, str]], bool]] = {
        "never-published": lambda r: r["data"] == "never published",
        "silent": lambda r: r["data"] == "silent",
        "pending": lambda r: r["registration"] == PENDING,
    }
    keep = wanted.get(args.only or "", lambda r: True)
    for row in rows:
        if keep(row):
            print(f"{row['sensor_id']}\t{row['registration']}\t{row['data']}")
    never = sum(r["data"] == "never published" for r in rows)
    print(f"{len(rows)} sensor(s) in {names.thing_group}: {never} never published", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
