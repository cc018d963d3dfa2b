"""Smoke test of a deployed environment: what the emulator cannot prove, checked on the real thing.

    python -m tools.smoke --env dev --outputs outputs.json        # after `cdktf deploy tap-dev`
    make smoke ENV=dev                                            # the same, outputs read by terraform

1. publishes a few test readings through the IoT data plane (the topic rule, its role and the stream
   are on the path; ``--via kinesis`` puts them on the stream directly where there is no data plane);
2. waits for them in the sensor windows table and their segment in the aggregates table (the functions,
   their roles, the event source mappings and the KMS key policy are on that path);
3. waits for them in the lake (Firehose, its role, the Parquet conversion and the Glue schema);
4. checks that the silence check's schedule is enabled in the environment's group and invokes the
   function, then waits for the function's first invocation (CloudWatch ``Invocations``); if none comes,
   it fails with what it found (schedule state, messages in the function's dead-letter queue, which is
   where Scheduler puts runs it could not deliver, e.g. when it cannot assume the role);
5. forces one of the environment's alarms to ALARM and waits for the alarm history to record that the
   alert topic accepted the notification (the key policy statement for CloudWatch alarms), then sets
   it back to OK;
6. deletes the items it wrote (lake objects are shared with real readings and stay: the test readings
   carry a ``smoke-`` sensor id and segment, and the curated Athena view keeps them like any reading).

Against the emulator (``--endpoint-url``, as ``make deploy-local`` runs it) no Lambda runtime, Firehose
source, schedule run or alarm action exists: ``--process-locally`` runs the real handlers on the test records
instead, and the lake, schedule-run and alarm-history checks are reported as skipped with their reason, never
as passed.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lambdas.common.aws import Backoff, Clients
from lambdas.common.contract import format_instant
from lambdas.folder.service import Folder, settings_from_env
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from stacks.config import PROFILES, EnvironmentConfig
from stacks.layout import SCHEDULE_GROUP, SILENCE_SCHEDULE, folder_environment, processor_environment
from stacks.naming import Kind, Namer
from tools.local import simulate

ROOT = Path(__file__).resolve().parent.parent
SMOKE_ALARM = "congestion"
"""The alarm forced to ALARM: it notifies the alert topic like every alarm of the environment."""
READINGS = 3
SCHEDULE_WAIT_SECONDS = 300.0
"""How long to wait for the silence check's first scheduled run (it runs every minute)."""


@dataclass
class Check:
    name: str
    status: str  # passed | failed | skipped
    detail: str


@dataclass
class Report:
    run_id: str
    environment: str
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str) -> None:
        self.checks.append(Check(name, status, detail))
        print(f"  {status.upper():7} {name}: {detail}", file=sys.stderr)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.status != "failed" for c in self.checks)


@dataclass(frozen=True)
class Plan:
    """What one smoke run writes: a few readings of its own sensors on its own segment, now."""

    run_id: str
    environment: str
    now_ns: int

    @property
    def segment(self) -> str:
        return f"smoke-{self.run_id}"

    @property
    def things(self) -> list[str]:
        return [f"smoke-{self.run_id}-{i}" for i in range(READINGS)]

    def payload(self, thing: str) -> bytes:
        reading = {
            "sensor_id": thing,
            "segment_id": self.segment,
            "timestamp": format_instant(self.now_ns),
            "vehicle_count": 12,
            "average_speed_kmh": 48.5,
            "occupancy_percent": 20.0,
        }
        return json.dumps(reading).encode()

    def topic(self, thing: str) -> str:
        """Where a sensor publishes: the thing's Basic Ingest topic (``$aws/rules/<rule>/tap/<env>/...``)."""
        return Namer(self.environment).sensor_publish_topic(thing)


