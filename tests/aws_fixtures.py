"""moto-backed AWS for handler tests: the environment's resources, created from the stack's definitions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from lambdas.common.aws import Backoff, Clients
from lambdas.common.contract import parse_instant
from lambdas.folder.service import Folder, settings_from_env
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from stacks.config import PROFILES
from stacks.layout import folder_environment, processor_environment
from tools.local.simulate import Targets, in_moto, payload_event

NOW = parse_instant("2026-06-01T12:00:00Z")
"""Processing time of the handler tests."""


@dataclass
class Env:
    clients: Clients
    targets: Targets
    sleeps: list[float] = field(default_factory=list)

    def backoff(self, attempts: int = 6) -> Backoff:
        return Backoff(attempts=attempts, sleep=self.sleeps.append)

    def processor(self, attempts: int = 6) -> Processor:
        """The processor on these resources, configured as the stack configures it, at ``NOW``."""
        settings = ProcessorSettings.from_env(processor_environment(self.targets.runtime_names(), PROFILES["dev"]))
        return Processor(settings, clients=self.clients, backoff=self.backoff(attempts), clock=lambda: NOW)

    def folder(self, attempts: int = 3) -> Folder:
        settings = settings_from_env(folder_environment(self.targets.runtime_names(), PROFILES["dev"]))
        return Folder(settings, clients=self.clients, backoff=self.backoff(attempts))


@contextmanager
def moto_env(suffix: str = "dev") -> Iterator[Env]:
    config = PROFILES.get(suffix) or PROFILES["dev"].with_name(suffix)
    with in_moto(suffix, config) as (clients, targets):
        yield Env(clients, targets)


def kinesis_event(
    payloads: list[bytes], first_sequence: int = 1, partition_keys: list[str] | None = None
) -> dict[str, Any]:
    """A Kinesis event exactly as Lambda delivers it (see ``tools.local.simulate.payload_event``)."""
    return payload_event(payloads, first_sequence=first_sequence, partition_keys=partition_keys)


def reading(
    sensor: str,
    segment: str,
    timestamp: str,
    *,
    vehicles: int = 10,
    speed: float = 45.0,
    occupancy: float = 12.0,
    **extra: Any,
) -> bytes:
    return json.dumps(
        {
            "sensor_id": sensor,
            "segment_id": segment,
            "timestamp": timestamp,
            "vehicle_count": vehicles,
            "average_speed_kmh": speed,
            "occupancy_percent": occupancy,
            **extra,
        }
    ).encode()


class Faults:
    """Fault injection on a moto-backed client through botocore's ``before-call`` hook.

    ``plan`` maps an operation name to a function of the call count and the (JSON) request returning a fake
    ``(status, parsed response)`` to short-circuit the call with, raising to simulate a crash, or
    returning ``None`` to let moto answer.
    """

    def __init__(self, client: Any, plan: dict[str, Callable[[int, dict[str, Any]], Any]]) -> None:
        self.calls: dict[str, int] = {}
        self.plan = plan
        self.client = client
        client.meta.events.register_first("before-call.*.*", self._before_call)

    def remove(self) -> None:
        """Stop injecting (for a client that outlives the test)."""
        self.client.meta.events.unregister("before-call.*.*", self._before_call)

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        name = model.name
        self.calls[name] = self.calls.get(name, 0) + 1
        rule = self.plan.get(name)
        if rule is None:
            return None
        body = params.get("body") or b"{}"
        try:
            request = json.loads(body)
        except (TypeError, ValueError):  # not a JSON protocol (S3): the rule gets no request
            request = {}
        outcome = rule(self.calls[name], request)
        if outcome is None:
            return None
        status, parsed = outcome
        response = AWSResponse("https://fault.invalid", status, {}, None)
        return response, parsed


def throttled(code: str = "ProvisionedThroughputExceededException") -> tuple[int, dict[str, Any]]:
    return 400, {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 400}}


def server_error() -> tuple[int, dict[str, Any]]:
    return 500, {"Error": {"Code": "InternalError", "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 500}}
