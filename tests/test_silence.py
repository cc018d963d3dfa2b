"""Silent sensors (contract version 2): the fleet registry and shard watermarks the processor keeps, the
check's logic, a whole local run where sensors stop and resume, the defects of the minute index it
replaced, and the check's exactly-once messages under concurrent runs, crashes and processor writes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from lambdas.common import silence
from lambdas.common.aws import Backoff, Clients, deserialize
from lambdas.common.contract import NS_PER_SECOND, format_instant, parse_instant
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from lambdas.silence import logic
from lambdas.silence.service import Settings, SilenceCheck
from stacks.config import PROFILES
from stacks.layout import processor_environment, silence_environment
from tests.aws_fixtures import NOW, Env, kinesis_event, moto_env, reading
from tests.interleavings import READS, CrashAt, Explorer, Outcome
from tools.local import simulate

SECOND = NS_PER_SECOND
LEASE_SECONDS = 60


def at(timestamp: str) -> int:
    return parse_instant(timestamp)


# ------------------------------------------------------------------------------------------ pure logic


def test_a_sensor_is_registered_when_missing_a_day_old_or_on_another_shard_and_not_otherwise() -> None:
    day = silence.fleet_day(NOW)
    stored = {
        "fresh": silence.fleet_item("fresh", "shard-1", day, 7),
        "old": silence.fleet_item("old", "shard-1", day - 1, 7),
        "moved": silence.fleet_item("moved", "shard-1", day, 7),
    }
    opened = {"fresh": "shard-1", "old": "shard-1", "moved": "shard-2", "new": "shard-1"}
    due = silence.registrations(opened, stored, day, 7)
    assert [(i["sk"], i["shard_id"], i["day"]) for i in due] == [
        ("moved", "shard-2", day),
        ("new", "shard-1", day),
        ("old", "shard-1", day),
    ]
    # hash-sharded keys, none of them about time; kept a day past the retention after its day ends
    assert {i["pk"] for i in due} <= {f"fleet#{n}" for n in range(silence.FLEET_SHARDS)}
    assert due[0]["expires_at"] == (day + 1 + 7 + 1) * 86_400


def test_a_shard_watermark_stops_before_the_first_record_that_failed() -> None:
    records = [("1", "a", 10), ("2", "b", 11), ("3", "a", 12), ("4", "a", 13), ("5", "b", 14)]
    assert silence.arrival_through(records, set()) == {"a": 13, "b": 14}
    assert silence.arrival_through(records, {"3"}) == {"a": 11, "b": 14}
    assert silence.arrival_through(records, {"1", "2"}) == {"a": 9, "b": 10}


def test_a_sensor_is_judged_at_its_shards_watermark_while_the_shard_is_active() -> None:
    t, allowance = at("2026-06-01T12:00:00Z"), 150
    # active: a batch wrote 85 s ago, through 11:58:35: readings after that may be in the stream
    assert silence.judged_at(t, t - 85 * SECOND, t - 85 * SECOND, allowance) == t - 85 * SECOND
    # a lagging processor (wrote 10 s ago, through an hour back): judged at what it has stored
    assert silence.judged_at(t, t - 3600 * SECOND, t - 10 * SECOND, allowance) == t - 3600 * SECOND
    # idle: no batch for longer than the allowance: everything that arrived before T - allowance is stored
    assert silence.judged_at(t, t - 200 * SECOND, t - 200 * SECOND, allowance) == t - 150 * SECOND
    assert silence.judged_at(t, None, None, allowance) == t - 150 * SECOND
    assert silence.judged_at(t, t + 5 * SECOND, t, allowance) == t  # never after T


def test_the_newest_reading_is_in_the_last_windows_parts_and_silence_is_strict() -> None:
    items = [
        {"sensor_id": "s", "window_part": "2026-06-01T11:50:00Z#000", "latest": {"timestamp": "b", "segment_id": "x"}},
        {"sensor_id": "s", "window_part": "2026-06-01T11:55:00Z#000", "latest": {"timestamp": "d", "segment_id": "y"},
         "latest_interval": 30},
        {"sensor_id": "s", "window_part": "2026-06-01T11:55:00Z#001", "latest": {"timestamp": "c", "segment_id": "z"}},
    ]  # fmt: skip
    newest = logic.newest(items)
    assert newest is not None and (newest.timestamp, newest.interval_seconds, newest.segment_id) == ("d", 30, "y")
    reading_ = logic.Newest("s", format_instant(at("2026-06-01T11:57:00Z")), 60, "x", "")
    assert not logic.silent(reading_, 3, at("2026-06-01T12:00:00Z"))  # exactly 3 x 60 s: not yet
    assert logic.silent(reading_, 3, at("2026-06-01T12:00:00Z") + 1)
    assert logic.in_fleet(reading_, 7, at("2026-06-08T11:57:00Z")) and not logic.in_fleet(
        reading_, 7, at("2026-06-08T11:57:00Z") + 1
    )


# ------------------------------------------------------------------------------- the whole local run


def test_five_of_two_hundred_sensors_stop_one_resumes_each_gets_exactly_its_messages() -> None:
    """The issue's done-when: 5 of 200 stop, exactly those 5 get one outage alert each, the one that
    resumes one recovery notice; at --now the other 4 are the silent sensors."""
    now = at("2026-06-01T12:00:00Z")
    minutes = 24
    messages = simulate.generate(200, minutes, start_ns=now - minutes * 60 * SECOND, now_ns=now, stop=5, resume=1)
    options = simulate.RunOptions(messages, now, 10_000, PROFILES["dev"], check_every_seconds=60)
    summary = simulate.run_in_moto("dev", options)
    stopped = [f"sensor-{i:04d}" for i in range(195, 200)]
    outages = [a for a in summary["alerts"] if a.get("alert_type") == "sensor_silent"]
    recoveries = [a for a in summary["alerts"] if a.get("alert_type") == "sensor_recovered"]
    assert sorted(a["sensor_id"] for a in outages) == stopped
    assert [a["sensor_id"] for a in recoveries] == ["sensor-0195"]
    assert recoveries[0]["alert_id"] == f"{outages[0]['alert_id']}:recovered"
    assert summary["silent_sensors"] == stopped[1:]
    # each outage follows the sensor's last reading before it stopped (minute 11 of 24)
    last = format_instant(now - minutes * 60 * SECOND + 11 * 60 * SECOND)
    assert {a["last_reading_at"] for a in outages} == {last}
    run = summary["run"]
    assert run["silence_checks"] == minutes + 1 and run["silence_check_retries"] == 0
    checks = summary["run"]["requests"]["silence"]
    assert checks["sns:Publish"] == 6 and checks.get("dynamodb:Scan", 0) == 0, checks


# ------------------------------------------------------------- stale index entries are not outages


def test_a_sensor_that_went_on_in_the_next_window_is_not_silent() -> None:
    """The 11:50 window's item keeps its index entry (silent after 11:57:30) once the sensor went on in
    the 11:55 window: the check tells it apart (the next window's head exists), until that is due too."""
    with moto_env() as env:
        settings = ProcessorSettings.from_env(processor_environment(env.targets.runtime_names(), PROFILES["dev"]))
        for sequence, stamp in enumerate(("2026-06-01T11:54:30Z", "2026-06-01T11:55:30Z"), start=1):
            processor = Processor(settings, clients=env.clients, clock=lambda stamp=stamp: at(stamp))
            event = kinesis_event([reading("s1", "seg", stamp)], first_sequence=sequence)
            assert processor.handle(event) == {"batchItemFailures": []}
        assert checker(env.clients, env, at("2026-06-01T11:58:00Z")).handle({})["outages"] == []
        assert checker(env.clients, env, at("2026-06-01T11:59:00Z")).handle({})["outages"] == ["s1"]


# --------------------------------------------------------------- exactly once, concurrent and crashed


def checker(clients: Clients | dict[str, Any], env: Env, now_ns: int = NOW) -> SilenceCheck:
    names = env.targets.runtime_names()
    settings = Settings.from_env(silence_environment(names, PROFILES["dev"]))
    # one Query at a time: the explorer schedules an invocation's calls on its own thread
    settings = Settings(**{**vars(settings), "claim_lease_seconds": LEASE_SECONDS, "poll_workers": 1})
    found = clients if isinstance(clients, Clients) else Clients(**clients)
    return SilenceCheck(settings, clients=found, backoff=Backoff(attempts=3, sleep=lambda _: None),
                        clock=lambda: now_ns)  # fmt: skip


@dataclass
class Rig:
    env: Env
    explorer: Explorer
    slots: list[dict[str, Any]]
    prepare: Callable[[], None]
    """Brings the outages table to the scenario's starting state (the windows table is read-only here)."""
    at_ns: int

    def reset(self) -> Sequence[Callable[[], Any]]:
        self.prepare()
        return [lambda slot=slot: checker(self.slots[slot], self.env, self.at_ns).handle({}) for slot in range(2)]

    def settle(self) -> Outcome:
        """The next scheduled run, once any killed run's lease is over (it takes the claims over)."""
        later = self.at_ns + (LEASE_SECONDS + 1) * SECOND
        bodies: list[Callable[[], Any]] = [
            _nothing,
            _nothing,
            lambda: checker(self.slots[2], self.env, later).handle({}),
        ]
        outcome, _ = self.explorer.run(bodies)  # on its own slot, so that its calls are told apart
        return outcome


def _nothing() -> None:
    return None


def _published(outcome: Outcome) -> list[tuple[int, str]]:
    return [(c.invocation, json.loads(c.params["Message"])["alert_id"]) for c in outcome.ok_calls("Publish")]


def violations(rig: Rig, outcome: Outcome, want: str) -> list[str]:
    """``want`` (an ``alert_id``) published at least once, a second time only by a run killed between
    publishing and marking it sent; the outage's state ends ``sent``."""
    settled = rig.settle()
    found = [alert for _, alert in _published(outcome) + _published(settled)]
    problems = [] if want in found else [f"{want} never published"]
    copies_allowed = sum(
        1 for i, killed in enumerate(outcome.killed) if killed and any(p == (i, want) for p in _published(outcome))
    )
    if found.count(want) > 1 + copies_allowed:
        problems.append(f"{want} published {found.count(want)} times")
    problems += [f"unexpected {alert}" for alert in set(found) - {want}]
    if settled.results[2] is None:
        problems.append("the settling run failed")
    return problems


@pytest.fixture(scope="module")
def rig_env() -> Iterator[tuple[Env, list[dict[str, Any]], Explorer]]:
    with moto_env() as env:
        slots = [
            {s: boto3.client(s, region_name="us-east-1") for s in ("dynamodb", "sns", "cloudwatch")} for _ in range(3)
        ]
        keys = {env.targets.sensor_windows_table: ("sensor_id", "window_part"),
                env.targets.sensor_outages_table: ("sensor_id", "since"),
                env.targets.fleet_table: ("pk", "sk")}  # fmt: skip
        processor = env.processor()
        events = [reading("s1", "seg", "2026-06-01T11:50:00Z"), reading("s2", "seg", "2026-06-01T11:59:50Z")]
        assert processor.handle(kinesis_event(events)) == {"batchItemFailures": []}
        # in these scenarios only the check runs: nobody writes the windows or the fleet table, so reading
        # them is no scheduling point (``Explorer.unshared``)
        static = frozenset({env.targets.sensor_windows_table, env.targets.fleet_table})
        yield env, slots, Explorer(slots, keys, unshared=static)


def _clear_outages(env: Env) -> None:
    dynamodb = env.clients["dynamodb"]
    table = env.targets.sensor_outages_table
    for item in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]:
        dynamodb.delete_item(TableName=table, Key={"sensor_id": item["sensor_id"], "since": item["since"]})


