"""The processor: one Kinesis batch in, state and quarantine out, partial failures reported.

The orchestration between the pure logic (``logic``) and AWS: one S3 object per batch with rejects,
BatchGetItem for the window items the batch touches, BatchWriteItem for what changed. A record is
reported in ``batchItemFailures`` only when something it needs could not be stored; Lambda then retries
from there, and the idempotent merge makes every retry safe. A write DynamoDB refuses as invalid is
retried item by item (``batch_write``), so only that window's records fail, never the rest of its chunk.

**For the silence check** (``lambdas.common.silence``): when a batch opens a sensor's window, the sensor's
fleet registry item is read in the second read round and, when missing or a day old, written before the
window items; once the batch is stored and its partials sent, one conditional UpdateItem records the
shard's watermark.

**One writer per sensor.** Every item is keyed by its sensor, and a reading is stored only when its
``sensor_id`` equals the record's partition key: the thing name of the topic it was published on, which the
topic rule makes the partition key (otherwise ``sensor_mismatch``). Kinesis puts one partition key on one
shard, and Lambda processes a shard's records in order, one batch at a time (the mapping keeps the
parallelization factor at 1, a test pins it: the shard's partials mark and its watermark need one batch per
shard at a time, not only per sensor). So a sensor's items have exactly one writer at any moment, and the
read-merge-write of a batch needs no condition. Making a second writer harmless anyway would need conditional
PutItem calls (a BatchWriteItem carries no condition), one request per item instead of one per 25: not cheap,
so the invariant is kept by ``sensor_mismatch`` and tested (``tests/test_concurrency.py``), not paid for on
every write.

**Partials, exactly once** (``lambdas.common.partials``; the folder, ``lambdas.folder``, is their one
reader). Once its window writes are done, the batch sends, per segment window, the exact sums of the
readings *owned* by its records up to its checkpoint ``C`` (the record before the first failed one): a
stored row keeps (a digest of) the sequence number of the record that added it, so a record owns its row whether this
delivery or an earlier one wrote it, and a duplicate owns nothing. The sums are cut into pieces at the
shard's *cuts*: a mark item per shard (``#partials``, the shard id) lists every checkpoint an attempt was
about to send, and a batch writes its ``C`` there *before* PutRecords. A piece covers the owned readings
of the records in ``(previous cut, cut]``; the folder folds a piece only when its cut is above the highest
it folded from that shard (the aggregate's ``src``). Why nothing is folded twice or never:

1. A piece's content is a function of its range (rows never change their owner), so two sends of one
   range are equal, and the folder keeps the first.
2. Ranges never overlap partly: a later attempt starts at or after an earlier one's first record (Lambda's
   checkpoint only moves on), and splits at every cut the earlier one wrote that is not yet checkpointed;
   so a later piece equals, lies inside, or lies after an earlier one. Inside: the folder skips it if it
   folded the earlier one, and otherwise the rest of the range follows in later pieces up to that cut.
3. Nothing is skipped for good: the invocation returns only after PutRecords took every record (else it
   fails the whole batch), so Lambda checkpoints past a record only once its readings were sent; cuts below
   the batch's first record are checkpointed, so sent, and are dropped. A crash between the window writes,
   the mark and PutRecords leaves the rows, and the retry (the same records, or a bisected half, or the
   records from a reported failure on) owns and resends them. Pieces of one segment window travel in one
   record, and a shard's batches one after another, so the folder sees a shard's cuts in order.
4. A *late* batch, one that starts below the mark's ``done`` (the first record of the latest batch that
   sent, all records below it being checkpointed): a redrive (``tools/redrive.py`` hands records given up
   on back to the function) or a replay. It sends only the readings it stores itself, under a source of
   its own (``<shard>@<first record>``); what an earlier delivery stored was sent by that delivery's
   retries. Not covered, and documented in the runbook: a late batch killed between its window writes and
   PutRecords, and records given up after their rows were written but before PutRecords succeeded (a
   partials stream refusing writes for the whole ``max_record_age``): their readings are stored and
   counted, not folded; the dead-letter queue alarm shows them.
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
from lambdas.common.partials import MAX_PUT_BYTES, MAX_RECORDS_PER_PUT, Partial, at_or_below, sequence_key
from lambdas.common.service import Service
from lambdas.processor import logic

KEY_NAMES = ("sensor_id", "window_part")
FLEET_KEY_NAMES = ("pk", "sk")
REGISTERED_MEMORY = 200_000
"""Sensors this execution environment remembers as confirmed in the fleet registry today (a shard's
batches go to the same warm environment, so a sensor's item is read about once a day, not per window)."""
MARK_SENSOR = "#partials"
"""``sensor_id`` of the shards' mark items (no sensor id starts with ``#``: contract ``sensor_id``)."""
MARK_TTL_SECONDS = 8 * 86400
"""A mark item outlives the longest a shard's records are retried (Kinesis keeps them 7 days at most)."""


@dataclass(frozen=True)
class Settings:
    """What the processor is told by its environment (set by the stack)."""

    sensor_windows_table: str
    partials_stream: str
    quarantine_bucket: str
    quarantine_prefix: str
    metric_namespace: str
    window_seconds: int
    ttl_days: int
    fleet_table: str
    """The fleet registry and shard watermarks (``lambdas.common.silence``)."""
    max_reading_age_seconds: int = DEFAULT_MAX_READING_AGE_SECONDS
    fleet_retention_days: int = silence.DEFAULT_FLEET_RETENTION_DAYS
    window_ttl_days: int | None = None
    """Days the window items are kept after their window (``None``: ``ttl_days``, the aggregates')."""

    @property
    def window_item_ttl_days(self) -> int:
        return self.ttl_days if self.window_ttl_days is None else self.window_ttl_days

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            sensor_windows_table=env["SENSOR_WINDOWS_TABLE"],
            partials_stream=env["PARTIALS_STREAM"],
            quarantine_bucket=env["QUARANTINE_BUCKET"],
            quarantine_prefix=env.get("QUARANTINE_PREFIX", "rejected/"),
            metric_namespace=env["METRIC_NAMESPACE"],
            window_seconds=int(env["WINDOW_SECONDS"]),
            ttl_days=int(env["AGGREGATE_TTL_DAYS"]),
            fleet_table=env["FLEET_TABLE"],
            max_reading_age_seconds=int(env.get("MAX_READING_AGE_SECONDS", DEFAULT_MAX_READING_AGE_SECONDS)),
            fleet_retention_days=int(env.get("FLEET_RETENTION_DAYS", silence.DEFAULT_FLEET_RETENTION_DAYS)),
            window_ttl_days=int(env["WINDOW_TTL_DAYS"]) if "WINDOW_TTL_DAYS" in env else None,
        )


