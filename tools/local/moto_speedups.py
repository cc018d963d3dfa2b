"""Speed-ups of moto for the local run (and only there); none changes what moto stores or refuses.

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
a projection of top-level names only (the read-back's, the silence check's heads), the patched method
converts just those attributes, once each: moto converts each attribute on its own, and distinct
top-level names cannot alter one another.

5. DynamoDB table order, queries and scan pages. moto 5.2 sorts the whole table (comparing
``DynamoType`` objects in Python) on every Query and every Scan page, then filters: a Query for one
sensor, or the alert function's sweep of the sparse ``pending-alerts`` index, cost O(n log n) in the
table's size, and a Scan walked the table from its first item to find each page's start (O(n) per
page, O(n^2) for the read-back). The patched ``all_items`` sorts on the same values moto compares
(each key's ``cast_value``; keys are unique and of the table's key type, so the order is the same)
and keeps that order until an item is put or deleted; a Query hands moto's own code, in that order,
only the items its hash key (or the index's hash-key conditions, tested exactly as moto tests them)
can match; a Scan page starts where moto's skipping would stop (a binary search on the same order).
Everything after that (range conditions, limits, pages, filters, projections) is moto's own code.

6. SQS. ``receive_message`` looked up a queue's retention period through ``get_queue_attributes``,
which builds every attribute three times over, each counting the queue's messages: O(queue) per
message received; ``send_message`` built them all (once for validation, again for deduplication) to
read ``ContentBasedDeduplication``. The patched methods read those attributes from the queue directly.

7. Request dispatch. moto 5.2 lists a response class's methods with ``inspect.getmembers`` on every
request; the patched ``method_names_from_class`` lists each class once (moto adds no methods to its
response classes while running).

8. DynamoDB stream records. moto 5.2 converts both the old and the new item to JSON for each record,
whatever the stream's view type, and keeps the record as nested dicts (~8 KB for a window item's
change: 8 GB for a million changes). The patched constructor converts only the images the view type
keeps (``NEW_IMAGE``: the new one) and builds the same record, which is kept pickled (~1 KB) and
unpickled whenever moto reads it (``to_json``): the same record, a fresh copy each time (moto never
changes a record after building it).

9. DynamoDB request attribute values. moto 5.2 parses every request through a generic, model-driven
walker that dispatches on each node's shape: an item's attribute values were a fifth of a million-reading
run. Below an ``AttributeValue`` shape the walk is always the same (keep its members that are not null, in
the model's order; decode ``B`` and ``BS`` with the parser's blob parser; recurse into ``M`` and ``L``), so
the patched walker does that directly and hands every other shape to moto's.

10. DynamoDB results. moto 5.2 turns every result into plain values (``dynamo_to_dict``) by testing each
value against its types in turn (``hasattr(value, "to_json")`` on every string): a tenth of a run. The
patched function takes the common exact types (str, numbers, None, dict, list, ``DynamoType``) first and
everything else in moto's order, with moto's conversions.

11. Request routing. moto 5.2 finds the handler of every request by matching its URL against each
service's patterns, then each pattern of the service's backend (compiling it), a tenth of a run. For
the endpoints of JSON-protocol services (path ``/``, no query: one handler per endpoint) the patched
method remembers the handler moto's search found; it then records and handles the request as moto does.
Other URLs (S3 objects, ...) take moto's own search every time.

12. DynamoDB attribute values in the functions' clients (botocore, not moto). botocore validates,
serializes and parses every request and response through generic, model-driven walkers that dispatch on
each node's shape (five calls and a loop over ten members per attribute value): a third of the
processor's time and of the silence check's in a million-reading run. Below DynamoDB's ``AttributeValue``
shape, and below a map of attribute names to it (an item, a key, expression values), the walk is always
the same, so the patched walkers do it directly, as 9 does for moto's request parser:
  - validation: a value that is plainly valid (each member of its model type, maps and lists of such
    values) reports nothing, as botocore's validator would; anything else (a wrong type, an unknown
    member, a file-like blob) is validated by botocore's own walker, which writes the report;
  - serialization: the same dict botocore builds (blobs base64, sets and lists copied, members in the
    caller's order);
  - parsing: the same dict botocore's JSON parser builds (members in the model's order, null members
    dropped, ``None`` kept in lists, blobs decoded by the client's blob parser).
The walkers recurse once per level where botocore's recurse four to six times: within DynamoDB's 32
levels of nesting neither reaches Python's recursion limit.
"""

