"""Processor entry point (Kinesis event source mapping with ReportBatchItemFailures).

Thin: the processor is built on the first invocation from the environment the stack sets, and reused
while the execution environment lives.
"""

from __future__ import annotations

from typing import Any

from lambdas.processor.service import Processor, Settings

_processor: Processor | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _processor  # noqa: PLW0603 - one processor per execution environment
    if _processor is None:
        _processor = Processor(Settings.from_env())
    return _processor.handle(event)


def install(instance: Processor | None) -> None:
    """Use ``instance`` for the next invocations (``None``: build from the environment again).

    For tests and the local run, which bring their own clients, clock or environment.
    """
    global _processor  # noqa: PLW0603
    _processor = instance
