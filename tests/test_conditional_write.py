"""``lambdas.common.aws.conditional_write``: the one place a lost conditional write is told apart from a fault.

The alert function's aggregate put and alert mark, and the silence check's outage writes, all go
through it; here it runs against a real (moto) table, with faults injected by botocore hooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.common.aws import Backoff, conditional_write

TABLE = "tap-conditional-write-test"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def first_write(client: Any, value: str) -> Any:
    return lambda: client.put_item(
        TableName=TABLE,
        Item={"pk": {"S": "a"}, "value": {"S": value}},
        ConditionExpression="attribute_not_exists(pk)",
    )


def stored(client: Any) -> str:
    return str(client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]["value"]["S"])


def test_the_first_writer_wins_and_the_second_is_told_it_lost(dynamodb: Any) -> None:
    backoff = Backoff(sleep=lambda _: None)
    assert conditional_write(backoff, first_write(dynamodb, "first")) is True
    assert conditional_write(backoff, first_write(dynamodb, "second")) is False
    assert stored(dynamodb) == "first"


def test_throttling_is_retried_and_the_write_then_made(dynamodb: Any) -> None:
    throttled = []

    def throttle(**_: Any) -> None:
        if len(throttled) < 2:
            throttled.append(1)
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, "PutItem")  # type: ignore[arg-type]

    dynamodb.meta.events.register_first("before-call.dynamodb.PutItem", throttle)
    pauses: list[float] = []
    assert conditional_write(Backoff(sleep=pauses.append), first_write(dynamodb, "first")) is True
    assert len(throttled) == 2
    assert len(pauses) == 2
    assert stored(dynamodb) == "first"


def test_a_fault_that_is_not_a_lost_condition_is_raised(dynamodb: Any) -> None:
    missing = lambda: dynamodb.put_item(  # noqa: E731 - the call under test
        TableName=f"{TABLE}-missing", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)"
    )
    with pytest.raises(ClientError) as raised:
        conditional_write(Backoff(sleep=lambda _: None), missing)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_throttling_past_the_backoff_is_raised_not_taken_for_a_lost_condition(dynamodb: Any) -> None:
    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem")  # type: ignore[arg-type]

    dynamodb.meta.events.register_first("before-call.dynamodb.PutItem", throttle)
    with pytest.raises(ClientError) as raised:
        conditional_write(Backoff(attempts=3, sleep=lambda _: None), first_write(dynamodb, "first"))
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
