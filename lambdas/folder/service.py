"""The folder: partials in (the partials stream, ``ReportBatchItemFailures``); aggregates, metrics and one
alert per segment window out.

**One writer per segment window.** The processor puts a segment's partials under the segment id as
partition key, so they land on one shard of the partials stream, and Lambda runs one batch per partition
key at a time (also with a parallelization factor above 1). So a segment window's aggregate has one writer:
an invocation reads the aggregates of its batch (one consistent BatchGetItem), folds every piece it has not
folded before (``logic``: the aggregate's ``src`` marks), and puts each changed window once, conditional on
the version it read (``lambdas.common.alert_state``; in steady operation the condition never fails). The
alert of a window that reaches heavy or severe is claimed by that put, published, and marked sent;
the sweep of expired claims runs on every invocation.

**Failures.** A window whose read, put or publish fails reports its first record in ``batchItemFailures``
(Lambda resumes the shard from the lowest one; the windows folded meanwhile skip what they folded, by
``src``); a record that is not a partial is reported too, so that the retries end in the on-failure
destination, never silently dropped.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

from lambdas.common import alerts
from lambdas.common.alert_state import DEFAULT_LEASE_SECONDS, AlertState, Fold, Settings
from lambdas.common.aws import batch_get, deserialize
from lambdas.common.log import log_event
from lambdas.common.partials import sequence_key
from lambdas.folder import logic


def settings_from_env(env: Mapping[str, str] = os.environ) -> Settings:
    return Settings(
        environment=env["ENVIRONMENT_SUFFIX"],
        segment_aggregates_table=env["SEGMENT_AGGREGATES_TABLE"],
        alert_topic_arn=env["ALERT_TOPIC_ARN"],
        metric_namespace=env["METRIC_NAMESPACE"],
        window_seconds=int(env["WINDOW_SECONDS"]),
        claim_lease_seconds=int(env.get("CLAIM_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)),
    )


class Folder(AlertState):
    """The alert state's writer (``lambdas.common.alert_state``) with the folder's invocation around it."""

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        table = self.settings.segment_aggregates_table
        batch = logic.received(event)
        keys = [{"segment_id": {"S": seg}, "window_start": {"S": start}} for seg, start in batch.windows]
        found, unread = batch_get(self.clients["dynamodb"], {table: keys}, self.backoff) if keys else ({table: []}, {})
        stored = {(i["segment_id"]["S"], i["window_start"]["S"]): deserialize(i) for i in found[table]}
        failed = {(k["segment_id"]["S"], k["window_start"]["S"]) for k in unread.get(table, [])}

        levels: Counter[str] = Counter()
        sent = 0
        for window, change in batch.windows.items():
            if window in failed:
                continue
            claim = self.claim(change.sequence_numbers[0], frozenset(change.sequence_numbers))
            settled = self.settle(window, _folding(window, change), stored.get(window), claim)
            if settled.level:
                levels[settled.level] += 1
            sent += settled.published
            if not settled.ok:
                failed.add(window)
        sent += self.sweep(lambda window: _folding(window, logic.WindowPartials()))
        self.publish_metrics(levels, sent)
        failures = sorted(
            [batch.windows[w].sequence_numbers[0] for w in batch.windows if w in failed] + batch.unreadable,
            key=sequence_key,
        )
        if batch.unreadable:
            log_event("error", "records_not_partials", records=len(batch.unreadable))
        log_event("info", "partials_folded", windows=len(batch.windows), levels=dict(levels), alerts=sent,
                  failed=len(failures))  # fmt: skip
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failures]}


def _folding(window: alerts.WindowId, change: logic.WindowPartials) -> Fold:
    return lambda existing, claim: logic.fold(existing, window, change, claim)
