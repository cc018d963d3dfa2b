"""The alert function: segment window changes in; aggregates, metrics and one alert per window out.

**Concurrency.** Window items are keyed by sensor, so the sensors of one segment sit on different table
partitions and different stream shards: several invocations of this function fold the same segment
window at the same time. Every aggregate write is therefore conditional (optimistic locking, as in the
DynamoDB developer guide): the item is read (one consistent BatchGetItem for the batch), folded, and
put with ``version = <the version read>`` (``attribute_not_exists`` for a new window). A conflict
means another invocation wrote first: the item is read again (GetItem) and folded again, at most
:data:`MAX_CONFLICTS` times; a window that keeps conflicting or failing fails only its own records
(``batchItemFailures``), never the batch's other windows. No lock is held across calls, and a
read-modify-write never goes unconditioned.

**Alerts.** The write that first folds a window to heavy or severe also claims its alert (see
``logic``): exactly one conditional write can win it. The winner publishes (the message carries
``alert_id``), then marks the alert ``sent`` (a conditional UpdateItem that also moves the version on).
A crash anywhere leaves the claim ``pending``: Lambda's retry brings the same stream record back and
publishes it; a claim whose owner is gone is taken over once its lease (the function's timeout plus a
margin) has run out, by the next invocation touching the window or by the sweep of the
``pending-alerts`` index that every invocation runs. A second copy, with the same ``alert_id``, is only
published when the invocation cannot know SNS took the first: a crash between publishing and the
``sent`` mark, a lost publish response retried, or a ``sent`` mark that fails after its retries.
Metrics count only windows written and alerts published.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.alert import logic
from lambdas.common.aws import (
    Backoff,
    Clients,
    batch_get,
    call_with_retries,
    conditional_write,
    deserialize,
    serialize,
)
from lambdas.common.contract import NS_PER_SECOND, Aggregate, format_instant
from lambdas.common.log import log_event

MAX_CONFLICTS = 8
"""Conditional writes a window may lose to other invocations (with jittered backoff between) before its
records are failed."""
PENDING_INDEX = "pending-alerts"
"""Sparse index of the aggregates with a pending alert (hash ``alert_pending``, range ``alert_lease_until``)."""
SWEEP_LIMIT = 10
"""Expired claims one invocation takes over at most."""
DEFAULT_LEASE_SECONDS = 960
"""A claim's lease when none is configured: Lambda's longest timeout (900 s) and a minute."""


@dataclass(frozen=True)
class Settings:
    environment: str
    segment_aggregates_table: str
    alert_topic_arn: str
    metric_namespace: str
    window_seconds: int
    ttl_days: int
    claim_lease_seconds: int = DEFAULT_LEASE_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            environment=env["ENVIRONMENT_SUFFIX"],
            segment_aggregates_table=env["SEGMENT_AGGREGATES_TABLE"],
            alert_topic_arn=env["ALERT_TOPIC_ARN"],
            metric_namespace=env["METRIC_NAMESPACE"],
            window_seconds=int(env["WINDOW_SECONDS"]),
            ttl_days=int(env["AGGREGATE_TTL_DAYS"]),
            claim_lease_seconds=int(env.get("CLAIM_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)),
        )


@dataclass
class Settled:
    """What happened to one window."""

    ok: bool
    level: str | None = None
    """The aggregate's level, when this invocation wrote a change of it."""
    published: bool = False


