"""The silence check: run every minute (EventBridge Scheduler); silent sensors in, one outage alert and one
recovery notice each out, and the ``SilentSensors`` metric.

A run at ``T`` (its clock; ``--now`` in the local run):

1. reads the stream shards' watermarks (one ``Query``), the fleet registry (a ``Query`` of each of its
   64 hash-sharded keys, eventually consistent) and the open outages (the sparse ``open-outages`` index);
2. reads each member's newest reading: the head of its window of ``T``, else of the window before
   (``BatchGetItem``, 100 keys a request, eventually consistent: a reading sensor's newest reading is in
   one of them); a member whose head counts more parts, or that has neither (an interval longer than a
   window, a sensor silent for a while), by a ``Query`` of its newest window item and that window's other
   parts, :data:`POLL_WORKERS` at a time. A member silent at the instant its shard is judged at
   (``logic.judged_at``: readings still in the stream never make a sensor silent) and still in the fleet
   is read again, strongly (``Query``: a reading in a later window counts too), and gets an outage if
   that confirms it;
3. opens each outage with a conditional ``PutItem`` that claims its alert (a second run, or a retry,
   finds it there), publishes, marks it ``sent``;
4. for the open outages: publishes claims whose owner is gone, sends the recovery notice of each whose
   sensor has a newer reading (the poll's, else a ``Query`` of the sensor's last item), closes those
   whose sensor left the fleet;
5. publishes ``SilentSensors`` (open outages).

No run depends on another: each polls the whole fleet, so a sensor silent before the check first ran,
or one whose batch landed late, is found by the next run. A crash between any two calls loses nothing:
the outage's conditional write makes a second finding harmless, and a claimed message is published by
its owner's retry or, after its lease, by the next run. A copy (same ``alert_id``) is only published
when a run cannot know SNS took the first (a crash between publishing and the ``sent`` mark).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import metrics
from lambdas.common.aws import batch_get, call_with_retries, conditional_write, deserialize, serialize
from lambdas.common.contract import NS_PER_SECOND, format_instant
from lambdas.common.log import log_event
from lambdas.common.service import Service
from lambdas.common.silence import (
    DEFAULT_FLEET_RETENTION_DAYS,
    DEFAULT_SILENCE_FACTOR,
    FLEET_SHARDS,
    WATERMARK_KEY,
    fleet_key,
)
from lambdas.silence import logic

T = TypeVar("T")
R = TypeVar("R")
OPEN_OUTAGES_INDEX = "open-outages"
DEFAULT_LEASE_SECONDS = 120
POLL_WORKERS = 32
"""Requests a run keeps in flight (threads over one client: boto3 clients are thread-safe)."""
BATCH_GET_KEYS = 100
"""Keys of one BatchGetItem (DynamoDB's limit)."""


@dataclass(frozen=True)
class Settings:
    environment: str
    sensor_windows_table: str
    sensor_outages_table: str
    fleet_table: str
    alert_topic_arn: str
    metric_namespace: str
    window_seconds: int
    batching_allowance_seconds: int
    """``stacks.layout.batching_allowance_seconds``: how long a record may wait in the stream."""
    silence_factor: int = DEFAULT_SILENCE_FACTOR
    fleet_retention_days: int = DEFAULT_FLEET_RETENTION_DAYS
    claim_lease_seconds: int = DEFAULT_LEASE_SECONDS
    poll_workers: int = POLL_WORKERS

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            environment=env["ENVIRONMENT_SUFFIX"],
            sensor_windows_table=env["SENSOR_WINDOWS_TABLE"],
            sensor_outages_table=env["SENSOR_OUTAGES_TABLE"],
            fleet_table=env["FLEET_TABLE"],
            alert_topic_arn=env["ALERT_TOPIC_ARN"],
            metric_namespace=env["METRIC_NAMESPACE"],
            window_seconds=int(env["WINDOW_SECONDS"]),
            batching_allowance_seconds=int(env["BATCHING_ALLOWANCE_SECONDS"]),
            silence_factor=int(env.get("SILENCE_FACTOR", DEFAULT_SILENCE_FACTOR)),
            fleet_retention_days=int(env.get("FLEET_RETENTION_DAYS", DEFAULT_FLEET_RETENTION_DAYS)),
            claim_lease_seconds=int(env.get("CLAIM_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)),
        )


@dataclass
class Report:
    """What one run did (its log line, and the response)."""

    sensors: int = 0
    candidates: int = 0
    outages: list[str] = field(default_factory=list)
    recoveries: list[str] = field(default_factory=list)
    left_fleet: int = 0
    silent: set[tuple[str, str]] = field(default_factory=set)
    """Open outages ``(sensor, since)`` at the end of the run."""
    failures: int = 0

    @property
    def silent_sensors(self) -> int:
        return len({sensor for sensor, _ in self.silent})


class SilenceCheck(Service[Settings]):
    def handle(self, event: Any) -> dict[str, Any]:
        at_ns = self.clock()
        owner = f"check:{uuid.uuid4()}"
        report = Report()
        s = self.settings
        marks = logic.watermarks(self._partition(WATERMARK_KEY))
        fleet = logic.members(item for n in range(FLEET_SHARDS) for item in self._partition(fleet_key(n)))
        report.sensors = len(fleet)
        open_outages = list(self._open_outages())
        known = {(o["sensor_id"], o["since"]) for o in open_outages}
        newest: dict[str, logic.Newest | Exception | None] = {}
        polls, from_heads = self._poll([m.sensor_id for m in fleet], at_ns)
        for member, polled in zip(fleet, polls, strict=True):
            newest[member.sensor_id] = polled
            when = logic.judged_at(member, marks, at_ns, s.batching_allowance_seconds)
            try:
                if isinstance(polled, Exception):
                    raise polled
                if not self._silent(polled, when, at_ns):
                    continue
                assert polled is not None
                if (polled.sensor_id, polled.timestamp) in known:  # that outage is open: the sweep keeps it
                    continue
                report.candidates += 1
                # eventually consistent: a newer reading may not show yet; only a strong read decides
                reading = self._newest(member.sensor_id, consistent=True)
                if reading is None or not self._silent(reading, when, at_ns):
                    continue
                if self._open(reading, owner, at_ns):
                    report.outages.append(reading.sensor_id)
                report.silent.add((reading.sensor_id, reading.timestamp))
            except (ClientError, BotoCoreError) as error:
                report.failures += 1
                log_event("error", "outage_failed", sensor_id=member.sensor_id, error=str(error))
        self._sweep(open_outages, newest, from_heads=from_heads, owner=owner, at_ns=at_ns, report=report)
        self._publish_metric(report.silent_sensors)
        log_event("info", "silence_checked", sensors=report.sensors, shards=len(marks),
                  candidates=report.candidates, outages=len(report.outages), recoveries=len(report.recoveries),
                  left_fleet=report.left_fleet, silent_sensors=report.silent_sensors,
                  failures=report.failures)  # fmt: skip
        if report.failures:  # every step is safe to repeat: the run fails so that the alarm sees it
            raise RuntimeError(f"{report.failures} sensors or outages could not be settled; the next run retries")
        return {"outages": report.outages, "recoveries": report.recoveries, "silent_sensors": report.silent_sensors}

    def _silent(self, reading: logic.Newest | None, when: int, at_ns: int) -> bool:
        """Silent at ``when`` (its shard's judging instant) and, at ``at_ns``, still in the fleet."""
        s = self.settings
        return (
            reading is not None
            and logic.silent(reading, s.silence_factor, when)
            and logic.in_fleet(reading, s.fleet_retention_days, at_ns)
        )

    # ------------------------------------------------------------------------------------------ reading

    def _pages(self, **query: Any) -> Iterator[dict[str, Any]]:
        dynamodb = self.clients["dynamodb"]
        request: dict[str, Any] = dict(query)

        def call() -> Any:
            return dynamodb.query(**request)

        while True:
            page = call_with_retries(self.backoff, call)
            yield from (deserialize(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            request = {**query, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _partition(self, key: str) -> Iterator[dict[str, Any]]:
        """Every item of one key of the fleet table (a registry shard, or the watermarks)."""
        return self._pages(
            TableName=self.settings.fleet_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": key}},
        )

    def _poll(self, sensors: Sequence[str], at_ns: int) -> tuple[list[logic.Newest | Exception | None], set[str]]:
        """Each sensor's newest reading (or the error reading it), eventually consistent: the head of its
        window of ``at_ns``, else of the window before (step 2 of the module docstring); the others by
        Queries, ``poll_workers`` at a time. Also the sensors read from a head (a reading in a later window,
        of a sensor whose clock runs ahead, is not among them)."""
        width = self.settings.window_seconds * NS_PER_SECOND
        current = at_ns - at_ns % width
        found: dict[str, logic.Newest | Exception | None] = {}
        pending = list(dict.fromkeys(sensors))
        queried: list[str] = []
        for start in (current, current - width):
            heads, unread = self._heads(pending, format_instant(start)[:19] + "Z")
            rest = []
            for sensor in pending:
                head = heads.get(sensor)
                if head is not None and int(head.get("parts", 1)) == 1:
                    found[sensor] = logic.newest([head])
                elif head is None and sensor not in unread:
                    rest.append(sensor)  # nothing in that window: the one before, then a Query
                else:
                    queried.append(sensor)  # more parts, or unread
            pending = rest
        queried += pending

        def read(sensor: str) -> logic.Newest | Exception | None:
            try:
                return self._newest(sensor, consistent=False)
            except (ClientError, BotoCoreError) as error:
                return error

        found |= dict(zip(queried, self._in_parallel(read, queried), strict=True))
        return [found[sensor] for sensor in sensors], set(found) - set(queried)

    def _in_parallel(self, call: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``call`` of each item, in order, ``poll_workers`` at a time (threads over one client: boto3
        clients are thread-safe)."""
        workers = min(self.settings.poll_workers, len(items))
        if workers <= 1:
            return [call(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(call, items))

    def _heads(self, sensors: Sequence[str], window: str) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """The head items (part ``000``) of ``window`` of ``sensors`` that exist, and the sensors whose head
        could not be read (``BatchGetItem`` of 100 keys, eventually consistent, ``poll_workers`` at a time)."""
        table = self.settings.sensor_windows_table

        def read(chunk: Sequence[str]) -> tuple[list[dict[str, Any]], list[Mapping[str, Any]]]:
            keys = [{"sensor_id": {"S": sensor}, "window_part": {"S": f"{window}#000"}} for sensor in chunk]
            items, unread = batch_get(self.clients["dynamodb"], {table: keys}, self.backoff, consistent=False)
            return items.get(table, []), unread.get(table, [])

        chunks = [sensors[start : start + BATCH_GET_KEYS] for start in range(0, len(sensors), BATCH_GET_KEYS)]
        results = self._in_parallel(read, chunks)
        heads = {item["sensor_id"]["S"]: deserialize(item) for items, _ in results for item in items}
        return heads, {key["sensor_id"]["S"] for _, unread in results for key in unread}

    def _last_items(self, sensor_id: str, *, consistent: bool, window: str | None = None) -> list[dict[str, Any]]:
        """The sensor's last item (newest window, last part), or every part of ``window``."""
        dynamodb = self.clients["dynamodb"]
        names = {"#s": "sensor_id", "#w": "window_part", "#l": "latest"}
        query: dict[str, Any] = {
            "TableName": self.settings.sensor_windows_table,
            "ConsistentRead": consistent,
            "ProjectionExpression": "#s, #w, #l, latest_interval",
            "ExpressionAttributeNames": names,
        }
        if window is None:
            query |= {"KeyConditionExpression": "#s = :s", "ScanIndexForward": False, "Limit": 1}
            query["ExpressionAttributeValues"] = {":s": {"S": sensor_id}}
            response = call_with_retries(self.backoff, lambda: dynamodb.query(**query))
            return [deserialize(i) for i in response.get("Items", [])]
        query |= {"KeyConditionExpression": "#s = :s AND begins_with(#w, :w)"}
        query["ExpressionAttributeValues"] = {":s": {"S": sensor_id}, ":w": {"S": f"{window}#"}}
        return list(self._pages(**query))

    def _newest(self, sensor_id: str, *, consistent: bool = True) -> logic.Newest | None:
        """The sensor's newest reading: its last item, and the window's other parts when it has some."""
        last = self._last_items(sensor_id, consistent=consistent)
        if last and not last[0]["window_part"].endswith("#000"):
            window = last[0]["window_part"].split("#", 1)[0]
            last = self._last_items(sensor_id, consistent=consistent, window=window)
        return logic.newest(last)

    # ------------------------------------------------------------------------------------------ outages

    def _open(self, reading: logic.Newest, owner: str, at_ns: int) -> bool:
        """Open the outage and publish its alert; ``False`` when it was open already (another run's)."""
        s = self.settings
        item = logic.outage_item(
            s.environment,
            reading,
            factor=s.silence_factor,
            retention_days=s.fleet_retention_days,
            owner=owner,
            at_ns=at_ns,
            lease_seconds=s.claim_lease_seconds,
        )
        dynamodb = self.clients["dynamodb"]
        opened = conditional_write(
            self.backoff,
            lambda: dynamodb.put_item(
                TableName=s.sensor_outages_table,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(sensor_id)",
            ),
        )
        if not opened:
            return False
        self._send(item, "alert", owner)
        return True

    def _open_outages(self) -> Iterator[dict[str, Any]]:
        return self._pages(
            TableName=self.settings.sensor_outages_table,
            IndexName=OPEN_OUTAGES_INDEX,
            KeyConditionExpression="outage_open = :open",
            ExpressionAttributeValues={":open": {"S": logic.OPEN}},
        )

    def _sweep(
        self,
        open_outages: list[dict[str, Any]],
        polled: Mapping[str, logic.Newest | Exception | None],
        *,
        from_heads: set[str],
        owner: str,
        at_ns: int,
        report: Report,
    ) -> None:
        """Publish claims whose owner is gone, send due recovery notices, close outages of sensors that
        left the fleet (``open_outages`` as read at the start of the run: outages opened by this run are
        counted by it, and the next run sweeps them)."""
        now_s = at_ns // NS_PER_SECOND
        for outage in open_outages:  # from the index: possibly stale, so conditional writes decide
            key = (outage["sensor_id"], outage["since"])
            try:
                if outage.get("alert_state") == logic.PENDING:
                    if int(outage["alert_lease_until"]) > now_s or not self._take_over(outage, "alert", owner, now_s):
                        report.silent.add(key)
                        continue
                    self._send(outage, "alert", owner)
                if outage.get("recovery_state") == logic.PENDING:
                    if int(outage["recovery_lease_until"]) <= now_s and self._take_over(
                        outage, "recovery", owner, now_s
                    ):
                        self._send(outage, "recovery", owner)
                        report.recoveries.append(outage["sensor_id"])
                    report.silent.discard(key)
                    continue
                # the run's poll (eventually consistent: a reading it misses is seen by the next run, a
                # minute later); a strong read for a sensor the registry no longer holds
                sensor = outage["sensor_id"]
                latest = polled.get(sensor)
                if (
                    (latest is None and sensor not in polled)
                    or isinstance(latest, Exception)
                    or (sensor in from_heads and not logic.recovered(outage, latest))
                ):  # not polled, or polled from a head: a reading in a later window counts too
                    latest = self._newest(sensor)
                if logic.recovered(outage, latest):
                    assert latest is not None
                    if self._claim_recovery(outage, latest, owner, now_s):
                        self._send(outage | {"recovered_by": latest.timestamp}, "recovery", owner)
                        report.recoveries.append(outage["sensor_id"])
                    report.silent.discard(key)
                    continue
                if self._left_fleet(outage, at_ns):
                    report.left_fleet += 1
                    report.silent.discard(key)
                    continue
                report.silent.add(key)
            except (ClientError, BotoCoreError) as error:
                report.failures += 1
                report.silent.add(key)
                log_event("error", "outage_failed", sensor_id=outage["sensor_id"], since=outage["since"],
                          error=str(error))  # fmt: skip

    def _key(self, outage: Mapping[str, Any]) -> dict[str, Any]:
        return {"sensor_id": {"S": outage["sensor_id"]}, "since": {"S": outage["since"]}}

    def _update(self, outage: Mapping[str, Any], expression: str, condition: str, values: dict[str, Any]) -> bool:
        """A conditional UpdateItem of the outage: whether it applied."""
        dynamodb = self.clients["dynamodb"]
        return conditional_write(
            self.backoff,
            lambda: dynamodb.update_item(
                TableName=self.settings.sensor_outages_table,
                Key=self._key(outage),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=serialize(values),
            ),
        )

    def _take_over(self, outage: Mapping[str, Any], kind: str, owner: str, now_s: int) -> bool:
        """Claim a ``pending`` message whose owner's lease has run out."""
        return self._update(
            outage,
            f"SET {kind}_owner = :owner, {kind}_lease_until = :until",
            f"{kind}_state = :pending AND {kind}_lease_until <= :now",
            {":owner": owner, ":until": now_s + self.settings.claim_lease_seconds, ":pending": logic.PENDING,
             ":now": now_s},
        )  # fmt: skip

    def _claim_recovery(self, outage: Mapping[str, Any], latest: logic.Newest, owner: str, now_s: int) -> bool:
        return self._update(
            outage,
            "SET recovery_state = :pending, recovery_owner = :owner, recovery_lease_until = :until, "
            "recovered_by = :by",
            "alert_state = :sent AND attribute_not_exists(recovery_state)",
            {":pending": logic.PENDING, ":owner": owner, ":until": now_s + self.settings.claim_lease_seconds,
             ":by": latest.timestamp, ":sent": logic.SENT},
        )  # fmt: skip

    def _left_fleet(self, outage: Mapping[str, Any], at_ns: int) -> bool:
        """Close the outage of a sensor that left the fleet (no recovery notice: it did not recover)."""
        since = logic.Newest(outage["sensor_id"], outage["since"], 60, "", "")
        if logic.in_fleet(since, self.settings.fleet_retention_days, at_ns):
            return False
        return self._update(
            outage,
            "SET closed = :left REMOVE outage_open",
            "alert_state = :sent AND attribute_not_exists(recovery_state)",
            {":left": "left_fleet", ":sent": logic.SENT},
        )

    def _send(self, outage: Mapping[str, Any], kind: str, owner: str) -> None:
        """Publish a claimed message, then mark it ``sent`` (a recovery also ends the outage)."""
        s = self.settings
        subject, message = (logic.outage_message if kind == "alert" else logic.recovery_message)(s.environment, outage)
        sns = self.clients["sns"]
        call_with_retries(
            self.backoff, lambda: sns.publish(TopicArn=s.alert_topic_arn, Subject=subject, Message=message)
        )
        log_event("info", "silence_alert_sent", kind=kind, sensor_id=outage["sensor_id"], since=outage["since"])
        # Not ours any more when a taker-over marked it after our lease ran out: nothing to do then.
        self._update(
            outage,
            f"SET {kind}_state = :sent" + (" REMOVE outage_open" if kind == "recovery" else ""),
            f"{kind}_state = :pending AND {kind}_owner = :owner",
            {":sent": logic.SENT, ":pending": logic.PENDING, ":owner": owner},
        )

    # ------------------------------------------------------------------------------------------ the rest

    def _publish_metric(self, silent_sensors: int) -> None:
        data = [{"MetricName": metrics.SILENT_SENSORS, "Value": silent_sensors, "Unit": "Count"}]
        self.put_metric_data(self.settings.metric_namespace, data)
