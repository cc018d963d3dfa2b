"""Processor entry point (Kinesis event source mapping with ReportBatchItemFailures)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Decode the batch and report what it holds. Storage and quarantine come with the data path."""
    decoded = 0
    undecodable = []
    for record in event.get("Records", []):
        try:
            json.loads(base64.b64decode(record["kinesis"]["data"]))
            decoded += 1
        except (ValueError, KeyError):
            undecodable.append(record["kinesis"]["sequenceNumber"])
    logger.info(json.dumps({"decoded": decoded, "undecodable": len(undecodable)}))
    # Until quarantine exists, undecodable records are reported as failures so none is lost.
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in undecodable]}
