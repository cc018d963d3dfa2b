"""Correct under AWS's parallelism: every interleaving and every crash point of small scenarios, explored.

One folder batch per segment runs at a time in steady operation (the partials stream's partition key is the
segment); the scenarios run two or three folder invocations on one segment anyway (a lease taken over, a
misconfigured mapping): the conditional put refuses the second writer, which re-reads and folds again.
``tests.interleavings`` runs real handler invocations on one moto backend and enumerates every order of
their DynamoDB calls; a crash kills an invocation before or after any AWS call (DynamoDB, Kinesis, SNS,
CloudWatch, S3), after which Lambda's retries run. In every run:

- each segment window's aggregate equals the contract's over all its distinct readings (``tests.oracle``);
- every window whose aggregate is heavy or severe has its alert published, with its ``alert_id``;
- no alert is published twice, except by an invocation killed after publishing and before recording
  that it had (the contract's one allowed copy);
- ``CongestionAlerts`` counts exactly the alerts the invocation published.

The processor scenarios crash the processor between any two of its calls (window reads and writes, the
shard's partials mark, PutRecords); Lambda retries the batch whole, bisected, or from a reported failure,
and the folder then folds everything the partials stream holds: every reading is folded exactly once. A
record published under another sensor's thing name never reaches that sensor's items.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from lambdas.common import silence
from lambdas.common.aws import Backoff, Clients, deserialize
from lambdas.folder.service import Folder, settings_from_env
from lambdas.processor.logic import stored_instants
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from stacks.config import PROFILES
from stacks.layout import folder_environment, processor_environment
from tests.aws_fixtures import NOW, kinesis_event, reading
from tests.interleavings import CrashAt, Exploration, Explorer, Outcome
from tests.oracle import aggregate, stored_aggregate
from tools.local.simulate import Targets, in_moto, kinesis_records
from tools.local.simulate import kinesis_event as stream_event

SLOT_SERVICES = ("dynamodb", "sns", "cloudwatch", "s3", "kinesis")
CONGESTED = ("heavy", "severe")
RETRIES = 6


def jam(sensor: str, minute: int, segment: str = "seg-a") -> bytes:
    return reading(sensor, segment, f"2026-06-01T11:{minute:02d}:00Z", vehicles=10, speed=8.0, occupancy=70.0)


@dataclass
class World:
    """One moto backend for the whole module, with a client set per concurrent invocation."""

    clients: Clients
    targets: Targets
    slots: list[dict[str, Any]]
    explorer: Explorer
    read: dict[str, str] = field(default_factory=dict)
    """How far the partials stream was read, per shard."""

    def folder(self, slot: int | None = None) -> Folder:
        """The folder on slot ``slot``'s clients (``None``: the world's own, outside any exploration)."""
        settings = settings_from_env(folder_environment(self.targets.runtime_names(), PROFILES["dev"]))
        extra = {"clock": lambda: NOW} if "clock" in inspect.signature(Folder).parameters else {}
        clients = self.clients if slot is None else Clients(**self.slots[slot])
        return Folder(settings, clients=clients, backoff=Backoff(attempts=3, sleep=_no_sleep), **extra)

    def processor(self, slot: int | None) -> Processor:
        settings = ProcessorSettings.from_env(processor_environment(self.targets.runtime_names(), PROFILES["dev"]))
        clients = self.clients if slot is None else Clients(**self.slots[slot])
        return Processor(settings, clients=clients, backoff=Backoff(attempts=3, sleep=_no_sleep), clock=lambda: NOW)

    def clear(self, *tables: str) -> None:
        dynamodb = self.clients["dynamodb"]
        for table in tables:
            for item in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]:
                key = {k: item[k] for k in _key_names(dynamodb, table)}
                dynamodb.delete_item(TableName=table, Key=key)
        for obj in self.clients["s3"].list_objects_v2(Bucket=self.targets.quarantine_bucket).get("Contents", []):
            self.clients["s3"].delete_object(Bucket=self.targets.quarantine_bucket, Key=obj["Key"])

    def items(self, table: str) -> list[dict[str, Any]]:
        return [deserialize(i) for i in self.clients["dynamodb"].scan(TableName=table, ConsistentRead=True)["Items"]]

    def new_partials(self) -> list[dict[str, Any]]:
        """The partials stream's records put since the last call (the stream outlives ``clear``)."""
        found: list[dict[str, Any]] = []
        for shard, records in kinesis_records(self.clients, self.targets.partials_stream, self.read).items():
            if records:
                self.read[shard] = records[-1]["SequenceNumber"]
            found.extend(records)
        return found

    def fold(self, records: Sequence[dict[str, Any]], slot: int | None = None) -> dict[str, Any]:
        return self.folder(slot).handle(partials_event(records))


