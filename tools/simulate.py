"""Run the whole data path on this machine: the real handlers against moto, no AWS account.

    python -m tools.simulate [--input readings.ndjson] [--sensors 40 --minutes 30] [--now RFC3339]
                             [--batch-size N] [--summary summary.json] [--env dev]

Creates the stream, tables, buckets, queue and topic as the stack defines them (``stacks.layout`` and
``stacks.naming``, the same definitions the constructs use), puts the readings on the emulated Kinesis
stream, reads them back with GetRecords and hands them to the processor handler exactly as the event
source mapping would (same event shape, batches of ``--batch-size``, retrying from the first failed
record, bisecting on errors, giving up to the DLQ after the configured retries), then feeds the segment
windows table's stream to the alert handler the same way. The summary is read back from the emulated
stores. ``--endpoint-url`` runs against an already deployed environment (see ``--outputs``) instead.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdas.alert import handler as alert_handler
from lambdas.alert.service import Alerter
from lambdas.alert.service import Settings as AlertSettings
from lambdas.common.aws import Backoff, Clients, deserialize
from lambdas.common.contract import REASONS, Sums, format_instant, parse_instant, total
from lambdas.processor import handler as processor_handler
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from stacks.config import PROFILES, EnvironmentConfig, StreamMode
from stacks.layout import (
    ALERT_BATCH_SIZE,
    SEGMENT_AGGREGATES,
    SENSOR_WINDOWS,
    TABLES,
    TTL_ATTRIBUTE,
    RuntimeNames,
    alert_environment,
    processor_environment,
)
from stacks.naming import Kind, Namer

ACCOUNT_ID = "123456789012"
PUT_RECORDS_LIMIT = 500


@dataclass(frozen=True)
class Targets:
    """Physical names of one environment's data path."""

    environment: str
    region: str
    stream_name: str
    sensor_windows_table: str
    segment_aggregates_table: str
    quarantine_bucket: str
    alert_topic_arn: str
    processor_dlq_url: str
    metric_namespace: str

    def runtime_names(self) -> RuntimeNames:
        return RuntimeNames(
            environment_suffix=self.environment,
            metric_namespace=self.metric_namespace,
            sensor_windows_table=self.sensor_windows_table,
            segment_aggregates_table=self.segment_aggregates_table,
            quarantine_bucket=self.quarantine_bucket,
            alert_topic_arn=self.alert_topic_arn,
        )

    @classmethod
    def from_outputs(cls, environment: str, region: str, outputs: Mapping[str, Any]) -> Targets:
        """From ``terraform output -json`` of a deployed environment stack."""
        value = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in outputs.items()}
        return cls(
            environment=environment,
            region=region,
            stream_name=value["kinesis_stream_name"],
            sensor_windows_table=value["sensor_windows_table_name"],
            segment_aggregates_table=value["segment_aggregates_table_name"],
            quarantine_bucket=value["quarantine_bucket_name"],
            alert_topic_arn=value["alert_topic_arn"],
            processor_dlq_url=value["processor_dlq_url"],
            metric_namespace=value["metric_namespace"],
        )


def create_targets(environment: str, config: EnvironmentConfig, clients: Clients) -> Targets:
    """Create the environment's data path on the emulator from the stack's own definitions."""
    namer = Namer(environment)
    region = config.region
    for spec in TABLES:
        attributes = [{"AttributeName": spec.hash_key, "AttributeType": "S"}]
        schema = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
        if spec.range_key:
            attributes.append({"AttributeName": spec.range_key, "AttributeType": "S"})
            schema.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
        extra: dict[str, Any] = {}
        if spec.stream_view_type:
            extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream_view_type}
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
    quarantine = namer.bucket("quarantine", ACCOUNT_ID)
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    clients["s3"].create_bucket(Bucket=quarantine, **location)
    stream = namer.name(Kind.KINESIS_STREAM, "readings")
    if config.stream_mode is StreamMode.PROVISIONED:
        clients["kinesis"].create_stream(StreamName=stream, ShardCount=config.shard_count)
    else:
        clients["kinesis"].create_stream(StreamName=stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    topic = clients["sns"].create_topic(Name=namer.name(Kind.SNS_TOPIC, "alerts"))["TopicArn"]
    dlq = clients["sqs"].create_queue(QueueName=namer.name(Kind.SQS_QUEUE, "processor-dlq"))["QueueUrl"]
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
    )