def _crash_points(rig: Rig) -> list[CrashAt]:
    """Before invocation 0's first call, and after each of its calls that changes something (a write, a
    publish): a kill before or after a read leaves what a kill right after the last change before it
    leaves (the run's reads are its own), so those are the only kills with different outcomes."""
    outcome, _ = rig.explorer.run(rig.reset())
    calls = [c for c in outcome.calls if c.invocation == 0]
    return [CrashAt(0, 0, False), *(CrashAt(0, k, True) for k, c in enumerate(calls) if c.operation not in READS)]


def test_two_concurrent_checks_and_a_crash_anywhere_give_one_outage_alert(
    rig_env: tuple[Env, list[dict[str, Any]], Explorer],
) -> None:
    env, slots, explorer = rig_env
    rig = Rig(env, explorer, slots, lambda: _clear_outages(env), NOW)
    want = logic.alert_id("dev", "s1", format_instant(at("2026-06-01T11:50:00Z")))
    found = explorer.explore(rig.reset, lambda outcome: violations(rig, outcome, want), preemptions=2)
    crashes = _crash_points(rig)
    assert len(crashes) >= 4, crashes  # the outage's claim, its publish, its sent mark, the metric
    for crash in crashes:
        found.add(explorer.explore(rig.reset, lambda outcome: violations(rig, outcome, want), crash, preemptions=1))
    assert not found.failures, found.describe()
    assert found.runs > len(crashes)


