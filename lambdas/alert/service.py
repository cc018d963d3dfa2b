"""The alert function: segment window changes in; aggregates, metrics and one alert per window out.

Per invocation: one BatchGetItem for the aggregates of the changed windows, BatchWriteItem for the
changed aggregates, one SNS message per window entering heavy or severe congestion, one PutMetricData.

A segment's stream records all come from one table partition, which Lambda reads in order, one batch at
a time: this function is the only writer of a segment's aggregates, so plain batch writes are safe. The
alert is claimed in the aggregate item before it is published and given back if publishing fails, so a
retry sends it once.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.alert import logic
from lambdas.common.aws import Backoff, Clients, batch_get, batch_write, call_with_retries, deserialize, serialize
from lambdas.common.contract import format_instant
from lambdas.common.log import log_event


@dataclass(frozen=True)
class Settings:
    environment: str
    segment_aggregates_table: str
    alert_topic_arn: str
    metric_namespace: str
    window_seconds: int
    ttl_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            environment=env["ENVIRONMENT_SUFFIX"],
            segment_aggregates_table=env["SEGMENT_AGGREGATES_TABLE"],
            alert_topic_arn=env["ALERT_TOPIC_ARN"],
            metric_namespace=env["METRIC_NAMESPACE"],
            window_seconds=int(env["WINDOW_SECONDS"]),
            ttl_days=int(env["AGGREGATE_TTL_DAYS"]),
        )


class Alerter:
    def __init__(self, settings: Settings, clients: Clients | None = None, backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.clients = clients or Clients()
        self.backoff = backoff or Backoff()

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        s = self.settings
        table = s.segment_aggregates_table
        dynamodb = self.clients["dynamodb"]
        changes = logic.changed_windows(event)
        keys = [{"segment_id": {"S": seg}, "window_start": {"S": start}} for seg, start in changes]
        found, unread = batch_get(dynamodb, {table: keys}, self.backoff)
        stored = {(i["segment_id"]["S"], i["window_start"]["S"]): deserialize(i) for i in found[table]}
        failed = {(k["segment_id"]["S"], k["window_start"]["S"]) for k in unread.get(table, [])}

        now = format_instant(time.time_ns())
        levels: Counter[str] = Counter()
        writes: list[tuple[logic.WindowId, logic.Folded]] = []
        for window, change in changes.items():
            if window in failed:
                continue
            folded = logic.fold(
                stored.get(window), window, change, window_seconds=s.window_seconds, ttl_days=s.ttl_days, now=now
            )
            if folded.item is not None:
                writes.append((window, folded))
                levels[folded.aggregate.congestion_level] += 1
        not_written = set(batch_write(dynamodb, [(table, serialize(f.item or {})) for _, f in writes], self.backoff))
        alerts = 0
        for index, (window, folded) in enumerate(writes):
            if index in not_written:
                failed.add(window)
            elif folded.alert:
                if self._publish(window, folded):
                    alerts += 1
                else:
                    failed.add(window)
        self._publish_metrics(levels, alerts)
        failures = [changes[w].sequence_numbers[0] for w in changes if w in failed]
        log_event("info", "windows_processed", windows=len(changes), levels=dict(levels), alerts=alerts,
                  failed=len(failures))  # fmt: skip
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failures]}

    def _publish(self, window: logic.WindowId, folded: logic.Folded) -> bool:
        s = self.settings
        subject, message = logic.alert_message(s.environment, window, s.window_seconds, folded.aggregate)
        sns = self.clients["sns"]
        try:
            call_with_retries(
                self.backoff, lambda: sns.publish(TopicArn=s.alert_topic_arn, Subject=subject, Message=message)
            )
        except (ClientError, BotoCoreError) as error:
            log_event("error", "alert_failed", segment_id=window[0], window_start=window[1], error=str(error))
            # Give the claim back, so that the retry of this window sends the alert.
            item = serialize(logic.without_alert(folded.item or {}))
            batch_write(self.clients["dynamodb"], [(s.segment_aggregates_table, item)], self.backoff)
            return False
        log_event("info", "alert_sent", segment_id=window[0], window_start=window[1],
                  level=folded.aggregate.congestion_level)  # fmt: skip
        return True

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
