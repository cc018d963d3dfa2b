"""Alert entry point (DynamoDB stream of the segment windows table)."""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Report which segment windows changed. Metrics and alerts come with the data path."""
    changed = sorted(
        {r["dynamodb"]["Keys"]["segment_id"]["S"] for r in event.get("Records", []) if r.get("eventName") != "REMOVE"}
    )
    logger.info(json.dumps({"changed_segments": changed}))
    return {"batchItemFailures": []}
