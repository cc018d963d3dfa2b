"""The processor: one Kinesis batch in, state and quarantine out, partial failures reported.

The orchestration between the pure logic (``logic``) and AWS: one S3 object per batch with rejects,
BatchGetItem for the state the batch touches, BatchWriteItem for what changed. A record is reported
in ``batchItemFailures`` only when something it needs could not be stored; Lambda then retries from
there, and the idempotent merge makes every retry safe.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import metrics
from lambdas.common.aws import Backoff, Clients, batch_get, batch_write, call_with_retries, deserialize, serialize
from lambdas.common.contract import REASONS, Reading
from lambdas.common.log import emit_metrics, log_event
from lambdas.processor import logic


@dataclass(frozen=True)
class Settings:
    """What the processor is told by its environment (set by the stack)."""

    sensor_windows_table: str
    quarantine_bucket: str
    quarantine_prefix: str
    metric_namespace: str
    window_seconds: int
    ttl_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            sensor_windows_table=env["SENSOR_WINDOWS_TABLE"],
            quarantine_bucket=env["QUARANTINE_BUCKET"],
            quarantine_prefix=env.get("QUARANTINE_PREFIX", "rejected/"),
            metric_namespace=env["METRIC_NAMESPACE"],
            window_seconds=int(env["WINDOW_SECONDS"]),
            ttl_days=int(env["AGGREGATE_TTL_DAYS"]),
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
        """Processing time in UTC nanoseconds (for the future-timestamp rule)."""

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        now_ns = self.clock()
        records = logic.records_from_event(event)
        order = {r.sequence_number: i for i, r in enumerate(records)}
        classified = logic.classify(records, now_ns)
        outcome = Outcome(records=len(records))
        failed: set[str] = set()
        failed |= self._quarantine(classified, now_ns, outcome)
        failed |= self._store(classified.readings, outcome)
        outcome.failed = sorted(failed, key=order.__getitem__)
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

    def _store(self, readings: list[tuple[logic.KinesisRecord, Reading]], outcome: Outcome) -> set[str]:
        """Merge the readings into their window items: one read and at most one write per item."""
        if not readings:
            return set()
        s = self.settings
        by_window: dict[logic.WindowKey, list[tuple[str, Reading]]] = {}
        for record, reading in readings:
            by_window.setdefault(logic.window_key(reading, s.window_seconds), []).append(
                (record.sequence_number, reading)
            )
        keys = [{"sensor_id": {"S": sensor}, "window_segment": {"S": ws}} for sensor, ws in by_window]
        found, unread = batch_get(self.clients["dynamodb"], {s.sensor_windows_table: keys}, self.backoff)
        unread_windows = {
            (k["sensor_id"]["S"], k["window_segment"]["S"]) for k in unread.get(s.sensor_windows_table, [])
        }
        windows = {
            (i["sensor_id"]["S"], i["window_segment"]["S"]): deserialize(i) for i in found[s.sensor_windows_table]
        }

        failed: set[str] = set()
        puts: list[tuple[str, dict[str, Any]]] = []
        put_records: list[list[str]] = []  # for each put, the records that need it
        counted: list[tuple[int, int]] = []
        for key, contributions in by_window.items():
            sequences = [seq for seq, _ in contributions]
            if key in unread_windows:
                failed.update(sequences)
                continue
            merge = logic.merge_window(
                windows.get(key), contributions, key=key, window_seconds=s.window_seconds, ttl_days=s.ttl_days
            )
            outcome.redelivered += len(merge.redelivered)
            if merge.item is None:
                continue
            puts.append((s.sensor_windows_table, serialize(merge.item)))
            put_records.append(sequences)
            counted.append((len(merge.new), len(merge.duplicates)))
        not_written = set(batch_write(self.clients["dynamodb"], puts, self.backoff))
        for index, sequences in enumerate(put_records):
            if index in not_written:
                failed.update(sequences)
            else:
                outcome.accepted += counted[index][0]
                outcome.duplicates += counted[index][1]
        return failed

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