# ---------------------------------------------------------------------------------------------- input


def generate(sensors: int, minutes: int, *, start_ns: int, now_ns: int, seed: int = 7) -> list[bytes]:
    """Realistic readings: sensors in groups of four per segment, one reading a minute each.

    Some segments congest for a while (slow and occupied), a few readings are republished (duplicates)
    and a few records are bad (not JSON, breaking the schema, or from the future).
    """
    rng = random.Random(seed)
    segments = max(1, sensors // 4)
    congested = {f"seg-{i:03d}" for i in range(segments) if i % 5 == 0}
    payloads: list[bytes] = []
    for minute in range(minutes):
        instant = start_ns + minute * 60 * 1_000_000_000
        for sensor in range(sensors):
            segment = f"seg-{sensor % segments:03d}"
            limit = 80 if sensor % segments % 2 else 50
            jam = segment in congested and (minute // 10) % 2 == 1
            vehicles = rng.randint(0, 3) if minute % 17 == 0 and sensor % 7 == 0 else rng.randint(5, 40)
            speed = rng.uniform(5, 0.4 * limit) if jam else rng.uniform(0.7 * limit, 1.1 * limit)
            occupancy = rng.uniform(55, 95) if jam else rng.uniform(2, 30)
            reading = {
                "sensor_id": f"sensor-{sensor:04d}",
                "segment_id": segment,
                "timestamp": format_instant(instant)[:19] + "Z",
                "vehicle_count": vehicles,
                "average_speed_kmh": round(speed, 1),
                "occupancy_percent": round(occupancy, 1),
                "speed_limit_kmh": limit,
                "firmware": "2.4.1",
            }
            payload = json.dumps(reading).encode()
            payloads.append(payload)
            roll = rng.random()
            if roll < 0.01:
                payloads.append(payload)  # republished by the sensor
            elif roll < 0.013:
                payloads.append(b'{"sensor_id": "sensor-' + str(sensor).encode() + b'", "broken":')
            elif roll < 0.016:
                payloads.append(json.dumps({**reading, "vehicle_count": -1}).encode())
            elif roll < 0.018:
                ahead = format_instant(now_ns + 3_600 * 1_000_000_000)[:19] + "Z"
                payloads.append(json.dumps({**reading, "timestamp": ahead}).encode())
    return payloads


def read_input(path: Path) -> list[bytes]:
    """NDJSON: one payload per line, sent as is (blank lines included, bad lines included)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.rstrip(b"\r") for line in lines]


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


def put_readings(
    clients: Clients, stream: str, payloads: Sequence[bytes], partition_key: Callable[[bytes], str]
) -> None:
    kinesis = clients["kinesis"]
    for start in range(0, len(payloads), PUT_RECORDS_LIMIT):
        chunk = payloads[start : start + PUT_RECORDS_LIMIT]
        entries = [{"Data": p, "PartitionKey": partition_key(p)} for p in chunk]
        while entries:
            response = kinesis.put_records(StreamName=stream, Records=entries)
            entries = [e for e, r in zip(entries, response["Records"], strict=True) if "ErrorCode" in r]


def sensor_partition_key(payload: bytes) -> str:
    """As the topic rule does: the sensor id from the topic (here from the payload, else a fixed key)."""
    try:
        value = json.loads(payload).get("sensor_id")
    except (ValueError, AttributeError):
        value = None
    return value if isinstance(value, str) and value else "unknown-sensor"


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


def kinesis_records(clients: Clients, stream: str) -> dict[str, list[dict[str, Any]]]:
    """Every record of every shard, in order, read back with GetRecords."""
    kinesis = clients["kinesis"]
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    found: dict[str, list[dict[str, Any]]] = {}
    for shard in shards:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        found[shard] = drain(lambda it: kinesis.get_records(ShardIterator=it, Limit=10_000), iterator)
    return found


def kinesis_event(shard: str, records: Sequence[dict[str, Any]], region: str, stream_arn: str) -> dict[str, Any]:
    """The event Lambda hands a Kinesis-triggered function."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode("ascii"),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
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
    arrival_seconds: float = 1780315140.5,
    shard: str = "shardId-000000000000",
    region: str = "us-east-1",
    stream_arn: str = "arn:aws:kinesis:us-east-1:123456789012:stream/tap-readings-dev",
) -> dict[str, Any]:
    """The event Lambda would hand the processor for ``payloads`` put on one shard, with sequence
    numbers ``first_sequence``, ``first_sequence + 1``, ... (56 digits, as Kinesis writes them)."""
    arrival = datetime.fromtimestamp(arrival_seconds, UTC)
    records = [
        {
            "SequenceNumber": f"{first_sequence + i:056d}",
            "PartitionKey": partition_keys[i] if partition_keys else "sensor",
            "Data": payload,
            "ApproximateArrivalTimestamp": arrival,
        }
        for i, payload in enumerate(payloads)
    ]
    return kinesis_event(shard, records, region, stream_arn)


def failure_record(shard: str, batch: Sequence[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """What a Kinesis event source mapping sends its on-failure destination: metadata, no records."""
    first, last = batch[0]["ApproximateArrivalTimestamp"], batch[-1]["ApproximateArrivalTimestamp"]
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None},
        "version": "1.0",
        "timestamp": format_instant(time.time_ns()),
        "KinesisBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": batch[0]["SequenceNumber"],
            "endSequenceNumber": batch[-1]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": first.isoformat(),
            "approximateArrivalOfLastRecord": last.isoformat(),
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }


@dataclass
class Delivery:
    invocations: int = 0
    retries: int = 0
    gave_up: int = 0


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
        batch = records[position : position + size]
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


def dynamodb_stream_records(clients: Clients, table: str) -> list[dict[str, Any]]:
    streams = clients["dynamodbstreams"]
    arn = clients["dynamodb"].describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records.extend(drain(lambda it: streams.get_records(ShardIterator=it, Limit=1000), iterator))
    return records


# ---------------------------------------------------------------------------------------- read back


def scan(clients: Clients, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in clients["dynamodb"].get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(deserialize(i) for i in page["Items"])
    return items


def sensor_state(clients: Clients, table: str, sensor_id: str) -> dict[str, Any] | None:
    """A sensor's current state: the newest ``latest`` reading among its items of its newest window.

    The newest item (sort keys ``<window start>#<segment>`` sort by window) names that window; a sensor
    moved to another segment within it has one item per segment there, so those are all read."""
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
        KeyConditionExpression="sensor_id = :sensor AND begins_with(window_segment, :window)",
        ExpressionAttributeValues={":sensor": {"S": sensor_id}, ":window": {"S": f"{window}#"}},
        ConsistentRead=True,
    )
    items = [deserialize(item) for page in pages for item in page["Items"]]
    item = max(items, key=lambda i: i["latest"]["timestamp"])
    return {"sensor_id": sensor_id, "segment_id": item["segment_id"], **item["latest"]}


def quarantined(clients: Clients, bucket: str, prefix: str) -> dict[str, int]:
    """Distinct quarantined records per reason code, from the quarantine objects."""
    s3 = clients["s3"]
    reasons: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            for line in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().splitlines():
                entry = json.loads(line)
                reasons[entry["sequence_number"]] = entry["reason"]
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
    clients: Clients, targets: Targets, records_in: int, alert_queue: str | None, started: float
) -> dict[str, Any]:
    windows = scan(clients, targets.sensor_windows_table)
    by_segment: dict[str, list[Sums]] = defaultdict(list)
    for item in windows:
        by_segment[item["segment_id"]].append(Sums.from_attributes(item))
    accepted = sum(int(item["reading_count"]) for item in windows)
    duplicates = sum(len(item.get("duplicates", ())) for item in windows)
    alerts = [
        {"segment_id": item["segment_id"], "window_start": item["window_start"], "level": item["alerted_level"]}
        for item in scan(clients, targets.segment_aggregates_table)
        if "alerted_at" in item
    ]
    delivered = None
    if alert_queue:
        attributes = clients["sqs"].get_queue_attributes(
            QueueUrl=alert_queue, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        delivered = int(attributes["ApproximateNumberOfMessages"])
    return {
        "environment": targets.environment,
        "records_in": records_in,
        "accepted": accepted,
        "duplicates": duplicates,
        "quarantined": quarantined(clients, targets.quarantine_bucket, "rejected/"),
        "segments": {segment: total(found).aggregate().as_dict() for segment, found in sorted(by_segment.items())},
        "sensors": len({item["sensor_id"] for item in windows}),
        "alerts": sorted(alerts, key=lambda a: (a["segment_id"], a["window_start"])),
        "alerts_delivered": delivered,
        "metrics": published_metrics(clients, targets.metric_namespace, started, time.time()),
    }


def subscribe_alert_queue(clients: Clients, targets: Targets) -> str:
    """An SQS queue subscribed to the alert topic, so alerts can be read back."""
    sqs = clients["sqs"]
    url = sqs.create_queue(QueueName=f"tap-simulate-alerts-{targets.environment}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients["sns"].subscribe(TopicArn=targets.alert_topic_arn, Protocol="sqs", Endpoint=arn)
    return url


@dataclass
class RunOptions:
    payloads: list[bytes]
    now_ns: int
    batch_size: int
    config: EnvironmentConfig


def run(clients: Clients, targets: Targets, options: RunOptions, out: Any = sys.stderr) -> dict[str, Any]:
    """Put the payloads through the whole path and return the summary read back from the stores."""
    started = time.time()
    alert_queue = subscribe_alert_queue(clients, targets)
    config = options.config
    # The handlers' settings come from the environment the stack gives them, built here without touching
    # this process's environment (which would leak ENVIRONMENT_SUFFIX and the rest into later commands).
    names = targets.runtime_names()
    processor_settings = ProcessorSettings.from_env(processor_environment(names, config))
    processor_handler.install(
        Processor(processor_settings, clients=clients, backoff=Backoff(), clock=lambda: options.now_ns)
    )
    alert_handler.install(Alerter(AlertSettings.from_env(alert_environment(names, config)), clients=clients))
    print(f"simulating {len(options.payloads):,} records on environment {targets.environment}", file=out)

    t0 = time.monotonic()
    put_readings(clients, targets.stream_name, options.payloads, sensor_partition_key)
    shards = kinesis_records(clients, targets.stream_name)
    t_put = time.monotonic() - t0
    stream_arn = clients["kinesis"].describe_stream_summary(StreamName=targets.stream_name)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    mapping = MappingSettings(options.batch_size, config.max_retry_attempts)
    progress = Progress("processor", sum(len(r) for r in shards.values()), out)

    def give_up(shard: str, batch: Sequence[dict[str, Any]]) -> None:
        clients["sqs"].send_message(
            QueueUrl=targets.processor_dlq_url, MessageBody=json.dumps(failure_record(shard, batch, stream_arn))
        )

    t0 = time.monotonic()
    processed = Delivery()
    for shard, records in shards.items():
        stats = deliver(
            records,
            sequence_of=lambda r: r["SequenceNumber"],
            make_event=lambda batch, shard=shard: kinesis_event(shard, batch, targets.region, stream_arn),  # type: ignore[misc]
            invoke=lambda event: processor_handler.handler(event, None),
            settings=mapping,
            on_give_up=lambda batch, shard=shard: give_up(shard, batch),  # type: ignore[misc]
            progress=progress,
        )
        processed.invocations += stats.invocations
        processed.retries += stats.retries
        processed.gave_up += stats.gave_up
    t_process = time.monotonic() - t0

    t0 = time.monotonic()
    changes = dynamodb_stream_records(clients, targets.sensor_windows_table)
    alerted = deliver(
        changes,
        sequence_of=lambda r: r["dynamodb"]["SequenceNumber"],
        make_event=lambda batch: {"Records": list(batch)},
        invoke=lambda event: alert_handler.handler(event, None),
        settings=MappingSettings(ALERT_BATCH_SIZE, config.max_retry_attempts),
        on_give_up=lambda batch: None,
    )
    t_alert = time.monotonic() - t0

    summary = summarize(clients, targets, len(options.payloads), alert_queue, started)
    summary["run"] = {
        "put_seconds": round(t_put, 3),
        "processor_seconds": round(t_process, 3),
        "alert_seconds": round(t_alert, 3),
        "processor_invocations": processed.invocations,
        "processor_retries": processed.retries,
        "records_to_dlq": processed.gave_up,
        "window_changes": len(changes),
        "alert_invocations": alerted.invocations,
        "readings_per_second": round(len(options.payloads) / max(t_process, 1e-9)),
        "total_seconds": round(time.time() - started, 3),
    }
    return summary


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
    print(f"alerts sent {len(summary['alerts'])}; metrics published {len(summary['metrics'])}", file=out)
    run_info = summary.get("run", {})
    if run_info:
        print(
            f"processor: {run_info['readings_per_second']:,} records/s over {run_info['processor_invocations']} "
            f"invocations; alert: {run_info['window_changes']:,} window changes in "
            f"{run_info['alert_invocations']} invocations",
            file=out,
        )
        seconds = run_info["total_seconds"]
        print(
            f"end to end: {summary['records_in']:,} records in {seconds:.1f} s "
            f"({summary['records_in'] / max(seconds, 1e-9):,.0f} readings/s)",
            file=out,
        )


def balanced(summary: Mapping[str, Any]) -> bool:
    return bool(
        summary["records_in"] == summary["accepted"] + summary["duplicates"] + sum(summary["quarantined"].values())
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, help="NDJSON readings, one payload per line (sent as is)")
    parser.add_argument("--sensors", type=int, default=40, help="sensors to generate (without --input)")
    parser.add_argument("--minutes", type=int, default=30, help="minutes of traffic to generate")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--now", help="processing time, RFC 3339 (default: now)")
    parser.add_argument("--batch-size", type=int, help="records per processor invocation (default: from config)")
    parser.add_argument("--env", default="dev", help="environment whose profile and names to use")
    parser.add_argument("--summary", type=Path, help="write the summary JSON here")
    parser.add_argument("--outputs", type=Path, help="terraform output -json of a deployed stack (with --endpoint-url)")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON log lines")
    parser.add_argument("--endpoint-url", help="use this AWS endpoint (an emulator) instead of in-process moto")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.verbose:
        logging.getLogger("tap").setLevel(logging.WARNING)  # the handlers' per-batch log lines
    config = PROFILES.get(args.env) or PROFILES["dev"].with_name(args.env)
    now_ns = parse_instant(args.now) if args.now else time.time_ns()
    if args.input:
        payloads = read_input(args.input)
    else:
        start = now_ns - args.minutes * 60 * 1_000_000_000
        payloads = generate(
            args.sensors, args.minutes, start_ns=start - start % 60_000_000_000, now_ns=now_ns, seed=args.seed
        )
    options = RunOptions(payloads, now_ns, args.batch_size or config.batch_size, config)
    os.environ.setdefault("AWS_DEFAULT_REGION", config.region)
    if args.endpoint_url:
        if not args.outputs:
            print("--endpoint-url needs --outputs (terraform output -json of the stack)", file=sys.stderr)
            return 2
        clients = endpoint_clients(args.endpoint_url, config.region)
        targets = Targets.from_outputs(args.env, config.region, json.loads(args.outputs.read_text()))
        summary = run(clients, targets, options)
    else:
        summary = run_in_moto(args.env, options)
    report(summary)
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if not balanced(summary):
        print("records_in != accepted + duplicates + quarantined: records were lost", file=sys.stderr)
        return 1
    return 0


def run_in_moto(environment: str, options: RunOptions) -> dict[str, Any]:
    from tools import moto_speedups  # noqa: PLC0415

    moto_speedups.install()
    with in_moto(environment, options.config) as (clients, targets):
        return run(clients, targets, options)


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
def in_moto(environment: str, config: EnvironmentConfig) -> Iterator[tuple[Clients, Targets]]:
    """An environment's data-path resources in moto (in process), with dummy credentials meanwhile."""
    from moto import mock_aws  # noqa: PLC0415 - a development dependency, only for local runs

    with moto_credentials(), mock_aws():
        clients = Clients(dynamodbstreams=moto_streams_client(config.region))
        yield clients, create_targets(environment, config, clients)


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

    services = ("dynamodb", "dynamodbstreams", "kinesis", "s3", "sns", "sqs", "cloudwatch", "lambda")
    return Clients(**{s: boto3.client(s, endpoint_url=endpoint_url, region_name=region) for s in services})


if __name__ == "__main__":
    sys.exit(main())
