"""What every function's service holds: its settings, its AWS clients, how it paces retries and its clock.

The processor, the folder's alert state and the silence check take the same four things, so tests and the
local run build any of them the same way (moto-backed clients, a fast backoff, a fixed clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.aws import Backoff, Clients, call_with_retries
from lambdas.common.log import log_event

SettingsT = TypeVar("SettingsT")


class Service(Generic[SettingsT]):
    def __init__(
        self,
        settings: SettingsT,
        clients: Clients | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.clients = clients or Clients()
        self.backoff = backoff or Backoff()
        self.clock = clock
        """UTC nanoseconds (``time.time_ns``; the local run and the tests pass their own)."""

    def put_metric_data(self, namespace: str, data: Sequence[dict[str, Any]]) -> None:
        """PutMetricData, retried; a failure is logged, never raised: metrics are not worth failing a batch or
        a run for once its state is stored."""
        cloudwatch = self.clients["cloudwatch"]
        try:
            call_with_retries(
                self.backoff, lambda: cloudwatch.put_metric_data(Namespace=namespace, MetricData=list(data))
            )
        except (ClientError, BotoCoreError) as error:
            log_event("error", "metrics_failed", error=str(error))
