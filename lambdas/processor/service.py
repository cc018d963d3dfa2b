"""The processor: one Kinesis batch in, state and quarantine out, partial failures reported.

The orchestration between the pure logic (``logic``) and AWS: one S3 object per batch with rejects,
BatchGetItem for the window items the batch touches, BatchWriteItem for what changed. A record is
reported in ``batchItemFailures`` only when something it needs could not be stored; Lambda then retries
from there, and the idempotent merge makes every retry safe. A write DynamoDB refuses as invalid is
retried item by item (``batch_write``), so only that window's records fail, never the rest of its chunk.

**For the silence check** (``lambdas.common.silence``): when a batch opens a sensor's window, the sensor's
fleet registry item is read in the second read round and, when missing or a day old, written before the
window items; once the batch is stored, one conditional UpdateItem records the shard's watermark.

**One writer per sensor.** Every item is keyed by its sensor, and a reading is stored only when its
``sensor_id`` equals the record's partition key: the thing name of the topic it was published on, which
the topic rule makes the partition key (otherwise ``sensor_mismatch``). Kinesis puts one partition key
on one shard, and Lambda processes a shard's records in order, one batch at a time; with a
parallelization factor above 1 it still keeps each partition key's records in order on one concurrent
batch. So a sensor's items have exactly one writer at any moment, and the read-merge-write of a batch
needs no condition. Making a second writer harmless anyway would need conditional PutItem calls (a
BatchWriteItem carries no condition), one request per item instead of one per 25: not cheap, so the
invariant is kept by ``sensor_mismatch`` and tested (``tests/test_concurrency.py``), not paid for on
every write.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import metrics, silence
from lambdas.common.aws import (
    Backoff,
    Clients,
    batch_get,
    batch_write,
    call_with_retries,
    conditional_write,
    deserialize,
    serialize,
)
from lambdas.common.contract import DEFAULT_MAX_READING_AGE_SECONDS, NS_PER_SECOND, REASONS
from lambdas.common.log import emit_metrics, log_event
from lambdas.processor import logic

KEY_NAMES = ("sensor_id", "window_part")
FLEET_KEY_NAMES = ("pk", "sk")
REGISTERED_MEMORY = 200_000
"""Sensors this execution environment remembers as confirmed in the fleet registry today (a shard's
batches go to the same warm environment, so a sensor's item is read about once a day, not per window)."""


@dataclass(frozen=True)
class Settings:
    """What the processor is told by its environment (set by the stack)."""

    sensor_windows_table: str
    quarantine_bucket: str
    quarantine_prefix: str
    metric_namespace: str
    window_seconds: int
    ttl_days: int
    fleet_table: str
    """The fleet registry and shard watermarks (``lambdas.common.silence``)."""
    max_reading_age_seconds: int = DEFAULT_MAX_READING_AGE_SECONDS
    fleet_retention_days: int = silence.DEFAULT_FLEET_RETENTION_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            sensor_windows_table=env["SENSOR_WINDOWS_TABLE"],
            quarantine_bucket=env["QUARANTINE_BUCKET"],
            quarantine_prefix=env.get("QUARANTINE_PREFIX", "rejected/"),
            metric_namespace=env["METRIC_NAMESPACE"],
            window_seconds=int(env["WINDOW_SECONDS"]),
            ttl_days=int(env["AGGREGATE_TTL_DAYS"]),
            fleet_table=env["FLEET_TABLE"],
            max_reading_age_seconds=int(env.get("MAX_READING_AGE_SECONDS", DEFAULT_MAX_READING_AGE_SECONDS)),
            fleet_retention_days=int(env.get("FLEET_RETENTION_DAYS", silence.DEFAULT_FLEET_RETENTION_DAYS)),
        )


@dataclass
class Outcome:
    """What happened to a batch (also the handler's log line)."""

    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    redelivered: int = 0
    quarantined: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    failed: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in self.failed]}