def wait_for(what: Callable[[], Any], timeout: float, every: float = 5.0) -> Any:
    """``what()`` once it is truthy, or its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(every)


# ------------------------------------------------------------------------------------------ steps


def publish(clients: Clients, targets: simulate.Targets, plan: Plan, via: str) -> str:
    if via == "kinesis":
        simulate.put_messages(clients, targets.stream_name, [simulate.Message(t, plan.payload(t)) for t in plan.things])
        return f"{READINGS} readings put on {targets.stream_name}"
    import boto3  # noqa: PLC0415

    iot = boto3.client("iot", region_name=targets.region)
    data_endpoint = "https://" + iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    iot_data = boto3.client("iot-data", region_name=targets.region, endpoint_url=data_endpoint)
    for thing in plan.things:
        iot_data.publish(topic=plan.topic(thing), qos=1, payload=plan.payload(thing))
    return f"{READINGS} readings published on {plan.topic('<thing>')}"


def process_locally(clients: Clients, targets: simulate.Targets, config: EnvironmentConfig, plan: Plan) -> None:
    """The real handlers over the test records, as Lambda would run them (the emulator runs no Lambda)."""
    names = targets.runtime_names()
    processor = Processor(
        ProcessorSettings.from_env(processor_environment(names, config)), clients=clients, backoff=Backoff()
    )
    stream_arn = clients["kinesis"].describe_stream_summary(StreamName=targets.stream_name)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    things = set(plan.things)
    for shard, records in simulate.kinesis_records(clients, targets.stream_name).items():
        mine = [r for r in records if r["PartitionKey"] in things]
        if mine:
            processor.handle(simulate.kinesis_event(shard, mine, targets.region, stream_arn, plan.now_ns))
    folder = Folder(settings_from_env(folder_environment(names, config)), clients=clients)
    for event in simulate.partials_events(clients, targets):
        folder.handle(event)


def windows_of(clients: Clients, targets: simulate.Targets, plan: Plan) -> list[str]:
    dynamodb = clients["dynamodb"]
    found = []
    for thing in plan.things:
        items = dynamodb.query(
            TableName=targets.sensor_windows_table,
            KeyConditionExpression="sensor_id = :s",
            ExpressionAttributeValues={":s": {"S": thing}},
            ConsistentRead=True,
        )["Items"]
        found += [thing] if items else []
    return found


def aggregates_of(clients: Clients, targets: simulate.Targets, plan: Plan) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = clients["dynamodb"].query(
        TableName=targets.segment_aggregates_table,
        KeyConditionExpression="segment_id = :s",
        ExpressionAttributeValues={":s": {"S": plan.segment}},
        ConsistentRead=True,
    )["Items"]
    return items


def lake_has(clients: Clients, bucket: str, plan: Plan, since: datetime) -> bool:
    """Whether a lake object written since the run began holds the test readings (Parquet)."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped]  # noqa: PLC0415

    s3 = clients["s3"]
    prefix = f"readings/dt={since:%Y-%m-%d}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["LastModified"] < since:
                continue
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
            if set(plan.things) <= set(table.column("sensor_id").to_pylist()):
                return True
    return False


def alarm_notified(clients: Clients, alarm: str, topic_arn: str, since: datetime) -> bool:
    history = clients["cloudwatch"].describe_alarm_history(
        AlarmName=alarm, HistoryItemType="Action", StartDate=since, ScanBy="TimestampDescending"
    )["AlarmHistoryItems"]
    return any(
        "Successfully executed action" in h["HistorySummary"] and topic_arn in h["HistorySummary"] for h in history
    )


def function_metric_sum(clients: Clients, function_name: str, since: datetime, metric: str) -> float:
    """The sum of a function's CloudWatch ``AWS/Lambda`` ``metric`` (``Invocations``, ``Errors``) from a minute
    before ``since`` until now."""
    now = datetime.now(UTC)
    points = clients["cloudwatch"].get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName=metric,
        Dimensions=[{"Name": "FunctionName", "Value": function_name}],
        StartTime=since - timedelta(minutes=1),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(p["Sum"] for p in points))