def _no_sleep(_: float) -> None:
    return None


def _key_names(dynamodb: Any, table: str) -> list[str]:
    return [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with in_moto("dev", PROFILES["dev"]) as (clients, targets):
        slots = [
            {service: boto3.client(service, region_name="us-east-1") for service in SLOT_SERVICES} for _ in range(4)
        ]
        keys = {
            targets.segment_aggregates_table: ("segment_id", "window_start"),
            targets.sensor_windows_table: ("sensor_id", "window_part"),
        }
        yield World(clients, targets, slots, Explorer(slots[:3], keys))


# ------------------------------------------------------------------------------------------ folder

PARTIALS_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/tap-partials-dev"


def partials_event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Partials stream records as the folder's mapping hands them over (moto gives the stream one shard)."""
    return stream_event("shardId-000000000000", records, "us-east-1", PARTIALS_ARN)


@dataclass
class FolderScenario:
    """Readings processed first (serially, reading ``i`` on readings shard ``i``), whose partials then reach
    concurrent folder invocations."""

    name: str
    readings: list[bytes]
    lanes: list[list[int]]
    """For each concurrent invocation, the indexes of the readings whose partials it receives."""
    prelude: list[int] | None = None
    """A lane run (and failed, its publishing refused) before the explored ones, as a batch to be retried."""
    failing_publish: int | None = None
    """The invocation whose publishing is refused while the interleavings run (Lambda retries it after)."""
    preemptions: int | None = None
    """Bound on preemptions for a scenario too large for every order (see ``Explorer.explore``)."""


SCENARIOS = [
    FolderScenario("two folders on one segment window entering heavy", [jam("s1", 50), jam("s2", 51)], [[0], [1]]),
    FolderScenario("a retry overlapping a new batch", [jam("s1", 50), jam("s2", 51)], [[0], [1]], prelude=[0]),
    FolderScenario(
        "a failed publish racing another folder on the segment",
        [jam("s1", 50), jam("s2", 51)],
        [[0], [1]],
        failing_publish=0,
    ),
    FolderScenario(
        "three sensors, two segments, one of them entering heavy late",
        [
            jam("s1", 50),
            jam("s2", 51),
            reading("s3", "seg-a", "2026-06-01T11:52:00Z", vehicles=5, speed=45.0, occupancy=5.0),
            jam("s4", 53, "seg-b"),
        ],
        [[0], [1, 3], [2]],
        preemptions=2,
    ),
]


class FolderRig:
    """Turns a scenario into events, explorable bodies, Lambda's retries and the checks."""

    def __init__(self, world: World, scenario: FolderScenario) -> None:
        self.world = world
        self.scenario = scenario
        self.table = world.targets.segment_aggregates_table
        world.clear(world.targets.sensor_windows_table, self.table)
        world.new_partials()
        by_reading: list[list[dict[str, Any]]] = []
        for index, payload in enumerate(scenario.readings):
            event = kinesis_event([payload], first_sequence=1_000 + index)
            for record in event["Records"]:  # each sensor on a readings shard of its own
                record["eventID"] = f"shardId-00000000000{index}:{record['kinesis']['sequenceNumber']}"
            assert world.processor(None).handle(event)["batchItemFailures"] == []
            by_reading.append(world.new_partials())
        self.events = [partials_event([r for i in lane for r in by_reading[i]]) for lane in scenario.lanes]
        self.windows = oracle_windows(scenario.readings)
        self.refuse_publish = False
        sns = world.slots[scenario.failing_publish or 0]["sns"]
        sns.meta.events.register("before-call.sns.Publish", self._publish_fault)

    def close(self) -> None:
        sns = self.world.slots[self.scenario.failing_publish or 0]["sns"]
        sns.meta.events.unregister("before-call.sns.Publish", self._publish_fault)

    def _publish_fault(self, **_: Any) -> Any:
        if not self.refuse_publish:
            return None
        from botocore.awsrequest import AWSResponse  # noqa: PLC0415

        error = {"Error": {"Code": "InternalError", "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 500}}
        return AWSResponse("https://fault.invalid", 500, {}, None), error

    def reset(self) -> list[Callable[[], Any]]:
        self.world.clear(self.table)
        self.log: list[Outcome] = []
        if self.scenario.prelude is not None:
            self.refuse_publish = True
            prelude_event = {"Records": list(self.events[self.scenario.prelude[0]]["Records"])}
            outcome, _ = self.world.explorer.run([lambda: self.world.folder(0).handle(prelude_event)])
            self.refuse_publish = False
            assert outcome.results[0]["batchItemFailures"], "the prelude batch must fail, to be retried"
            self.log.append(outcome)
        self.refuse_publish = self.scenario.failing_publish is not None
        return [
            (lambda slot=slot, event=event: self.world.folder(slot).handle(event))
            for slot, event in enumerate(self.events)
        ]

    def settle(self, outcome: Outcome) -> list[Outcome]:
        """Lambda's retries: a killed invocation's batch comes back whole, a reported failure from its
        first failed record; each until it succeeds (bounded), one at a time."""
        self.refuse_publish = False
        runs = [*self.log, outcome]
        for slot, event in enumerate(self.events):
            result, killed = outcome.results[slot], outcome.killed[slot]
            pending = event if killed else _from_failures(event, result)
            for _ in range(RETRIES):
                if pending is None:
                    break
                bodies: list[Callable[[], Any]] = [_nothing] * len(self.events)
                bodies[slot] = lambda pending=pending, slot=slot: self.world.folder(slot).handle(pending)
                retry, _ = self.world.explorer.run(bodies)  # on its own slot, so its calls are told apart
                runs.append(retry)
                pending = _from_failures(pending, retry.results[slot])
            if pending is not None:
                raise AssertionError(f"invocation {slot} still failing after {RETRIES} retries")
        return runs

    def check(self, outcome: Outcome) -> list[str]:
        return check_windows(self.world, self.settle(outcome), self.windows)


def oracle_windows(readings: Sequence[bytes]) -> dict[tuple[str, str], dict[str, Any]]:
    docs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for payload in readings:
        doc = json.loads(payload)
        window = (doc["segment_id"], doc["timestamp"][:14] + f"{int(doc['timestamp'][14:16]) // 5 * 5:02d}:00Z")
        docs.setdefault(window, []).append(doc)
    return {w: aggregate(d) for w, d in docs.items()}


def check_windows(world: World, runs: Sequence[Outcome], windows: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """The aggregates against the oracle's, and every congested window's alert published once (a copy only
    by an invocation killed between publishing and its ``sent`` mark)."""
    violations: list[str] = []
    stored = {(i["segment_id"], i["window_start"]): i for i in world.items(world.targets.segment_aggregates_table)}
    published: list[tuple[str, str]] = []
    allowed: set[tuple[str, str]] = set()
    for run in runs:
        for slot in range(len(run.results)):
            mine = [_alert_window(c.params) for c in run.ok_calls("Publish", slot)]
            published.extend(mine)
            if run.killed[slot]:
                marked = {_key_window(c.params) for c in run.ok_calls("UpdateItem", slot)}
                allowed |= set(mine) - marked
            metrics = run.ok_calls("PutMetricData", slot)
            if metrics:
                data = metrics[0].params["MetricData"]
                count = sum(d["Value"] for d in data if d["MetricName"] == "CongestionAlerts")
                if count != len(mine):
                    violations.append(f"CongestionAlerts {count} but {len(mine)} published by invocation {slot}")
    for window, want in windows.items():
        got = stored.get(window)
        if got is None:
            violations.append(f"{window}: no aggregate")
            continue
        have = stored_aggregate(got)
        if have != want:
            violations.append(f"{window}: aggregate {have} instead of {want}")
        if want["congestion_level"] in CONGESTED and window not in published:
            violations.append(f"{window}: congested ({want['congestion_level']}) but no alert published")
    for window in set(published):
        if published.count(window) > 1 and window not in allowed:
            violations.append(f"{window}: alert published {published.count(window)} times")
    return violations


def _nothing() -> None:
    return None


def _from_failures(event: dict[str, Any], result: Any) -> dict[str, Any] | None:
    """What Lambda hands over again after ``result``: the records from the first failed one on."""
    failures = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
    if not failures:
        return None
    records = event["Records"]
    first = min(i for i, r in enumerate(records) if r["kinesis"]["sequenceNumber"] in failures)
    return {"Records": records[first:]}


def _alert_window(params: dict[str, Any]) -> tuple[str, str]:
    body = json.loads(params["Message"])
    return body["segment_id"], body["window_start"]


def _key_window(params: dict[str, Any]) -> tuple[str, str]:
    key = params.get("Key", {})
    return key.get("segment_id", {}).get("S", ""), key.get("window_start", {}).get("S", "")


def explore_folders(world: World, scenario: FolderScenario, crashes: bool) -> Exploration:
    rig = FolderRig(world, scenario)
    try:
        found = world.explorer.explore(rig.reset, rig.check, preemptions=scenario.preemptions)
        if crashes:
            for crash in crash_points(world, rig.reset, rig.settle, len(rig.events)):
                found.add(world.explorer.explore(rig.reset, rig.check, crash=crash, preemptions=scenario.preemptions))
        return found
    finally:
        rig.close()


def crash_points(
    world: World,
    reset: Callable[[], Sequence[Callable[[], Any]]],
    settle: Callable[[Outcome], Any],
    invocations: int,
) -> list[CrashAt]:
    """Before and after every AWS call each invocation makes (the most any schedule made)."""
    outcome, _ = world.explorer.run(reset())
    settle(outcome)
    calls = [sum(1 for c in outcome.calls if c.invocation == i) for i in range(invocations)]
    return [CrashAt(i, k, after) for i, n in enumerate(calls) for k in range(n) for after in (False, True)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_interleaving_keeps_aggregates_and_alerts_right(world: World, scenario: FolderScenario) -> None:
    found = explore_folders(world, scenario, crashes=False)
    assert found.runs > 1
    assert not found.failures, found.describe()


@pytest.mark.parametrize("scenario", SCENARIOS[:3], ids=[s.name for s in SCENARIOS[:3]])
def test_a_crash_at_any_call_boundary_then_lambdas_retries_lose_and_double_nothing(
    world: World, scenario: FolderScenario
) -> None:
    found = explore_folders(world, scenario, crashes=True)
    assert not found.failures, found.describe()


def test_the_second_folder_on_a_segment_window_is_refused_by_the_condition_and_folds_again(world: World) -> None:
    """Both read the window before either writes: the second put's condition fails, it re-reads and folds
    its piece onto the first one's: nothing lost (the scenario above checks every order; this is the one)."""
    rig = FolderRig(world, SCENARIOS[0])
    try:
        outcome, _ = world.explorer.run(rig.reset(), schedule=[0, 1, 0, 1])
        assert not rig.check(outcome)
        puts = [c for c in outcome.calls if c.operation == "PutItem"]
        assert [c.ok for c in puts][:2] == [True, False], "the second writer's put is refused"
        assert outcome.ok_calls("GetItem", 1), "and it re-reads the window"
    finally:
        rig.close()


# -------------------------------------------------------------------------------------- processor

BATCH = [  # one readings shard: seg-a jammed by two sensors, seg-b flowing, then a third seg-a sensor
    jam("s1", 50),
    reading("s2", "seg-b", "2026-06-01T11:50:00Z", vehicles=5, speed=45.0, occupancy=5.0),
    jam("s3", 51),
    jam("s4", 52),
]


@pytest.mark.parametrize("retry", ["whole", "bisected"])
def test_a_processor_crash_between_any_two_calls_then_lambdas_retries_fold_every_reading_once(
    world: World, retry: str
) -> None:
    """Killed before or after its window reads, its fleet registry reads and writes, window writes, the shard's
    partials mark, PutRecords or the shard's watermark, the processor's batch comes back (whole, or bisected:
    first half, then second), and the folder folds what
    the partials stream then holds: each window's aggregate is the oracle's, each jam alerted."""
    event = kinesis_event(BATCH, first_sequence=2_000)
    windows = oracle_windows(BATCH)

    def reset() -> list[Callable[[], Any]]:
        world.clear(
            world.targets.sensor_windows_table, world.targets.segment_aggregates_table, world.targets.fleet_table
        )
        world.new_partials()
        return [lambda: world.processor(0).handle(event)]

    def settle(outcome: Outcome) -> None:
        records = event["Records"]
        if outcome.killed[0]:
            parts = [records] if retry == "whole" else [records[:2], records[2:]]
        else:
            pending = _from_failures(event, outcome.results[0])
            parts = [pending["Records"]] if pending else []
        for part in parts:
            assert world.processor(None).handle({"Records": part})["batchItemFailures"] == []
        partials = world.new_partials()
        assert world.fold(partials) == {"batchItemFailures": []}

    def check(outcome: Outcome) -> list[str]:
        settle(outcome)
        stored = {(i["segment_id"], i["window_start"]): i for i in world.items(world.targets.segment_aggregates_table)}
        violations = []
        for window, want in windows.items():
            got = stored.get(window)
            if got is None or stored_aggregate(got) != want:
                violations.append(f"{window}: {got and stored_aggregate(got)} instead of {want}")
            elif want["congestion_level"] in CONGESTED and got.get("alert_state") != "sent":
                violations.append(f"{window}: congested, alert {got.get('alert_state')}")
        return violations

    outcome, _ = world.explorer.run(reset())
    operations = [c.operation for c in outcome.calls]
    # heads and the partials mark; the opened sensors' registry items, written; windows; mark; partials; watermark
    assert operations == ["BatchGetItem", "BatchGetItem", "BatchWriteItem", "BatchWriteItem", "PutItem",
                          "PutRecords", "UpdateItem"], operations  # fmt: skip
    found = Exploration()
    for crash in [CrashAt(0, k, after) for k in range(len(operations)) for after in (False, True)]:
        found.add(world.explorer.explore(reset, check, crash=crash))
    assert found.runs == 2 * len(operations)
    assert not found.failures, found.describe()


def test_a_retry_after_the_partials_went_out_resends_them_and_the_folder_skips_them(world: World) -> None:
    """The batch's partials were put, then the invocation died before returning: the retry sends the same
    pieces again (the same cut), and folding both copies counts every reading once."""
    world.clear(world.targets.sensor_windows_table, world.targets.segment_aggregates_table, world.targets.fleet_table)
    world.new_partials()
    event = kinesis_event(BATCH, first_sequence=3_000)
    assert world.processor(None).handle(event)["batchItemFailures"] == []
    first = world.new_partials()
    assert world.processor(None).handle(event)["batchItemFailures"] == []
    again = world.new_partials()
    assert [json.loads(r["Data"]) for r in again] == [json.loads(r["Data"]) for r in first]
    assert world.fold([*first, *again]) == {"batchItemFailures": []}
    stored = {(i["segment_id"], i["window_start"]): i for i in world.items(world.targets.segment_aggregates_table)}
    assert {w: stored_aggregate(stored[w]) for w in stored} == oracle_windows(BATCH)


def test_a_late_batch_sends_only_what_it_stores_itself(world: World) -> None:
    """A redrive hands over records below the shard's checkpoint: what they stored before was sent by their
    own delivery; a reading stored only now is sent under the late batch's own source, once."""
    world.clear(world.targets.sensor_windows_table, world.targets.segment_aggregates_table, world.targets.fleet_table)
    world.new_partials()
    given_up = kinesis_event(BATCH[:2], first_sequence=4_000)  # its records went to the DLQ unprocessed
    later = kinesis_event(BATCH[2:], first_sequence=4_002)
    assert world.processor(None).handle(later)["batchItemFailures"] == []
    assert world.processor(None).handle(given_up)["batchItemFailures"] == []  # the redrive
    assert world.processor(None).handle(given_up)["batchItemFailures"] == []  # and a second one
    partials = world.new_partials()
    sources = {json.loads(r["Data"])["shard"] for r in partials}
    assert sources == {"shardId-000000000000", "shardId-000000000000@" + f"{4_000:056d}"}
    assert world.fold(partials) == {"batchItemFailures": []}
    stored = {(i["segment_id"], i["window_start"]): i for i in world.items(world.targets.segment_aggregates_table)}
    assert {w: stored_aggregate(stored[w]) for w in stored} == oracle_windows(BATCH)


def test_a_record_under_another_sensors_thing_never_reaches_that_sensors_items(world: World) -> None:
    """Two shards at once: s1's own record, and one claiming to be s1 published as thing s2. Only the
    first may write s1's items (``sensor_mismatch``), so no interleaving loses or adds a reading."""
    own = reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=3)
    forged = reading("s1", "seg-a", "2026-06-01T11:51:00Z", vehicles=9)
    windows = world.targets.sensor_windows_table

    def reset() -> list[Callable[[], Any]]:
        world.clear(windows)
        return [
            lambda: world.processor(0).handle(kinesis_event([own], first_sequence=1, partition_keys=["s1"])),
            lambda: world.processor(1).handle(kinesis_event([forged], first_sequence=1, partition_keys=["s2"])),
        ]

    def check(outcome: Outcome) -> list[str]:
        stored = {
            (item["sensor_id"], instant)
            for item in world.items(windows)
            if "segments" in item  # not the shard's partials mark
            for instant in stored_instants(item)
        }
        quarantined = [
            json.loads(line)["reason"]
            for obj in world.clients["s3"].list_objects_v2(Bucket=world.targets.quarantine_bucket).get("Contents", [])
            for line in world.clients["s3"]
            .get_object(Bucket=world.targets.quarantine_bucket, Key=obj["Key"])["Body"]
            .read()
            .splitlines()
        ]
        violations = []
        if stored != {("s1", "2026-06-01T11:50:00.000000000Z")}:
            violations.append(f"s1's items hold {sorted(stored)}")
        if quarantined != ["sensor_mismatch"]:
            violations.append(f"quarantined {quarantined}")
        return violations

    found = world.explorer.explore(reset, check)
    assert found.runs >= 1
    assert not found.failures, found.describe()
    outcome, _ = world.explorer.run(reset())
    forged_calls = {c.operation for c in outcome.calls if c.invocation == 1}
    assert forged_calls == {"PutObject", "UpdateItem"}, "the forged record touches no sensor's item: it is quarantined"
    (mark,) = [c.params for c in outcome.calls if c.invocation == 1 and c.operation == "UpdateItem"]
    # ... and its batch moves its shard's watermark on (the records through it are handled), nothing else
    assert (mark["TableName"], mark["Key"]["pk"]) == (world.targets.fleet_table, {"S": silence.WATERMARK_KEY})


def test_the_explorer_finds_a_lost_update_in_an_unconditioned_read_modify_write(world: World) -> None:
    """The explorer itself can fail: two invocations that read, add and write back one counter without
    a condition lose an update in some interleavings (and only in some)."""
    table = world.targets.segment_aggregates_table
    key = {"segment_id": {"S": "counter"}, "window_start": {"S": "x"}}

    def add_one(slot: int) -> None:
        dynamodb = world.slots[slot]["dynamodb"]
        item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        value = int(item["n"]["N"]) if item else 0
        dynamodb.put_item(TableName=table, Item={**key, "n": {"N": str(value + 1)}})

    def reset() -> list[Callable[[], Any]]:
        world.clear(table)
        return [lambda: add_one(0), lambda: add_one(1)]

    def check(_: Outcome) -> list[str]:
        (item,) = world.items(table)
        return [] if item["n"] == 2 else [f"counter {item['n']}"]

    found = world.explorer.explore(reset, check)
    # 4 calls, 2 per invocation: C(4, 2) = 6 orders, of which the two that differ only in the order of
    # the two reads are run once: 4 runs, and the 2 where both read before either writes lose an update
    assert (found.runs, len(found.failures)) == (4, 2)


def summary_of(explorations: Sequence[Exploration]) -> str:
    return f"{sum(e.runs for e in explorations)} runs, {sum(len(e.failures) for e in explorations)} failing"
