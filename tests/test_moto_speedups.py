"""The local run's moto speed-ups store, refuse and project exactly what moto's own methods do."""

from __future__ import annotations

import base64
import datetime
import functools
import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.local import moto_speedups

moto_speedups.install()

from moto.dynamodb.exceptions import ItemSizeTooLarge  # noqa: E402
from moto.dynamodb.models import table as table_module  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType, Item  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402
from moto.sqs import models as sqs_models  # noqa: E402

HASH, RANGE = DynamoType({"S": "sensor-1"}), DynamoType({"S": "2026-12-02T00:00:00Z#000"})

names = st.sampled_from(["a", "b", "latest", "partials", "version", "n", "missing"])
scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=20)),
    st.builds(lambda n: {"N": n}, st.sampled_from(["0", "1.50", "-7", "1E+2", "0.000001", "123456789012345678901"])),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": b}, st.binary(max_size=8)),
    st.builds(lambda ss: {"SS": sorted(ss)}, st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=3)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(names, inner, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=12,
)
attributes = st.dictionaries(names, values, max_size=6)


def built(init: Any, attrs: dict[str, Any]) -> Item | type[Exception]:
    item = Item.__new__(Item)
    try:
        init(item, HASH, RANGE, attrs)
    except ItemSizeTooLarge:
        return ItemSizeTooLarge
    return item


@settings(max_examples=150, deadline=None)
@given(attributes)
def test_item_construction_matches_moto(attrs: dict[str, Any]) -> None:
    ours, theirs = built(Item.__init__, attrs), built(moto_speedups.ORIGINALS["Item.__init__"], attrs)
    assert isinstance(ours, Item) and isinstance(theirs, Item)
    assert ours.to_json() == theirs.to_json()
    assert list(ours.attrs) == list(theirs.attrs)