def check_schedule(
    clients: Clients, targets: simulate.Targets, report: Report, options: Options, since: datetime
) -> None:
    """The silence check's schedule: enabled, in the environment's group, invoking the function; then its
    first run. The schedule's role is validated by Scheduler only at creation; a run it cannot deliver
    (role not assumable, function gone) goes to the function's dead-letter queue, named in the failure."""
    namer = Namer(targets.environment)
    name, group = namer.name(Kind.SCHEDULE, SILENCE_SCHEDULE), namer.name(Kind.SCHEDULE_GROUP, SCHEDULE_GROUP)
    function = namer.name(Kind.LAMBDA_FUNCTION, "silence")
    try:
        schedule = clients["scheduler"].get_schedule(Name=name, GroupName=group)
    except clients["scheduler"].exceptions.ResourceNotFoundException:
        report.add("silence schedule", "failed", f"no schedule {name} in group {group}")
        return
    target = schedule["Target"]["Arn"]
    if schedule["State"] != "ENABLED" or not target.endswith(f":function:{function}"):
        report.add("silence schedule", "failed", f"{name} is {schedule['State']}, target {target}")
        return
    report.add("silence schedule", "passed", f"{name} in {group} is ENABLED and invokes {function}")
    if options.emulator:
        report.add("silence check runs", "skipped", "the emulator runs no schedules")
        return
    ran = wait_for(
        lambda: function_metric_sum(clients, function, since, "Invocations"), options.schedule_wait_seconds, every=15
    )
    if ran:
        errors = function_metric_sum(clients, function, since, "Errors")
        status = "failed" if errors >= ran else "passed"
        report.add("silence check runs", status, f"{ran:,.0f} invocation(s) of {function}, {errors:,.0f} failed")
        return
    dlq = namer.name(Kind.SQS_QUEUE, "silence-dlq")
    url = clients["sqs"].get_queue_url(QueueName=dlq)["QueueUrl"]
    attributes = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    waiting = attributes["Attributes"]["ApproximateNumberOfMessages"]
    report.add(
        "silence check runs",
        "failed",
        f"no invocation of {function} within {options.schedule_wait_seconds:,.0f} s though {name} is ENABLED; "
        f"{dlq} holds {waiting} message(s): a run Scheduler could not deliver lands there, written with the "
        f"schedule's own role, so none does not clear it (check that {namer.name(Kind.IAM_ROLE, 'silence-schedule')} "
        f"trusts scheduler.amazonaws.com for {group}'s ARN)",
    )


def cleanup(clients: Clients, targets: simulate.Targets, plan: Plan) -> int:
    """Delete the test items from both tables; returns how many."""
    dynamodb, deleted = clients["dynamodb"], 0
    for table, hash_key, values in (
        (targets.sensor_windows_table, "sensor_id", plan.things),
        (targets.segment_aggregates_table, "segment_id", [plan.segment]),
    ):
        for value in values:
            items = dynamodb.query(
                TableName=table,
                KeyConditionExpression=f"{hash_key} = :v",
                ExpressionAttributeValues={":v": {"S": value}},
                ConsistentRead=True,
            )["Items"]
            schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            for item in items:
                key = {k["AttributeName"]: item[k["AttributeName"]] for k in schema}
                dynamodb.delete_item(TableName=table, Key=key)
                deleted += 1
    return deleted


# -------------------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class Options:
    via: str = "iot"
    process_locally: bool = False
    emulator: bool = False
    timeout_seconds: float = 900.0
    keep: bool = False
    lake_bucket: str | None = None
    """The lake (``lake_bucket_name`` output); checked unless on the emulator."""
    schedule_wait_seconds: float = SCHEDULE_WAIT_SECONDS
    """How long to wait for the silence check's first scheduled run."""


