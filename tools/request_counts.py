"""AWS requests the functions make per batch, counted with botocore's ``before-call`` hook on moto.

The real handlers run against moto-backed clients; every request any of them sends is counted by
service and operation before it leaves botocore. The counts depend only on the batch, so
``tests/test_request_counts.py`` asserts them and ``make bench`` reports them.

    python -m tools.request_counts        # prints the table
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lambdas.alert.service import Alerter
from lambdas.alert.service import Settings as AlertSettings
from lambdas.common.aws import Backoff, Clients
from lambdas.common.contract import parse_instant
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from stacks.config import PROFILES
from stacks.layout import ALERT_BATCH_SIZE, alert_environment, processor_environment
from tools.simulate import Targets, dynamodb_stream_records, in_moto, payload_event

NOW_NS = parse_instant("2026-06-01T12:00:00Z")
SERVICES = ("dynamodb", "s3", "cloudwatch", "sns")


@contextmanager
def counting(clients: Clients) -> Iterator[Counter[str]]:
    """Count every request sent through ``clients`` while the block runs, as ``service:Operation``."""
    counts: Counter[str] = Counter()
    handlers = []
    for service in SERVICES:
        client = clients[service]

        def count(model: Any, service: str = service, **_: Any) -> None:
            counts[f"{service}:{model.name}"] += 1

        client.meta.events.register("before-call.*.*", count)
        handlers.append((client, count))
    try:
        yield counts
    finally:
        for client, handler in handlers:
            client.meta.events.unregister("before-call.*.*", handler)


def reading(sensor: int, segment: int, minute: int) -> bytes:
    return json.dumps(
        {
            "sensor_id": f"sensor-{sensor:04d}",
            "segment_id": f"seg-{segment:03d}",
            "timestamp": f"2026-06-01T11:{minute:02d}:00Z",
            "vehicle_count": 12,
            "average_speed_kmh": 20.0,
            "occupancy_percent": 55.0,
        }
    ).encode()


def distinct_sensors(n: int = 1000) -> list[bytes]:
    """``n`` readings of ``n`` sensors: every reading is its own item (the worst case)."""
    return [reading(i, i // 10, 50) for i in range(n)]


def sensors_over_minutes(sensors: int = 100, minutes: int = 10) -> list[bytes]:
    """One reading per sensor and minute: a typical batch (readings share window items)."""
    return [reading(s, s // 4, 50 + m % 10) for m in range(minutes) for s in range(sensors)]


def with_rejects(payloads: list[bytes], every: int = 20) -> list[bytes]:
    """A malformed record inserted after every ``every`` readings."""
    mixed: list[bytes] = []
    for index, payload in enumerate(payloads, start=1):
        mixed.append(payload)
        if index % every == 0:
            mixed.append(b"{not json")
    return mixed


@dataclass(frozen=True)
class Measured:
    scenario: str
    readings: int
    invocations: int
    counts: dict[str, int]

    def service(self, name: str) -> int:
        return sum(n for key, n in self.counts.items() if key.startswith(f"{name}:"))

    def per_thousand(self, name: str) -> float:
        return self.service(name) * 1000 / self.readings if self.readings else 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    payloads: Callable[[], list[bytes]]
    valid: int
    """Valid readings in the batch (the denominator of "per 1,000 valid readings")."""


SCENARIOS = (
    Scenario("processor: 1,000 readings of 1,000 sensors", distinct_sensors, 1000),
    Scenario("processor: 1,000 readings, 100 sensors x 10 min", sensors_over_minutes, 1000),
    Scenario("processor: 1,000 readings + 50 malformed records", lambda: with_rejects(distinct_sensors()), 1000),
)


def _processor(clients: Clients, targets: Targets) -> Processor:
    settings = ProcessorSettings.from_env(processor_environment(targets.runtime_names(), PROFILES["dev"]))
    return Processor(settings, clients=clients, backoff=Backoff(sleep=lambda _: None), clock=lambda: NOW_NS)


def _alerter(clients: Clients, targets: Targets) -> Alerter:
    settings = AlertSettings.from_env(alert_environment(targets.runtime_names(), PROFILES["dev"]))
    return Alerter(settings, clients=clients, backoff=Backoff(sleep=lambda _: None))


def processor_scenario(scenario: Scenario) -> Measured:
    with in_moto("dev", PROFILES["dev"]) as (clients, targets):
        fn = _processor(clients, targets)
        with counting(clients) as counts:
            response = fn.handle(payload_event(scenario.payloads()))
        if response["batchItemFailures"]:
            raise AssertionError(f"{scenario.name}: records failed: {response}")
        return Measured(scenario.name, scenario.valid, 1, dict(counts))


def alert_scenario() -> Measured:
    """The window changes of 1,000 sensors' readings, in alert invocations of the mapping's batch size."""
    with in_moto("dev", PROFILES["dev"]) as (clients, targets):
        _processor(clients, targets).handle(payload_event(distinct_sensors()))
        changes = dynamodb_stream_records(clients, targets.sensor_windows_table)
        fn = _alerter(clients, targets)
        invocations = 0
        with counting(clients) as counts:
            for start in range(0, len(changes), ALERT_BATCH_SIZE):
                invocations += 1
                response = fn.handle({"Records": changes[start : start + ALERT_BATCH_SIZE]})
                if response["batchItemFailures"]:
                    raise AssertionError(f"alert: changes failed: {response}")
        name = f"alert: {len(changes):,} window changes, batches of {ALERT_BATCH_SIZE:,}"
        return Measured(name, 1000, invocations, dict(counts))


def measure() -> list[Measured]:
    return [*(processor_scenario(s) for s in SCENARIOS), alert_scenario()]


def main() -> int:
    for measured in measure():
        calls = ", ".join(f"{key} {n}" for key, n in sorted(measured.counts.items()))
        print(f"{measured.scenario}: {measured.invocations} invocation(s): {calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