@pytest.mark.parametrize("size", [404_000, 405_000, 405_001, 409_000])
def test_item_size_limit_matches_moto(size: int) -> None:
    """Around moto's limit, over one attribute or spread over several, both refuse the same items."""
    for attrs in (
        {"big": {"S": "x" * (size - 3)}},
        {f"p{i}": {"S": "x" * (size // 4 - 2)} for i in range(4)} | {"rest": {"S": "y" * (size % 4 + 4)}},
    ):
        ours, theirs = built(Item.__init__, attrs), built(moto_speedups.ORIGINALS["Item.__init__"], attrs)
        assert (ours is ItemSizeTooLarge) == (theirs is ItemSizeTooLarge), size
    assert built(Item.__init__, {"big": {"S": "x" * (405_001 - 3)}}) is ItemSizeTooLarge


@settings(max_examples=150, deadline=None)
@given(attributes, st.lists(st.lists(names, min_size=1, max_size=2), min_size=1, max_size=4))
def test_projection_matches_moto(attrs: dict[str, Any], paths: list[list[str]]) -> None:
    """Top-level names take the fast path; nested or repeated paths fall back to moto's own."""
    item = built(moto_speedups.ORIGINALS["Item.__init__"], attrs)
    assert isinstance(item, Item)
    assert outcome(lambda: item.project([list(p) for p in paths])) == outcome(
        lambda: moto_speedups.ORIGINALS["Item.project"](item, [list(p) for p in paths])
    )


def outcome_value(call: Any) -> Any:
    """What ``call`` returns, or the type of error it raises (compared by type with moto's own)."""
    try:
        return call()
    except Exception as error:  # any error, compared by type with moto's own
        return type(error)


def outcome(project: Any) -> Any:
    """The projected item as JSON, or the type of error moto raises (a path into a scalar raises)."""
    return outcome_value(lambda: project().to_json())


# ------------------------------------------------------------------ request attribute values


def wire(value: Any) -> Any:
    """An attribute value as boto3 sends it: blobs base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: wire(member) for key, member in value.items()}
    if isinstance(value, list):
        return [wire(member) for member in value]
    return value


blob_sets = st.builds(lambda bs: {"BS": sorted(bs)}, st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=3))
number_sets = st.builds(lambda ns: {"NS": sorted(ns)}, st.sets(st.sampled_from(["1", "2.5", "-3"]), min_size=1))
odd = st.builds(lambda s: {"S": s, "N": None}, st.text(max_size=4))  # a null member: dropped
request_values = st.recursive(
    st.one_of(scalars, blob_sets, number_sets, odd, st.none(), st.just({"BS": ["eA==", None]})),
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(names, inner, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=12,
)


def parsed(operation: str, body: dict[str, Any], *, ours: bool) -> Any:
    """moto's parse of a DynamoDB request body: with the patched walker, or with moto's own."""
    from moto.core.parse import JSONParser  # noqa: PLC0415
    from moto.core.responses import get_service_model  # noqa: PLC0415

    class Generic(JSONParser):
        _parse_shape = moto_speedups.ORIGINALS["BaseJSONParser._parse_shape"]

    parser = (JSONParser if ours else Generic)(get_service_model("dynamodb").operation_model(operation))
    return outcome_value(lambda: parser.parse({"body": json.dumps(body).encode(), "headers": {}, "method": "POST",
                                              "url_path": "/", "url_params": {}, "values": {}}))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(names, request_values, min_size=1, max_size=6), request_values)
def test_request_attribute_values_parse_as_moto_parses_them(item: dict[str, Any], value: Any) -> None:
    """Items, keys and expression values (blobs, sets, maps, lists, null members) parse to what moto's own
    walker makes of them."""
    requests = {
        "BatchWriteItem": {"RequestItems": {"t": [{"PutRequest": {"Item": wire(item)}}]}},
        "PutItem": {"TableName": "t", "Item": wire(item), "ExpressionAttributeValues": {":v": wire(value)}},
        "UpdateItem": {"TableName": "t", "Key": wire(item), "UpdateExpression": "SET #a = :v",
                       "ExpressionAttributeNames": {"#a": "a"}, "ExpressionAttributeValues": {":v": wire(value)}},
        "BatchGetItem": {"RequestItems": {"t": {"Keys": [wire(item)], "ConsistentRead": True}}},
    }  # fmt: skip
    for operation, body in requests.items():
        assert parsed(operation, body, ours=True) == parsed(operation, body, ours=False), operation


@settings(max_examples=150, deadline=None)
@given(attributes, values, st.integers(), st.datetimes(), st.binary(max_size=6))
def test_results_turn_into_what_moto_makes_of_them(attrs: dict[str, Any], value: Any, count: int,
                                                   when: datetime.datetime, raw: bytes) -> None:  # fmt: skip
    """A result (items, attribute values, blobs held as bytes or as base64, counts, times) converts as moto
    converts it."""
    from moto.dynamodb import responses  # noqa: PLC0415

    item = built(moto_speedups.ORIGINALS["Item.__init__"], attrs)
    blob = DynamoType({"B": "x"})
    blob.value = raw  # a projection round trip leaves bytes
    result = {"Responses": {"t": [item, item.to_json()]}, "Count": count, "When": when, "Value": DynamoType(value),
              "Blobs": [blob, DynamoType({"B": base64.b64encode(raw).decode()}), DynamoType({"BS": ["eA=="]})],
              "Nested": [[{"k": DynamoType({"N": "1"})}], None, True, 1.5]}  # fmt: skip
    assert responses.dynamo_to_dict(result) == moto_speedups.ORIGINALS["dynamo_to_dict"](result)


# ------------------------------------------------------------------ table order, queries, scan pages


ACCOUNT = "123456789012"
S_KEYS = st.sampled_from(["a", "b", "ab", "B", "seg-001", "seg-010", "seg-002", "é", "z"])
N_KEYS = st.sampled_from(["0", "1", "1.0", "2", "10", "-3", "0.5", "1E+1", "007"])
"""Numbers with equal values spelled differently ("1", "1.0"; "10", "1E+1"): the same key."""
GSI_VALUES = st.one_of(st.none(), st.sampled_from(["pending", "open", "other"]))


@contextmanager
def moto_table_methods() -> Iterator[None]:
    """moto's own ``Table`` read methods while the block runs (the reference the patched ones meet)."""
    names = ("all_items", "query", "scan")
    saved = {name: getattr(Table, name) for name in names}
    for name in names:
        setattr(Table, name, moto_speedups.ORIGINALS[f"Table.{name}"])
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(Table, name, method)


def new_table(range_type: str | None, gsi: bool) -> Table:
    attr = [{"AttributeName": "pk", "AttributeType": "S"}]
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if range_type:
        attr.append({"AttributeName": "sk", "AttributeType": range_type})
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
    indexes = None
    if gsi:
        attr += [{"AttributeName": "g", "AttributeType": "S"}, {"AttributeName": "gr", "AttributeType": "N"}]
        indexes = [
            {
                "IndexName": "sparse",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "gr", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    return Table("t", account_id=ACCOUNT, region="us-east-1", schema=schema, attr=attr, global_indexes=indexes)


operations = st.lists(
    st.tuples(
        st.sampled_from(["put", "put", "put", "delete", "touch"]),
        S_KEYS,
        st.one_of(S_KEYS, N_KEYS),
        GSI_VALUES,
        N_KEYS,
        st.integers(0, 9),
    ),
    max_size=40,
)


def apply(table: Table, ops: list[tuple[str, str, str, str | None, str, int]], range_type: str | None) -> None:
    """Puts (new items and replacements), deletes, and in-place changes as an update makes them."""
    for op, pk, raw_sk, g, gr, n in ops:
        numeric = raw_sk.lstrip("-").replace(".", "").replace("E+", "").isdigit()
        sk = str(len(raw_sk)) if range_type == "N" and not numeric else raw_sk
        key = {"pk": {"S": pk}} | ({"sk": {range_type: sk}} if range_type else {})
        hash_key = DynamoType(key["pk"])
        range_key = DynamoType(key["sk"]) if range_type else None
        if op == "put":
            extra = {"g": {"S": g}, "gr": {"N": gr}} if g else {}
            table.put_item(key | extra | {"n": {"N": str(n)}})
        elif op == "delete":
            table.delete_item(hash_key, range_key)
        elif (item := table.get_item(hash_key, range_key)) is not None:
            item.attrs["n"] = DynamoType({"N": str(n + 100)})  # an update changes the stored item in place


def as_json(result: tuple[list[Item], int, Any]) -> Any:
    items, scanned, last = result
    return [i.to_json() for i in items], scanned, last


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(["S", "N", None]), operations)
def test_table_order_matches_moto(range_type: str | None, ops: list[Any]) -> None:
    """The same item objects in the same order, after puts, replacements, deletes and in-place updates."""
    table = new_table(range_type, gsi=False)
    half = len(ops) // 2
    apply(table, ops[:half], range_type)
    assert table.all_items() == moto_speedups.ORIGINALS["Table.all_items"](table)
    apply(table, ops[half:], range_type)
    ours = table.all_items()
    theirs = moto_speedups.ORIGINALS["Table.all_items"](table)
    assert len(ours) == len(theirs) and all(a is b for a, b in zip(ours, theirs, strict=True))


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["S", "N"]),
    operations,
    S_KEYS,
    st.sampled_from([None, "GT", "BEGINS_WITH", "BETWEEN"]),
    st.one_of(st.none(), st.integers(1, 4)),
    st.booleans(),
    st.booleans(),
)
def test_table_query_matches_moto(  # noqa: PLR0917 - hypothesis passes them by position
    range_type: str, ops: list[Any], pk: str, comparison: str | None, limit: int | None, forward: bool, start: bool
) -> None:
    """A Query of one hash key: the same items, count and next key, with range conditions, limits,
    either direction and a start key."""
    table = new_table(range_type, gsi=False)
    apply(table, ops, range_type)
    bound = {"S": ["b"], "N": ["1"]}[range_type]
    objs = {
        None: [],
        "GT": [DynamoType({range_type: bound[0]})],
        "BEGINS_WITH": [DynamoType({"S": "a"})] if range_type == "S" else [],
        "BETWEEN": [DynamoType({range_type: bound[0]}), DynamoType({range_type: "z" if range_type == "S" else "9"})],
    }[comparison]
    if comparison == "BEGINS_WITH" and range_type == "N":
        comparison, objs = None, []
    stored = moto_speedups.ORIGINALS["Table.all_items"](table)
    exclusive = None
    if start and stored:
        first = stored[len(stored) // 2]
        exclusive = {"pk": first.hash_key.to_json(), "sk": first.range_key.to_json()}
    args = (DynamoType({"S": pk}), comparison, objs, limit, exclusive, forward, None)
    ours = outcome_value(lambda: as_json(table.query(*args)))
    with moto_table_methods():
        theirs = outcome_value(lambda: as_json(table.query(*args)))
    assert ours == theirs


@settings(max_examples=150, deadline=None)
@given(operations, GSI_VALUES, st.one_of(st.none(), st.integers(1, 3)), st.booleans())
def test_index_query_matches_moto(ops: list[Any], g: str | None, limit: int | None, forward: bool) -> None:
    """A Query of a sparse index by its hash key (the alert function's sweep): the same items."""
    table = new_table("S", gsi=True)
    apply(table, ops, "S")
    value = DynamoType({"S": g or "pending"})
    args = (value, None, [], limit, None, forward, None)
    kwargs = {"index_name": "sparse", "hash_key_conditions": [("g", value)]}
    ours = outcome_value(lambda: as_json(table.query(*args, **kwargs)))
    with moto_table_methods():
        theirs = outcome_value(lambda: as_json(table.query(*args, **kwargs)))
    assert ours == theirs


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(["S", "N", None]), operations, st.integers(1, 5), st.sampled_from(["stored", "absent", "bad"]))
def test_scan_pages_match_moto(range_type: str | None, ops: list[Any], limit: int, start: str) -> None:
    """Every page of a Scan, page after page, and a page from a key that is not stored or is malformed."""
    table = new_table(range_type, gsi=False)
    apply(table, ops, range_type)

    def pages() -> Any:
        found, key = [], None
        if start == "absent":
            key = {"pk": {"S": "b0"}} | ({"sk": {range_type: "5"}} if range_type else {})
        elif start == "bad":
            key = {"pk": {"N": "1"}} | ({"sk": {"S": "x"}} if range_type else {})
        for _ in range(50):
            page = outcome_value(lambda start=key: as_json(table.scan({}, limit, start)))
            found.append(page)
            if not isinstance(page, tuple) or page[2] is None:
                break
            key = {name: value.to_json() for name, value in page[2].items()}
        return found

    ours = pages()
    with moto_table_methods():
        theirs = pages()
    assert ours == theirs


# --------------------------------------------------------------------------------------------- SQS


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(st.none(), st.booleans(), st.integers(60, 1_209_600)),
    st.integers(0, 2_000_000),
    st.integers(0, 2_000_000),
)
def test_retention_check_matches_moto(retention: Any, sent_seconds: int, now_seconds: int) -> None:
    backend = sqs_models.SQSBackend("us-east-1", ACCOUNT)
    queue = backend.create_queue("q")
    queue.message_retention_period = retention
    message = sqs_models.Message("id", "body")
    message.sent_timestamp = sent_seconds * 1000
    saved = sqs_models.unix_time
    sqs_models.unix_time = lambda *_: float(now_seconds)  # type: ignore[assignment]
    try:
        ours = outcome_value(lambda: backend.is_message_valid_based_on_retention_period("q", message))
        original = moto_speedups.ORIGINALS["SQSBackend.is_message_valid_based_on_retention_period"]
        theirs = outcome_value(lambda: original(backend, "q", message))
    finally:
        sqs_models.unix_time = saved
    assert ours == theirs


@settings(max_examples=100, deadline=None)
@given(
    st.booleans(),
    st.one_of(st.none(), st.booleans()),
    st.lists(
        st.tuples(
            st.sampled_from(["body", "other", ""]),
            st.one_of(st.none(), st.sampled_from(["d1", "d2"])),
            st.one_of(st.none(), st.sampled_from(["g1", "g2"])),
            st.one_of(st.none(), st.integers(0, 1000)),
        ),
        max_size=6,
    ),
)
def test_send_message_matches_moto(fifo: bool, content_dedup: bool | None, sends: list[Any]) -> None:
    """What a queue holds, or the error raised, after each send: FIFO or not, content-based
    deduplication on, off or unset, with and without deduplication and group ids and delays."""

    def run(send: Any) -> list[Any]:
        backend = sqs_models.SQSBackend("us-east-1", ACCOUNT)
        name = "q.fifo" if fifo else "q"
        attrs = {"FifoQueue": "true"} if fifo else {}
        queue = backend.create_queue(name, **attrs)
        queue.content_based_deduplication = content_dedup
        found: list[Any] = []
        for body, dedup, group, delay in sends:
            result = outcome_value(lambda: send(backend, name, body, None, delay, dedup, group))  # noqa: B023
            stored = [(m.body, m.deduplication_id, m.group_id, m.delayed) for m in queue._messages]
            found.append((result if isinstance(result, type) else "sent", stored))
        return found

    assert run(sqs_models.SQSBackend.send_message) == run(moto_speedups.ORIGINALS["SQSBackend.send_message"])


def test_queue_attributes_outside_a_send_match_moto() -> None:
    backend = sqs_models.SQSBackend("us-east-1", ACCOUNT)
    queue = backend.create_queue("q.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    backend.send_message("q.fifo", "body", group_id="g")
    assert queue.attributes == moto_speedups.ORIGINALS["Queue.attributes"].fget(queue)
    assert queue.attributes["ApproximateNumberOfMessages"] == 1


# ---------------------------------------------------------------------------------------- dispatch


def test_method_names_match_moto() -> None:
    from moto.core import responses  # noqa: PLC0415
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415
    from moto.kinesis.responses import KinesisResponse  # noqa: PLC0415
    from moto.sns.responses import SNSResponse  # noqa: PLC0415
    from moto.sqs.responses import SQSResponse  # noqa: PLC0415

    for clazz in (DynamoHandler, KinesisResponse, SNSResponse, SQSResponse, responses.BaseResponse):
        for _ in range(2):  # listed, then from the cache
            ours = responses.method_names_from_class(clazz)
            assert ours == moto_speedups.ORIGINALS["method_names_from_class"](clazz)
            ours.append("changed by a caller")  # a caller's copy: the cache is not touched


# ---------------------------------------------------------------------------------- stream records


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]),
    st.one_of(st.none(), attributes),
    st.one_of(st.none(), attributes),
    st.sampled_from(["INSERT", "MODIFY", "REMOVE"]),
)
def test_stream_records_match_moto(view: str, old: Any, new: Any, event: str) -> None:
    table = new_table("S", gsi=False)
    old_item = built(moto_speedups.ORIGINALS["Item.__init__"], old) if old is not None else None
    new_item = built(moto_speedups.ORIGINALS["Item.__init__"], new) if new is not None else None
    if old_item is None and new_item is None:
        new_item = built(moto_speedups.ORIGINALS["Item.__init__"], {})
    saved_uuid, saved_now = table_module.mock_random.uuid4, table_module.utcnow
    table_module.mock_random.uuid4 = lambda: uuid.UUID(int=7)  # type: ignore[method-assign]
    fixed = datetime.datetime(2026, 6, 1, 12, 0, 0)
    table_module.utcnow = lambda: fixed  # type: ignore[assignment]
    try:
        ours = table_module.StreamRecord(table, view, event, old_item, new_item, 42)
        theirs = SimpleNamespace()  # moto's constructor keeps its record as a plain attribute
        moto_speedups.ORIGINALS["StreamRecord.__init__"](theirs, table, view, event, old_item, new_item, 42)
    finally:
        table_module.mock_random.uuid4, table_module.utcnow = saved_uuid, saved_now  # type: ignore[method-assign]
    assert ours.to_json() == theirs.record
    assert ours.to_json() == ours.to_json() and ours.to_json() is not ours.to_json()  # a fresh copy each time
    ours.to_json()["dynamodb"]["Keys"].clear()  # a reader changing its copy changes nothing stored
    assert ours.to_json() == theirs.record


