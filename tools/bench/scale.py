"""The parallel local run at scale, in a process of its own (``tools.bench``'s ``scale`` section).

    python -m tools.bench.scale [--sensors 100000] [--minutes 10] [--shards 8] --output scale.json

Generates ``--sensors`` sensors' readings, one a minute for ``--minutes`` (``tools.local.simulate.generate``:
four sensors a segment, ~2 % duplicates and bad records), and puts them through the whole local run
(``tools.local.simulate.run_in_moto``) as ``python -m tools.local.simulate --shards N --parallel --check-every 60``
does: one processor lane per Kinesis shard and one folder lane per partials shard, each on its own thread, a
minute of readings at a time with the silence check after each minute, as its schedule runs it while the
data flows (the run then holds one minute's records and partials at a time, not all of them). Writes the run's
summary (without its per-segment and per-alert lists), the wall time of each step and this process's
peak resident memory (``VmHWM``) as JSON: the bench reads them and compares the requests the
functions sent with the capacity model (``tools.bench.request_counts.scale_comparison``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lambdas.common.contract import parse_instant
from stacks.config import PROFILES
from tools.local import simulate

NOW = "2026-06-01T12:00:00Z"
ENVIRONMENT = "dev"
SENSORS = 100_000
MINUTES = 10
SHARDS = 8
CHECK_EVERY_SECONDS = 60
INTERVAL_SECONDS = 60
SENSORS_PER_SEGMENT = 4
"""What ``tools.local.simulate.generate`` makes: one reading a minute per sensor, four sensors a segment."""
DROPPED = ("segments", "alerts", "congested_windows", "silent_sensors")
"""Summary lists replaced by their lengths in the output (tens of thousands of entries at scale)."""


def peak_rss_kib() -> int:
    """This process's own peak resident set size (``VmHWM``)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def run(sensors: int = SENSORS, minutes: int = MINUTES, shards: int = SHARDS) -> dict[str, Any]:
    """The local run of ``sensors`` x ``minutes`` readings on ``shards`` shards, in parallel."""
    config = PROFILES[ENVIRONMENT]
    now_ns = parse_instant(NOW)
    started = time.perf_counter()
    messages = simulate.generate(sensors, minutes, start_ns=simulate.first_minute(now_ns, minutes), now_ns=now_ns)
    generated = time.perf_counter() - started
    payload_bytes = sum(len(m.payload) for m in messages) / len(messages)
    options = simulate.RunOptions(messages, now_ns, config.batch_size, config, parallel=True)
    options.check_every_seconds = CHECK_EVERY_SECONDS
    summary = simulate.run_in_moto(ENVIRONMENT, options, shards)
    seconds = time.perf_counter() - started
    found: dict[str, Any] = {k: v for k, v in summary.items() if k not in DROPPED}
    found |= {f"{k}_count": len(summary[k]) for k in DROPPED if isinstance(summary.get(k), list | dict)}
    found["run"] = {k: v for k, v in summary["run"].items() if k != "metrics"}
    return {
        "sensors": sensors,
        "minutes": minutes,
        "shards": shards,
        "check_every_seconds": CHECK_EVERY_SECONDS,
        "interval_seconds": INTERVAL_SECONDS,
        "sensors_per_segment": SENSORS_PER_SEGMENT,
        "environment": ENVIRONMENT,
        "payload_bytes": round(payload_bytes, 1),
        "generate_seconds": round(generated, 3),
        "seconds": round(seconds, 3),
        "peak_rss_kib": peak_rss_kib(),
        "balanced": simulate.balanced(summary),
        "summary": found,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sensors", type=int, default=SENSORS)
    parser.add_argument("--minutes", type=int, default=MINUTES)
    parser.add_argument("--shards", type=int, default=SHARDS)
    parser.add_argument("--output", type=Path, required=True, help="write the result (JSON) here")
    args = parser.parse_args(argv)
    logging.getLogger("tap").setLevel(logging.WARNING)  # the handlers' per-batch log lines
    result = run(args.sensors, args.minutes, args.shards)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0 if result["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
