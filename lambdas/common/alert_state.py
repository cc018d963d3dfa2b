"""A segment window's aggregate and alert state in DynamoDB: the conditional put, claim, publish, mark sent,
and the sweep of expired claims (the I/O of ``lambdas.common.alerts``; the folder is its writer).

**One writer, still conditional.** Every aggregate write is conditional on the ``version`` it was folded
from (``attribute_not_exists`` for a new window). With one folder batch per segment at a time no condition
fails in steady operation; should a second writer appear by mistake (a lease taken over, a sweep), the
loser re-reads (GetItem) and folds again, at most :data:`MAX_CONFLICTS` times, and a window that keeps
failing fails only its own records. No lock is held across calls, and a read-modify-write never goes
unconditioned.

**Alerts.** The write that first folds a window to heavy or severe also claims its alert
(``alerts.claim_alert``): exactly one conditional write can win it. The winner publishes (the message
carries ``alert_id``), then marks the alert ``sent`` (a conditional UpdateItem that also moves the version
on). A crash anywhere leaves the claim ``pending``: Lambda's retry brings the same records back and
publishes it; a claim whose owner is gone is taken over once its lease (the function's timeout plus a
margin) has run out, by the next invocation touching the window or by the sweep of the ``pending-alerts``
index that every invocation runs. A second copy, with the same ``alert_id``, is only published when the
invocation cannot know SNS took the first: a crash between publishing and the ``sent`` mark, a lost
publish response retried, or a ``sent`` mark that fails after its retries.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import alerts
from lambdas.common.aws import Backoff, call_with_retries, conditional_write, deserialize, serialize
from lambdas.common.contract import NS_PER_SECOND, Aggregate, format_instant
from lambdas.common.log import log_event
from lambdas.common.service import Service

MAX_CONFLICTS = 8
"""Conditional writes a window may lose to another writer (with jittered backoff between) before its
records are failed."""
PENDING_INDEX = "pending-alerts"
"""Sparse index of the aggregates with a pending alert (hash ``alert_pending``, range ``alert_lease_until``)."""
SWEEP_LIMIT = 10
"""Expired claims one invocation takes over at most."""
DEFAULT_LEASE_SECONDS = 960
"""A claim's lease when none is configured: Lambda's longest timeout (900 s) and a minute."""

Fold = Callable[[Mapping[str, Any] | None, alerts.Claim], alerts.Folded]
"""Folds what an invocation learned about a window into its stored item (``None``: a new window)."""


@dataclass(frozen=True)
class Settings:
    environment: str
    segment_aggregates_table: str
    alert_topic_arn: str
    metric_namespace: str
    window_seconds: int
    claim_lease_seconds: int = DEFAULT_LEASE_SECONDS


@dataclass
class Settled:
    """What happened to one window."""

    ok: bool
    level: str | None = None
    """The aggregate's level, when this invocation wrote a change of it."""
    published: bool = False


class AlertState(Service[Settings]):
    def claim(self, owner: str, records: frozenset[str]) -> alerts.Claim:
        now_ns = self.clock()
        return alerts.Claim(
            environment=self.settings.environment,
            owner=owner,
            records=records,
            now=format_instant(now_ns),
            now_seconds=now_ns // NS_PER_SECOND,
            lease_seconds=self.settings.claim_lease_seconds,
        )

    def settle(
        self, window: alerts.WindowId, fold: Fold, existing: Mapping[str, Any] | None, claim: alerts.Claim
    ) -> Settled:
        """Fold, write conditionally (re-reading on conflict), publish a claimed alert, mark it sent.

        Any failure fails this window only; what was written stays written and the retry resumes."""
        written: alerts.Folded | None = None
        conflicts = Backoff(MAX_CONFLICTS, sleep=self.backoff.sleep, rng=self.backoff.rng)
        try:
            for _ in conflicts.pauses():  # jittered, so that contending invocations spread out
                folded = fold(existing, claim)
                if folded.item is None:
                    return Settled(ok=True)
                if not self._put(folded.item, existing):  # lost to another writer: re-read, re-fold
                    existing = self.get(window)
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

    def get(self, window: alerts.WindowId) -> dict[str, Any] | None:
        dynamodb = self.clients["dynamodb"]
        key = {"segment_id": {"S": window[0]}, "window_start": {"S": window[1]}}
        table = self.settings.segment_aggregates_table
        response = call_with_retries(
            self.backoff, lambda: dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
        )
        return deserialize(response["Item"]) if "Item" in response else None

    def _publish(self, window: alerts.WindowId, aggregate: Aggregate) -> None:
        s = self.settings
        subject, message = alerts.alert_message(s.environment, window, s.window_seconds, aggregate)
        sns = self.clients["sns"]
        call_with_retries(
            self.backoff, lambda: sns.publish(TopicArn=s.alert_topic_arn, Subject=subject, Message=message)
        )
        log_event("info", "alert_sent", alert_id=alerts.alert_id(s.environment, window),
                  level=aggregate.congestion_level)  # fmt: skip

    def _mark_sent(self, window: alerts.WindowId, claim: alerts.Claim) -> None:
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
                    ":sent": {"S": alerts.SENT},
                    ":pending": {"S": alerts.PENDING},
                    ":now": {"S": claim.now},
                    ":one": {"N": "1"},
                    ":id": {"S": alerts.alert_id(self.settings.environment, window)},
                },
            ),
        )

    def sweep(self, fold: Callable[[alerts.WindowId], Fold]) -> int:
        """Take over and publish pending alerts whose lease has run out (their owner is gone); ``fold(window)``
        folds nothing new into the window's item (it only claims)."""
        dynamodb = self.clients["dynamodb"]
        claim = self.claim(f"sweep:{uuid.uuid4()}", frozenset())
        try:
            response = call_with_retries(
                self.backoff,
                lambda: dynamodb.query(
                    TableName=self.settings.segment_aggregates_table,
                    IndexName=PENDING_INDEX,
                    KeyConditionExpression="alert_pending = :pending AND alert_lease_until <= :now",
                    ExpressionAttributeValues={
                        ":pending": {"S": alerts.PENDING},
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
            settled = self.settle(window, fold(window), item, claim)
            published += settled.published
        return published

    def publish_metrics(self, levels: Counter[str], sent: int) -> None:
        self.put_metric_data(self.settings.metric_namespace, alerts.metric_data(levels, sent))
