"""Will it carry our sensors, what will it cost a month, where does it break when we grow.

    python -m tools.capacity --env prod                       # the environment's declared fleet
    python -m tools.capacity --sensors 10000 --interval 20    # any fleet, on the prod profile's settings
    python -m tools.capacity --sensors 10000 --interval 20 --json
    python -m tools.capacity --scale-table                    # Markdown: 1,000 to 1,000,000 sensors at 20 s

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
    parser.add_argument("--basic-ingest", action="store_true", help="sensors publish through Basic Ingest")
    parser.add_argument("--parallelization-factor", type=int, default=1, help="processor mapping, 1-10")
    parser.add_argument("--sized", action="store_true", help="provisioned shards sized by the model")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--scale-table", action="store_true", help="print the scale table as Markdown")
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
        ingest=cap.Ingest.BASIC_INGEST if args.basic_ingest else cap.Ingest.TOPIC,
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
    }


def _pct(limit: cap.Limit) -> str:
    return f"{limit.utilisation:.0%}"


def report(fleet: cap.Fleet, pipeline: cap.Pipeline, prices: cap.PriceTable, out: TextIO) -> None:
    """The capacity and the monthly bill, as text."""
    c = cap.model(fleet, pipeline)
    s, p, w, a, g = c.stream, c.processor, c.sensor_windows, c.alert, c.segment_aggregates
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
        f"alert: {a.concurrency} concurrent batch(es), {a.invocations_per_second:,.2f} invocations/s of "
        f"{a.changes_per_invocation:,.0f} changes, {a.segment_windows_per_invocation:,.1f} segment windows each "
        f"(~{a.seconds_per_invocation:.2f} s of {a.seconds_between_invocations:.2f} s)",
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
    """Markdown: each size at 20 s on ``profile``'s settings with shards sized by the model, as deployed
    (standard topics), with Basic Ingest, and the naive design; and the limit each size meets first."""
    config = PROFILES[profile]
    head = (
        "| sensors | readings / month | shards | processor concurrency | alert concurrency "
        "| DynamoDB window writes/s | WCU/s | monthly (as deployed) | $ / M readings | with Basic Ingest "
        "| $ / M readings | naive design | $ / M readings | first limit | change that moves it | also exceeded |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"
    )
    rows = [head]
    for sensors in SCALE_SENSORS:
        fleet = replace(config.fleet, sensors=sensors, reading_interval_seconds=SCALE_INTERVAL_SECONDS)
        ours = cap.sized(fleet, config.pipeline)
        deployed = cap.model(fleet, ours)
        basic = cap.model(fleet, replace(ours, ingest=cap.Ingest.BASIC_INGEST))
        naive = cap.model(fleet, config.pipeline.naive())
        costs = [cap.monthly_cost(c, prices) for c in (deployed, basic, naive)]
        per_million = [
            cap.cost_per_million_readings(c, k) for c, k in zip((deployed, basic, naive), costs, strict=True)
        ]
        first = deployed.first_limit
        state = "exceeded" if first.exceeded else "used"
        others = [f"`{limit.field}` ({limit.utilisation:.0%})" for limit in deployed.limits
                  if limit.exceeded and limit is not first]  # fmt: skip
        rows.append(
            f"| {sensors:,} | {deployed.readings_per_month / 1e6:,.0f} M | {deployed.stream.shards} "
            f"| {deployed.processor.concurrency} | {deployed.alert.concurrency} "
            f"| {deployed.sensor_windows.item_writes_per_second:,.0f} "
            f"| {deployed.sensor_windows.write_units_per_second:,.0f} "
            f"| ${costs[0]['total']:,.0f} | ${per_million[0]:.3f} | ${costs[1]['total']:,.0f} | ${per_million[1]:.3f} "
            f"| ${costs[2]['total']:,.0f} | ${per_million[2]:.3f} "
            f"| {first.name} [`{first.field}`]: {first.utilisation:.0%} {state} | {first.change} "
            f"| {', '.join(others) or '-'} |"
        )
    notes = (
        f"\nEach size reads every {SCALE_INTERVAL_SECONDS} s with {config.fleet.payload_bytes} B payloads and "
        f"{config.fleet.sensors_per_segment} sensors per segment, on the `{profile}` profile's settings with a "
        "provisioned stream of the shards the model asks for (`shard_count`). *As deployed*: sensors publish on "
        "standard topics (`stacks/ingestion.py`), so IoT messaging is billed; *with Basic Ingest*: the same on "
        "`$aws/rules/...` topics. *Naive design*: standard messaging, one PutItem per reading (done one after "
        "another by the processor), an on-demand stream. Prices: "
        f"`prices/{prices.region}.json` of {prices.date}. Generated by `python -m tools.capacity --scale-table`."
    )
    return "\n".join(rows) + "\n" + notes


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = PROFILES[args.env or DEFAULT_PROFILE]
        prices = cap.prices_for(config.region)
        if args.scale_table:
            print(scale_table(args.env or DEFAULT_PROFILE, prices), file=out)
            return 0
        fleet, pipeline = fleet_and_pipeline(args)
    except (cap.CapacityError, ConfigError) as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer(fleet, pipeline, prices), indent=2), file=out)
    else:
        report(fleet, pipeline, prices, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
