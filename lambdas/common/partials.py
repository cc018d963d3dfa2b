"""The partials stream's record: what the processor sends and the folder folds (one format, one place).

One record per (processor batch, segment window): partition key the segment id, so every partial of a
segment lands on one shard of the partials stream and reaches one folder batch at a time. The body is
compact JSON::

    {"segment": "seg-a", "window": "2026-06-01T11:50:00Z", "shard": "shardId-000000000000",
     "first": "<first sequence number of the batch>", "expires_at": 1780000000,
     "pieces": [["<through: a sequence number of the shard>", <sums row>], ...]}

A *piece* is the exact sums (``contract.Sums.row``) of the segment window's readings that records of
``shard`` with sequence numbers in ``(previous cut, through]`` stored; the folder folds a piece only when
``through`` is above the highest one it folded from ``shard`` (the aggregate's ``src``), and pieces of one
record are in ascending ``through``. Why that is exactly once is ``lambdas.processor.service``'s docstring.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lambdas.common.contract import Sums

MAX_RECORDS_PER_PUT = 500
"""PutRecords takes at most 500 records (and 5 MiB) a call."""
MAX_PUT_BYTES = 4 * 1024 * 1024
"""Bytes of data one PutRecords call carries at most here (under the 5 MiB limit, keys included)."""


def at_or_below(sequence_number: str, mark: str) -> bool:
    """Whether a Kinesis sequence number (a decimal string of any length) is at or below ``mark``."""
    return (len(sequence_number), sequence_number) <= (len(mark), mark)


def sequence_key(sequence_number: str) -> tuple[int, str]:
    """Sort key of Kinesis sequence numbers (numeric order of decimal strings)."""
    return len(sequence_number), sequence_number


@dataclass(frozen=True)
class Partial:
    segment: str
    window: str
    shard: str
    first: str
    expires_at: int
    pieces: tuple[tuple[str, Sums], ...]

    def encode(self) -> bytes:
        body = {
            "segment": self.segment,
            "window": self.window,
            "shard": self.shard,
            "first": self.first,
            "expires_at": self.expires_at,
            "pieces": [[through, sums.row()] for through, sums in self.pieces],
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Partial:
        """A record's data; ``ValueError`` (or ``KeyError``/``TypeError``) when it is not a partial."""
        body: dict[str, Any] = json.loads(data)
        pieces: Sequence[Any] = body["pieces"]
        return cls(
            segment=str(body["segment"]),
            window=str(body["window"]),
            shard=str(body["shard"]),
            first=str(body["first"]),
            expires_at=int(body["expires_at"]),
            pieces=tuple((str(through), Sums.from_row(row)) for through, row in pieces),
        )
