"""Three speed-ups of moto for the local run (and only there); none changes what moto stores or refuses.

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

3. DynamoDB item construction. moto 5.2 builds an item's attributes one at a time into a dict that
re-measures every attribute already in it on each insert (its 400 KB item check), so building an item
of n attributes measures O(n^2) values; with the aggregate items' nested partials this was a tenth of
the local run. The patched constructor measures each attribute once and makes the same check on the
total: sizes are never negative, so some insert overflows exactly when the total does.

4. DynamoDB projections. moto 5.2 converts the whole item to plain JSON once per projected name; for
a projection of top-level names only (the read-back's), the patched method converts it once and picks
the names from that one conversion, which the names cannot alter (they are distinct top-level keys).
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from boto3.dynamodb.types import TypeSerializer

_SERIALIZER = TypeSerializer()

FAST_OPERATIONS = {
    "dynamodb": {"BatchGetItem", "BatchWriteItem", "Query", "Scan", "GetItem", "PutItem", "UpdateItem"},
    "dynamodbstreams": {"GetRecords"},
    "kinesis": {"PutRecords", "GetRecords"},
}
ITEM_SIZE_LIMIT = 405_000
"""moto's own item limit (``LimitedSizeDict``): between DynamoDB's measured 409 and 410 KB."""
ORIGINALS: dict[str, Any] = {}
"""moto's own methods that ``install`` replaced, by ``Class.method`` (the tests compare against them)."""
_installed = False


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)


def install() -> None:
    """Patch moto as described above (idempotent)."""
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

    from moto.dynamodb.exceptions import ItemSizeTooLarge  # noqa: PLC0415
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict  # noqa: PLC0415
    from moto.dynamodb.models.utilities import bytesize  # noqa: PLC0415

    def item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
        self.hash_key, self.range_key = hash_key, range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.update(self.attrs, values)

    ORIGINALS.update({"Item.__init__": Item.__init__, "Item.project": Item.project})
    original_project = Item.project

    def project(self: Item, projection_expressions: list[list[str]]) -> Item:
        names = [path[0] for path in projection_expressions if len(path) == 1 and "[" not in path[0]]
        if len(names) != len(projection_expressions) or len(set(names)) != len(names):
            return original_project(self, projection_expressions)
        plain = self.to_regular_json()
        picked = {name: plain[name] for name in names if name in plain}
        return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=_SERIALIZER.serialize(picked)["M"])

    Item.__init__ = item_init  # type: ignore[method-assign]
    Item.project = project  # type: ignore[method-assign]
    Shard.get_records = get_records  # type: ignore[method-assign]
    Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    Shard.get_min_sequence_number = get_min_sequence_number  # type: ignore[method-assign]
    _installed = True