def test_the_silent_sensors_metric_counts_open_outages(rig_env: tuple[Env, list[dict[str, Any]], Explorer]) -> None:
    env, _, _ = rig_env
    _clear_outages(env)
    result = checker(env.clients, env, NOW).handle({})
    assert result["silent_sensors"] == 1  # s1 (11:50); s2 reported at 11:59:50


def test_a_recovery_notice_is_sent_once_under_concurrent_checks_and_crashes(
    rig_env: tuple[Env, list[dict[str, Any]], Explorer],
) -> None:
    env, slots, explorer = rig_env
    since = format_instant(at("2026-06-01T11:50:00Z"))
    outage_id = logic.alert_id("dev", "s1", since)

    # The outage, alerted (outside the explored runs: only the notice counts below), kept as a snapshot.
    _clear_outages(env)
    checker(env.clients, env, NOW).handle({})
    dynamodb, table = env.clients["dynamodb"], env.targets.sensor_outages_table
    snapshot = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    assert [deserialize(i).get("alert_state") for i in snapshot if i["sensor_id"]["S"] == "s1"] == [logic.SENT]

    def prepare() -> None:
        _clear_outages(env)
        for item in snapshot:
            dynamodb.put_item(TableName=table, Item=item)

    # s1 reports again (processed once, before the explored runs); s2 keeps reporting.
    processor = env.processor()
    resumed = [reading("s1", "seg", "2026-06-01T12:00:20Z"), reading("s2", "seg", "2026-06-01T12:00:50Z")]
    assert processor.handle(kinesis_event(resumed, first_sequence=10)) == {"batchItemFailures": []}
    rig = Rig(env, explorer, slots, prepare, NOW + 30 * SECOND)

    def check(outcome: Outcome) -> list[str]:
        problems = violations(rig, outcome, logic.recovery_id(outage_id))
        stored = deserialize(
            env.clients["dynamodb"].get_item(
                TableName=env.targets.sensor_outages_table, Key={"sensor_id": {"S": "s1"}, "since": {"S": since}}
            )["Item"]
        )
        if stored.get("recovery_state") != logic.SENT or "outage_open" in stored:
            problems.append(f"outage not closed: {stored}")
        return problems

    found = explorer.explore(rig.reset, check, preemptions=2)
    for crash in _crash_points(rig):
        found.add(explorer.explore(rig.reset, check, crash, preemptions=1))
    assert not found.failures, found.describe()