def run(clients: Clients, targets: simulate.Targets, config: EnvironmentConfig, options: Options) -> Report:
    plan = Plan(uuid.uuid4().hex[:8], targets.environment, time.time_ns())
    since = datetime.now(UTC).replace(microsecond=0)
    report = Report(plan.run_id, targets.environment)
    print(f"smoke test {plan.run_id} of environment {targets.environment}", file=sys.stderr)
    report.add("publish", "passed", publish(clients, targets, plan, options.via))
    if options.process_locally:
        process_locally(clients, targets, config, plan)
    timeout = options.timeout_seconds
    windows = wait_for(lambda: len(windows_of(clients, targets, plan)) == READINGS, timeout)
    report.add(
        "sensor windows",
        "passed" if windows else "failed",
        f"{len(windows_of(clients, targets, plan))}/{READINGS} sensors have their window",
    )
    aggregates = wait_for(lambda: aggregates_of(clients, targets, plan), timeout)
    report.add(
        "segment aggregate",
        "passed" if aggregates else "failed",
        f"{len(aggregates or [])} window(s) of {plan.segment}",
    )
    if options.emulator:
        report.add("lake", "skipped", "the emulator's Firehose does not read a Kinesis source")
    else:
        lake_timeout = max(timeout, config.firehose_buffer_seconds + 300)
        bucket = options.lake_bucket or ""
        found = bool(bucket) and wait_for(lambda: lake_has(clients, bucket, plan, since), lake_timeout, every=30)
        report.add(
            "lake",
            "passed" if found else "failed",
            f"test readings {'in' if found else 'not in'} readings/dt={since:%Y-%m-%d}/",
        )
    check_schedule(clients, targets, report, options, since)
    check_alarm(clients, targets, report, options, since)
    if options.keep:
        report.add("cleanup", "skipped", "--keep")
    else:
        report.add("cleanup", "passed", f"{cleanup(clients, targets, plan)} test items deleted")
    return report


def check_alarm(clients: Clients, targets: simulate.Targets, report: Report, options: Options, since: datetime) -> None:
    cloudwatch = clients["cloudwatch"]
    alarm = Namer(targets.environment).name(Kind.ALARM, SMOKE_ALARM)
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="tools.smoke: test notification")
    try:
        (described,) = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        if described["StateValue"] != "ALARM" or targets.alert_topic_arn not in described["AlarmActions"]:
            report.add("alarm", "failed", f"{alarm} is {described['StateValue']}, actions {described['AlarmActions']}")
            return
        if options.emulator:
            report.add("alarm", "passed", f"{alarm} forced to ALARM; its action is the alert topic")
            report.add("alarm notification", "skipped", "the emulator runs no alarm actions (no alarm history)")
            return
        notified = wait_for(lambda: alarm_notified(clients, alarm, targets.alert_topic_arn, since), 300, every=10)
        report.add(
            "alarm notification",
            "passed" if notified else "failed",
            f"alert topic {'accepted' if notified else 'did not accept'} {alarm}'s notification",
        )
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="tools.smoke: test over")


def terraform_outputs(environment: str) -> dict[str, Any]:
    """``terraform output -json`` of the environment's stack, as ``cdktf deploy`` left it."""
    stack = ROOT / "cdktf.out" / "stacks" / f"tap-{environment}"
    result = subprocess.run(["terraform", "output", "-json"], cwd=stack, capture_output=True, text=True, check=True)
    outputs: dict[str, Any] = json.loads(result.stdout)
    return outputs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="dev", help="environment suffix (its profile: the suffix's, else dev)")
    parser.add_argument("--outputs", type=Path, help="terraform output -json of the stack (default: run terraform)")
    parser.add_argument("--via", choices=("iot", "kinesis"), default="iot", help="publish through IoT or the stream")
    parser.add_argument("--endpoint-url", help="an emulator's endpoint (implies --via kinesis)")
    parser.add_argument("--process-locally", action="store_true", help="run the handlers here (emulator)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each stage")
    parser.add_argument("--keep", action="store_true", help="keep the test items")
    parser.add_argument("--report", type=Path, help="write the checks as JSON")
    args = parser.parse_args(argv)
    config = PROFILES.get(args.env, PROFILES["dev"])
    outputs = json.loads(args.outputs.read_text()) if args.outputs else terraform_outputs(args.env)
    targets = simulate.Targets.from_outputs(args.env, config.region, outputs)
    emulator = args.endpoint_url is not None
    options = Options(
        via="kinesis" if emulator else args.via,
        process_locally=args.process_locally,
        emulator=emulator,
        timeout_seconds=args.timeout,
        lake_bucket=(outputs.get("lake_bucket_name") or {}).get("value"),
    )
    report = run(simulate.endpoint_clients(args.endpoint_url, config.region), targets, config, options)
    if args.report:
        args.report.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"smoke test {'passed' if report.passed else 'FAILED'}", file=sys.stderr)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