# ---------------------------------------------------------------------------------------- routing


def test_routing_remembers_endpoints_and_answers_as_moto_does() -> None:
    """URLs of path ``/`` (a JSON endpoint, a bucket) are remembered with the handler moto's search found;
    object URLs take moto's search every time; an error comes back as moto's error."""
    import boto3  # noqa: PLC0415
    from botocore.exceptions import ClientError  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")  # fmt: skip
        dynamodb.put_item(TableName="t", Item={"k": {"S": "a"}, "b": {"B": b"\x00\xff"}})
        assert dynamodb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["b"] == {"B": b"\x00\xff"}
        with pytest.raises(ClientError) as caught:
            dynamodb.get_item(TableName="missing", Key={"k": {"S": "a"}})
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="routing-b")
        for key in range(20):
            s3.put_object(Bucket="routing-b", Key=f"k/{key}", Body=b"x")
        assert s3.get_object(Bucket="routing-b", Key="k/7")["Body"].read() == b"x"
    assert "https://dynamodb.us-east-1.amazonaws.com/" in moto_speedups.ROUTES
    assert not [url for url in moto_speedups.ROUTES if "/k/" in url]  # an object's URL: searched every time
    assert moto_speedups.ROUTES["https://dynamodb.us-east-1.amazonaws.com/"] == moto_speedups._route(
        "https://dynamodb.us-east-1.amazonaws.com/"
    )


