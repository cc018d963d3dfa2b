"""Pure description of the data stores and function settings, shared by the constructs and the local run.

The stack builds its tables and the functions' environment from here, and ``tools.simulate`` creates
its emulated resources from the same definitions: there is no second hand-written copy. Importing this
module does not load the provider bindings.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.config import EnvironmentConfig

TTL_ATTRIBUTE = "expires_at"
QUARANTINE_PREFIX = "rejected/"
ALERT_BATCH_SIZE = 1000
"""Window changes per alert invocation (the alert event source mapping's batch size)."""


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index (all attributes projected, on-demand like its table)."""

    name: str
    hash_key: str
    range_key: str
    range_type: str = "S"


@dataclass(frozen=True)
class TableSpec:
    """Key schema, TTL, change stream and indexes of one table."""

    concern: str
    hash_key: str
    range_key: str | None = None
    ttl: bool = False
    stream_view_type: str | None = None
    indexes: tuple[IndexSpec, ...] = ()

    def attribute_types(self) -> dict[str, str]:
        """Every key attribute of the table and its indexes, with its DynamoDB type."""
        types = {self.hash_key: "S"}
        if self.range_key:
            types[self.range_key] = "S"
        for index in self.indexes:
            types[index.hash_key] = "S"
            types[index.range_key] = index.range_type
        return types


SENSOR_WINDOWS = TableSpec(
    "sensor-windows", hash_key="sensor_id", range_key="window_part", ttl=True, stream_view_type="NEW_IMAGE"
)
"""Each sensor's distinct readings per window (sort key ``<window start>#<part>``, see
``lambdas.processor.logic``: a window's readings are split over bounded parts), with their exact sums
per segment and the part's newest reading. A sensor's current state is the newest reading of its
newest window (a ``Query`` newest first, then that window's parts), so a reading touches one item:
1,000 readings of 1,000 sensors cost 10 BatchGetItem + 40 BatchWriteItem. The stream drives the alert
function. Items expire ``AGGREGATE_TTL_DAYS`` after their window: a sensor silent for longer has no
current state (its history stays in the data lake)."""
PENDING_ALERTS = IndexSpec("pending-alerts", hash_key="alert_pending", range_key="alert_lease_until", range_type="N")
"""Sparse: only aggregates whose alert is claimed but not yet sent carry ``alert_pending``; the alert
function queries it for claims whose lease ran out (``lambdas.alert.service``)."""
SEGMENT_AGGREGATES = TableSpec(
    "segment-aggregates", hash_key="segment_id", range_key="window_start", ttl=True, indexes=(PENDING_ALERTS,)
)
"""Each segment's aggregate per window, with its congestion level, version and alert state."""
TABLES = (SENSOR_WINDOWS, SEGMENT_AGGREGATES)


@dataclass(frozen=True)
class RuntimeNames:
    """Physical names the functions are told about (plain strings or Terraform tokens)."""

    environment_suffix: str
    metric_namespace: str
    sensor_windows_table: str
    segment_aggregates_table: str
    quarantine_bucket: str
    alert_topic_arn: str


def processor_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    """Environment variables of the processor function."""
    return {
        **_common_environment(names, config),
        "QUARANTINE_BUCKET": names.quarantine_bucket,
        "QUARANTINE_PREFIX": QUARANTINE_PREFIX,
        "MAX_READING_AGE_SECONDS": str(config.max_reading_age_seconds),
    }


def alert_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    """Environment variables of the alert function."""
    return {
        **_common_environment(names, config),
        "SEGMENT_AGGREGATES_TABLE": names.segment_aggregates_table,
        "ALERT_TOPIC_ARN": names.alert_topic_arn,
        "CLAIM_LEASE_SECONDS": str(claim_lease_seconds(config)),
    }


def claim_lease_seconds(config: EnvironmentConfig) -> int:
    """How long an alert claim is its owner's: past the alert function's timeout (Lambda has ended the
    invocation by then), with a minute for clocks and the runtime's shutdown."""
    return config.alert.timeout_seconds + 60


def _common_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    return {
        "ENVIRONMENT_SUFFIX": names.environment_suffix,
        "METRIC_NAMESPACE": names.metric_namespace,
        "SENSOR_WINDOWS_TABLE": names.sensor_windows_table,
        "WINDOW_SECONDS": str(config.aggregation_window_seconds),
        "AGGREGATE_TTL_DAYS": str(config.lifecycle.aggregate_ttl_days),
    }