from __future__ import annotations

import base64
import bisect
import datetime
import inspect
import json
import pickle
import re
import threading
import weakref
from collections.abc import Callable, Iterable
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
"""moto's (and botocore's) own methods that ``install`` replaced, by ``Class.method`` (the tests compare
against them)."""
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
        results: list[Any] = []
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
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict, deserializer  # noqa: PLC0415
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
        # ``Item.to_regular_json`` converts each attribute on its own: converting only the picked ones
        # gives the same values.
        picked = {
            name: deserializer.deserialize(self.attrs[name].to_regular_json()) for name in names if name in self.attrs
        }
        return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=dict(_SERIALIZER.serialize(picked)["M"]))

    Item.__init__ = item_init  # type: ignore[method-assign]
    Item.project = project  # type: ignore[method-assign]
    Shard.get_records = get_records  # type: ignore[method-assign]
    Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    Shard.get_min_sequence_number = get_min_sequence_number  # type: ignore[method-assign]
    _install_table_reads()
    _install_sqs()
    _install_dispatch()
    _install_stream_records()
    _install_request_parse()
    _install_results()
    _install_routing()
    _install_client_walkers()
    _installed = True


# ------------------------------------------------------------------ 5. table order, queries, scan pages

_versions: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
"""Puts and deletes per table, so far (the cached order is kept while this does not move)."""
_orders: weakref.WeakKeyDictionary[Any, tuple[Any, int, list[Any]]] = weakref.WeakKeyDictionary()
"""Per table: (its ``items`` dict, its version, its items in moto's order) as last sorted."""
_narrowed = threading.local()
"""``(table, items)``: what ``all_items`` returns for that table while this thread runs a Query or
Scan page that needs no others."""


def sort_key(item: Any) -> Any:
    """moto's ``all_items`` order, ``(hash_key, range_key) if range_key else hash_key`` compared as
    ``DynamoType``s, i.e. by their ``cast_value``s (within a table, key values have the key's type)."""
    return (item.hash_key.cast_value, item.range_key.cast_value) if item.range_key else item.hash_key.cast_value


def _every_item(table: Any) -> Iterable[Any]:
    """The table's items in storage order (``all_items``' input, unsorted)."""
    if table.range_key_attr:
        for bucket in table.items.values():
            yield from bucket.values()
    else:
        yield from table.items.values()


def _ordered(table: Any) -> list[Any]:
    """The table's items in moto's order, sorted once per version of the table."""
    version = _versions.get(table, 0)
    cached = _orders.get(table)
    if cached is not None and cached[0] is table.items and cached[1] == version:
        return cached[2]
    ordered = sorted(_every_item(table), key=sort_key)
    _orders[table] = (table.items, version, ordered)
    return ordered


def _all_items(table: Any) -> list[Any]:
    narrowed = getattr(_narrowed, "items", None)
    if narrowed is not None and narrowed[0] is table:
        return list(narrowed[1])
    return list(_ordered(table))


def _run_narrowed(table: Any, items: list[Any], call: Callable[[], Any]) -> Any:
    saved = getattr(_narrowed, "items", None)
    _narrowed.items = (table, items)
    try:
        return call()
    finally:
        _narrowed.items = saved


def query_candidates(table: Any, hash_key: Any, index_name: Any, hash_key_conditions: Any) -> list[Any] | None:
    """The items, in moto's order, that moto's Query keeps from ``all_items`` before anything else:
    those of ``hash_key`` (a table query), or those passing every index hash-key condition as moto
    tests it (an index query); ``None`` where moto's own path is taken (nothing to narrow by)."""
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415

    if not index_name:
        if type(hash_key) is not DynamoType:
            return None
        bucket = table.items.get(hash_key)  # a defaultdict: get() adds no bucket
        if bucket is None:
            return []
        return sorted(bucket.values(), key=sort_key) if table.range_key_attr else [bucket]
    conditions = dict(hash_key_conditions or [])
    if not conditions:
        return None
    found = [item for item in _every_item(table) if _matches(item, conditions)]
    return sorted(found, key=sort_key)


