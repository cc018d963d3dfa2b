"""The shape both Lambda entry points share: one service object per execution environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class Service(Protocol):
    def handle(self, event: Any) -> dict[str, Any]: ...


S = TypeVar("S", bound=Service)


class Entry(Generic[S]):
    """Builds the service on the first invocation (from the environment the stack sets) and reuses it
    while the execution environment lives; ``install`` swaps in another one."""

    def __init__(self, build: Callable[[], S]) -> None:
        self._build = build
        self._service: S | None = None

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self._service is None:
            self._service = self._build()
        return self._service.handle(event)

    def install(self, instance: S | None) -> None:
        """Use ``instance`` for the next invocations (``None``: build from the environment again).

        For tests and the local run, which bring their own clients, clock or environment.
        """
        self._service = instance
