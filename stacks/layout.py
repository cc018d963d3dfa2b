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
class TableSpec:
    """Key schema, TTL and change stream of one table."""

    concern: str
    hash_key: str
    range_key: str | None = None
    ttl: bool = False
    stream_view_type: str | None = None


SENSOR_WINDOWS = TableSpec(
    "sensor-windows", hash_key="sensor_id", range_key="window_segment", ttl=True, stream_view_type="NEW_IMAGE"
)
"""Each sensor's distinct readings per window and segment (sort key ``<window start>#<segment id>``),
with their exact sums and the item's newest reading. A sensor's current state is the newest reading
of its newest window (a ``Query`` newest first; a sensor moved to another segment within that window
has an item per segment there), so a reading touches exactly one item: 1,000 readings of
1,000 sensors cost 10 BatchGetItem + 40 BatchWriteItem. The stream drives the alert function. Items
expire ``AGGREGATE_TTL_DAYS`` after their window: a sensor silent for longer has no current state
(its history stays in the data lake)."""
SEGMENT_AGGREGATES = TableSpec("segment-aggregates", hash_key="segment_id", range_key="window_start", ttl=True)
"""Each segment's aggregate per window, with its congestion level and alert state."""
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
    }


def alert_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    """Environment variables of the alert function."""
    return {
        **_common_environment(names, config),
        "SEGMENT_AGGREGATES_TABLE": names.segment_aggregates_table,
        "ALERT_TOPIC_ARN": names.alert_topic_arn,
    }


def _common_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    return {
        "ENVIRONMENT_SUFFIX": names.environment_suffix,
        "METRIC_NAMESPACE": names.metric_namespace,
        "SENSOR_WINDOWS_TABLE": names.sensor_windows_table,
        "WINDOW_SECONDS": str(config.aggregation_window_seconds),
        "AGGREGATE_TTL_DAYS": str(config.lifecycle.aggregate_ttl_days),
    }