def _matches(item: Any, conditions: dict[str, Any]) -> bool:
    """moto's test of an item against an index query's hash-key conditions, as ``Table.query`` makes it."""
    for name, expected in conditions.items():
        value = item.attrs.get(name)
        if not value or value != expected:
            return False
    return True


def scan_start(table: Any, exclusive_start_key: Any) -> int | None:
    """Where in ``all_items`` moto's Scan (no index) stops skipping for ``exclusive_start_key``: the
    first item that does not come before or at the key (``Table._item_comes_before_dct``: the key
    attributes compared in order, the first that differs deciding); ``None`` where moto's own path is
    taken (a key that is not exactly the table's key attributes of the table's key types)."""
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415

    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    types = [table.hash_key_type] + ([table.range_key_type] if table.range_key_attr else [])
    if not isinstance(exclusive_start_key, dict) or sorted(exclusive_start_key) != sorted(names):
        return None
    values = []
    for name, kind in zip(names, types, strict=True):
        raw = exclusive_start_key[name]
        if not isinstance(raw, dict) or len(raw) != 1 or kind not in raw:
            return None
        values.append(DynamoType(raw).cast_value)
    bound = tuple(values) if table.range_key_attr else values[0]
    return bisect.bisect_right(_ordered(table), bound, key=sort_key)


def _install_table_reads() -> None:
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    ORIGINALS.update(
        {
            "Table.all_items": Table.all_items,
            "Table.query": Table.query,
            "Table.scan": Table.scan,
            "Table.put_item": Table.put_item,
            "Table.delete_item": Table.delete_item,
        }
    )
    original_query, original_scan = Table.query, Table.scan
    query_signature, scan_signature = inspect.signature(original_query), inspect.signature(original_scan)

    def query(self: Table, *args: Any, **kwargs: Any) -> Any:
        bound = query_signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        found = query_candidates(
            self, bound.arguments["hash_key"], bound.arguments["index_name"], bound.arguments["hash_key_conditions"]
        )
        if found is None:
            return original_query(self, *args, **kwargs)
        return _run_narrowed(self, found, lambda: original_query(self, *args, **kwargs))

    def scan(self: Table, *args: Any, **kwargs: Any) -> Any:
        bound = scan_signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        start = bound.arguments["exclusive_start_key"]
        if bound.arguments["index_name"] or start is None:
            return original_scan(self, *args, **kwargs)
        first = scan_start(self, start)
        if first is None:
            return original_scan(self, *args, **kwargs)
        bound.arguments["exclusive_start_key"] = None
        rest = _ordered(self)[first:]
        return _run_narrowed(self, rest, lambda: original_scan(*bound.args, **bound.kwargs))

    def new_version_after(original: Callable[..., Any]) -> Callable[..., Any]:
        """``original`` (a put or a delete), after which the table's cached order is stale."""

        def changed(self: Table, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                _versions[self] = _versions.get(self, 0) + 1

        return changed

    Table.all_items = _all_items  # type: ignore[method-assign,assignment]
    Table.query = query  # type: ignore[method-assign]
    Table.scan = scan  # type: ignore[method-assign]
    Table.put_item = new_version_after(Table.put_item)  # type: ignore[method-assign]
    Table.delete_item = new_version_after(Table.delete_item)  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------ 6. SQS


def _install_sqs() -> None:
    from moto.sqs import models as sqs_models  # noqa: PLC0415

    models: Any = sqs_models

    ORIGINALS["SQSBackend.is_message_valid_based_on_retention_period"] = (
        models.SQSBackend.is_message_valid_based_on_retention_period
    )

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        # get_queue_attributes(queue_name, ["MessageRetentionPeriod"])["MessageRetentionPeriod"]: the
        # queue's attribute (booleans as "true"/"false"), a KeyError when it is None.
        retention_period = self.get_queue(queue_name).message_retention_period
        if retention_period is None:
            raise KeyError("MessageRetentionPeriod")
        if isinstance(retention_period, bool):
            retention_period = str(retention_period).lower()
        retain_until = retention_period + message.sent_timestamp / 1000
        return not retain_until <= models.unix_time()

    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period

    original_attributes = models.Queue.attributes
    original_send = models.SQSBackend.send_message
    ORIGINALS["Queue.attributes"] = original_attributes
    ORIGINALS["SQSBackend.send_message"] = original_send

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_sending, "queue", None) is not self:
            return original_attributes.fget(self)  # type: ignore[no-any-return]
        # All that send_message reads of them (its validation, FIFO deduplication): moto's value of
        # ContentBasedDeduplication, which only a FIFO queue lists (booleans as "true"/"false").
        queue: Any = self
        if not queue.fifo_queue:
            return {}
        value = queue.content_based_deduplication
        return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}

    def send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.queues.get(queue_name)
        if queue is None or queue.lambda_event_source_mappings:  # moto's own path (errors, Lambda triggers)
            return original_send(self, queue_name, *args, **kwargs)
        saved = getattr(_sending, "queue", None)
        _sending.queue = queue
        try:
            return original_send(self, queue_name, *args, **kwargs)
        finally:
            _sending.queue = saved

    models.Queue.attributes = property(attributes)
    models.SQSBackend.send_message = send_message


