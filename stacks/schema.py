"""The lake's columns, derived from the reading contract (``contracts/traffic-reading.schema.json``).

``contracts/`` is this project's copy of ``../shared/contracts`` (a test keeps them identical), so a
fresh clone synthesizes without the shared folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "traffic-reading.schema.json"
_GLUE_TYPES = {"string": "string", "integer": "int", "number": "double"}


@dataclass(frozen=True)
class Column:
    name: str
    glue_type: str
    comment: str


@cache
def reading_schema() -> dict[str, Any]:
    """The reading contract as a dict."""
    schema: dict[str, Any] = json.loads(CONTRACT.read_text(encoding="utf-8"))
    return schema


def lake_columns() -> tuple[Column, ...]:
    """One column per property of the contract, in its order, with Glue types."""
    properties: dict[str, dict[str, Any]] = reading_schema()["properties"]
    columns = []
    for name, spec in properties.items():
        json_type = spec["type"]
        if json_type not in _GLUE_TYPES:
            raise ValueError(f"contract property {name!r} has type {json_type!r} with no Glue mapping")
        columns.append(Column(name, _GLUE_TYPES[json_type], spec.get("description", "")[:255]))
    return tuple(columns)
