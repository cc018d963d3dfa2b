"""Requests one run of the silence check sends, for a fleet of any size, counted on moto.

The fleet reports every 60 s. Each sensor's last reading of the 11:55 window and its newest reading
(12:02, in the 12:00 window) go through the real processor, as two batches; ``silent`` of the sensors
stopped after 11:59 instead (silent from 12:02:00 to 12:02:59, by their phase). Every run polls the whole
fleet (``lambdas.silence``: the registry's 64 hash shards, the shards' watermarks, each sensor's head item
of the run's window or the one before, 100 a BatchGetItem), so the count is the same whatever the
minute; three runs on their schedule:

- 12:02:30, the first: the stopped sensors silent by then get their outage (a strong re-read each, the
  claim, the alert, the ``sent`` mark);
- 12:03:30: the rest of the stopped sensors;
- 12:04:30: nothing new (an open outage polled from a window head is read again, by a Query).

Every request is counted by botocore's ``before-call`` hook (``tools.local.simulate.counting_requests``);
moto runs with the local run's speed-ups (``tools.local.moto_speedups``), which change no count.

    python -m tools.bench.silence_requests --sensors 100000 --silent 100
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from lambdas.common.aws import Backoff
from lambdas.common.contract import NS_PER_SECOND, format_instant, parse_instant
from lambdas.common.log import logger as tap_logger
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from lambdas.silence.service import Settings as SilenceSettings
from lambdas.silence.service import SilenceCheck
from stacks.config import PROFILES
from stacks.layout import processor_environment, silence_environment
from tools.local import moto_speedups, simulate

RUNS = ("2026-06-01T12:02:30Z", "2026-06-01T12:03:30Z", "2026-06-01T12:04:30Z")
BATCH = 10_000
SENSORS, SILENT = 100_000, 100
"""The bench's fleet: 100,000 sensors, 100 of them stopped."""


def _payload(sensor: str, second: int) -> bytes:
    stamp = format_instant(second * NS_PER_SECOND)[:19] + "Z"
    return json.dumps(
        {
            "sensor_id": sensor,
            "segment_id": f"seg-{sensor[-4:]}",
            "timestamp": stamp,
            "vehicle_count": 12,
            "average_speed_kmh": 48.5,
            "occupancy_percent": 11.0,
        }
    ).encode()


def measure(sensors: int, silent: int) -> dict[str, Any]:
    """Each run's requests by ``service:Operation``, what it found, and how long seeding took."""
    config = PROFILES["dev"]
    base = parse_instant("2026-06-01T11:59:00Z") // NS_PER_SECOND
    names = [f"sensor-{i:06d}" for i in range(sensors)]
    batches = [
        (base + 60, [simulate.Message(n, _payload(n, base + i % 60)) for i, n in enumerate(names)]),
        (base + 240, [simulate.Message(n, _payload(n, base + 180 + i % 60)) for i, n in enumerate(names[silent:])]),
    ]
    tap_logger.setLevel(logging.WARNING)
    moto_speedups.install()  # as the local run does: moto's speed, not what it stores or counts
    started = time.monotonic()
    with simulate.in_moto("dev", config) as (clients, targets), simulate.atomic_requests():
        settings = ProcessorSettings.from_env(processor_environment(targets.runtime_names(), config))
        for processed_at, messages in batches:
            processor = Processor(
                settings, clients=clients, backoff=Backoff(), clock=lambda t=processed_at: t * NS_PER_SECOND
            )
            for start in range(0, len(messages), BATCH):
                chunk = messages[start : start + BATCH]
                records = [{"SequenceNumber": f"{start + i:056d}", "PartitionKey": m.thing, "Data": m.payload,
                            "ApproximateArrivalTimestamp": None} for i, m in enumerate(chunk)]  # fmt: skip
                event = simulate.kinesis_event(
                    "shardId-000000000000", records, config.region, "arn", processed_at * NS_PER_SECOND
                )
                assert processor.handle(event) == {"batchItemFailures": []}
        seeded = time.monotonic() - started
        check_settings = SilenceSettings.from_env(silence_environment(targets.runtime_names(), config))
        runs = []
        for at in RUNS:
            check = SilenceCheck(check_settings, clients=clients, clock=lambda at=at: parse_instant(at))
            with simulate.counting_requests(clients, simulate.FUNCTION_SERVICES) as counted:
                t0 = time.monotonic()
                result = check.handle({})
                seconds = time.monotonic() - t0
            runs.append({"at": at, "requests": dict(sorted(counted.items())), "total": sum(counted.values()),
                         "outages": len(result["outages"]), "silent_sensors": result["silent_sensors"],
                         "seconds": round(seconds, 2)})  # fmt: skip
    return {"sensors": sensors, "silent": silent, "seed_seconds": round(seeded, 1), "runs": runs}


def main(argv: Sequence[str] | None = None) -> int:
    prog = "python -m tools.bench.silence_requests"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--sensors", type=int, default=SENSORS)
    parser.add_argument("--silent", type=int, default=SILENT)
    args = parser.parse_args(argv)
    if not 0 <= args.silent <= args.sensors:
        print("--silent must be between 0 and --sensors", file=sys.stderr)
        return 2
    print(json.dumps(measure(args.sensors, args.silent), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
