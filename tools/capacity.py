"""Will it carry our sensors, what will it cost a month, where does it break when we grow.

    python -m tools.capacity --env prod                       # the environment's declared fleet
    python -m tools.capacity --sensors 10000 --interval 20    # any fleet, on the prod profile's settings
    python -m tools.capacity --sensors 10000 --interval 20 --json
    python -m tools.capacity --sensors 10000 --interval 20 --standard-topics --on-demand   # the issue's design
    python -m tools.capacity --scale-table                    # Markdown: 1,000 to 1,000,000 sensors at 20 s
    python -m tools.capacity --env prod --provisioned-dynamodb 0.7 --reserved-share 0.5   # DynamoDB provisioned
    python -m tools.capacity --layouts                        # state layouts compared (docs/state-layout-v2.md)

The numbers come from ``stacks.capacity`` (pure arithmetic over constants measured on the real handlers,
``stacks/capacity_calibration.json``) and the dated price table ``prices/<region>.json``; nothing here
calls AWS or imports the provider, so an answer takes milliseconds. ``--json`` prints
``{"fleet": {...}, "capacity": {...}, "monthly_cost_usd": {"<component>": n, ..., "total": n},
"cost_per_million_readings_usd": n}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, TextIO

from stacks import capacity as cap
from stacks import state_layouts
from stacks.config import PROFILES, ConfigError

SCALE_SENSORS = (1_000, 10_000, 100_000, 1_000_000)
SCALE_INTERVAL_SECONDS = 20
DEFAULT_PROFILE = "prod"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", choices=sorted(PROFILES), help="environment profile (default: prod's settings)")
    parser.add_argument("--sensors", type=int, help="sensors (default: the environment's)")
    parser.add_argument("--interval", type=int, help="seconds between two readings of a sensor")
    parser.add_argument("--payload-bytes", type=int, help="bytes of one reading as published")
    parser.add_argument("--sensors-per-segment", type=int, help="sensors on the busiest segment")
    parser.add_argument(
        "--standard-topics",
        action="store_true",
        help="sensors publish through the message broker (billed messaging) instead of Basic Ingest, as deployed",
    )
    parser.add_argument("--on-demand", action="store_true", help="an on-demand stream instead of the profile's")
    parser.add_argument("--batching-window", type=int, help="processor batching window, seconds (0-300)")
    parser.add_argument(
        "--parallelization-factor",
        type=int,
        default=1,
        help="processor mapping, 1-10 (a what-if: the stack pins 1, the partials mark's and watermark's one writer)",
    )
    parser.add_argument("--sized", action="store_true", help="provisioned shards sized by the model")
    parser.add_argument(
        "--provisioned-dynamodb",
        type=float,
        metavar="TARGET",
        help="price DynamoDB as provisioned capacity with auto scaling at this target utilisation (0.2-0.9)",
    )
    parser.add_argument(
        "--reserved-share", type=float, default=0.0, help="with --provisioned-dynamodb: share reserved for a year (0-1)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--scale-table", action="store_true", help="print the scale table as Markdown")
    parser.add_argument(
        "--layouts",
        action="store_true",
        help="print the state layouts' bills and limits as Markdown (docs/state-layout-v2.md)",
    )
    parser.add_argument(
        "--onboarding", action="store_true", help="calls and one-off cost of onboarding the fleet, by claim and in bulk"
    )
    return parser


def fleet_and_pipeline(args: argparse.Namespace) -> tuple[cap.Fleet, cap.Pipeline]:
    """The fleet asked about (the environment's, with any field overridden) and the settings it runs on."""
    config = PROFILES[args.env or DEFAULT_PROFILE]
    declared = config.fleet
    fleet = cap.Fleet(
        args.sensors if args.sensors is not None else declared.sensors,
        args.interval if args.interval is not None else declared.reading_interval_seconds,
        args.payload_bytes if args.payload_bytes is not None else declared.payload_bytes,
        args.sensors_per_segment if args.sensors_per_segment is not None else declared.sensors_per_segment,
    )
    pipeline = replace(
        config.pipeline,
        parallelization_factor=args.parallelization_factor,
        ingest=cap.Ingest.TOPIC if args.standard_topics else config.pipeline.ingest,
    )
    if args.batching_window is not None:
        if not 0 <= args.batching_window <= 300:
            raise cap.CapacityError("batching_window_seconds", f"must be between 0 and 300, got {args.batching_window}")
        pipeline = replace(pipeline, batching_window_seconds=args.batching_window)
    if args.on_demand:
        pipeline = replace(pipeline, on_demand=True, shard_count=None)
    if args.provisioned_dynamodb is not None:
        pipeline = replace(
            pipeline,
            dynamodb_capacity=cap.DynamoDBCapacity.PROVISIONED,
            dynamodb_target_utilisation=args.provisioned_dynamodb,
            dynamodb_reserved_share=args.reserved_share,
        )
    return fleet, cap.sized(fleet, pipeline) if args.sized else pipeline


def answer(fleet: cap.Fleet, pipeline: cap.Pipeline, prices: cap.PriceTable) -> dict[str, Any]:
    """The ``--json`` document."""
    capacity = cap.model(fleet, pipeline)
    costs = cap.monthly_cost(capacity, prices)
    return {
        "fleet": asdict(fleet),
        "capacity": capacity.as_dict(),
        "monthly_cost_usd": costs,
        "cost_per_million_readings_usd": cap.cost_per_million_readings(capacity, costs),
        "athena": {
            "longest_scan_days": cap.ATHENA_LONGEST_SCAN_DAYS,
            "longest_scan_bytes": cap.longest_scan_bytes(capacity),
            "bytes_scanned_cutoff": cap.athena_cutoff_bytes(capacity),
        },
    }


def _pct(limit: cap.Limit) -> str:
    return f"{limit.utilisation:.0%}"


def report(fleet: cap.Fleet, pipeline: cap.Pipeline, prices: cap.PriceTable, out: TextIO) -> None:
    """The capacity and the monthly bill, as text."""
    c = cap.model(fleet, pipeline)
    s, p, w, f, g = c.stream, c.processor, c.sensor_windows, c.folder, c.segment_aggregates
    mode = "on demand" if pipeline.on_demand else f"{pipeline.shard_count} provisioned shard(s)"
    print(
        f"fleet: {fleet.sensors:,} sensors every {fleet.reading_interval_seconds} s, {fleet.payload_bytes} B "
        f"payloads, {fleet.sensors_per_segment} on the busiest segment: {c.readings_per_second:,.1f} readings/s, "
        f"{c.readings_per_month / 1e6:,.1f} million a month",
        file=out,
    )
    print(
        f"kinesis ({mode}): {s.records_per_second:,.1f} records/s, {s.write_bytes_per_second / 1024:,.1f} KB/s in, "
        f"{s.read_bytes_per_second / 1024:,.1f} KB/s out: {s.shards_required} shard(s) at "
        f"{cap.HEADROOM:.0%}; {s.shards} in use, {s.utilisation:.0%} loaded",
        file=out,
    )
    print(
        f"processor: {p.concurrency} concurrent batch(es); {p.readings_per_batch:,.1f} readings per batch every "
        f"{p.batch_period_seconds:,.2f} s, {p.items_per_batch:,.1f} window items, {p.requests_per_reading:.4f} "
        f"requests/reading; ~{p.seconds_per_batch:.3f} s per batch (budget {p.batch_period_seconds:.2f} s); a full "
        f"batch of {p.batch_records_max:,} ~{p.seconds_per_full_batch:.2f} s (arrives in "
        f"{p.full_batch_budget_seconds:,.1f} s)",
        file=out,
    )
    print(
        f"sensor windows: {w.item_writes_per_second:,.1f} item writes/s, {w.write_units_per_second:,.1f} WCU/s, "
        f"{w.read_units_per_second:,.1f} RCU/s ({w.write_units_per_item_write:.2f} WCU per write, items up to "
        f"{w.item_bytes_max:,.0f} B); a sensor's item {w.hottest_item_write_units_per_second:.3f} WCU/s; "
        f"~{w.partitions} partition(s), {w.stored_bytes / cap.GIB:,.1f} GB stored",
        file=out,
    )
    print(
        f"partials: {f.records_per_second:,.1f} records/s of ~{f.record_bytes:,.0f} B on {f.shards} shard(s); "
        f"folder: {f.concurrency} concurrent batch(es), {f.invocations_per_second:,.2f} invocations/s of "
        f"{f.records_per_invocation:,.0f} partials, {f.segment_windows_per_invocation:,.1f} segment windows each "
        f"(~{f.seconds_per_invocation:.2f} s of {f.seconds_between_invocations:.2f} s)",
        file=out,
    )
    print(
        f"segment aggregates: {g.item_writes_per_second:,.1f} puts/s, {g.write_units_per_second:,.1f} WCU/s; "
        f"busiest segment's aggregate {g.hottest_item_writes_per_second:.2f} writes/s x "
        f"{g.item_bytes_max:,.0f} B = {g.hottest_item_write_units_per_second:.2f} WCU/s of "
        f"{cap.DYNAMODB_PARTITION_WCU:,}",
        file=out,
    )
    print(
        f"lake: Firehose fills its 64 MB buffer in {c.lake.buffer_fill_seconds:,.0f} s, flushes every "
        f"{c.lake.flush_seconds:,.0f} s (by {c.lake.flushed_by}): {c.lake.objects_per_day:,.0f} Parquet objects/day",
        file=out,
    )
    gb = 1024**3
    print(
        f"athena: ~{c.lake.bytes_per_day / gb:,.2f} GB of Parquet a day; the longest named query "
        f"({cap.ATHENA_LONGEST_SCAN_DAYS} days) scans ~{cap.longest_scan_bytes(c) / gb:,.2f} GB; per-query cutoff "
        f"{cap.athena_cutoff_bytes(c) / gb:,.2f} GB"
        + (" (configured)" if pipeline.athena_bytes_scanned_cutoff is not None else " (sized from the lake)"),
        file=out,
    )
    silent = pipeline.silence_factor * fleet.reading_interval_seconds
    print(
        f"batching: a sensor's newest accepted reading <= {cap.newest_reading_age_seconds(c):,.0f} s old (the "
        f"contract calls it silent at {silent:,} s); a reading in its segment aggregate within "
        f"{cap.alert_delay_seconds(c):,.0f} s (window {pipeline.aggregation_window_seconds:,} s)",
        file=out,
    )
    print(
        f"iot: {c.ingestion.message_units_per_message} message unit(s) per reading, "
        f"{c.ingestion.billed_message_units_per_month / 1e6:,.1f} million billed a month ({pipeline.ingest.value})",
        file=out,
    )
    print("\nlimits, closest first:", file=out)
    for limit in sorted(c.limits, key=lambda limit: -limit.utilisation):
        flag = "EXCEEDED" if limit.exceeded else "ok"
        print(f"  {_pct(limit):>7} {flag:8} {limit.name} [{limit.field}]", file=out)
        if limit.exceeded:
            print(f"          change: {limit.change}", file=out)
    print(f"\nmonthly cost, {prices.region} prices of {prices.date}:", file=out)
    for line in cap.bill(c, prices):
        print(f"  {line.component:24} {line.quantity:>18,.2f} {line.usage:58} ${line.usd:>12,.2f}", file=out)
    costs = cap.monthly_cost(c, prices)
    print(f"  {'total':24} {'':>18} {'':58} ${costs['total']:>12,.2f}", file=out)
    print(f"  per million readings: ${cap.cost_per_million_readings(c, costs):,.4f}", file=out)


def scale_table(profile: str, prices: cap.PriceTable) -> str:
    """Markdown: each size at 20 s as deployed (``profile``'s settings, Basic Ingest, a provisioned stream
    of the shards :func:`stacks.capacity.sized` gives it) next to the naive design, and the limit each
    size meets first with the change that moves it."""
    config = PROFILES[profile]
    head = (
        "| sensors | readings / month | shards | processor concurrency | folder concurrency "
        "| DynamoDB writes/s (windows + aggregates) | WCU/s | monthly | $ / M readings "
        "| naive: DynamoDB writes/s | naive: monthly | naive: $ / M readings "
        "| first limit | change that moves it | also exceeded |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"
    )
    rows = [head]
    for sensors in SCALE_SENSORS:
        fleet = replace(config.fleet, sensors=sensors, reading_interval_seconds=SCALE_INTERVAL_SECONDS)
        ours = cap.model(fleet, cap.sized(fleet, config.pipeline))
        naive = cap.model(fleet, config.pipeline.naive())
        costs = [cap.monthly_cost(c, prices) for c in (ours, naive)]
        per_million = [cap.cost_per_million_readings(c, k) for c, k in zip((ours, naive), costs, strict=True)]
        first = ours.first_limit
        state = "exceeded" if first.exceeded else "used"
        others = [f"`{limit.field}` ({limit.utilisation:.0%})" for limit in ours.limits
                  if limit.exceeded and limit is not first]  # fmt: skip
        windows, aggregates = ours.sensor_windows, ours.segment_aggregates
        rows.append(
            f"| {sensors:,} | {ours.readings_per_month / 1e6:,.0f} M | {ours.stream.shards} "
            f"| {ours.processor.concurrency} | {ours.folder.concurrency} "
            f"| {windows.item_writes_per_second + aggregates.item_writes_per_second:,.0f} "
            f"({windows.item_writes_per_second:,.0f} + {aggregates.item_writes_per_second:,.0f}) "
            f"| {windows.write_units_per_second + aggregates.write_units_per_second:,.0f} "
            f"| ${costs[0]['total']:,.0f} | ${per_million[0]:.3f} "
            f"| {naive.sensor_windows.item_writes_per_second:,.0f} | ${costs[1]['total']:,.0f} | ${per_million[1]:.3f} "
            f"| {first.name} [`{first.field}`]: {first.utilisation:.0%} {state} | {first.change} "
            f"| {', '.join(others) or '-'} |"
        )
    notes = (
        f"\nEach size reads every {SCALE_INTERVAL_SECONDS} s with {config.fleet.payload_bytes} B payloads and "
        f"{config.fleet.sensors_per_segment} sensors per segment, on the `{profile}` profile's settings as deployed: "
        f"sensors publish through Basic Ingest, the processor gathers batches for "
        f"{config.batching_window_seconds} s (`batching_window_seconds`), on a provisioned stream of the shards "
        "the model asks for (`shard_count`: enough for the throughput at 80 % and for a lane's batch to span the "
        "batching window). *Naive design*: standard IoT messaging, one PutItem per reading (one after another "
        "in the processor), an on-demand stream. *First limit*: the limit the size is closest to, or furthest "
        "past. Prices: "
        f"`prices/{prices.region}.json` of {prices.date}. Generated by `python -m tools.capacity --scale-table`."
    )
    return "\n".join(rows) + "\n" + notes


def print_onboarding(sensors: int, config: Any, prices: cap.PriceTable, out: TextIO) -> None:
    """Onboarding ``sensors`` both ways: AWS calls, registry operations, messages and the one-off cost."""
    print(f"onboarding {sensors:,} sensors (prices {prices.region}, {prices.date}):", file=out)
    for way in ("claim", "bulk"):
        o = cap.onboarding(way, sensors, prices, hook_memory_mb=config.onboarding.hook.memory_mb)
        print(
            f"  {way:5}  {o.api_calls:>12,} AWS calls  {o.registry_operations:>12,} registry operations  "
            f"{o.messages:>12,} MQTT messages  ${o.usd:,.2f} once",
            file=out,
        )


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = PROFILES[args.env or DEFAULT_PROFILE]
        prices = cap.prices_for(config.region)
        if args.scale_table:
            print(scale_table(args.env or DEFAULT_PROFILE, prices), file=out)
            return 0
        if args.onboarding:
            print_onboarding(args.sensors if args.sensors is not None else config.sensors, config, prices, out)
            return 0
        fleet, pipeline = fleet_and_pipeline(args)
    except (cap.CapacityError, ConfigError) as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 2
    if args.layouts:
        print(state_layouts.report(fleet, pipeline, prices), file=out)
    elif args.json:
        print(json.dumps(answer(fleet, pipeline, prices), indent=2), file=out)
    else:
        report(fleet, pipeline, prices, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