# ------------------------------------------------------------------ attribute values in the clients

client_scalars = st.one_of(
    scalars,
    st.builds(lambda b: {"B": b}, st.one_of(st.binary(max_size=6), st.text(max_size=4), st.binary().map(bytearray))),
    st.builds(lambda bs: {"BS": bs}, st.lists(st.one_of(st.binary(max_size=4), st.text(max_size=3)), max_size=3)),
    st.builds(lambda ns: {"NS": ns}, st.lists(st.sampled_from(["1", "2.5", "-3"]), max_size=3).map(tuple)),
)
odd_values = st.one_of(  # each is refused by the validator, or taken by its own walker (a file-like blob)
    st.builds(lambda n: {"N": n}, st.integers()),
    st.builds(lambda s: {"S": s, "X": s}, st.text(max_size=3)),
    st.builds(lambda ss: {"SS": ss}, st.sets(st.text(max_size=3), max_size=2)),
    st.builds(lambda b: {"BOOL": b}, st.sampled_from([0, 1, "true", None])),
    st.builds(lambda b: {"B": b}, st.sampled_from([7, None, io.BytesIO(b"x")])),
    st.builds(lambda bs: {"BS": bs}, st.lists(st.sampled_from([b"a", 3, None]), max_size=2)),
    st.builds(lambda m: {"M": m}, st.sampled_from([None, [], {3: {"S": "x"}}, {"k": "v"}])),
    st.builds(lambda items: {"L": items}, st.sampled_from([None, "ab", [None], [{"S": 1}]])),
    st.sampled_from([None, "x", [], {}]),
)