# ------------------------------------------------------------------ an outage never hides the next one


def test_a_recovery_that_fails_to_publish_does_not_hide_the_sensors_next_outage() -> None:
    """Issue 20: the check skipped every index entry of the item an open outage came from as "that outage
    again", comparing sensor and item, not the reading. A sensor whose recovery notice failed to publish,
    and that fell silent again on a later reading in the same item, never got its second outage alert:
    the recovery's claim kept the first outage open until the cursor had passed the new entry."""
    from tests.aws_fixtures import Faults, server_error  # noqa: PLC0415

    with moto_env("hide") as env:  # beside the module's rig (its own tables)
        queue = simulate.subscribe_alert_queue(env.clients, env.targets)
        settings = ProcessorSettings.from_env(processor_environment(env.targets.runtime_names(), PROFILES["dev"]))

        def store(stamp: str, processed_at: str, sequence: int) -> None:
            processor = Processor(settings, clients=env.clients, clock=lambda: at(processed_at))
            event = kinesis_event([reading("s1", "seg", stamp)], first_sequence=sequence)
            assert processor.handle(event) == {"batchItemFailures": []}

        def check(when: str) -> None:
            # a run that could not publish fails, as in Lambda; the next run takes over
            with contextlib.suppress(RuntimeError):
                checker(env.clients, env, at(when)).handle({})

        store("2026-06-01T11:54:30Z", "2026-06-01T11:55:00Z", 1)
        check("2026-06-01T11:58:10Z")  # silent since 11:57:30: the first outage, its alert sent
        store("2026-06-01T11:54:45Z", "2026-06-01T11:59:00Z", 2)  # a late reading, same window item
        refusing = Faults(env.clients["sns"], {"Publish": lambda _n, _r: server_error()})
        check("2026-06-01T11:59:10Z")  # recovery claimed, its publish fails; the sensor is silent again
        refusing.remove()
        for when in ("2026-06-01T12:00:05Z", "2026-06-01T12:01:10Z", "2026-06-01T12:02:10Z", "2026-06-01T12:03:10Z"):
            check(when)
        sent = [json.loads(json.loads(m["Body"])["Message"]) for m in _drain(env.clients, queue)]
        outages = sorted(m["last_reading_at"] for m in sent if m["alert_type"] == "sensor_silent")
        recoveries = [m["outage_alert_id"] for m in sent if m["alert_type"] == "sensor_recovered"]
        first, second = format_instant(at("2026-06-01T11:54:30Z")), format_instant(at("2026-06-01T11:54:45Z"))
        assert outages == [first, second], sent
        assert recoveries == [logic.alert_id("hide", "s1", first)]