_sending = threading.local()
"""The queue this thread's ``send_message`` is sending to: what it reads of the queue's attributes is
only ``ContentBasedDeduplication``, which needs none of the message counts moto's ``attributes`` makes
(O(queue) each, every send)."""


# -------------------------------------------------------------------------------------- 7. dispatch


def _install_dispatch() -> None:
    from moto.core import responses as responses_module  # noqa: PLC0415

    responses: Any = responses_module
    original = responses.method_names_from_class
    ORIGINALS["method_names_from_class"] = original
    known: dict[Any, list[str]] = {}
    lock = threading.Lock()

    def method_names_from_class(clazz: object) -> list[str]:
        names = known.get(clazz)
        if names is None:
            names = original(clazz)
            with lock:
                known[clazz] = names
        return list(names)

    responses.method_names_from_class = method_names_from_class


# -------------------------------------------------------------------------------- 8. stream records


def _install_stream_records() -> None:
    from moto.dynamodb.models import table  # noqa: PLC0415

    table_module: Any = table
    StreamRecord = table_module.StreamRecord
    ORIGINALS["StreamRecord.__init__"] = StreamRecord.__init__

    def stream_record_init(  # noqa: PLR0917 - moto's signature
        self: Any, table: Any, stream_type: str, event_name: str, old: Any, new: Any, seq: int
    ) -> None:
        # moto's constructor, converting only the images the view type keeps.
        rec = old if old is not None else new
        keys = {table.hash_key_attr: rec.hash_key.to_json()}
        if table.range_key_attr is not None and rec is not None:
            keys[table.range_key_attr] = rec.range_key.to_json()
        record: dict[str, Any] = {
            "eventID": table_module.mock_random.uuid4().hex,
            "eventName": event_name,
            "eventSource": "aws:dynamodb",
            "eventVersion": "1.0",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "StreamViewType": stream_type,
                "ApproximateCreationDateTime": table_module.utcnow(),
                "SequenceNumber": str(seq),
                "SizeBytes": 1,
                "Keys": keys,
            },
        }
        if stream_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
            record["dynamodb"]["NewImage"] = new.to_json()["Attributes"]
        if stream_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
            record["dynamodb"]["OldImage"] = old.to_json()["Attributes"]
        record["dynamodb"]["SizeBytes"] = len(table_module.dynamo_json_dump(record["dynamodb"]))
        self.record = record

    def get_record(self: Any) -> dict[str, Any]:
        return pickle.loads(self._packed)  # type: ignore[no-any-return]  # written by set_record only

    def set_record(self: Any, record: dict[str, Any]) -> None:
        self._packed = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)

    StreamRecord.__init__ = stream_record_init
    StreamRecord.record = property(get_record, set_record)


# ------------------------------------------------------------------- 9. request attribute values

