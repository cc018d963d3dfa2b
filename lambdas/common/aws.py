"""The functions' AWS adapter toolkit: lazily created, injectable clients and bounded retries.

Clients are created on first use (tests start moto first, and a cold start pays only for what it uses)
and can be passed in, so tests inject moto-backed or fault-injecting clients. Everything here turns
AWS faults into results the callers can act on; nothing retries without bound.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.log import log_event

BOTO_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=15)
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "TransactionConflictException",
    }
)
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25


class Clients:
    """boto3 clients by service name, created on first use unless injected."""

    def __init__(self, **injected: Any) -> None:
        self._clients: dict[str, Any] = dict(injected)

    def __getitem__(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            import boto3  # noqa: PLC0415 - imported on first use: the cold start pays only when needed

            client = boto3.client(service, config=BOTO_CONFIG)  # type: ignore[call-overload]  # any service
            self._clients[service] = client
        return client


@dataclass
class Backoff:
    """Bounded exponential backoff with full jitter; ``sleep`` is injectable so tests do not wait."""

    attempts: int = 6
    base_seconds: float = 0.05
    cap_seconds: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def pauses(self) -> Iterator[None]:
        """Yields before each attempt after the first, sleeping in between; ``attempts`` in total."""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt)))
            yield


def is_retryable(error: Exception) -> bool:
    """Throttling, server-side and connection faults: worth another attempt."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in RETRYABLE_CODES or status >= 500
    return isinstance(error, BotoCoreError)


def call_with_retries(backoff: Backoff, call: Callable[[], Any]) -> Any:
    """``call()``, retried on retryable faults within ``backoff``; the last fault is raised."""
    last: Exception | None = None
    for _ in backoff.pauses():
        try:
            return call()
        except (ClientError, BotoCoreError) as error:
            if not is_retryable(error):
                raise
            last = error
    assert last is not None
    raise last


def conditional_write(backoff: Backoff, call: Callable[[], Any]) -> bool:
    """A conditional DynamoDB write (``call()``, retried like :func:`call_with_retries`): ``True`` if it
    was made, ``False`` if its condition did not hold (``ConditionalCheckFailedException``: another writer
    got there first); any other fault is raised."""
    try:
        call_with_retries(backoff, call)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


_serializer = TypeSerializer()


class _PlainDeserializer(TypeDeserializer):
    """boto3's deserializer with binary values as ``bytes`` (not ``Binary``, whose ``str`` is bytes)."""

    def _deserialize_b(self, value: bytes) -> bytes:
        return bytes(value)


_deserializer = _PlainDeserializer()


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain item (numbers as ``Decimal``) in DynamoDB's attribute-value shape."""
    return {k: _serializer.serialize(v) for k, v in item.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """An attribute-value item as plain Python values."""
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def batch_get(
    client: Any,
    keys: Mapping[str, Sequence[Mapping[str, Any]]],
    backoff: Backoff,
    *,
    consistent: bool | Mapping[str, bool] = True,
    projection: Mapping[str, str] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[Mapping[str, Any]]]]:
    """BatchGetItem in chunks of 100 keys across tables; ``UnprocessedKeys`` and throttling retried
    (``projection``: a table's ``ProjectionExpression``, for a caller that needs only some attributes;
    ``consistent``: for every table, or per table, strongly consistent when not named).

    Returns (items by table, keys still unread after the retries by table). A fault that retrying
    cannot fix leaves its chunk unread rather than raising, so the caller can fail just those records.
    """
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in keys}
    pending = [(table, k) for table, table_keys in keys.items() for k in table_keys]
    unread: dict[str, list[Mapping[str, Any]]] = {}
    for start in range(0, len(pending), BATCH_GET_LIMIT):
        chunk: dict[str, list[Mapping[str, Any]]] = {}
        for table, k in pending[start : start + BATCH_GET_LIMIT]:
            chunk.setdefault(table, []).append(k)
        for _ in backoff.pauses():
            request = {t: {"Keys": list(ks), "ConsistentRead": _consistent(consistent, t)} for t, ks in chunk.items()}
            for t in request.keys() & dict(projection or {}).keys():
                request[t]["ProjectionExpression"] = (projection or {})[t]
            try:
                response = client.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as error:
                log_event("warning", "batch_get_failed", error=str(error), retryable=is_retryable(error))
                if not is_retryable(error):
                    break
                continue
            for table, items in response.get("Responses", {}).items():
                found[table].extend(items)
            chunk = {t: list(v["Keys"]) for t, v in response.get("UnprocessedKeys", {}).items() if v.get("Keys")}
            if not chunk:
                break
        for table, ks in chunk.items():
            unread.setdefault(table, []).extend(ks)
    return found, unread


def _consistent(consistent: bool | Mapping[str, bool], table: str) -> bool:
    return consistent if isinstance(consistent, bool) else consistent.get(table, True)


def batch_write(
    client: Any, puts: Sequence[tuple[str, dict[str, Any]]], backoff: Backoff, keys: Mapping[str, Sequence[str]]
) -> list[int]:
    """BatchWriteItem of ``(table, serialized item)`` puts in chunks of 25 across tables.

    ``UnprocessedItems`` (recognised by their key attributes, ``keys[table]``) and throttling are retried
    within ``backoff``. A chunk DynamoDB refuses outright (a ``ValidationException`` such as an item
    over 400 KB fails the whole request) is retried one item per request, so that only the refused
    item fails, never the other 24. Returns the indexes (into ``puts``) of the items still not written;
    every other item is stored.
    """
    failed: list[int] = []
    indexes = list(range(len(puts)))
    chunks = [indexes[start : start + BATCH_WRITE_LIMIT] for start in range(0, len(puts), BATCH_WRITE_LIMIT)]
    while chunks:
        chunk = chunks.pop(0)
        refused = False
        for _ in backoff.pauses():
            request: dict[str, list[dict[str, Any]]] = {}
            for index in chunk:
                table, item = puts[index]
                request.setdefault(table, []).append({"PutRequest": {"Item": item}})
            try:
                response = client.batch_write_item(RequestItems=request)
            except (ClientError, BotoCoreError) as error:
                log_event("warning", "batch_write_failed", error=str(error), retryable=is_retryable(error))
                if not is_retryable(error):
                    refused = True
                    break
                continue
            unprocessed = response.get("UnprocessedItems", {})
            if not unprocessed:
                chunk = []
                break
            left = {(t, _key_of(r["PutRequest"]["Item"], keys[t])) for t, rs in unprocessed.items() for r in rs}
            chunk = [i for i in chunk if (puts[i][0], _key_of(puts[i][1], keys[puts[i][0]])) in left]
        if refused and len(chunk) > 1:
            chunks[:0] = [[index] for index in chunk]  # isolate the refused item
            continue
        failed.extend(chunk)
    return sorted(failed)


def _key_of(item: Mapping[str, Any], names: Sequence[str]) -> str:
    """An item's primary key as text (DynamoDB returns unprocessed items whole; their key identifies them)."""
    return json.dumps([item[name] for name in names], sort_keys=True)