def nested(leaves: Any) -> Any:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(lambda m: {"M": m}, st.dictionaries(names, inner, max_size=3)),
            st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
            st.builds(lambda items: {"L": tuple(items)}, st.lists(inner, max_size=2)),
        ),
        max_leaves=10,
    )


valid_values = nested(client_scalars)
client_values = nested(st.one_of(client_scalars, odd_values))


@contextmanager
def botocore_walkers() -> Iterator[None]:
    """botocore's own validator, serializer and parser walkers while the block runs."""
    from botocore import parsers, serialize, validate  # noqa: PLC0415

    places: list[Any] = [(validate.ParamValidator, "_validate", "ParamValidator._validate"),
                         (serialize.JSONSerializer, "_serialize", "JSONSerializer._serialize"),
                         (parsers.JSONParser, "_parse_shape", "JSONParser._parse_shape")]  # fmt: skip
    saved = [getattr(cls, attribute) for cls, attribute, _ in places]
    for cls, attribute, key in places:
        setattr(cls, attribute, moto_speedups.ORIGINALS[key])
    try:
        yield
    finally:
        for (cls, attribute, _), method in zip(places, saved, strict=True):
            setattr(cls, attribute, method)


@functools.cache
def dynamodb_model() -> Any:
    import botocore.session  # noqa: PLC0415

    return botocore.session.get_session().get_service_model("dynamodb")