ATTRIBUTE_VALUE_MEMBERS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
"""DynamoDB's ``AttributeValue`` members, in the service model's order (``install`` checks it)."""


def attribute_value(parser: Any, node: Any, *, sparse: bool = False) -> Any:
    """What moto's JSON request parser (or, ``sparse``, botocore's response parser, which keeps ``None`` in
    every list) makes of ``node`` under DynamoDB's ``AttributeValue`` shape."""
    if node is None:
        return None
    parsed = {}
    for name in ATTRIBUTE_VALUE_MEMBERS:
        raw = node.get(name)
        if raw is None:
            continue
        if name == "M":
            parsed[name] = {key: attribute_value(parser, value, sparse=sparse) for key, value in raw.items()}
        elif name == "L":
            parsed[name] = [attribute_value(parser, value, sparse=sparse) for value in raw]
        elif name == "B":
            parsed[name] = parser._blob_parser(raw)
        elif name == "BS":
            blob = parser._blob_parser
            parsed[name] = [None if sparse and value is None else blob(value) for value in raw]
        elif name in {"SS", "NS"}:
            parsed[name] = list(raw)
        else:
            parsed[name] = raw
    return parsed


def _install_request_parse() -> None:
    from moto.core import parse  # noqa: PLC0415
    from moto.core.responses import get_service_model  # noqa: PLC0415

    shape = get_service_model("dynamodb").shape_for("AttributeValue")
    if tuple(shape.members) != ATTRIBUTE_VALUE_MEMBERS:  # another model: keep moto's walker
        return
    generic = parse.BaseJSONParser._parse_shape
    ORIGINALS["BaseJSONParser._parse_shape"] = generic

    def parse_shape(self: Any, shape: Any, node: Any) -> Any:
        if (
            shape.name == "AttributeValue"
            and shape.type_name == "structure"
            and tuple(shape.members) == ATTRIBUTE_VALUE_MEMBERS
        ):
            return attribute_value(self, node)
        return generic(self, shape, node)

    parse.BaseJSONParser._parse_shape = parse_shape


# ------------------------------------------------------------------------------------- 10. results


def _install_results() -> None:
    from moto.dynamodb import responses  # noqa: PLC0415
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415

    module: Any = responses
    ORIGINALS["dynamo_to_dict"] = module.dynamo_to_dict
    plain = (str, int, float, bool, type(None))

    def dynamo_type(value: Any) -> Any:
        if value.type == "B":
            return {"B": value.value if isinstance(value.value, bytes) else base64.b64decode(value.value)}
        if value.type == "BS":
            return {"BS": [v if isinstance(v, bytes) else base64.b64decode(v) for v in value.value]}
        return {value.type: dynamo_to_dict(value.value)}

    def dynamo_to_dict(obj: Any) -> Any:
        kind = type(obj)
        if kind in plain:
            return obj
        if kind is dict:
            return {key: dynamo_to_dict(value) for key, value in obj.items()}
        if kind is list:
            return [dynamo_to_dict(value) for value in obj]
        return dynamo_type(obj) if kind is DynamoType else in_moto_order(obj)

    def in_moto_order(obj: Any) -> Any:
        if isinstance(obj, datetime.datetime):
            return obj
        if isinstance(obj, DynamoType):
            return dynamo_type(obj)
        if hasattr(obj, "to_json"):
            return dynamo_to_dict(obj.to_json())
        if isinstance(obj, dict | list):
            return dynamo_to_dict(dict(obj) if isinstance(obj, dict) else list(obj))
        return obj

    module.dynamo_to_dict = dynamo_to_dict


# -------------------------------------------------------------------------------- 11. request routing

ROUTES: dict[str, Any] = {}
"""Request URL -> the handler moto's search found for it (endpoints of path ``/`` only)."""


