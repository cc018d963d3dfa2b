"""Alert entry point (DynamoDB stream of the sensor windows table, ReportBatchItemFailures)."""

from __future__ import annotations

from typing import Any

from lambdas.alert.service import Alerter, Settings

_alerter: Alerter | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _alerter  # noqa: PLW0603 - one alerter per execution environment
    if _alerter is None:
        _alerter = Alerter(Settings.from_env())
    return _alerter.handle(event)


def install(instance: Alerter | None) -> None:
    """Use ``instance`` for the next invocations (``None``: build from the environment again).

    For tests and the local run, which bring their own clients, clock or environment.
    """
    global _alerter  # noqa: PLW0603
    _alerter = instance