def client_request(operation: str, params: dict[str, Any]) -> Any:
    """The validator's report for ``params``, else the serialized body (or the error serializing raises)."""
    from botocore.serialize import JSONSerializer  # noqa: PLC0415
    from botocore.validate import ParamValidator  # noqa: PLC0415

    model = dynamodb_model().operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    if report.has_errors():
        return report.generate_report()
    return outcome_value(lambda: json.loads(JSONSerializer().serialize_to_request(params, model)["body"]))


def client_requests(item: dict[str, Any], value: Any) -> dict[str, Any]:
    """What the validator's report, else the serialized body, is of requests holding ``item`` and ``value``."""
    requests = {
        "PutItem": {"TableName": "t", "Item": item, "ExpressionAttributeValues": {":v": value}},
        "BatchWriteItem": {"RequestItems": {"t": [{"PutRequest": {"Item": item}}, {"DeleteRequest": {"Key": item}}]}},
        "UpdateItem": {"TableName": "t", "Key": {"k": value}, "UpdateExpression": "SET a = :v",
                       "ExpressionAttributeValues": {":v": value}},
        "BatchGetItem": {"RequestItems": {"t": {"Keys": [item, {"k": value}]}}},
    }  # fmt: skip
    return {operation: client_request(operation, params) for operation, params in requests.items()}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, client_values, max_size=5), client_values)
