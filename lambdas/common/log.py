"""Structured JSON logs and CloudWatch embedded-metric-format (EMF) documents."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("tap")
if not logger.handlers:
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_handler)
    logger.propagate = False
logger.setLevel(logging.INFO)


def log_event(severity: str, event: str, **fields: Any) -> None:
    """One JSON log line: ``{"severity": ..., "event": ..., **fields}``."""
    logger.log(
        logging.getLevelName(severity.upper()),
        json.dumps({"severity": severity.upper(), "event": event, **fields}, default=str, sort_keys=True),
    )


def emit_metrics(namespace: str, values: Mapping[str, int | float], dimensions: Mapping[str, str] | None = None) -> str:
    """Print one EMF document; CloudWatch turns it into metrics without a PutMetricData call."""
    dims = dict(dimensions or {})
    document = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [sorted(dims)],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                }
            ],
        },
        **dims,
        **values,
    }
    line = json.dumps(document, sort_keys=True)
    logger.info(line)
    return line
