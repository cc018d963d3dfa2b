"""The recursion-free JSON syntax check (``lambdas.common.json_syntax``) against ``json`` itself.

``json`` (its C scanner, strict, with NaN and Infinity refused as the contract does) is the reference on
every document it can decode; documents deeper than it recurses are built so that their answer is known,
and checked by an independent deep decode (``tests.test_contract.exact_loads``: ``json`` on a thread with a
large stack). The hand-picked cases follow JSONTestSuite's ``y_`` (must accept) and ``n_`` (must reject).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.common import contract
from lambdas.common.json_syntax import JSONSyntaxError, top_level_members
from tests.test_contract import exact_loads


def json_verdict(text: str) -> bool | None:
    """Whether ``json`` accepts the text as RFC 8259 JSON; ``None`` when it recursed too deep to say."""
    try:
        exact_loads_shallow(text)
    except RecursionError:
        return None
    except ValueError:
        return False
    return True


def _refuse(name: str) -> Any:
    raise ValueError(name)


def exact_loads_shallow(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_refuse)


def our_verdict(text: str) -> bool:
    try:
        top_level_members(text)
    except JSONSyntaxError:
        return False
    return True


ACCEPTED = [
    "[]", "{}", " [ ] ", '{"a":[]}', "0", "-0", "-0.0e-0", "1E+2", "1e400", "123456789012345678901234567890",
    '""', '"\\u0000"', '"\\ud800"', '"\\/"', '"é€𝄞"', "[true,false,null]", '{"a":1,"a":2}', "\t[1]\r\n",
    '{"":""}', "[[[[[]]]]]", '[{"a":{"b":[1,{"c":null}]}}]', "[1 ,2 ]", '{ "a" : 1 , "b" : { } }',
]  # fmt: skip
REJECTED = [
    "", " ", "[", "]", "[1,]", "[,1]", "[1,,2]", '{"a":1,}', '{,"a":1}', '{"a" 1}', '{"a":}', "{1:1}", "{'a':1}",
    "[01]", "[-]", "[.5]", "[1.]", "[1.e5]", "[1e]", "[+1]", "[0x1]", "[1_000]", "[NaN]", "[Infinity]",
    "[-Infinity]", "[tru]", "[truex]", "[True]", "[None]", '["\t"]', '["\x01"]', '["\\x41"]', '["\\u12"]',
    '["\\uZZZZ"]', '["a]', "[1] [2]", "[1]x", "{}}", "[]]", "[}", "{]", "[\u0661]", "[١]", "[1\u00a0]",
    "\u00a0[1]", "\ufeff[1]", "[1]\x00", '{"a":1 "b":2}', "[1 2]", '["a":1]', '{"a"}', "/* */[1]", "[1]//",
]  # fmt: skip


@pytest.mark.parametrize("text", ACCEPTED)
def test_valid_json_is_accepted(text: str) -> None:
    assert json_verdict(text) is True
    assert our_verdict(text)


@pytest.mark.parametrize("text", REJECTED)
def test_invalid_json_is_rejected(text: str) -> None:
    assert json_verdict(text) is False
    assert not our_verdict(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values, st.sampled_from([None, 0, 2, "\t"]), st.booleans())
def test_every_json_document_is_accepted_with_its_members(document: Any, indent: Any, ascii_only: bool) -> None:
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    members = top_level_members(text)
    if not isinstance(document, dict):
        assert members is None
        return
    assert members is not None
    decoded = {json.loads(key): json.loads(text[start:end]) for key, start, end in members}
    assert decoded == document
    assert [json.loads(key) for key, _, _ in members] == list(document)


ALPHABET = [*'{}[]:,"\\ 0123456789.eE+-truefalsnl\t\n\x01u', "\u0661", "\u00a0", "é"]


@settings(max_examples=500)
@given(
    json_values, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), st.sampled_from(ALPHABET)), max_size=4)
)
def test_mutated_documents_agree_with_json(document: Any, edits: list[tuple[int, int, str]]) -> None:
    text = json.dumps(document)
    for where, how, char in edits:
        at = where % (len(text) + 1)
        if how == 0:
            text = text[:at] + char + text[at:]
        elif how == 1:
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    expected = json_verdict(text)
    if expected is not None:
        assert our_verdict(text) == expected, text


def deep(levels: int, inner: str = "1") -> str:
    """``levels`` alternately of arrays and objects around ``inner``, with whitespace between tokens."""
    opening = "".join("[ " if i % 2 else '{"k" : ' for i in range(levels))
    closing = "".join(" ]" if i % 2 else " }" for i in reversed(range(levels)))
    return opening + inner + closing


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("[" * 100_000 + "]" * 100_000, True),
        ("[" * 100_000 + "]" * 99_999, False),
        ("[" * 100_000 + "]" * 100_001, False),
        ('{"a":' * 30_000 + "null" + "}" * 30_000, True),
        ('{"a":' * 30_000 + "null" + "}" * 29_999 + "]", False),
        (deep(20_001), True),
        (deep(20_001, "01"), False),
        (deep(20_001, "[1,]"), False),
        (deep(20_001, '"\\u0661"'), True),
        (deep(20_001, "\u0661"), False),
        (deep(20_001) + " x", False),
    ],
)
def test_nesting_deeper_than_json_recurses(text: str, valid: bool) -> None:
    assert json_verdict(text) is None  # json cannot say: that is why the check exists
    assert our_verdict(text) == valid
    if valid:
        exact_loads(text)  # the independent deep decode agrees


def test_a_reading_with_a_deep_extra_property_is_valid_and_its_fields_decoded() -> None:
    extra = deep(5_001, '{"sensor_id": "other", "vehicle_count": -1}')
    payload = (
        '{"sensor_id": "s1", "segment_id": "seg-a", "timestamp": "2026-06-01T11:50:00Z", "vehicle_count": 1e0,'
        f' "average_speed_kmh": 50.50, "occupancy_percent": 1{"0" * 5000}E-4998, "extra": {extra},'
        ' "interval_seconds": 60, "sensor_id": "s2"}'
    ).encode()
    document = contract.decode(payload)
    assert document == exact_loads(payload.decode()) | {"extra": {}}  # the nested member kept empty
    outcome = contract.parse_reading(payload, contract.parse_instant("2026-06-01T12:00:00Z"), thing="s2")
    assert isinstance(outcome, contract.Reading) and outcome.sensor_id == "s2"  # the last copy of a key, as json
    assert outcome.occupancy_percent == 100


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", contract.SCHEMA_VIOLATION),
        (b'{"vehicle_count": ' + b"[" * 2_000 + b"]" * 2_000 + b"}", contract.SCHEMA_VIOLATION),
        (b"[" * 2_000 + b"]" * 2_000, contract.MALFORMED_JSON),
        (b'{"x": ' + b"[" * 2_000 + b"]" * 1_999 + b"}", contract.MALFORMED_JSON),
        (b'{"x": ' + b"[" * 2_000 + "\u0661".encode() + b"]" * 2_000 + b"}", contract.MALFORMED_JSON),
    ],
)
def test_deep_documents_get_the_contracts_reason(payload: bytes, reason: str) -> None:
    outcome = contract.parse_reading(payload, 0)
    assert isinstance(outcome, contract.Rejection) and outcome.reason == reason
