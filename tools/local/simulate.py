"""Run the whole data path on this machine: the real handlers against moto, no AWS account.

    python -m tools.local.simulate [--input readings.ndjson [--input-format payload|envelope]]
                             [--sensors 40 --minutes 30] [--now RFC3339] [--batch-size N]
                             [--shards N [--parallel]] [--summary summary.json] [--env dev]

Creates the stream, tables, buckets, queue and topic as the stack defines them (``stacks.layout`` and
``stacks.naming``, the same definitions the constructs use), puts each message on the emulated Kinesis
stream with the partition key the topic rule gives it (the thing name, the topic's fourth level),
reads them back with GetRecords and hands them to the processor handler exactly as the event source
mapping would (same event shape, batches of ``--batch-size``, retrying from the first failed record,
bisecting on errors, giving up to the DLQ after the configured retries); the processor puts its partials on
the emulated partials stream, whose records are handed to the folder handler the same way. ``--now`` is the
arrival time of every record. The summary is read back from the emulated stores and the alert topic.
``--endpoint-url`` runs against an already deployed environment (see ``--outputs``) instead.

``--parallel`` runs every Kinesis shard with its own worker thread, as Lambda runs one invocation per
shard at once: the readings stream's shards (the processor lanes), then the partials stream's (the folder
lanes; ``--shards N`` gives both streams N shards). A segment's partials share a partition key, so one
folder lane folds each segment window. moto applies each request atomically, as DynamoDB does.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdas.common.aws import Backoff, Clients, deserialize
from lambdas.common.contract import (
    ALERT_LEVELS,
    NS_PER_SECOND,
    REASONS,
    Sums,
    decode_sums,
    format_instant,
    parse_instant,
    total,
)
from lambdas.folder import handler as folder_handler
from lambdas.folder.service import Folder, settings_from_env
from lambdas.processor import handler as processor_handler
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from lambdas.silence import handler as silence_handler
from lambdas.silence.service import Settings as SilenceSettings
from lambdas.silence.service import SilenceCheck
from stacks.capacity import LAMBDA_PAYLOAD_BYTES
from stacks.config import PROFILES, EnvironmentConfig, StreamMode
from stacks.layout import (
    FLEET,
    FOLDER_BATCH_SIZE,
    OPEN_OUTAGES,
    PARTIALS_STREAM,
    SEGMENT_AGGREGATES,
    SENSOR_OUTAGES,
    SENSOR_WINDOWS,
    TABLES,
    TTL_ATTRIBUTE,
    TableSpec,
    folder_environment,
    processor_environment,
    silence_environment,
)
from stacks.naming import Kind, Namer
from tools.local import iam_check
from tools.local.targets import Targets

ACCOUNT_ID = "123456789012"
"""The account moto answers for, in process and as a server: its ``DEFAULT_ACCOUNT_ID`` (a test keeps them
equal). Written out, not imported: the operator tools import this module, and must not load moto."""
PUT_RECORDS_LIMIT = 500


def create_tables(namer: Namer, clients: Clients, specs: Sequence[TableSpec] = TABLES) -> None:
    """The environment's DynamoDB tables (``specs``: the data path's by default), as ``stacks.layout`` defines them."""
    for spec in specs:
        attributes = [{"AttributeName": n, "AttributeType": t} for n, t in spec.attribute_types().items()]
        schema = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
        if spec.range_key:
            schema.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
        extra: dict[str, Any] = {}
        if spec.stream_view_type:
            extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream_view_type}
        if spec.indexes:
            extra["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.hash_key, "KeyType": "HASH"},
                        {"AttributeName": index.range_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {
                        "ProjectionType": index.projection_type,
                        **({"NonKeyAttributes": list(index.include)} if index.include else {}),
                    },
                }
                for index in spec.indexes
            ]
        name = namer.name(Kind.DYNAMODB_TABLE, spec.concern)
        clients["dynamodb"].create_table(
            TableName=name,
            AttributeDefinitions=attributes,
            KeySchema=schema,
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
        if spec.ttl:
            clients["dynamodb"].update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
            )


def create_targets(environment: str, config: EnvironmentConfig, clients: Clients, shards: int | None = None) -> Targets:
    """Create the environment's data path on the emulator from the stack's own definitions
    (``shards``: a provisioned stream of that many shards instead of the config's)."""
    namer = Namer(environment)
    region = config.region
    create_tables(namer, clients)
    quarantine = namer.bucket("quarantine", ACCOUNT_ID)
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    clients["s3"].create_bucket(Bucket=quarantine, **location)
    stream = namer.name(Kind.KINESIS_STREAM, "readings")
    if shards is not None:
        clients["kinesis"].create_stream(StreamName=stream, ShardCount=shards)
    elif config.stream_mode is StreamMode.PROVISIONED:
        clients["kinesis"].create_stream(StreamName=stream, ShardCount=config.shard_count)
    else:
        clients["kinesis"].create_stream(StreamName=stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    topic = clients["sns"].create_topic(Name=namer.name(Kind.SNS_TOPIC, "alerts"))["TopicArn"]
    dlq = clients["sqs"].create_queue(QueueName=namer.name(Kind.SQS_QUEUE, "processor-dlq"))["QueueUrl"]
    folder_dlq = clients["sqs"].create_queue(QueueName=namer.name(Kind.SQS_QUEUE, "folder-dlq"))["QueueUrl"]
    partials = namer.name(Kind.KINESIS_STREAM, PARTIALS_STREAM)
    clients["kinesis"].create_stream(StreamName=partials, ShardCount=shards or config.partials_shard_count)
    return Targets(
        environment=environment,
        region=region,
        stream_name=stream,
        sensor_windows_table=namer.name(Kind.DYNAMODB_TABLE, SENSOR_WINDOWS.concern),
        segment_aggregates_table=namer.name(Kind.DYNAMODB_TABLE, SEGMENT_AGGREGATES.concern),
        quarantine_bucket=quarantine,
        alert_topic_arn=topic,
        processor_dlq_url=dlq,
        metric_namespace=namer.metric_namespace(),
        sensor_outages_table=namer.name(Kind.DYNAMODB_TABLE, SENSOR_OUTAGES.concern),
        folder_dlq_url=folder_dlq,
        partials_stream=partials,
        fleet_table=namer.name(Kind.DYNAMODB_TABLE, FLEET.concern),
    )


# ---------------------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Message:
    """One MQTT message as the topic rule hands it to Kinesis: the thing it was published as (the
    topic's fourth level, which becomes the partition key) and the raw payload."""

    thing: str
    payload: bytes


UNKNOWN_THING = "unknown"
_TOPIC_LEVEL = re.compile(r"[^/+#]{1,128}")


def topic(environment: str, thing: str) -> str:
    """The topic the ingestion rule sees a reading on (contract: ``tap/<environment>/sensors/<thing>/readings``)."""
    return f"{Namer(environment).sensor_topic_prefix()}/{thing}/readings"


def publish_topic(environment: str, thing: str) -> str:
    """The topic a sensor publishes on: :func:`topic` behind the Basic Ingest prefix ``$aws/rules/<rule>/``,
    which IoT strips before the rule sees it."""
    return Namer(environment).sensor_publish_topic(thing)


def thing_of(payload: bytes) -> str:
    """The thing a payload is published as by default: its own ``sensor_id`` when that can be a topic
    level, else ``unknown`` (a payload without one)."""
    try:  # numbers are not needed here, and may be longer than Python's int parser takes
        value = json.loads(payload, parse_int=len, parse_float=len, parse_constant=len).get("sensor_id")
    except (ValueError, AttributeError, RecursionError):
        value = None
    return value if isinstance(value, str) and _TOPIC_LEVEL.fullmatch(value) else UNKNOWN_THING


def own_topic(payloads: Sequence[bytes]) -> list[Message]:
    """Each payload published on the topic of its own ``sensor_id`` (see :func:`thing_of`)."""
    return [Message(thing_of(p), p) for p in payloads]


def first_minute(now_ns: int, minutes: int) -> int:
    """Where ``minutes`` of generated traffic ending at ``now_ns`` start: the minute boundary at or before
    ``now_ns`` less ``minutes`` minutes (the generator's readings fall on the minute)."""
    start = now_ns - minutes * 60 * NS_PER_SECOND
    return start - start % (60 * NS_PER_SECOND)


def generate(
    sensors: int, minutes: int, *, start_ns: int, now_ns: int, seed: int = 7, stop: int = 0, resume: int = 0
) -> list[Message]:
    """Realistic traffic: sensors in groups of four per segment, one reading a minute each.

    The last ``stop`` sensors stop reporting halfway through the minutes; the first ``resume`` of those
    report again from three quarters through (silent sensors, and recoveries with ``--check-every``).

    Some segments congest (slow and occupied) in every other ten minutes of the clock, so each window
    of a congested period is congested throughout (which windows alert does not depend on the order
    readings arrive in); a few readings are republished (duplicates), and a few records are bad: not
    JSON, breaking the schema, published under another sensor's thing name, from the future, or
    older than the environment keeps (``stale_timestamp`` at the default 24 h).
    """
    rng = random.Random(seed)
    segments = max(1, sensors // 4)
    congested = {f"seg-{i:03d}" for i in range(segments) if i % 5 == 0}
    messages: list[Message] = []
    for minute in range(minutes):
        instant = start_ns + minute * 60 * 1_000_000_000
        clock_minute = instant // 60_000_000_000
        for sensor in range(sensors):
            stopped = sensor >= sensors - stop and minutes // 2 <= minute
            if stopped and not (sensor < sensors - stop + resume and minute >= minutes * 3 // 4):
                continue
            segment = f"seg-{sensor % segments:03d}"
            limit = 80 if sensor % segments % 2 else 50
            jam = segment in congested and (clock_minute // 10) % 2 == 1
            vehicles = rng.randint(0, 3) if minute % 17 == 0 and sensor % 7 == 0 else rng.randint(5, 40)
            speed = rng.uniform(5, 0.4 * limit) if jam else rng.uniform(0.7 * limit, 1.1 * limit)
            occupancy = rng.uniform(55, 95) if jam else rng.uniform(2, 30)
            thing = f"sensor-{sensor:04d}"
            reading = {
                "sensor_id": thing,
                "segment_id": segment,
                "timestamp": format_instant(instant)[:19] + "Z",
                "vehicle_count": vehicles,
                "average_speed_kmh": round(speed, 1),
                "occupancy_percent": round(occupancy, 1),
                "speed_limit_kmh": limit,
                "firmware": "2.4.1",
            }
            payload = json.dumps(reading).encode()
            messages.append(Message(thing, payload))
            roll = rng.random()
            if roll < 0.01:
                messages.append(Message(thing, payload))  # republished by the sensor
            elif roll < 0.013:
                messages.append(Message(thing, b'{"sensor_id": "' + thing.encode() + b'", "broken":'))
            elif roll < 0.016:
                messages.append(Message(thing, json.dumps({**reading, "vehicle_count": -1}).encode()))
            elif roll < 0.018:
                ahead = format_instant(now_ns + 3_600 * 1_000_000_000)[:19] + "Z"
                messages.append(Message(thing, json.dumps({**reading, "timestamp": ahead}).encode()))
            elif roll < 0.020:
                other = f"sensor-{(sensor + 1) % sensors:04d}"
                messages.append(Message(other, json.dumps({**reading, "timestamp": reading["timestamp"]}).encode()))
            elif roll < 0.022:
                old = format_instant(now_ns - 2 * 86_400 * 1_000_000_000)[:19] + "Z"
                messages.append(Message(thing, json.dumps({**reading, "timestamp": old}).encode()))
    return messages


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.rstrip(b"\r") for line in lines]


def read_input(path: Path, input_format: str = "payload", environment: str = "dev") -> list[Message]:
    """NDJSON input. ``payload``: one payload per line, sent as is (blank and bad lines included) on the
    topic of its own ``sensor_id``. ``envelope``: ``{"topic": ..., "payload": "<raw payload>"}`` per line,
    the topic as a sensor publishes it (``$aws/rules/<rule>/tap/<env>/sensors/<thing>/readings``, Basic
    Ingest to this environment's rule) or as the rule sees it (``tap/<env>/sensors/<thing>/readings``).
    Raises ``ValueError`` naming the line for a bad envelope."""
    lines = read_lines(path)
    if input_format == "payload":
        return own_topic(lines)
    messages = []
    namer = Namer(environment)
    basic_ingest, sensors = re.escape(namer.basic_ingest_prefix()), re.escape(namer.sensor_topic_prefix())
    pattern = re.compile(rf"(?:{basic_ingest}/)?{sensors}/([^/+#]{{1,128}})/readings")
    for number, line in enumerate(lines, 1):
        try:
            envelope = json.loads(line)
            match = pattern.fullmatch(envelope["topic"])
            payload = envelope["payload"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not an envelope {{'topic': ..., 'payload': ...}} ({exc})") from None
        if not match or not isinstance(payload, str):
            raise ValueError(
                f"{path}:{number}: topic must be {publish_topic(environment, '<thing>')} (or, as the rule sees "
                f"it, {topic(environment, '<thing>')}), payload a string"
            )
        messages.append(Message(match.group(1), payload.encode("utf-8", "surrogatepass")))
    return messages


# ------------------------------------------------------------------------------------------ the path


@dataclass
class MappingSettings:
    """The event source mapping's behaviour, from the environment config (as the stack sets it)."""

    batch_size: int
    max_retry_attempts: int


class Progress:
    def __init__(self, label: str, total: int, stream: Any = sys.stderr) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.done, self.started, self.last = 0, time.monotonic(), 0.0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.total >= 5_000 and (now - self.last > 1 or self.done >= self.total):
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            print(f"  {self.label}: {self.done}/{self.total} ({rate:,.0f}/s)", file=self.stream, flush=True)


def put_messages(clients: Clients, stream: str, messages: Sequence[Message]) -> None:
    """Put each message on the stream as the topic rule does: its thing name is the partition key."""
    kinesis = clients["kinesis"]
    for start in range(0, len(messages), PUT_RECORDS_LIMIT):
        chunk = messages[start : start + PUT_RECORDS_LIMIT]
        entries = [{"Data": m.payload, "PartitionKey": m.thing} for m in chunk]
        while entries:
            response = kinesis.put_records(StreamName=stream, Records=entries)
            entries = [e for e, r in zip(entries, response["Records"], strict=True) if "ErrorCode" in r]


def drain(get_records: Callable[[str], dict[str, Any]], iterator: str | None) -> list[dict[str, Any]]:
    """Every record a shard iterator reaches, page by page, until a page comes back empty."""
    records: list[dict[str, Any]] = []
    while iterator:
        page = get_records(iterator)
        if not page["Records"]:
            break
        records.extend(page["Records"])
        iterator = page.get("NextShardIterator")
    return records


def _start(after: str | None, name: str = "StartingSequenceNumber") -> dict[str, str]:
    """Shard iterator arguments: from the start, or after a sequence number already read (``name``: the
    argument's name, ``SequenceNumber`` in DynamoDB Streams)."""
    if after is None:
        return {"ShardIteratorType": "TRIM_HORIZON"}
    return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", name: after}


def kinesis_records(
    clients: Clients, stream: str, after: Mapping[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every record of every shard (after the sequence numbers in ``after``), in order, read back with
    GetRecords."""
    kinesis = clients["kinesis"]
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    found: dict[str, list[dict[str, Any]]] = {}
    for shard in shards:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, **_start((after or {}).get(shard)))[
            "ShardIterator"
        ]
        found[shard] = drain(lambda it: kinesis.get_records(ShardIterator=it, Limit=10_000), iterator)
    return found


def partials_events(clients: Clients, targets: Targets, after: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The partials stream's records (after the sequence numbers in ``after``, which is moved on) as the
    folder's mapping hands them over: one event per shard that has any."""
    arn = clients["kinesis"].describe_stream_summary(StreamName=targets.partials_stream)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    events = []
    for shard, records in kinesis_records(clients, targets.partials_stream, after).items():
        if records:
            if after is not None:
                after[shard] = records[-1]["SequenceNumber"]
            events.append(kinesis_event(shard, records, targets.region, arn))
    return events


def kinesis_event(
    shard: str, records: Sequence[dict[str, Any]], region: str, stream_arn: str, arrival_ns: int | None = None
) -> dict[str, Any]:
    """The event Lambda hands a Kinesis-triggered function (``arrival_ns``: every record's arrival time
    instead of the stream's, for the local run's ``--now``)."""
    arrival = None if arrival_ns is None else arrival_ns / 1_000_000_000
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode("ascii"),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp()
                    if arrival is None
                    else arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def payload_event(
    payloads: Sequence[bytes],
    *,
    first_sequence: int = 1,
    partition_keys: Sequence[str] | None = None,
    arrival_seconds: float = 1780315200.0,  # 2026-06-01T12:00:00Z, the handler tests' NOW
    shard: str = "shardId-000000000000",
    region: str = "us-east-1",
    stream_arn: str = f"arn:aws:kinesis:us-east-1:{ACCOUNT_ID}:stream/tap-readings-dev",
) -> dict[str, Any]:
    """The event Lambda would hand the processor for ``payloads`` put on one shard, with sequence
    numbers ``first_sequence``, ``first_sequence + 1``, ... (56 digits, as Kinesis writes them), each
    published on its own sensor's topic unless ``partition_keys`` says otherwise."""
    arrival = datetime.fromtimestamp(arrival_seconds, UTC)
    records = [
        {
            "SequenceNumber": f"{first_sequence + i:056d}",
            "PartitionKey": partition_keys[i] if partition_keys else thing_of(payload),
            "Data": payload,
            "ApproximateArrivalTimestamp": arrival,
        }
        for i, payload in enumerate(payloads)
    ]
    return kinesis_event(shard, records, region, stream_arn)


def failure_record(shard: str, batch: Sequence[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """What a Kinesis event source mapping sends its on-failure destination: metadata, no records."""
    first, last = batch[0], batch[-1]
    return _on_failure(
        "KinesisBatchInfo",
        shard,
        batch,
        stream_arn=stream_arn,
        sequences=(first["SequenceNumber"], last["SequenceNumber"]),
        arrivals=(first["ApproximateArrivalTimestamp"], last["ApproximateArrivalTimestamp"]),
    )


def _on_failure(
    key: str,
    shard: str,
    batch: Sequence[Any],
    *,
    stream_arn: str,
    sequences: tuple[str, str],
    arrivals: tuple[Any, Any],
) -> dict[str, Any]:
    """An on-failure record: the invocation's context and the batch's metadata under ``key``."""
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None},
        "version": "1.0",
        "timestamp": format_instant(time.time_ns()),
        key: {
            "shardId": shard,
            "startSequenceNumber": sequences[0],
            "endSequenceNumber": sequences[1],
            "approximateArrivalOfFirstRecord": str(arrivals[0].isoformat() if arrivals[0] else ""),
            "approximateArrivalOfLastRecord": str(arrivals[1].isoformat() if arrivals[1] else ""),
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }


@dataclass
class Delivery:
    invocations: int = 0
    retries: int = 0
    gave_up: int = 0


def within_payload(
    batch: Sequence[dict[str, Any]],
    make_event: Callable[[Sequence[dict[str, Any]]], dict[str, Any]],
    limit: int = LAMBDA_PAYLOAD_BYTES,
) -> Sequence[dict[str, Any]]:
    """The first records of ``batch`` whose event is at most ``limit`` bytes of JSON, one at least: an event
    source mapping ends a batch at Lambda's 6 MB invocation payload, whatever its batch size. A record's share
    of the event is its base64 data and its fields, measured on the first record's event."""
    if len(batch) < 2:
        return batch
    used = len(json.dumps(make_event([])))
    fields = len(json.dumps(make_event(batch[:1]))) - used - _variable_bytes(batch[0]) + len(", ")
    for count, record in enumerate(batch):
        used += fields + _variable_bytes(record)
        if used > limit:
            return batch[: max(1, count)]
    return batch


def chunks(
    records: Sequence[dict[str, Any]],
    size: int,
    make_event: Callable[[Sequence[dict[str, Any]]], dict[str, Any]],
    limit: int = LAMBDA_PAYLOAD_BYTES,
) -> list[Sequence[dict[str, Any]]]:
    """``records`` cut as a mapping cuts a shard that never fails: consecutive runs of at most ``size`` records
    whose event is at most ``limit`` bytes (``within_payload``)."""
    found: list[Sequence[dict[str, Any]]] = []
    position = 0
    while position < len(records):
        found.append(within_payload(records[position : position + size], make_event, limit))
        position += len(found[-1])
    return found


def _variable_bytes(record: Mapping[str, Any]) -> int:
    """What differs between Kinesis records in an event: the data, base64, and the partition key."""
    return 4 * ((len(record["Data"]) + 2) // 3) + len(record["PartitionKey"])


def deliver(
    records: Sequence[dict[str, Any]],
    *,
    sequence_of: Callable[[dict[str, Any]], str],
    make_event: Callable[[Sequence[dict[str, Any]]], dict[str, Any]],
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    settings: MappingSettings,
    on_give_up: Callable[[Sequence[dict[str, Any]]], None],
    progress: Progress | None = None,
) -> Delivery:
    """Hand one shard's records to a function the way an event source mapping does.

    Batches of ``batch_size``; on ``batchItemFailures`` the next batch starts at the lowest failed
    record; on a function error the batch is bisected; after ``max_retry_attempts`` retries of the same
    record, its batch goes to the on-failure destination and the shard moves on.
    """
    stats = Delivery()
    position, attempts, size = 0, 0, settings.batch_size
    while position < len(records):
        batch = within_payload(records[position : position + size], make_event)
        stats.invocations += 1
        try:
            response = invoke(make_event(batch))
            failures = [f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])]
        except Exception as error:
            print(f"  function error ({type(error).__name__}: {error}); bisecting", file=sys.stderr)
            failures = [sequence_of(batch[0])]
            size = max(1, len(batch) // 2)
        if not failures:
            position += len(batch)
            attempts, size = 0, settings.batch_size
            if progress:
                progress.add(len(batch))
            continue
        index = {sequence_of(r): i for i, r in enumerate(batch)}
        first = min(index[f] for f in failures)
        if progress:
            progress.add(first)
        position += first
        attempts = attempts + 1 if first == 0 else 1
        stats.retries += 1
        if attempts > settings.max_retry_attempts:
            stuck = records[position : position + size]
            on_give_up(stuck)
            stats.gave_up += len(stuck)
            position += len(stuck)
            attempts, size = 0, settings.batch_size
    return stats


# ---------------------------------------------------------------------------------------- read back


def scan(clients: Clients, table: str, attributes: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every item of ``table`` (only ``attributes`` of each, when given)."""
    projection: dict[str, Any] = {}
    if attributes:
        projection = {
            "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(attributes))),
            "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(attributes)},
        }
    items: list[dict[str, Any]] = []
    pages = clients["dynamodb"].get_paginator("scan").paginate(TableName=table, ConsistentRead=True, **projection)
    for page in pages:
        items.extend(deserialize(i) for i in page["Items"])
    return items


def sensor_state(clients: Clients, table: str, sensor_id: str) -> dict[str, Any] | None:
    """A sensor's current state: the newest ``latest`` reading among the parts of its newest window.

    The newest item (sort keys ``<window start>#<part>`` sort by window) names that window; its parts
    are all read, since a part's newest reading need not be the window's."""
    dynamodb = clients["dynamodb"]
    newest = dynamodb.query(
        TableName=table,
        KeyConditionExpression="sensor_id = :sensor",
        ExpressionAttributeValues={":sensor": {"S": sensor_id}},
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    )["Items"]
    if not newest:
        return None
    window = newest[0]["window_start"]["S"]
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="sensor_id = :sensor AND begins_with(window_part, :window)",
        ExpressionAttributeValues={":sensor": {"S": sensor_id}, ":window": {"S": f"{window}#"}},
        ConsistentRead=True,
    )
    items = [deserialize(item) for page in pages for item in page["Items"]]
    item = max((i for i in items if "latest" in i), key=lambda i: i["latest"]["timestamp"])
    return {"sensor_id": sensor_id, **item["latest"]}


def quarantined(clients: Clients, bucket: str, prefix: str) -> dict[str, int]:
    """Distinct quarantined records (by shard and sequence number) per reason code, from the quarantine
    objects; every code is listed, in the contract's order."""
    s3 = clients["s3"]
    reasons: dict[tuple[str, str], str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            for line in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().splitlines():
                entry = json.loads(line)
                reasons[(entry["shard_id"], entry["sequence_number"])] = entry["reason"]
    counts = Counter(reasons.values())
    return {reason: counts.get(reason, 0) for reason in REASONS}


def published_metrics(clients: Clients, namespace: str, start: float, end: float) -> list[dict[str, Any]]:
    cloudwatch = clients["cloudwatch"]
    found = []
    for metric in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]:
        stats = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric["MetricName"],
            Dimensions=metric.get("Dimensions", []),
            StartTime=start - 3600,
            EndTime=end + 3600,
            Period=60,
            Statistics=["Sum"],
        )
        total = sum(p["Sum"] for p in stats["Datapoints"])
        dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
        found.append({"metric": metric["MetricName"], "dimensions": dims, "sum": total})
    return sorted(found, key=lambda m: (m["metric"], sorted(m["dimensions"].items())))


def summarize(
    clients: Clients,
    targets: Targets,
    records_in: int,
    alerts: Sequence[dict[str, Any]] | None,
    window_seconds: int,
) -> dict[str, Any]:
    """What the stores hold after a run, with the ``alerts`` the topic delivered (``None``: not read);
    nothing that depends on how it ran."""
    windows = [  # the shards' partials marks are no windows
        item
        for item in scan(clients, targets.sensor_windows_table, ("sensor_id", "window_start", "segments", "duplicates"))
        if "segments" in item
    ]
    by_segment: dict[str, list[Sums]] = defaultdict(list)
    by_window: dict[tuple[str, str], list[Sums]] = defaultdict(list)
    for item in windows:
        for segment, sums in decode_sums(item["segments"]).items():
            by_segment[segment].append(sums)
            by_window[(segment, item["window_start"])].append(sums)
    accepted = sum(s.readings for found in by_segment.values() for s in found)
    duplicates = sum(int(item.get("duplicates", 0)) for item in windows)
    congested = sorted(
        f"{segment}:{start}"
        for (segment, start), found in by_window.items()
        if total(found).aggregate().congestion_level in ALERT_LEVELS
    )
    return {
        "environment": targets.environment,
        "window_seconds": window_seconds,
        "records_in": records_in,
        "accepted": accepted,
        "duplicates": duplicates,
        "quarantined": quarantined(clients, targets.quarantine_bucket, "rejected/"),
        "segments": {segment: total(found).aggregate().as_dict() for segment, found in sorted(by_segment.items())},
        "sensors": len({item["sensor_id"] for item in windows}),
        "congested_windows": congested,
        "silent_sensors": silent_sensors(clients, targets.sensor_outages_table),
        "alerts": sorted(alerts or [], key=lambda a: a["alert_id"]),
        "alerts_delivered": None if alerts is None else len(alerts),
    }


CONGESTION_FIELDS = ("alert_id", "segment_id", "window_start")
ALERT_FIELDS = {
    "sensor_silent": ("alert_id", "alert_type", "sensor_id", "last_reading_at"),
    "sensor_recovered": ("alert_id", "alert_type", "sensor_id", "recovered_by"),
}
"""What the summary keeps of each kind of message (congestion alerts carry no ``alert_type``)."""


def silent_sensors(clients: Clients, table: str) -> list[str]:
    """Sensors with an open outage (silent at the last check), sorted."""
    dynamodb, start = clients["dynamodb"], None
    found: set[str] = set()
    while True:
        page = dynamodb.query(
            TableName=table,
            IndexName=OPEN_OUTAGES.name,
            KeyConditionExpression="outage_open = :open",
            ExpressionAttributeValues={":open": {"S": "open"}},
            **({"ExclusiveStartKey": start} if start else {}),
        )
        found.update(item["sensor_id"]["S"] for item in page.get("Items", []))
        if not (start := page.get("LastEvaluatedKey")):
            return sorted(found)


def read_alerts(clients: Clients, queue: str) -> list[dict[str, Any]]:
    """Every alert message the topic delivered to the run's queue (each delivery once, copies included)."""
    sqs, found = clients["sqs"], []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
        "Messages", []
    ):
        for message in messages:
            body = json.loads(json.loads(message["Body"])["Message"])
            found.append({key: body[key] for key in ALERT_FIELDS.get(body.get("alert_type"), CONGESTION_FIELDS)})
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
    return sorted(found, key=lambda a: a["alert_id"])


class AlertInbox:
    """The alerts a run's queue received, collected after every alert invocation: the queue stays a
    few dozen messages deep, where moto's SQS looks at every queued message on each send and receive."""

    def __init__(self, clients: Clients, queue: str) -> None:
        self.clients, self.queue = clients, queue
        self._found: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def collect(self) -> None:
        found = read_alerts(self.clients, self.queue)
        with self._lock:
            self._found.extend(found)

    def alerts(self) -> list[dict[str, Any]]:
        """Every delivery so far (each once, copies included), in ``alert_id`` order."""
        self.collect()
        with self._lock:
            return sorted(self._found, key=lambda a: a["alert_id"])


def subscribe_alert_queue(clients: Clients, targets: Targets) -> str:
    """An SQS queue subscribed to the alert topic, so alerts can be read back."""
    sqs = clients["sqs"]
    url = sqs.create_queue(QueueName=f"tap-simulate-alerts-{targets.environment}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients["sns"].subscribe(TopicArn=targets.alert_topic_arn, Protocol="sqs", Endpoint=arn)
    return url


@dataclass
class RunOptions:
    messages: list[Message]
    now_ns: int
    """The arrival time of every record."""
    batch_size: int
    config: EnvironmentConfig
    parallel: bool = False
    iam: iam_check.Check | None = None
    """Check every AWS call of the functions against their roles (``--check-iam``)."""
    check_every_seconds: int | None = None
    """Run the silence check every this many seconds of reading time (``rounds``); else once, at ``now_ns``."""
    after_round: Callable[[], None] | None = None
    """Called when a round is done (``spaced_collections``' ``settle`` in ``run_in_moto``)."""


@contextmanager
def atomic_requests() -> Iterator[None]:
    """moto handles each request under one lock while the block runs: DynamoDB applies a request (a
    conditional write above all) atomically, and moto's in-process backend does not on its own when
    several threads call it."""
    from moto.core.botocore_stubber import BotocoreStubber  # noqa: PLC0415

    original = BotocoreStubber.process_request
    lock = threading.Lock()

    def process_request(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]


def deliver_all(
    lanes: Mapping[str, Sequence[dict[str, Any]]],
    parallel: bool,
    deliver_lane: Callable[[str, Sequence[dict[str, Any]]], Delivery],
) -> Delivery:
    """Deliver each lane (a stream shard) on its own thread when ``parallel``."""
    if parallel and len(lanes) > 1:
        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            results = list(pool.map(lambda lane: deliver_lane(*lane), lanes.items()))
    else:
        results = [deliver_lane(name, records) for name, records in lanes.items()]
    done = Delivery()
    for stats in results:
        done.invocations += stats.invocations
        done.retries += stats.retries
        done.gave_up += stats.gave_up
    return done


@contextmanager
def counting_conflicts(clients: Clients) -> Iterator[list[int]]:
    """Conditional writes that lost to another writer while the block runs (a sign of real concurrency)."""
    count = [0]

    def seen(parsed: Any, **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            count[0] += 1

    events = clients["dynamodb"].meta.events
    events.register("after-call.dynamodb.PutItem", seen)
    try:
        yield count
    finally:
        events.unregister("after-call.dynamodb.PutItem", seen)


FUNCTION_SERVICES = ("dynamodb", "s3", "sns", "cloudwatch", "kinesis")
"""The services the functions call (the local run's own reads of streams and queues are not counted)."""


@contextmanager
def counting_requests(clients: Clients, services: Sequence[str]) -> Iterator[Counter[str]]:
    """Requests sent to ``services`` while the block runs, by ``service:Operation`` (thread-safe)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def seen(model: Any, **_: Any) -> None:
        with lock:
            counts[f"{model.service_model.service_name}:{model.name}"] += 1

    for service in services:
        clients[service].meta.events.register("before-call", seen)
    try:
        yield counts
    finally:
        for service in services:
            clients[service].meta.events.unregister("before-call", seen)


def rounds(messages: Sequence[Message], now_ns: int, every_seconds: int | None) -> list[tuple[int, list[Message]]]:
    """The messages in stream order, cut into rounds that each end at a time the silence check runs.

    A round ends at the first multiple of ``every_seconds`` at or after the newest reading timestamp seen
    so far (a record without a valid one stays in the round it comes in), never after ``now_ns``; the
    last round ends at ``now_ns``. Without ``every_seconds``, one round at ``now_ns``."""
    if not every_seconds or not messages:
        return [(now_ns, list(messages))]
    step = every_seconds * NS_PER_SECOND
    cut: list[tuple[int, list[Message]]] = []
    seen = None
    for message in messages:
        stamp = _timestamp_ns(message.payload)
        if stamp is not None and stamp <= now_ns:
            seen = stamp if seen is None else max(seen, stamp)
        end = now_ns if seen is None else min(now_ns, -(-seen // step) * step)
        if cut and cut[-1][0] >= end:
            cut[-1][1].append(message)
        else:
            cut.append((end, [message]))
    if cut[-1][0] < now_ns:
        cut.append((now_ns, []))
    return cut


def _timestamp_ns(payload: bytes) -> int | None:
    try:
        value = json.loads(payload).get("timestamp")
        return parse_instant(value) if isinstance(value, str) else None
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


def run(clients: Clients, targets: Targets, options: RunOptions, out: Any = sys.stderr) -> dict[str, Any]:
    """Put the messages through the whole path and return the summary read back from the stores.

    In rounds (``options.check_every_seconds``): each round's records are put, processed, folded by the
    folder, then the silence check runs at the round's end time, as the schedule would while the data
    flows; the last check runs at ``--now``."""
    started = time.time()
    inbox = AlertInbox(clients, subscribe_alert_queue(clients, targets))
    config = options.config
    clock = [options.now_ns]
    """Processing time of the functions: the end of the round being run (arrival stays ``--now``)."""
    # The handlers' settings come from the environment the stack gives them, built here without touching
    # this process's environment (which would leak ENVIRONMENT_SUFFIX and the rest into later commands).
    names = targets.runtime_names()
    processor_settings = ProcessorSettings.from_env(processor_environment(names, config))
    processor = Processor(processor_settings, clients=clients, backoff=Backoff(), clock=lambda: clock[0])
    folder = Folder(settings_from_env(folder_environment(names, config)), clients=clients)
    check = SilenceCheck(
        SilenceSettings.from_env(silence_environment(names, config)), clients=clients, clock=lambda: clock[0]
    )
    if options.iam:  # every AWS call each function makes is recorded, for the check at the end
        options.iam.watch("processor", processor)
        options.iam.watch("folder", folder)
        options.iam.watch("silence", check)
    processor_handler.install(processor)
    folder_handler.install(folder)
    silence_handler.install(check)
    mode = "in parallel" if options.parallel else "serially"
    print(f"simulating {len(options.messages):,} records on environment {targets.environment} ({mode})", file=out)

    stream_arn = clients["kinesis"].describe_stream_summary(StreamName=targets.stream_name)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    mapping = MappingSettings(options.batch_size, config.max_retry_attempts)
    progress = Progress("processor", len(options.messages), out)

    def process_shard(shard: str, records: Sequence[dict[str, Any]]) -> Delivery:
        def give_up(batch: Sequence[dict[str, Any]]) -> None:
            clients["sqs"].send_message(
                QueueUrl=targets.processor_dlq_url, MessageBody=json.dumps(failure_record(shard, batch, stream_arn))
            )

        return deliver(
            records,
            sequence_of=lambda r: r["SequenceNumber"],
            make_event=lambda batch: kinesis_event(shard, batch, targets.region, stream_arn, options.now_ns),
            invoke=lambda event: processor_handler.handler(event, None),
            settings=mapping,
            on_give_up=give_up,
            progress=progress,
        )

    partials_arn = clients["kinesis"].describe_stream_summary(StreamName=targets.partials_stream)[
        "StreamDescriptionSummary"
    ]["StreamARN"]

    def folder_invocation(event: dict[str, Any]) -> Any:
        try:
            return folder_handler.handler(event, None)
        finally:
            inbox.collect()

    def fold_shard(shard: str, records: Sequence[dict[str, Any]]) -> Delivery:
        def give_up(batch: Sequence[dict[str, Any]]) -> None:
            body = json.dumps(failure_record(shard, batch, partials_arn))
            clients["sqs"].send_message(QueueUrl=targets.folder_dlq_url, MessageBody=body)

        return deliver(
            records,
            sequence_of=lambda r: r["SequenceNumber"],
            make_event=lambda batch: kinesis_event(shard, batch, targets.region, partials_arn, options.now_ns),
            invoke=folder_invocation,
            settings=MappingSettings(FOLDER_BATCH_SIZE, config.max_retry_attempts),
            on_give_up=give_up,
        )

    requests: dict[str, Counter[str]] = {"processor": Counter(), "folder": Counter(), "silence": Counter()}
    seconds: defaultdict[str, float] = defaultdict(float)
    processed, folded, checks = Delivery(), Delivery(), Delivery()
    read_kinesis: dict[str, str] = {}
    read_partials: dict[str, str] = {}
    partials_seen = conflicts_seen = 0
    per_check: list[int] = []
    """Requests of each scheduled run of the silence check (its retries included)."""
    shard_count = partial_shards = 0
    for round_end, messages in rounds(options.messages, options.now_ns, options.check_every_seconds):
        clock[0] = round_end
        t0 = time.monotonic()
        put_messages(clients, targets.stream_name, messages)
        shards = kinesis_records(clients, targets.stream_name, read_kinesis)
        for shard, records in shards.items():
            if records:
                read_kinesis[shard] = records[-1]["SequenceNumber"]
        shard_count = len(shards)
        seconds["put"] += time.monotonic() - t0

        t0 = time.monotonic()
        with counting_requests(clients, FUNCTION_SERVICES) as counted:
            _add(processed, deliver_all(shards, options.parallel, process_shard))
        requests["processor"].update(counted)
        seconds["processor"] += time.monotonic() - t0

        t0 = time.monotonic()
        lanes = kinesis_records(clients, targets.partials_stream, read_partials)
        for shard, records in lanes.items():
            if records:
                read_partials[shard] = records[-1]["SequenceNumber"]
        partials_seen += sum(len(records) for records in lanes.values())
        partial_shards = len(lanes)
        with counting_conflicts(clients) as conflicts, counting_requests(clients, FUNCTION_SERVICES) as counted:
            _add(folded, deliver_all(lanes, options.parallel, fold_shard))
        requests["folder"].update(counted)
        conflicts_seen += conflicts[0]
        seconds["folder"] += time.monotonic() - t0

        t0 = time.monotonic()
        with counting_requests(clients, FUNCTION_SERVICES) as counted:
            _add(checks, run_check(inbox))
        requests["silence"].update(counted)
        per_check.append(sum(counted.values()))
        seconds["silence"] += time.monotonic() - t0
        if options.after_round is not None:
            options.after_round()

    summary = summarize(clients, targets, len(options.messages), inbox.alerts(), config.aggregation_window_seconds)
    summary["run"] = {
        "parallel": options.parallel,
        "shards": shard_count,
        "folder_lanes": partial_shards,
        "put_seconds": round(seconds["put"], 3),
        "processor_seconds": round(seconds["processor"], 3),
        "folder_seconds": round(seconds["folder"], 3),
        "silence_seconds": round(seconds["silence"], 3),
        "processor_invocations": processed.invocations,
        "processor_retries": processed.retries,
        "records_to_dlq": processed.gave_up,
        "partials": partials_seen,
        "folder_invocations": folded.invocations,
        "folder_retries": folded.retries,
        "folder_write_conflicts": conflicts_seen,
        "folder_records_to_dlq": folded.gave_up,
        "silence_checks": checks.invocations,
        "silence_check_retries": checks.retries,
        "silence_requests_per_check": {
            "max": max(per_check, default=0),
            "mean": round(sum(per_check) / max(len(per_check), 1), 1),
        },
        "requests": {phase: dict(sorted(counted.items())) for phase, counted in requests.items()},
        "readings_per_second": round(len(options.messages) / max(seconds["processor"], 1e-9)),
        "metrics": published_metrics(clients, targets.metric_namespace, started, time.time()),
        "total_seconds": round(time.time() - started, 3),
    }
    if options.iam:
        summary["iam"] = options.iam.evaluate(clients, targets).as_dict()
    return summary


SILENCE_RETRIES = 2
"""Retries of a failed check run (Lambda's asynchronous invocation retries, as the stack sets them)."""


def run_check(inbox: AlertInbox) -> Delivery:
    """One scheduled run of the silence check, retried as Lambda retries an asynchronous invocation."""
    stats = Delivery()
    for attempt in range(SILENCE_RETRIES + 1):
        stats.invocations += 1
        try:
            silence_handler.handler({}, None)
            return stats
        except Exception as error:
            print(f"  silence check error ({type(error).__name__}: {error})", file=sys.stderr)
            stats.retries += attempt < SILENCE_RETRIES
        finally:
            inbox.collect()
    stats.gave_up += 1
    return stats


def _add(total: Delivery, more: Delivery) -> None:
    total.invocations += more.invocations
    total.retries += more.retries
    total.gave_up += more.gave_up


def report(summary: Mapping[str, Any], out: Any = sys.stdout) -> None:
    q = summary["quarantined"]
    print(
        f"records in {summary['records_in']:,}: accepted {summary['accepted']:,}, duplicates "
        f"{summary['duplicates']:,}, quarantined {sum(q.values()):,} "
        f"({', '.join(f'{k} {v}' for k, v in q.items())})",
        file=out,
    )
    levels = Counter(s["congestion_level"] for s in summary["segments"].values())
    print(f"segments {len(summary['segments'])}: " + ", ".join(f"{k} {v}" for k, v in sorted(levels.items())), file=out)
    kinds = Counter(a.get("alert_type", "congestion") for a in summary["alerts"])
    print(
        f"alerts sent {len(summary['alerts'])} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
        f"congested windows {len(summary['congested_windows'])}; silent sensors {len(summary['silent_sensors'])}",
        file=out,
    )
    run_info = summary.get("run", {})
    if run_info:
        print(
            f"processor: {run_info['readings_per_second']:,} records/s over {run_info['processor_invocations']} "
            f"invocations; folder: {run_info['partials']:,} partials in "
            f"{run_info['folder_invocations']} invocations",
            file=out,
        )
        seconds = run_info["total_seconds"]
        print(
            f"end to end: {summary['records_in']:,} records in {seconds:.1f} s "
            f"({summary['records_in'] / max(seconds, 1e-9):,.0f} readings/s)",
            file=out,
        )
    if "iam" in summary:
        iam = summary["iam"]
        print(iam_check.summary_line(iam), *(f"  {line}" for line in iam["problems"]), sep="\n", file=out)


def balanced(summary: Mapping[str, Any]) -> bool:
    return bool(
        summary["records_in"] == summary["accepted"] + summary["duplicates"] + sum(summary["quarantined"].values())
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.local.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input",
        type=Path,
        help="NDJSON input: one payload per line, sent as is on the topic of its own sensor_id (or of thing "
        "'unknown'); see --input-format",
    )
    parser.add_argument(
        "--input-format",
        choices=("payload", "envelope"),
        default="payload",
        help='envelope: each line is {"topic": "$aws/rules/<rule>/tap/<env>/sensors/<thing>/readings", "payload": '
        '"<raw payload>"} as a sensor publishes it (Basic Ingest), or the topic without the $aws/rules/<rule>/ '
        "prefix as the rule sees it; the thing level becomes the partition key, as the topic rule sets it",
    )
    parser.add_argument("--sensors", type=int, default=40, help="sensors to generate (without --input)")
    parser.add_argument("--minutes", type=int, default=30, help="minutes of traffic to generate")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--stop", type=int, default=0, help="generated sensors that stop halfway through (the last N)")
    parser.add_argument(
        "--resume", type=int, default=0, help="of the --stop sensors, how many report again three quarters through"
    )
    parser.add_argument(
        "--check-every",
        type=int,
        help="run the silence check every SECONDS of reading time, as its schedule would while the data flows "
        "(default: once, at --now)",
    )
    parser.add_argument("--now", help="arrival time of every record, RFC 3339 (default: now)")
    parser.add_argument("--shards", type=int, help="create the stream with this many shards (default: from config)")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="one concurrent worker per Kinesis shard: the readings stream's (processor), then the partials "
        "stream's (folder)",
    )
    parser.add_argument("--batch-size", type=int, help="records per processor invocation (default: from config)")
    parser.add_argument("--env", default="dev", help="environment whose profile and names to use")
    parser.add_argument("--summary", type=Path, help="write the summary JSON here")
    parser.add_argument("--outputs", type=Path, help="terraform output -json of a deployed stack (with --endpoint-url)")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON log lines")
    parser.add_argument("--endpoint-url", help="use this AWS endpoint (an emulator) instead of in-process moto")
    parser.add_argument(
        "--check-iam",
        action="store_true",
        help="check every AWS call of each function against its role policy (tools/local/iam_check.py): the deployed "
        "roles with --endpoint-url, else the synthesized stack (--stack-json); exit 1 if one is denied",
    )
    parser.add_argument(
        "--stack-json", type=Path, help="synthesized stack for --check-iam (default: cdktf.out/stacks/tap-<env>/...)"
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.verbose:
        logging.getLogger("tap").setLevel(logging.WARNING)  # the handlers' per-batch log lines
    config = PROFILES.get(args.env) or PROFILES["dev"].with_name(args.env)
    now_ns = parse_instant(args.now) if args.now else time.time_ns()
    for name in ("shards", "batch_size"):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= 10_000:
            print(f"--{name.replace('_', '-')} must be between 1 and 10000", file=sys.stderr)
            return 2
    if args.input:
        try:
            messages = read_input(args.input, args.input_format, args.env)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
    else:
        messages = generate(
            args.sensors,
            args.minutes,
            start_ns=first_minute(now_ns, args.minutes),
            now_ns=now_ns,
            seed=args.seed,
            stop=args.stop,
            resume=min(args.resume, args.stop),
        )
    options = RunOptions(messages, now_ns, args.batch_size or config.batch_size, config, args.parallel)
    options.check_every_seconds = args.check_every
    os.environ.setdefault("AWS_DEFAULT_REGION", config.region)
    if args.endpoint_url and not args.outputs:
        print("--endpoint-url needs --outputs (terraform output -json of the stack)", file=sys.stderr)
        return 2
    outputs = json.loads(args.outputs.read_text()) if args.outputs else {}
    if args.check_iam:
        options.iam = iam_check.for_run(args.env, config.region, args.endpoint_url, outputs, args.stack_json)
    if args.endpoint_url:
        clients = endpoint_clients(args.endpoint_url, config.region)
        targets = Targets.from_outputs(args.env, config.region, outputs)
        summary = run(clients, targets, options)
    else:
        summary = run_in_moto(args.env, options, args.shards)
    report(summary)
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if not balanced(summary):
        print("records_in != accepted + duplicates + quarantined: records were lost", file=sys.stderr)
        return 1
    if "iam" in summary and not summary["iam"]["passed"]:
        print("\n".join(["IAM check failed:", *summary["iam"]["problems"]]), file=sys.stderr)
        return 1
    return 0


LANE_SWITCH_SECONDS = 0.05
"""How long a thread of a parallel run may hold CPython's GIL before it must hand it over
(``sys.setswitchinterval``; CPython's default is 5 ms). The lanes stand for Lambda sandboxes, each a process
of its own; on threads of one interpreter, 16 lanes and the silence check's pollers handing the GIL over
every 5 ms spent a sixth of a 100,000-reading run in the kernel (futex waits) and ~20 % of its time in all.
Lanes still interleave at every AWS request (``atomic_requests`` takes a lock) and every 50 ms."""


@contextmanager
def lane_switches(parallel: bool) -> Iterator[None]:
    """``LANE_SWITCH_SECONDS`` while the block runs, when ``parallel``; then the interval as before."""
    saved = sys.getswitchinterval()
    if parallel:
        sys.setswitchinterval(LANE_SWITCH_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


GC_THRESHOLD = (100_000, 20, 10)
"""The cyclic garbage collector's thresholds in a local run (CPython's default: 700, 10, 10). moto keeps
every item as Python objects, so the heap grows to millions of them, and collecting every 700 allocations
took a fifth of a 200,000-reading run (76.6 s of 360.7, `gc.callbacks`)."""


@contextmanager
def spaced_collections() -> Iterator[Callable[[], None]]:
    """``GC_THRESHOLD`` while the block runs, what exists at its start frozen out of collections (the
    generated messages); then the thresholds as before, nothing frozen.

    Yields ``settle``, which collects the young generations (the round's own garbage cycles) and freezes
    what is left: after each round of a run, what survived it (moto's stored items, above all) is left out
    of the full collections that follow. In the million-reading run (`gc.callbacks`) they took 118.7 s in
    16 collections; settled after each minute, 1.1 s in 9, with the same peak memory."""

    def settle() -> None:
        gc.collect(1)
        gc.freeze()

    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield settle
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def run_in_moto(environment: str, options: RunOptions, shards: int | None = None) -> dict[str, Any]:
    from tools.local import moto_speedups  # noqa: PLC0415

    moto_speedups.install()
    with (
        in_moto(environment, options.config, shards) as (clients, targets),
        atomic_requests(),
        lane_switches(options.parallel),
        spaced_collections() as settle,
    ):
        return run(clients, targets, replace(options, after_round=settle))


MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_credentials() -> Iterator[None]:
    """Dummy AWS credentials in this process's environment while the block runs, then as before."""
    saved = {key: os.environ.get(key) for key in MOTO_CREDENTIALS}
    os.environ.update(MOTO_CREDENTIALS)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def in_moto(
    environment: str, config: EnvironmentConfig, shards: int | None = None
) -> Iterator[tuple[Clients, Targets]]:
    """An environment's data-path resources in moto (in process), with dummy credentials meanwhile."""
    from moto import mock_aws  # noqa: PLC0415 - a development dependency, only for local runs

    with moto_credentials(), mock_aws():
        clients = Clients(dynamodbstreams=moto_streams_client(config.region))
        yield clients, create_targets(environment, config, clients, shards)


def moto_streams_client(region: str) -> Any:
    """DynamoDB Streams client on the classic endpoint: botocore now prefers account-based endpoints
    (``<account>.streams-ddb.<region>``), which moto does not route."""
    import boto3  # noqa: PLC0415

    return boto3.client(
        "dynamodbstreams", region_name=region, endpoint_url=f"https://streams.dynamodb.{region}.amazonaws.com"
    )


def endpoint_clients(endpoint_url: str | None, region: str) -> Clients:
    """Clients of the data path's services in ``region``, all sent to ``endpoint_url`` when given."""
    import boto3  # noqa: PLC0415

    services = ("dynamodb", "dynamodbstreams", "kinesis", "s3", "sns", "sqs", "cloudwatch", "lambda", "scheduler")
    return Clients(**{s: boto3.client(s, endpoint_url=endpoint_url, region_name=region) for s in services})


if __name__ == "__main__":
    sys.exit(main())