def _drain(clients: Clients, queue: str) -> list[dict[str, Any]]:
    found = []
    while messages := clients["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        found.extend(messages)
        for m in messages:
            clients["sqs"].delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return found


# ------------------------------------------------------------- defects of the minute index (issue 20)


def _records(
    stamps_and_arrivals: Sequence[tuple[str, str]], sensor: str, first_sequence: int, **extra: Any
) -> dict[str, Any]:
    """One processor batch: ``sensor``'s readings at each stamp, each record arriving at its own instant."""
    records: list[dict[str, Any]] = []
    for i, (stamp, arrived) in enumerate(stamps_and_arrivals):
        event = simulate.payload_event([reading(sensor, "seg", stamp, **extra)], first_sequence=first_sequence + i,
                                       arrival_seconds=at(arrived) / SECOND)  # fmt: skip
        records += event["Records"]
    return {"Records": records}


def _outages(env: Env, queue: str) -> list[dict[str, Any]]:
    sent = [json.loads(json.loads(m["Body"])["Message"]) for m in _drain(env.clients, queue)]
    return [m for m in sent if m["alert_type"] == "sensor_silent"]


def test_a_sensor_whose_readings_wait_in_a_ninety_second_batch_is_not_silent_until_it_stops() -> None:
    """Issue 20, defect 1: every 20 s (silent after 60 s), on dev's 90 s batching window: the stream holds
    up to 90 s of its readings, so its newest accepted reading is often older than 60 s though it never
    stopped. The check must not call it silent for readings still in the stream; once it really stops
    (11:58:00), it is announced within the documented bound (``lambdas.common.silence``)."""
    with moto_env("batching") as env:
        queue = simulate.subscribe_alert_queue(env.clients, env.targets)
        settings = ProcessorSettings.from_env(processor_environment(env.targets.runtime_names(), PROFILES["dev"]))
        start = at("2026-06-01T11:50:00Z")
        stamps = [format_instant(start + k * 20 * SECOND)[:19] + "Z" for k in range(25)]  # to 11:58:00
        steps: list[tuple[int, Callable[[], Any]]] = []
        batch_at = at("2026-06-01T11:50:10Z")
        sequence = 1
        while batch_at <= at("2026-06-01T12:06:00Z"):
            due = [s for s in stamps if batch_at - 90 * SECOND < at(s) <= batch_at]
            if due:  # Lambda invokes the processor only when the stream holds records
                processor = Processor(settings, clients=env.clients, clock=lambda t=batch_at: t)
                event = _records([(s, s) for s in due], "s1", sequence, interval_seconds=20)
                steps.append((batch_at, lambda p=processor, e=event: p.handle(e)))
                sequence += len(due)
            batch_at += 90 * SECOND
        for minute in range(16):
            when = at("2026-06-01T11:51:05Z") + minute * 60 * SECOND
            steps.append((when, lambda when=when: checker(env.clients, env, when).handle({})))
        announced: list[int] = []
        for when, step in sorted(steps, key=lambda s: s[0]):
            result = step()
            if isinstance(result, dict) and result.get("outages"):
                announced.append(when)
        outages = _outages(env, queue)
        assert [o["last_reading_at"] for o in outages] == [format_instant(at("2026-06-01T11:58:00Z"))], outages
        assert len(announced) == 1 and announced[0] <= at("2026-06-01T12:03:00Z"), announced


def test_an_outage_is_announced_when_the_batch_that_shows_it_lands_late() -> None:
    """Issue 20, defect 2: a batch started at 12:00:59.9 whose writes land after 12:02 marked minute 12:00,
    which the check had already passed for good: the outage was never announced."""
    with moto_env("late") as env:
        queue = simulate.subscribe_alert_queue(env.clients, env.targets)
        settings = ProcessorSettings.from_env(processor_environment(env.targets.runtime_names(), PROFILES["dev"]))
        for when in ("2026-06-01T12:00:00.5Z", "2026-06-01T12:01:00.5Z", "2026-06-01T12:02:00.5Z"):
            checker(env.clients, env, at(when)).handle({})
        processor = Processor(settings, clients=env.clients, clock=lambda: at("2026-06-01T12:00:59.9Z"))
        event = _records([("2026-06-01T11:55:00Z", "2026-06-01T12:00:59Z")], "s1", 1)
        assert processor.handle(event) == {"batchItemFailures": []}  # its writes land now, at ~12:02:05
        for when in ("2026-06-01T12:03:00.5Z", "2026-06-01T12:04:00.5Z", "2026-06-01T12:05:00.5Z"):
            checker(env.clients, env, at(when)).handle({})
        assert [o["sensor_id"] for o in _outages(env, queue)] == ["s1"]


def test_a_sensor_already_silent_when_the_check_first_runs_is_announced() -> None:
    """Issue 20, defect 3: a new check (or a recreated outages table) read two minutes back: a sensor
    silent since an hour was never announced."""
    with moto_env("first") as env:
        queue = simulate.subscribe_alert_queue(env.clients, env.targets)
        settings = ProcessorSettings.from_env(processor_environment(env.targets.runtime_names(), PROFILES["dev"]))
        processor = Processor(settings, clients=env.clients, clock=lambda: at("2026-06-01T11:00:30Z"))
        event = _records([("2026-06-01T11:00:00Z", "2026-06-01T11:00:10Z")], "s1", 1)
        assert processor.handle(event) == {"batchItemFailures": []}
        assert checker(env.clients, env, at("2026-06-01T12:00:00Z")).handle({})["outages"] == ["s1"]
        assert [o["last_reading_at"] for o in _outages(env, queue)] == [format_instant(at("2026-06-01T11:00:00Z"))]


# ------------------------------------------------------- the processor's registry and watermark writes


def test_a_processor_batch_racing_the_check_never_makes_a_reporting_sensor_silent() -> None:
    """The processor stores s1's next reading and s3's first (a registry write), then its shard's watermark,
    while a check runs, in every order of their calls and with the processor killed after any of its writes
    (Lambda retries the batch). s1 reports every 20 s: never silent, whatever the check read first (it reads
    the watermark before the windows, and the processor writes it after them). s2 stopped at 11:50: exactly
    one outage alert."""
    with moto_env("race") as env:
        names = env.targets.runtime_names()
        settings = ProcessorSettings.from_env(processor_environment(names, PROFILES["dev"]))
        earlier = Processor(settings, clients=env.clients, clock=lambda: at("2026-06-01T11:58:00Z"))
        seeded = _records([("2026-06-01T11:50:00Z", "2026-06-01T11:50:05Z")], "s2", 1)
        assert earlier.handle(seeded) == {"batchItemFailures": []}
        seeded = _records([("2026-06-01T11:58:00Z", "2026-06-01T11:58:00Z")], "s1", 2, interval_seconds=20)
        assert earlier.handle(seeded) == {"batchItemFailures": []}
        tables = {env.targets.sensor_windows_table: ("sensor_id", "window_part"),
                  env.targets.sensor_outages_table: ("sensor_id", "since"),
                  env.targets.fleet_table: ("pk", "sk")}  # fmt: skip
        dynamodb = env.clients["dynamodb"]
        snapshot = {t: dynamodb.scan(TableName=t, ConsistentRead=True)["Items"] for t in tables}
        slots = [{s: boto3.client(s, region_name="us-east-1") for s in ("dynamodb", "sns", "cloudwatch", "s3")}
                 for _ in range(3)]  # fmt: skip
        explorer = Explorer(slots, tables)
        s1 = _records([("2026-06-01T11:59:50Z", "2026-06-01T11:59:50Z")], "s1", 10, interval_seconds=20)
        s3 = _records([("2026-06-01T11:59:55Z", "2026-06-01T11:59:55Z")], "s3", 11)
        batch = {"Records": s1["Records"] + s3["Records"]}

        def processor(slot: int) -> Callable[[], Any]:
            fresh = Processor(settings, clients=Clients(**slots[slot]), clock=lambda: NOW)  # a cold environment
            return lambda: fresh.handle(batch)

        def reset() -> Sequence[Callable[[], Any]]:
            for table, keys in tables.items():
                for item in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]:
                    dynamodb.delete_item(TableName=table, Key={k: item[k] for k in keys})
                for item in snapshot[table]:
                    dynamodb.put_item(TableName=table, Item=item)
            return [processor(0), lambda: checker(slots[1], env, NOW).handle({})]

        want = logic.alert_id("race", "s2", format_instant(at("2026-06-01T11:50:00Z")))

        def check(outcome: Outcome) -> list[str]:
            # Lambda retries a killed batch; then the next scheduled run
            retry = processor(2) if outcome.killed[0] else _nothing
            settled, _ = explorer.run([_nothing, _nothing, retry])
            later, _ = explorer.run([_nothing, _nothing, lambda: checker(slots[2], env, NOW + 30 * SECOND).handle({})])
            found = [alert for _, alert in _published(outcome) + _published(later)]
            problems = [f"unexpected {alert}" for alert in found if alert != want]
            if found.count(want) != 1:
                problems.append(f"{want} published {found.count(want)} times")
            if any(r not in (None, {"batchItemFailures": []}) for r in (outcome.results[0], settled.results[2])):
                problems.append("the processor failed records")
            return problems

        found = explorer.explore(reset, check, preemptions=2)
        outcome, _ = explorer.run(reset())
        writes = [k for k, c in enumerate(c for c in outcome.calls if c.invocation == 0) if c.operation not in READS]
        assert len(writes) >= 3, outcome.calls  # the registry, the windows, the watermark
        for k in writes:
            found.add(explorer.explore(reset, check, CrashAt(0, k, after=True), preemptions=1))
        assert not found.failures, found.describe()
        assert found.runs > 2 * len(writes), found.describe()