class Processor:
    def __init__(
        self,
        settings: Settings,
        clients: Clients | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.clients = clients or Clients()
        self.backoff = backoff or Backoff()
        self.clock = clock
        """Processing time in UTC nanoseconds: only for ``quarantined_at`` and the shard watermark's
        ``written_at`` (``lambdas.common.silence``); every rule uses arrival time."""
        self._registered: dict[str, tuple[int, str]] = {}
        """Sensor -> (day, shard) of its registry item, as this environment last read or wrote it."""

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        now_ns = self.clock()
        records = logic.records_from_event(event)
        order = {r.sequence_number: i for i, r in enumerate(records)}
        classified = logic.classify(records, self.settings.max_reading_age_seconds * NS_PER_SECOND)
        outcome = Outcome(records=len(records))
        failed: set[str] = set()
        failed |= self._quarantine(classified, now_ns, outcome)
        failed |= self._store(classified.readings, outcome, max((r.arrival_ns for r in records), default=now_ns))
        outcome.failed = sorted(failed, key=order.__getitem__)
        self._mark_watermarks(records, failed)
        self._report(outcome)
        return outcome.response()

    def _quarantine(self, classified: logic.Classified, now_ns: int, outcome: Outcome) -> set[str]:
        if not classified.rejects:
            return set()
        key, body = logic.quarantine_object(self.settings.quarantine_prefix, classified.rejects, now_ns)
        s3 = self.clients["s3"]
        try:
            call_with_retries(
                self.backoff,
                lambda: s3.put_object(
                    Bucket=self.settings.quarantine_bucket, Key=key, Body=body, ContentType="application/x-ndjson"
                ),
            )
        except (ClientError, BotoCoreError) as error:
            log_event("error", "quarantine_failed", key=key, error=str(error), records=len(classified.rejects))
            return {record.sequence_number for record, _ in classified.rejects}
        for _, rejection in classified.rejects:
            outcome.quarantined[rejection.reason] += 1
        return set()

    def _store(self, readings: list[tuple[logic.KinesisRecord, Any]], outcome: Outcome, arrival_ns: int) -> set[str]:
        """Merge the readings into their window items: one read round (two for a window with more than
        one part, or for a sensor whose window opens and whose fleet registry item this environment has
        not confirmed today) and one write of each changed part, after the registry items due."""
        if not readings:
            return set()
        s = self.settings
        by_window: dict[logic.WindowId, list[logic.Contribution]] = {}
        for record, reading in readings:
            by_window.setdefault(logic.window_of(reading, s.window_seconds), []).append(
                logic.Contribution(record.sequence_number, record.shard_id, reading)
            )
        heads, unread = self._read([logic.part_key(w, 0) for w in by_window])
        more = [logic.part_key(w, p) for w in by_window for p in range(1, _parts(heads.get(logic.part_key(w, 0))))]
        day = silence.fleet_day(arrival_ns)
        new_windows = {
            w[0]: c[-1].shard_id or "shard"
            for w, c in by_window.items()
            if logic.part_key(w, 0) not in heads and logic.part_key(w, 0) not in unread
        }
        due = {sensor: shard for sensor, shard in new_windows.items() if self._registered.get(sensor) != (day, shard)}
        others, unread_more, fleet = self._read(more, fleet=sorted(due)) if more or due else ({}, set(), {})
        unread |= unread_more
        unregistered = self._register(due, fleet, day)

        failed: set[str] = set()
        merges: list[tuple[list[str], logic.WindowMerge]] = []
        for window, contributions in by_window.items():
            sequences = [c.sequence_number for c in contributions]
            head_key = logic.part_key(window, 0)
            keys = [logic.part_key(window, p) for p in range(_parts(heads.get(head_key)))]
            if any(k in unread for k in keys) or window[0] in unregistered:
                failed.update(sequences)
                continue
            parts = [heads.get(head_key), *(others.get(k) for k in keys[1:])]
            merge = logic.merge_window(
                parts, contributions, window=window, window_seconds=s.window_seconds, ttl_days=s.ttl_days
            )
            outcome.redelivered += len(merge.redelivered)
            if merge.items:
                merges.append((sequences, merge))
        # Stored parts and heads first; the parts a merge opens only once its head (which counts them) is
        # written: an extra round only for a window that outgrows its last part.
        written = self._write([(seq, m.items) for seq, m in merges])
        opening = [(seq, m.opened) for (seq, m), ok in zip(merges, written, strict=True) if ok and m.opened]
        opened = iter(self._write(opening))
        for (sequences, merge), stored in zip(merges, written, strict=True):
            if not (stored and (not merge.opened or next(opened))):
                failed.update(sequences)
            else:
                outcome.accepted += len(merge.new)
                outcome.duplicates += len(merge.duplicates)
        return failed

    def _write(self, groups: list[tuple[list[str], list[dict[str, Any]]]]) -> list[bool]:
        """Write each group's items (in as few BatchWriteItem calls as they fit): whether each group is
        wholly written."""
        if not groups:
            return []
        table = self.settings.sensor_windows_table
        puts: list[tuple[str, dict[str, Any]]] = []
        spans: list[range] = []
        for _, items in groups:
            spans.append(range(len(puts), len(puts) + len(items)))
            puts.extend((table, serialize(item)) for item in items)
        not_written = set(batch_write(self.clients["dynamodb"], puts, self.backoff, {table: KEY_NAMES}))
        return [not not_written.intersection(span) for span in spans]

    @overload
    def _read(self, keys: list[logic.ItemKey]) -> tuple[dict[logic.ItemKey, dict[str, Any]], set[logic.ItemKey]]: ...

    @overload
    def _read(
        self, keys: list[logic.ItemKey], fleet: list[str]
    ) -> tuple[dict[logic.ItemKey, dict[str, Any]], set[logic.ItemKey], dict[str, dict[str, Any] | None]]: ...

    def _read(self, keys: list[logic.ItemKey], fleet: list[str] | None = None) -> tuple[Any, ...]:
        """The stored items of ``keys`` (absent ones missing), and the keys that could not be read; with
        ``fleet``, in the same requests, those sensors' registry items (eventually consistent: a stale
        miss costs one more write of the same item), ``None`` for a missing one, absent if unread."""
        s = self.settings
        table = s.sensor_windows_table
        request = {table: [{"sensor_id": {"S": sensor}, "window_part": {"S": part}} for sensor, part in keys]}
        if fleet:
            request[s.fleet_table] = [serialize(_fleet_key(sensor)) for sensor in fleet]
        found, unread = batch_get(self.clients["dynamodb"], request, self.backoff, consistent={s.fleet_table: False})
        items = {(i["sensor_id"]["S"], i["window_part"]["S"]): deserialize(i) for i in found[table]}
        missing = {(k["sensor_id"]["S"], k["window_part"]["S"]) for k in unread.get(table, [])}
        if fleet is None:
            return items, missing
        registry: dict[str, dict[str, Any] | None] = dict.fromkeys(fleet)
        for item in found.get(s.fleet_table, []):
            registry[item["sk"]["S"]] = deserialize(item)
        for key in unread.get(s.fleet_table, []):
            registry.pop(key["sk"]["S"], None)
        return items, missing, registry

    def _register(self, opened: Mapping[str, str], stored: Mapping[str, dict[str, Any] | None], day: int) -> set[str]:
        """Write the registry items due (``lambdas.common.silence.registrations``) before the windows that
        open: a sensor whose item cannot be written fails its records (the retry finds its window still
        unopened, and tries again). Returns those sensors."""
        s = self.settings
        due = silence.registrations(opened, stored, day, s.fleet_retention_days)  # unread: as if missing
        for sensor, shard in opened.items():
            self._registered[sensor] = (day, shard)
        if len(self._registered) > REGISTERED_MEMORY:
            self._registered.clear()
        if not due:
            return set()
        puts = [(s.fleet_table, serialize(item)) for item in due]
        failed = {str(due[i]["sk"]) for i in batch_write(self.clients["dynamodb"], puts, self.backoff,
                                                         {s.fleet_table: FLEET_KEY_NAMES})}  # fmt: skip
        for sensor in failed:
            self._registered.pop(sensor, None)
        return failed

    def _mark_watermarks(self, records: list[logic.KinesisRecord], failed: set[str]) -> None:
        """Record, per shard, the arrival time through which this batch stored every record (one
        conditional UpdateItem a batch: a watermark never moves back). A failure is logged, not the batch's:
        the check then judges the shard as idle a little longer (``lambdas.common.silence.judged_at``)."""
        s = self.settings
        through = silence.arrival_through([(r.sequence_number, r.shard_id, r.arrival_ns) for r in records], failed)
        dynamodb = self.clients["dynamodb"]
        for shard, arrival in through.items():
            written = self.clock()
            expires = written // NS_PER_SECOND + (s.fleet_retention_days + 1) * silence.DAY_SECONDS
            request: dict[str, Any] = {
                "TableName": s.fleet_table,
                "Key": serialize({"pk": silence.WATERMARK_KEY, "sk": shard}),
                "UpdateExpression": "SET arrival_through = :a, written_at = :w, expires_at = :x",
                "ConditionExpression": "attribute_not_exists(arrival_through) OR arrival_through <= :a",
                "ExpressionAttributeValues": serialize({":a": arrival, ":w": written, ":x": expires}),
            }
            try:
                conditional_write(self.backoff, functools.partial(dynamodb.update_item, **request))
            except (ClientError, BotoCoreError) as error:
                log_event("warning", "watermark_failed", shard_id=shard, error=str(error))

    def _report(self, outcome: Outcome) -> None:
        namespace = self.settings.metric_namespace
        emit_metrics(
            namespace,
            {metrics.READINGS_ACCEPTED: outcome.accepted, metrics.DUPLICATE_READINGS: outcome.duplicates},
        )
        for reason, count in outcome.quarantined.items():
            if count:
                emit_metrics(namespace, {metrics.RECORDS_QUARANTINED: count}, {metrics.REASON_DIMENSION: reason})
        log_event(
            "info",
            "batch_processed",
            records=outcome.records,
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            redelivered=outcome.redelivered,
            quarantined=outcome.quarantined,
            failed=len(outcome.failed),
        )


def _fleet_key(sensor: str) -> dict[str, str]:
    return {"pk": silence.fleet_shard(sensor), "sk": sensor}


def _parts(head: Mapping[str, Any] | None) -> int:
    """How many part items a window has (its head says; a new window has one)."""
    return int(head.get("parts", 1)) if head else 1