def _route(url: str) -> Any:
    """The handler moto's ``BotocoreStubber.process_request`` would call for ``url``, searched as it
    searches; ``None`` for a URL with a path or query, or one moto would pass through or refuse."""
    from moto import backend_index, backends  # noqa: PLC0415
    from moto.core import DEFAULT_ACCOUNT_ID  # noqa: PLC0415
    from moto.core.base_backend import BackendDict  # noqa: PLC0415
    from moto.core.config import passthrough_service, passthrough_url, service_whitelisted  # noqa: PLC0415
    from moto.core.utils import get_equivalent_url_in_aws_domain  # noqa: PLC0415

    parsed, _ = get_equivalent_url_in_aws_domain(url)
    if parsed.path not in {"", "/"} or parsed.query:
        return None
    clean_url = f"{parsed.scheme}://{parsed.netloc}{parsed.path}"
    if passthrough_url(clean_url):
        return None
    for service, pattern in backend_index.backend_url_patterns:
        if not pattern.match(clean_url):
            continue
        if passthrough_service(service) or not service_whitelisted(service):
            return None
        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            regions = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
        else:
            backend = backend_dict["global"]
        for pattern_url, handler in backend.urls.items():
            if re.compile(pattern_url).match(clean_url):
                return handler
    return None


def _install_routing() -> None:
    from moto.core import botocore_stubber  # noqa: PLC0415
    from moto.core.exceptions import HTTPException  # noqa: PLC0415
    from moto.moto_api import recorder  # noqa: PLC0415

    stubber: Any = botocore_stubber.BotocoreStubber
    original = stubber.process_request
    ORIGINALS["BotocoreStubber.process_request"] = original

    def process_request(self: Any, request: Any) -> Any:
        handler = ROUTES.get(request.url)
        if handler is None:
            handler = _route(request.url)
            if handler is None:
                return original(self, request)
            ROUTES[request.url] = handler
        normalized = botocore_stubber.normalize_request(request)
        try:
            recorder._record_request(normalized)
            return handler(normalized, normalized.raw_url, normalized.headers)
        except HTTPException as error:
            return error.code, error.get_headers(), error.get_body()

    stubber.process_request = process_request


# ------------------------------------------------------------- 12. attribute values in the clients

SCALAR_MEMBERS = {"S": (str,), "N": (str,), "NULL": (bool,), "BOOL": (bool,)}
"""Members of a plain type, and the types botocore's validator accepts for them."""
BLOB_TYPES = (bytes, bytearray, str)
"""What botocore's validator accepts for a blob without reading it (a file-like object goes to its walker)."""
ATTRIBUTE_VALUE_MODEL = {
    "S": ("string", None), "N": ("string", None), "B": ("blob", None), "SS": ("list", "string"),
    "NS": ("list", "string"), "BS": ("list", "blob"), "M": ("map", "AttributeValue"), "L": ("list", "AttributeValue"),
    "NULL": ("boolean", None), "BOOL": ("boolean", None),
}  # fmt: skip
"""Each member's type, and its list member's or map value's type (or shape), as the walkers assume them."""
_KINDS: dict[int, tuple[Any, str]] = {}
"""``id(shape)`` -> (the shape, kept so its id is not reused; ``"value"``, ``"map"`` or ``""``)."""


def _is_attribute_value(shape: Any) -> bool:
    """Whether ``shape`` is DynamoDB's ``AttributeValue`` as the walkers assume it: these members of these
    types, none with a constraint, a wire name of its own, or a tagged union's one-member rule."""
    if shape.type_name != "structure" or shape.name != "AttributeValue" or shape.is_tagged_union:
        return False
    members = shape.members
    if tuple(members) != ATTRIBUTE_VALUE_MEMBERS or shape.metadata:
        return False
    for name, (type_name, inner) in ATTRIBUTE_VALUE_MODEL.items():
        member = members[name]
        if member.type_name != type_name or member.metadata or member.serialization:
            return False
        if inner is not None:
            below = member.member if type_name == "list" else member.value
            if inner not in {below.type_name, below.name} or below.metadata:
                return False
        if type_name == "map" and not _plain_name(member.key):
            return False
    return True


def _plain_name(shape: Any) -> bool:
    """A map key botocore's validator checks only for being a string (no minimum length, not a header)."""
    return shape.type_name == "string" and "min" not in shape.metadata and not shape.serialization