@dataclass
class Outcome:
    """What happened to a batch (also the handler's log line)."""

    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    redelivered: int = 0
    partials: int = 0
    quarantined: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    failed: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in self.failed]}


class Processor(Service[Settings]):
    def __init__(
        self,
        settings: Settings,
        clients: Clients | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        # the clock (processing time) is only for ``quarantined_at``, the partials mark's expiry and the shard
        # watermark's ``written_at`` (``lambdas.common.silence``); every rule uses arrival time
        super().__init__(settings, clients, backoff, clock)
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
        stored = self._store(
            classified.readings, outcome, max((r.arrival_ns for r in records), default=now_ns), records
        )
        failed |= stored.failed
        sequence_numbers = [r.sequence_number for r in records]
        through = logic.checkpoint(sequence_numbers, failed)
        if through and not self._send_partials(stored, records[0], through, outcome, now_ns):
            failed = set(sequence_numbers)  # nothing checkpointed: the retry resends the same pieces
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

    def _store(
        self,
        readings: list[tuple[logic.KinesisRecord, Any]],
        outcome: Outcome,
        arrival_ns: int,
        records: list[logic.KinesisRecord],
    ) -> Stored:
        """Merge the readings into their window items: one read round (two for a window with more than
        one part, or for a sensor whose window opens and whose fleet registry item this environment has
        not confirmed today) and one write of each changed part, after the registry items due. The first
        round also reads the shard's partials mark."""
        if not readings:
            return Stored()
        s = self.settings
        mark_key = (MARK_SENSOR, records[0].shard_id)
        by_window: dict[logic.WindowId, list[logic.Contribution]] = {}
        for record, reading in readings:
            by_window.setdefault(logic.window_of(reading, s.window_seconds), []).append(
                logic.Contribution(record.sequence_number, record.shard_id, reading)
            )
        heads, unread = self._read([logic.part_key(w, 0) for w in by_window] + [mark_key])
        mark = None if mark_key in unread else heads.pop(mark_key, {})
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
        owned: list[logic.Contribution] = []
        fresh: list[logic.Contribution] = []
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
                parts,
                contributions,
                window=window,
                window_seconds=s.window_seconds,
                ttl_days=s.window_item_ttl_days,
            )
            outcome.redelivered += len(merge.redelivered)
            if merge.items or merge.opened:
                merges.append((sequences, merge))
            else:
                owned.extend(merge.owned)  # all stored before: redelivered
        # Stored parts and heads first; the parts a merge opens only once its head (which counts them) is
        # written: an extra round only for a window that outgrows its last part. (A head is rewritten only
        # when it changes: a retry may find it counting a part that was never written, and write that alone.)
        written = self._write([(seq, m.items) for seq, m in merges])
        opening = [(seq, m.opened) for (seq, m), ok in zip(merges, written, strict=True) if ok and m.opened]
        opened = iter(self._write(opening))
        for (sequences, merge), stored in zip(merges, written, strict=True):
            if not (stored and (not merge.opened or next(opened))):
                failed.update(sequences)
            else:
                outcome.accepted += len(merge.new)
                outcome.duplicates += len(merge.duplicates)
                owned.extend(merge.owned)
                new = set(merge.new)
                fresh.extend(c for c in merge.owned if c.sequence_number in new)
        return Stored(failed, owned, fresh, mark)

    def _send_partials(
        self, stored: Stored, first: logic.KinesisRecord, through: str, outcome: Outcome, now_ns: int
    ) -> bool:
        """Write the shard's cuts with ``through``, then put the partials of the owned readings up to it (see
        the module docstring); a late batch (a redrive) sends only what it stored itself, under its own
        source. ``False`` when anything did not wholly succeed."""
        if stored.mark is None:
            return not stored.owned  # the mark could not be read: fail the batch if there is anything to send
        s = self.settings
        start = first.sequence_number
        done = stored.mark.get("done")
        late = done is not None and sequence_key(start) < sequence_key(str(done))
        pool = stored.fresh if late else stored.owned
        owned = [c for c in pool if at_or_below(c.sequence_number, through)]
        if not owned:
            return True
        if late:
            source, kept = f"{first.shard_id}@{start}", [through]
        else:
            source, kept = first.shard_id, logic.cuts_for(list(stored.mark.get("cuts", [])), start, through)
            mark = {
                "sensor_id": MARK_SENSOR,
                "window_part": first.shard_id,
                "cuts": kept,
                "done": start,
                "expires_at": now_ns // NS_PER_SECOND + MARK_TTL_SECONDS,
            }
            if not self._put_mark(mark):
                return False
        partials = logic.partials(
            owned,
            shard=source,
            first=start,
            cuts=kept,
            window_seconds=s.window_seconds,
            ttl_days=s.ttl_days,
        )
        if not self._put_records(partials):
            return False
        outcome.partials += len(partials)
        return True

    def _put_mark(self, mark: dict[str, Any]) -> bool:
        """PutItem of the shard's mark (its one writer: this lane); whether it was written."""
        dynamodb = self.clients["dynamodb"]
        try:
            call_with_retries(
                self.backoff,
                lambda: dynamodb.put_item(TableName=self.settings.sensor_windows_table, Item=serialize(mark)),
            )
        except (ClientError, BotoCoreError) as error:
            log_event("error", "partials_mark_failed", shard=mark["window_part"], error=str(error))
            return False
        return True

    def _put_records(self, partials: list[Partial]) -> bool:
        """PutRecords in calls of at most 500 records and 4 MiB, failed records retried; whether all went."""
        kinesis = self.clients["kinesis"]
        pending = [{"Data": p.encode(), "PartitionKey": p.segment} for p in partials]
        for _ in self.backoff.pauses():
            calls: list[list[dict[str, Any]]] = [[]]
            size = 0
            for entry in pending:
                length = len(entry["Data"]) + len(entry["PartitionKey"])
                if len(calls[-1]) == MAX_RECORDS_PER_PUT or (calls[-1] and size + length > MAX_PUT_BYTES):
                    calls.append([])
                    size = 0
                calls[-1].append(entry)
                size += length
            failed: list[dict[str, Any]] = []
            for entries in calls:
                try:
                    response = kinesis.put_records(StreamName=self.settings.partials_stream, Records=entries)
                except (ClientError, BotoCoreError) as error:
                    log_event("warning", "partials_put_failed", error=str(error), records=len(entries))
                    failed.extend(entries)
                    continue
                failed.extend(e for e, r in zip(entries, response["Records"], strict=True) if "ErrorCode" in r)
            if not failed:
                return True
            pending = failed
        log_event("error", "partials_not_sent", records=len(pending))
        return False

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
        failed: set[str] = set()
        if due:
            puts = [(s.fleet_table, serialize(item)) for item in due]
            failed = {str(due[i]["sk"]) for i in batch_write(self.clients["dynamodb"], puts, self.backoff,
                                                             {s.fleet_table: FLEET_KEY_NAMES})}  # fmt: skip
        # remembered only once confirmed (read as current, or written): anything raised above forgets nothing
        if len(self._registered) > REGISTERED_MEMORY:
            self._registered.clear()
        for sensor, shard in opened.items():
            if sensor not in failed:
                self._registered[sensor] = (day, shard)
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
            partials=outcome.partials,
            quarantined=outcome.quarantined,
            failed=len(outcome.failed),
        )


@dataclass
class Stored:
    """What the window writes left: the records to fail, and the contributions whose rows are stored."""

    failed: set[str] = field(default_factory=set)
    owned: list[logic.Contribution] = field(default_factory=list)
    fresh: list[logic.Contribution] = field(default_factory=list)
    """The owned contributions this invocation stored (not an earlier delivery)."""
    mark: dict[str, Any] | None = field(default_factory=dict)
    """The shard's mark item (``{}``: none yet; ``None``: it could not be read)."""


def _fleet_key(sensor: str) -> dict[str, str]:
    return {"pk": silence.fleet_shard(sensor), "sk": sensor}


def _parts(head: Mapping[str, Any] | None) -> int:
    """How many part items a window has (its head says; a new window has one)."""
    return int(head.get("parts", 1)) if head else 1
