"""The quarantine store as an Athena table: the processor's rejected records, one JSON object per line.

The processor writes one object per batch of rejects (``lambdas.processor.logic.quarantine_object``)
at ``rejected/dt=<UTC arrival date of the batch's first record>/<shard id>/<first>-<last>.ndjson`` of
the quarantine bucket, one line per record: its reason code and detail, its sequence number, partition
key (the thing name it was published under), shard, arrival time, when it was quarantined and the raw
payload in base64. The Glue table reads those lines with the OpenX JSON SerDe, partitioned by ``dt``
with partition projection (no crawler, no ``MSCK REPAIR``); the shard folders under a ``dt=`` folder
need no partition of their own, since Athena reads a partition's location with its subfolders.

The IoT rule's error action writes to the same bucket under ``iot-errors/`` (another shape, the raw
message): outside this table's location.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from lambdas.common.contract import REASONS
from stacks.context import StackContext
from stacks.dated_table import JSON_LINES, PARTITION_KEY, dated_table
from stacks.layout import QUARANTINE_PREFIX
from stacks.naming import Kind
from stacks.schema import Column

QUARANTINED = "quarantined"
"""The common table expression the named queries read the quarantine through (:func:`quarantined_cte`)."""
UNKNOWN_SENSOR = "unknown"
"""The sensor a record without a partition key is counted for (Kinesis requires one; kept for safety)."""


@dataclass(frozen=True)
class QuarantineColumn:
    name: str
    comment: str


QUARANTINE_COLUMNS: tuple[QuarantineColumn, ...] = (
    QuarantineColumn("reason", "Rejection code (contract): the first that applies"),
    QuarantineColumn("detail", "What was wrong, for people"),
    QuarantineColumn("sequence_number", "Kinesis sequence number of the record"),
    QuarantineColumn("partition_key", "Kinesis partition key: the thing name the record was published under"),
    QuarantineColumn("shard_id", "Kinesis shard the record was read from"),
    QuarantineColumn("approximate_arrival_timestamp", "When the stream accepted the record (UTC, RFC 3339)"),
    QuarantineColumn("quarantined_at", "When the processor quarantined the record (UTC, RFC 3339)"),
    QuarantineColumn("payload_base64", "The record's raw payload, base64"),
)
"""Every key of a quarantine line (``lambdas.processor.logic.quarantine_object``), all strings."""


class QuarantineCatalog(Construct):
    """The Glue table over the quarantine bucket's ``rejected/`` prefix, in the lake's Glue database."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, *, database_name: str, bucket_name: str) -> None:
        super().__init__(scope, id_)
        self.table_name = ctx.namer.name(Kind.GLUE, "quarantine")
        location = f"s3://{bucket_name}/{QUARANTINE_PREFIX}"
        # An object's dt folder is the UTC arrival date of its batch's first record. A line that is not
        # JSON (nothing the processor writes) is a row of NULLs (``JSON_LINES``), which quarantined_cte
        # drops: it has no known reason.
        self.table = dated_table(
            self,
            "table",
            database_name=database_name,
            name=self.table_name,
            description=(
                "Records the processor rejected, one JSON object per line, partitioned by the UTC arrival"
                " date of each object's first record (dt=YYYY-MM-DD)"
            ),
            location=location,
            storage=JSON_LINES,
            columns=[Column(c.name, "string", c.comment) for c in QUARANTINE_COLUMNS],
        )


def quarantined_cte(table: str, days: int) -> str:
    """``quarantined AS (...)``: each quarantined record once, with the sensor it is counted for.

    Objects are read from the ``dt`` folders of today (UTC) and the ``days`` before it only (partition
    pruning, as for the lake). A record can be in more than one object (a retried batch that starts
    elsewhere, a redrive): it is identified by its shard, partition key and sequence number, and the
    copy quarantined first is kept. Lines without one of the contract's reason codes (not the
    processor's) are left out.

    Columns: ``sensor_id`` (the record's partition key, the thing name it was published under: a
    malformed record has no readable ``sensor_id`` of its own, and a ``sensor_mismatch`` counts for the
    thing that sent it; :data:`UNKNOWN_SENSOR` without one), ``reason``, ``detail`` and
    ``arrival_time`` (when the stream accepted it, a UTC ``timestamp`` truncated to the second).
    """
    reasons = ", ".join(f"'{reason}'" for reason in REASONS)
    arrival = "approximate_arrival_timestamp"
    return f"""{QUARANTINED} AS (
    SELECT coalesce(nullif(partition_key, ''), '{UNKNOWN_SENSOR}') AS sensor_id, reason, detail, arrival_time
    FROM (
        SELECT partition_key, reason, detail,
               try_cast(concat(substr({arrival}, 1, 10), ' ', substr({arrival}, 12, 8)) AS timestamp) AS arrival_time,
               row_number() OVER (
                   PARTITION BY shard_id, partition_key, sequence_number
                   ORDER BY quarantined_at, {PARTITION_KEY}, reason, detail
               ) AS copy_rank
        FROM {table}
        WHERE {PARTITION_KEY} >= date_format(current_date - interval '{days}' day, '%Y-%m-%d')
          AND reason IN ({reasons})
    ) AS records
    WHERE copy_rank = 1
)"""
