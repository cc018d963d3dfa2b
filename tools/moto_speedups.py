"""Two speed-ups of moto for the local run (and only there); neither changes what moto stores.

1. Response encoding of DynamoDB, DynamoDB Streams and Kinesis data-plane calls.
moto 5.2 encodes every response through a generic, model-driven serializer that costs ~0.5 ms per
attribute value: a BatchGetItem of 100 window items took ~50 ms, and a 100,000-reading local run spent
most of its time there. These JSON-protocol operations need no shape-driven transformation (moto
already builds the wire-shaped dict; blobs are base64 and timestamps epoch seconds on the wire), so
they are encoded with ``json.dumps`` instead.
Storage semantics are moto's own; only the encoding of the result changes. Anything unexpected falls
back to moto's serializer.

2. Kinesis shards. moto 5.2's ``Shard.get_max_sequence_number`` copies every key of the shard into a
list on each put, so putting n records costs O(n^2) (100,000 records took 75 s), and ``get_records``
walks the shard from its first record on every call. moto numbers a shard's records 1, 2, 3, ...; the
patched methods use that to return the same records and numbers directly.
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

FAST_OPERATIONS = {
    "dynamodb": {"BatchGetItem", "BatchWriteItem", "Query", "Scan", "GetItem", "PutItem", "UpdateItem"},
    "dynamodbstreams": {"GetRecords"},
    "kinesis": {"PutRecords", "GetRecords"},
}
_installed = False


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)


def install() -> None:
    """Patch moto's result encoding (idempotent)."""
    global _installed  # noqa: PLW0603
    if _installed:
        return
    from moto.core.responses import ActionResult  # noqa: PLC0415

    original = ActionResult.execute_result

    def execute_result(self: ActionResult, context: Any) -> Any:
        service = str(context.service_model.service_name)
        if str(context.operation_model.name) in FAST_OPERATIONS.get(service, ()) and isinstance(self.result, dict):
            try:
                body = json.dumps(self.result, default=_default)
            except TypeError:
                return original(self, context)
            version = context.service_model.metadata.get("jsonVersion", "1.0")
            return 200, {"Content-Type": f"application/x-amz-json-{version}"}, body
        return original(self, context)

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]

    from moto.kinesis.models import Shard  # noqa: PLC0415

    def get_max_sequence_number(self: Shard) -> int:
        return next(reversed(self.records)) if self.records else 0

    def get_min_sequence_number(self: Shard) -> int:
        return next(iter(self.records)) if self.records else 0

    def get_records(self: Shard, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        last = int(last_sequence_id)
        newest = get_max_sequence_number(self)
        results = []
        sequence = last + 1
        while sequence <= newest and (limit is None or len(results) < limit):
            record = self.records.get(sequence)
            if record is not None:
                results.append(record)
                last = sequence
            sequence += 1
        behind = self.records[newest].created_at - results[-1].created_at if results else 0.0
        return results, last, int(behind * 1000)

    Shard.get_records = get_records  # type: ignore[method-assign]
    Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    Shard.get_min_sequence_number = get_min_sequence_number  # type: ignore[method-assign]
    _installed = True
