"""``tools.redrive`` on moto end to end: batches the mapping gave up on come back, stored exactly once."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from lambdas.common.contract import Reading, parse_reading
from lambdas.processor.logic import stored_instants
from lambdas.processor.service import Processor
from tests.aws_fixtures import Env, Faults, kinesis_event, moto_env, reading, server_error, throttled
from tools import redrive
from tools.local import simulate

NOW = time.time_ns()
"""moto stamps every record with the real arrival time, so the traffic is generated around it."""
MAX_AGE_NS = 86_400 * 10**9


@pytest.fixture
def env() -> Iterator[Env]:
    with moto_env() as e:
        yield e


def processor(env: Env) -> Processor:
    return env.processor(attempts=2)


def queued(env: Env, queue_url: str | None = None) -> int:
    """Messages in an on-failure queue (the processor's by default), visible or being handled."""
    attributes = env.clients["sqs"].get_queue_attributes(
        QueueUrl=queue_url or env.targets.processor_dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def run_redrive(env: Env, visibility_timeout: int = 900, fn: Processor | None = None) -> redrive.Report:
    return redrive.redrive(
        env.clients,
        env.targets.processor_dlq_url,
        redrive.local_submitter(fn or processor(env)),
        batch_size=10_000,
        visibility_timeout=visibility_timeout,
    )


def stored(env: Env) -> dict[tuple[str, str], int]:
    """How many times each (sensor, instant) is stored across the window items."""
    counts: dict[tuple[str, str], int] = {}
    for item in simulate.scan(env.clients, env.targets.sensor_windows_table):
        if "segments" not in item:
            continue  # a shard's partials mark
        for instant in stored_instants(item):
            counts[(item["sensor_id"], instant)] = counts.get((item["sensor_id"], instant), 0) + 1
    return counts


def expected(messages: list[simulate.Message]) -> set[tuple[str, str]]:
    found = set()
    for message in messages:
        outcome = parse_reading(message.payload, NOW, thing=message.thing, max_age_ns=MAX_AGE_NS)
        if isinstance(outcome, Reading):
            found.add((outcome.sensor_id, outcome.key))
    return found


def fail_every_batch(env: Env, messages: list[simulate.Message]) -> dict[str, bool]:
    """Deliver the stream to the processor while DynamoDB throttles every write, so the mapping gives up
    on each batch after its retries and sends the batch's metadata to the on-failure queue."""
    broken = {"on": True}
    Faults(env.clients["dynamodb"], {"BatchWriteItem": lambda n, _: throttled() if broken["on"] else None})
    simulate.put_messages(env.clients, env.targets.stream_name, messages)
    deliver_until_given_up(env, env.targets.stream_name, processor(env), env.targets.processor_dlq_url, 40)
    return broken


def deliver_until_given_up(env: Env, stream: str, fn: Any, dlq_url: str, batch_size: int) -> None:
    """``stream``'s records to ``fn`` as its mapping hands them over, one retry, then to its on-failure queue."""
    arn = env.clients["kinesis"].describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    for shard, records in simulate.kinesis_records(env.clients, stream).items():
        simulate.deliver(
            records,
            sequence_of=lambda r: r["SequenceNumber"],
            make_event=lambda batch, shard=shard: simulate.kinesis_event(shard, batch, "us-east-1", arn),  # type: ignore[misc]
            invoke=fn.handle,
            settings=simulate.MappingSettings(batch_size=batch_size, max_retry_attempts=1),
            on_give_up=lambda batch, shard=shard: env.clients["sqs"].send_message(  # type: ignore[misc]
                QueueUrl=dlq_url, MessageBody=json.dumps(simulate.failure_record(shard, batch, arn))
            ),
        )


def payloads() -> list[simulate.Message]:
    return simulate.generate(12, 15, start_ns=simulate.first_minute(NOW, 15), now_ns=NOW, seed=3)


def test_redrive_stores_every_failed_record_exactly_once_and_empties_the_queue(env: Env) -> None:
    sent = payloads()
    broken = fail_every_batch(env, sent)
    assert stored(env) == {}, "nothing may be stored while every write is throttled"
    messages = queued(env)
    assert messages >= 4
    broken["on"] = False

    report = run_redrive(env)
    assert report.drained and report.count("stored") == messages
    assert sum(o.records for o in report.outcomes) == len(sent)
    assert queued(env) == 0
    counts = stored(env)
    assert set(counts) == expected(sent)
    assert set(counts.values()) == {1}, "a reading stored twice"

    again = run_redrive(env)
    assert again.outcomes == [] and stored(env) == counts


def test_a_batch_that_fails_again_stays_in_the_queue_until_it_is_stored(env: Env) -> None:
    sent = payloads()
    broken = fail_every_batch(env, sent)
    messages = queued(env)
    still_broken = run_redrive(env, visibility_timeout=0)  # visible again at once, as after the timeout
    assert not still_broken.drained and still_broken.count("failed") == messages
    assert queued(env) == messages, "a message is deleted only once its records are stored"
    assert stored(env) == {}
    broken["on"] = False
    assert run_redrive(env).drained
    assert queued(env) == 0
    assert set(stored(env)) == expected(sent)


def test_records_gone_from_the_stream_keep_the_message(env: Env) -> None:
    sent = payloads()[:30]
    simulate.put_messages(env.clients, env.targets.stream_name, sent)
    (shard, records), *_ = simulate.kinesis_records(env.clients, env.targets.stream_name).items()
    stream_arn = env.clients["kinesis"].describe_stream_summary(StreamName=env.targets.stream_name)[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    body = simulate.failure_record(shard, records[:10], stream_arn)
    body["KinesisBatchInfo"]["startSequenceNumber"] = str(int(records[0]["SequenceNumber"]) - 1)  # trimmed away
    env.clients["sqs"].send_message(QueueUrl=env.targets.processor_dlq_url, MessageBody=json.dumps(body))
    env.clients["sqs"].send_message(QueueUrl=env.targets.processor_dlq_url, MessageBody='{"not": "a record"}')
    report = run_redrive(env)
    assert sorted(o.status for o in report.outcomes) == ["expired", "unusable"]
    assert queued(env) == 2
    assert set(stored(env)) == expected(sent[:10]), "what the stream still holds is replayed (idempotently)"


def test_a_redrive_hours_later_judges_time_by_arrival_and_still_refuses_the_future_reading(env: Env) -> None:
    """Issue 11: the time rules used the invocation's clock, so a redrive hours later accepted every
    reading that had been 301 s ahead. Arrival time is the record's own: the verdict never changes."""
    ahead = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW // 10**9 + 3_600))
    message = simulate.Message("s1", reading("s1", "seg-a", ahead))
    fail_every_batch(env, [message])["on"] = False
    later = Processor(processor(env).settings, clients=env.clients, backoff=env.backoff(2),
                      clock=lambda: NOW + 5 * 3_600 * 10**9)  # fmt: skip
    assert run_redrive(env, fn=later).drained
    assert stored(env) == {}, "a reading from the future at its arrival is never stored"
    rejected = [
        json.loads(line)
        for obj in env.clients["s3"].list_objects_v2(Bucket=env.targets.quarantine_bucket)["Contents"]
        for line in env.clients["s3"]
        .get_object(Bucket=env.targets.quarantine_bucket, Key=obj["Key"])["Body"]
        .read()
        .splitlines()
    ]
    assert {r["reason"] for r in rejected} == {"future_timestamp"}


def test_bad_arguments_exit_2() -> None:
    with pytest.raises(SystemExit) as exited:
        redrive.main(["--env", "Not_An_Env"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        redrive.main(["--env", "dev", "--local", "--endpoint-url", "http://127.0.0.1:9"])
    assert exited.value.code == 2


# --------------------------------------------------------------------------- the folder's queue


def folder_queued(env: Env) -> int:
    return queued(env, env.targets.folder_dlq_url)


def folder_redrive(env: Env, visibility_timeout: int = 900) -> redrive.Report:
    return redrive.redrive(
        env.clients, env.targets.folder_dlq_url, redrive.local_submitter(env.folder()), batch_size=1000,
        visibility_timeout=visibility_timeout,
    )  # fmt: skip


JAMMED = [  # one severe window of seg-a, one free window of seg-b
    reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=20, speed=10.0, occupancy=70.0),
    reading("s2", "seg-a", "2026-06-01T11:51:00Z", vehicles=10, speed=14.0, occupancy=85.0),
    reading("s3", "seg-b", "2026-06-01T11:50:00Z", vehicles=15, speed=48.0, occupancy=10.0),
]


def exhaust_folder_retries(env: Env) -> dict[str, bool]:
    """The readings stored and their partials sent, then the folder mapping's deliveries failing until it
    gives up: SNS refuses every publish, so the jammed window's claim stays pending and its batch goes to
    the folder's queue as a ``KinesisBatchInfo`` record (as the local run's folder lanes send it)."""
    assert env.processor().handle(kinesis_event(JAMMED))["batchItemFailures"] == []
    broken = {"on": True}
    Faults(env.clients["sns"], {"Publish": lambda n, _: server_error() if broken["on"] else None})
    deliver_until_given_up(env, env.targets.partials_stream, env.folder(attempts=1), env.targets.folder_dlq_url, 1000)
    return broken


def test_folder_redrive_folds_the_given_up_window_and_publishes_its_alert_once(env: Env) -> None:
    """A segment window whose partials exhausted the folder mapping's retries is folded again from the
    folder's dead-letter queue: its alert is published once, the queue empties, a second replay changes
    nothing."""
    queue = simulate.subscribe_alert_queue(env.clients, env.targets)
    broken = exhaust_folder_retries(env)
    assert folder_queued(env) == 1
    assert env.clients["sqs"].receive_message(QueueUrl=queue).get("Messages", []) == [], "nothing published yet"
    broken["on"] = False

    report = folder_redrive(env)
    assert report.drained and report.count("stored") == 1
    assert folder_queued(env) == 0
    aggregates = {
        (a["segment_id"], a["window_start"]): a
        for a in simulate.scan(env.clients, env.targets.segment_aggregates_table)
    }
    jam = aggregates[("seg-a", "2026-06-01T11:50:00Z")]
    assert (jam["congestion_level"], jam["alert_state"], int(jam["readings"])) == ("severe", "sent", 2)
    assert aggregates[("seg-b", "2026-06-01T11:50:00Z")]["congestion_level"] == "free"
    alerts = [json.loads(json.loads(m["Body"])["Message"]) for m in env.clients["sqs"].receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]  # fmt: skip
    assert [a["alert_id"] for a in alerts] == ["dev:seg-a:2026-06-01T11:50:00Z"]

    assert folder_redrive(env).outcomes == [], "nothing left to replay"


def test_a_folder_batch_that_fails_again_stays_and_an_unusable_message_is_kept(env: Env) -> None:
    exhaust_folder_retries(env)  # SNS still refuses
    still = folder_redrive(env, visibility_timeout=0)
    assert still.count("failed") == 1 and folder_queued(env) == 1
    env.clients["sqs"].send_message(
        QueueUrl=env.targets.folder_dlq_url, MessageBody=json.dumps({"DDBStreamBatchInfo": {}})
    )
    statuses = sorted(o.status for o in folder_redrive(env, visibility_timeout=0).outcomes)
    assert statuses == ["failed", "unusable"]
    assert folder_queued(env) == 2, "nothing is deleted that was not folded"


class _LambdaInvoke:
    """``lambda.invoke`` as the deployed function answers it: the JSON payload decoded and handed to the
    function's code, its result encoded (the review found the replay's events were not JSON at all)."""

    def __init__(self, service: Any) -> None:
        self.service, self.payloads = service, []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        self.payloads.append(event)
        return {"Payload": io.BytesIO(json.dumps(self.service.handle(event)).encode())}


def test_folder_redrive_through_the_deployed_functions_invoke_sends_lambdas_event_shape(env: Env) -> None:
    queue = simulate.subscribe_alert_queue(env.clients, env.targets)
    exhaust_folder_retries(env)["on"] = False
    invoke = _LambdaInvoke(env.folder())
    report = redrive.redrive(
        env.clients, env.targets.folder_dlq_url, redrive.lambda_submitter(invoke, "tap-folder-dev"), batch_size=1000,
    )  # fmt: skip
    assert report.drained and report.count("stored") == 1
    (event,) = invoke.payloads
    for record in event["Records"]:
        assert record["eventSourceARN"].startswith("arn:aws:kinesis:")
        assert record["eventSourceARN"].endswith("/tap-partials-dev")
    (message,) = env.clients["sqs"].receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(json.loads(message["Body"])["Message"])["alert_id"] == "dev:seg-a:2026-06-01T11:50:00Z"


def test_a_replayed_event_stays_under_five_mebibytes_whatever_the_batch_size() -> None:
    """``tools.redrive`` sends each event through ``Invoke`` (its payload: 6 MB with the call's own framing), so
    it cuts at 5 MiB, tighter than the mapping's 6 MB: 10,000 records of ~1 KB in the event go in three events."""
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/tap-readings-dev"
    info = redrive.BatchInfo(arn, "shardId-000000000000", "1", "10000", 10_000)
    records = [
        {
            "Data": b"r" * 500,
            "PartitionKey": f"sensor-{i}",
            "SequenceNumber": str(49_650_000_000 + i),
            "ApproximateArrivalTimestamp": datetime(2026, 6, 1, tzinfo=UTC),
        }
        for i in range(10_000)
    ]
    sizes: list[int] = []
    sent: list[str] = []

    def submit(event: dict[str, Any]) -> list[str]:
        sizes.append(len(json.dumps(event)))
        sent.extend(r["kinesis"]["sequenceNumber"] for r in event["Records"])
        return []

    assert redrive.replay(info, records, submit, batch_size=10_000) == []
    assert sent == [r["SequenceNumber"] for r in records]  # each once, in stream order
    assert max(sizes) <= redrive.MAX_EVENT_BYTES
    assert len(sizes) == 3 and sum(sizes) < 2 * 6_000_000  # cut at the mapping's 6 MB, two events
