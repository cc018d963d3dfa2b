"""What every function's service holds: its settings, its AWS clients, how it paces retries and its clock.

The processor, the folder's alert state and the silence check take the same four things, so tests and the
local run build any of them the same way (moto-backed clients, a fast backoff, a fixed clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from lambdas.common.aws import Backoff, Clients

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
