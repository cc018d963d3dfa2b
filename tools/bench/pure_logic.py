"""The pure-logic measurement: the processor's logic and the folding of its sums on one batch, with no I/O.

``tools.bench.report`` reports it (``make bench``: the pure-logic rows) and ``tools.bench.request_counts``
calibrates the capacity model's CPU time per reading with it; neither imports the other.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from lambdas.common.contract import NS_PER_SECOND, Aggregate, Sums, parse_instant, total
from lambdas.processor import logic
from stacks.config import PROFILES
from tools.local.simulate import generate, payload_event

NOW_NS = parse_instant("2026-06-01T12:00:00Z")
WINDOW_SECONDS = PROFILES["prod"].aggregation_window_seconds
TTL_DAYS = PROFILES["prod"].lifecycle.aggregate_ttl_days
MAX_READING_AGE_NS = PROFILES["prod"].max_reading_age_seconds * NS_PER_SECOND


def pure_pipeline(event: Mapping[str, Any]) -> dict[tuple[str, str], Aggregate]:
    """The processor's pure logic and the folding of its sums on one batch, without I/O: decode, validate
    (quarantine decisions included), merge into window items, fold the items' exact sums into each segment's
    aggregate and its congestion level."""
    classified = logic.classify(logic.records_from_event(event), MAX_READING_AGE_NS)
    by_window: dict[logic.WindowId, list[logic.Contribution]] = {}
    for record, reading in classified.readings:
        by_window.setdefault(logic.window_of(reading, WINDOW_SECONDS), []).append(
            logic.Contribution(record.sequence_number, record.shard_id, reading)
        )
    segments: dict[tuple[str, str], list[Sums]] = defaultdict(list)
    for window, contributions in by_window.items():
        merge = logic.merge_window(
            [None], contributions, window=window, window_seconds=WINDOW_SECONDS, ttl_days=TTL_DAYS
        )
        for segment, sums in merge.sums:
            segments[(segment, window[1])].append(sums)
    return {window: total(sums).aggregate() for window, sums in segments.items()}


def bench_event(n: int) -> dict[str, Any]:
    """The Kinesis event of ``n`` realistic records (200 sensors, one reading a minute, ~2 % duplicates
    and bad records), each with the partition key its topic gives it."""
    minutes = n // 200 + 2
    messages = generate(200, minutes, start_ns=NOW_NS - minutes * 60 * 10**9, now_ns=NOW_NS)[:n]
    return payload_event([m.payload for m in messages], partition_keys=[m.thing for m in messages])


def throughput(n: int, repeats: int) -> float:
    event = bench_event(n)
    for _ in range(max(3, repeats // 5)):
        pure_pipeline(event)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        pure_pipeline(event)
        times.append(time.perf_counter() - started)
    return n / statistics.median(times)