def _kind(shape: Any) -> str:
    """``"value"`` for DynamoDB's ``AttributeValue``, ``"map"`` for a map of names to it, else ``""``."""
    known = _KINDS.get(id(shape))
    if known is None or known[0] is not shape:
        kind = ""
        if _is_attribute_value(shape):
            kind = "value"
        elif shape.type_name == "map" and _plain_name(shape.key) and _is_attribute_value(shape.value):
            kind = "map"
        known = _KINDS[id(shape)] = (shape, kind)
    return known[1]


def plainly_valid(value: Any) -> bool:
    """Whether botocore's validator reports nothing for ``value`` as an ``AttributeValue`` (``False`` also
    for the unusual valid ones, which its own walker then validates)."""
    if not isinstance(value, dict):
        return False
    for name, raw in value.items():
        types = SCALAR_MEMBERS.get(name)
        if types is not None:
            valid = isinstance(raw, types)
        elif name == "M":
            valid = plainly_valid_map(raw)
        elif name == "L":
            valid = isinstance(raw, list | tuple) and all(plainly_valid(v) for v in raw)
        elif name == "B":
            valid = isinstance(raw, BLOB_TYPES)
        elif name in {"SS", "NS"}:
            valid = isinstance(raw, list | tuple) and all(isinstance(v, str) for v in raw)
        elif name == "BS":
            valid = isinstance(raw, list | tuple) and all(isinstance(v, BLOB_TYPES) for v in raw)
        else:
            return False
        if not valid:
            return False
    return True


def plainly_valid_map(value: Any) -> bool:
    """``plainly_valid`` for a map of attribute names to values."""
    return isinstance(value, dict) and all(isinstance(k, str) and plainly_valid(v) for k, v in value.items())


def wire_value(encode: Callable[[Any], str], value: Any) -> dict[str, Any]:
    """What botocore's JSON serializer writes for ``value`` as an ``AttributeValue`` (``encode``: its
    base64 of a blob); raises where it raises (an unknown member, a map that is not one)."""
    wired: dict[str, Any] = {}
    for name, raw in value.items():
        if name in SCALAR_MEMBERS:
            wired[name] = raw
        elif name == "M":
            wired[name] = {key: wire_value(encode, inner) for key, inner in raw.items()}
        elif name == "L":
            wired[name] = [wire_value(encode, inner) for inner in raw]
        elif name in {"SS", "NS"}:
            wired[name] = list(raw)
        elif name == "B":
            wired[name] = encode(raw)
        elif name == "BS":
            wired[name] = [encode(inner) for inner in raw]
        else:
            raise KeyError(name)
    return wired


def _install_client_walkers() -> None:
    from botocore import parsers, serialize, validate  # noqa: PLC0415

    validator: Any = validate.ParamValidator
    serializer: Any = serialize.JSONSerializer
    parser: Any = parsers.JSONParser
    generic_validate, generic_serialize, generic_parse = validator._validate, serializer._serialize, parser._parse_shape
    ORIGINALS["ParamValidator._validate"] = generic_validate
    ORIGINALS["JSONSerializer._serialize"] = generic_serialize
    ORIGINALS["JSONParser._parse_shape"] = generic_parse

    def validate_shape(self: Any, params: Any, shape: Any, errors: Any, name: str) -> None:
        kind = _kind(shape)
        if (kind == "value" and plainly_valid(params)) or (kind == "map" and plainly_valid_map(params)):
            return
        generic_validate(self, params, shape, errors, name)

    def serialize_shape(self: Any, serialized: Any, value: Any, shape: Any, key: Any = None) -> None:
        kind = _kind(shape)
        if kind == "value" and key is not None:
            serialized[key] = wire_value(self._get_base64, value)
        elif kind == "map":
            serialized[key] = {name: wire_value(self._get_base64, inner) for name, inner in value.items()}
        else:
            generic_serialize(self, serialized, value, shape, key)

    def parse_shape(self: Any, shape: Any, node: Any) -> Any:
        kind = _kind(shape)
        if kind == "value":
            return attribute_value(self, node, sparse=True)
        if kind == "map":
            return {name: attribute_value(self, inner, sparse=True) for name, inner in node.items()}
        return generic_parse(self, shape, node)

    validator._validate = validate_shape
    serializer._serialize = serialize_shape
    parser._parse_shape = parse_shape