class Alerter:
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

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        table = self.settings.segment_aggregates_table
        changes = logic.changed_windows(event)
        keys = [{"segment_id": {"S": seg}, "window_start": {"S": start}} for seg, start in changes]
        found, unread = batch_get(self.clients["dynamodb"], {table: keys}, self.backoff) if keys else ({table: []}, {})
        stored = {(i["segment_id"]["S"], i["window_start"]["S"]): deserialize(i) for i in found[table]}
        failed = {(k["segment_id"]["S"], k["window_start"]["S"]) for k in unread.get(table, [])}

        levels: Counter[str] = Counter()
        alerts = 0
        for window, change in changes.items():
            if window in failed:
                continue
            claim = self._claim(change.sequence_numbers[0], frozenset(change.sequence_numbers))
            settled = self._settle(window, change, stored.get(window), claim)
            if settled.level:
                levels[settled.level] += 1
            alerts += settled.published
            if not settled.ok:
                failed.add(window)
        alerts += self._sweep()
        self._publish_metrics(levels, alerts)
        failures = [changes[w].sequence_numbers[0] for w in changes if w in failed]
        log_event("info", "windows_processed", windows=len(changes), levels=dict(levels), alerts=alerts,
                  failed=len(failures))  # fmt: skip
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failures]}

    def _claim(self, owner: str, records: frozenset[str]) -> logic.Claim:
        now_ns = self.clock()
        return logic.Claim(
            environment=self.settings.environment,
            owner=owner,
            records=records,
            now=format_instant(now_ns),
            now_seconds=now_ns // NS_PER_SECOND,
            lease_seconds=self.settings.claim_lease_seconds,
        )

    def _settle(
        self, window: logic.WindowId, change: logic.WindowChange, existing: dict[str, Any] | None, claim: logic.Claim
    ) -> Settled:
        """Fold, write conditionally (re-reading on conflict), publish a claimed alert, mark it sent.

        Any failure fails this window only; what was written stays written and the retry resumes."""
        written: logic.Folded | None = None
        conflicts = Backoff(MAX_CONFLICTS, sleep=self.backoff.sleep, rng=self.backoff.rng)
        try:
            for _ in conflicts.pauses():  # jittered, so that contending invocations spread out
                folded = logic.fold(existing, window, change, claim)
                if folded.item is None:
                    return Settled(ok=True)
                if not self._put(folded.item, existing):  # lost to another writer: re-read, re-fold
                    existing = self._get(window)
                    continue
                written = folded
                break
            else:
                log_event("warning", "window_conflicts", segment_id=window[0], window_start=window[1])
                return Settled(ok=False)
            level = written.aggregate.congestion_level if written.changed and written.aggregate else None
            if not written.publish or written.aggregate is None:
                return Settled(ok=True, level=level)
            self._publish(window, written.aggregate)
            self._mark_sent(window, claim)
            return Settled(ok=True, level=level, published=True)
        except Exception as error:  # any failure fails this window's records, not the batch
            log_event("error", "window_failed", segment_id=window[0], window_start=window[1], error=repr(error))
            level = written.aggregate.congestion_level if written and written.changed and written.aggregate else None
            return Settled(ok=False, level=level)

    def _put(self, item: dict[str, Any], expected: Mapping[str, Any] | None) -> bool:
        """PutItem on the condition that nobody wrote the item since ``expected`` was read (``False``:
        somebody did)."""
        dynamodb = self.clients["dynamodb"]
        if expected is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(segment_id)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(int(expected["version"]))}},
            }
        table = self.settings.segment_aggregates_table
        return conditional_write(
            self.backoff, lambda: dynamodb.put_item(TableName=table, Item=serialize(item), **condition)
        )

    def _get(self, window: logic.WindowId) -> dict[str, Any] | None:
        dynamodb = self.clients["dynamodb"]
        key = {"segment_id": {"S": window[0]}, "window_start": {"S": window[1]}}
        table = self.settings.segment_aggregates_table
        response = call_with_retries(
            self.backoff, lambda: dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
        )
        return deserialize(response["Item"]) if "Item" in response else None

    def _publish(self, window: logic.WindowId, aggregate: Aggregate) -> None:
        s = self.settings
        subject, message = logic.alert_message(s.environment, window, s.window_seconds, aggregate)
        sns = self.clients["sns"]
        call_with_retries(
            self.backoff, lambda: sns.publish(TopicArn=s.alert_topic_arn, Subject=subject, Message=message)
        )
        log_event("info", "alert_sent", alert_id=logic.alert_id(s.environment, window),
                  level=aggregate.congestion_level)  # fmt: skip

    def _mark_sent(self, window: logic.WindowId, claim: logic.Claim) -> None:
        """``pending`` → ``sent``, moving the version on so that no folded copy can bring ``pending`` back."""
        dynamodb = self.clients["dynamodb"]
        table = self.settings.segment_aggregates_table
        # Not made: already marked by a taker-over who published too (after our lease ran out); nothing to do.
        conditional_write(
            self.backoff,
            lambda: dynamodb.update_item(
                TableName=table,
                Key={"segment_id": {"S": window[0]}, "window_start": {"S": window[1]}},
                UpdateExpression="SET alert_state = :sent, alerted_at = :now, version = version + :one "
                "REMOVE alert_pending",
                ConditionExpression="alert_state = :pending AND alert_id = :id",
                ExpressionAttributeValues={
                    ":sent": {"S": logic.SENT},
                    ":pending": {"S": logic.PENDING},
                    ":now": {"S": claim.now},
                    ":one": {"N": "1"},
                    ":id": {"S": logic.alert_id(self.settings.environment, window)},
                },
            ),
        )

    def _sweep(self) -> int:
        """Take over and publish pending alerts whose lease has run out (their owner is gone)."""
        dynamodb = self.clients["dynamodb"]
        claim = self._claim(f"sweep:{uuid.uuid4()}", frozenset())
        try:
            response = call_with_retries(
                self.backoff,
                lambda: dynamodb.query(
                    TableName=self.settings.segment_aggregates_table,
                    IndexName=PENDING_INDEX,
                    KeyConditionExpression="alert_pending = :pending AND alert_lease_until <= :now",
                    ExpressionAttributeValues={
                        ":pending": {"S": logic.PENDING},
                        ":now": {"N": str(claim.now_seconds)},
                    },
                    Limit=SWEEP_LIMIT,
                ),
            )
        except (ClientError, BotoCoreError) as error:
            log_event("error", "sweep_failed", error=str(error))
            return 0
        published = 0
        for raw in response.get("Items", []):
            item = deserialize(raw)  # from the index: possibly stale, so the conditional write decides
            window = (item["segment_id"], item["window_start"])
            settled = self._settle(window, logic.WindowChange(), item, claim)
            published += settled.published
        return published

    def _publish_metrics(self, levels: Counter[str], alerts: int) -> None:
        cloudwatch = self.clients["cloudwatch"]
        data = logic.metric_data(levels, alerts)
        try:
            call_with_retries(
                self.backoff,
                lambda: cloudwatch.put_metric_data(Namespace=self.settings.metric_namespace, MetricData=data),
            )
        except (ClientError, BotoCoreError) as error:
            # Metrics are not worth blocking the stream for: the aggregates and alerts are stored.
            log_event("error", "metrics_failed", error=str(error))