def test_client_requests_validate_as_botocore_validates_them(item: dict[str, Any], value: Any) -> None:
    """Items, keys and expression values, valid or not (wrong types, unknown members, sets where lists
    belong, file-like blobs, null members), get botocore's report (or its body) to the byte."""
    ours = client_requests(item, value)
    with botocore_walkers():
        assert ours == client_requests(item, value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, valid_values, max_size=5), valid_values)
def test_client_requests_serialize_as_botocore_serializes_them(item: dict[str, Any], value: Any) -> None:
    """Valid items, keys and expression values (blobs as bytes, bytearray or text, tuples for lists)
    serialize to botocore's body."""
    ours = client_requests(item, value)
    assert all(isinstance(body, dict) for body in ours.values()), ours  # valid: bodies, not reports
    with botocore_walkers():
        assert ours == client_requests(item, value)


def client_response(operation: str, body: dict[str, Any]) -> Any:
    """What the client's JSON parser makes of a response ``body`` of ``operation``."""
    from botocore.parsers import JSONParser  # noqa: PLC0415

    model = dynamodb_model().operation_model(operation)
    response = {"body": json.dumps(body).encode(), "headers": {}, "status_code": 200}
    return outcome_value(lambda: JSONParser().parse(response, model.output_shape))


sparse_values = st.recursive(  # as a response may hold them: null members, and null in lists
    st.one_of(scalars, blob_sets, number_sets, odd, st.just({"BS": ["eA==", None]}), st.just({"L": [None]})),
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(names, st.one_of(inner, st.none()), max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=10,
)


def parsed_value(value: Any) -> Any:
    """What the client's parser makes of ``value`` under the ``AttributeValue`` shape itself."""
    from botocore.parsers import JSONParser  # noqa: PLC0415

    return outcome_value(lambda: JSONParser()._parse_shape(dynamodb_model().shape_for("AttributeValue"), value))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(names, sparse_values, max_size=5), max_size=3), sparse_values)
def test_client_responses_parse_as_botocore_parses_them(items: list[dict[str, Any]], value: Any) -> None:
    """Items of every kind of response (blobs decoded, null members dropped, null kept in lists), and a
    value on its own, parse to what botocore's own walker makes of them."""
    items, value = [wire(item) for item in items], wire(value)
    responses = {
        "GetItem": {"Item": items[0] if items else {}},
        "Query": {"Items": items, "Count": len(items), "LastEvaluatedKey": items[-1] if items else {}},
        "BatchGetItem": {"Responses": {"t": items}, "UnprocessedKeys": {"t": {"Keys": items}}},
        "UpdateItem": {"Attributes": items[0] if items else {}},
    }
    ours = {operation: client_response(operation, body) for operation, body in responses.items()}
    ours["value"] = parsed_value(value)
    with botocore_walkers():
        theirs = {operation: client_response(operation, body) for operation, body in responses.items()}
        theirs["value"] = parsed_value(value)
    assert ours == theirs


def test_the_client_walkers_serve_dynamodb_attribute_values_only() -> None:
    """``AttributeValue`` of DynamoDB and DynamoDB Streams, and maps of names to it, take the direct walk;
    other shapes (a string map, a structure holding values) take botocore's."""
    import botocore.session  # noqa: PLC0415

    session = botocore.session.get_session()
    dynamodb = session.get_service_model("dynamodb")
    for service in ("dynamodb", "dynamodbstreams"):
        assert moto_speedups._kind(session.get_service_model(service).shape_for("AttributeValue")) == "value"
    for name in ("AttributeMap", "Key", "PutItemInputAttributeMap", "ExpressionAttributeValueMap"):
        assert moto_speedups._kind(dynamodb.shape_for(name)) == "map", name
    for name in ("ExpressionAttributeNameMap", "ItemList", "PutRequest", "AttributeValueUpdate", "Condition"):
        assert moto_speedups._kind(dynamodb.shape_for(name)) == "", name
