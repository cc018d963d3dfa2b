"""Pure description of the data stores and function settings, shared by the constructs and the local run.

The stack builds its tables and the functions' environment from here, and ``tools.local.simulate`` creates
its emulated resources from the same definitions: there is no second hand-written copy. Importing this
module does not load the provider bindings.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.config import EnvironmentConfig

SILENCE_SCHEDULE = "silence-check"
"""Concern of the silence check's schedule name (``tap-silence-check-<env>``)."""
SCHEDULE_GROUP = "schedules"
"""Concern of the environment's schedule group name (``tap-schedules-<env>``)."""


TTL_ATTRIBUTE = "expires_at"
QUARANTINE_PREFIX = "rejected/"
FOLDER_BATCH_SIZE = 10_000
"""Partials per folder invocation at most (the folder's event source mapping's batch size, Kinesis's largest):
Lambda's 6 MB payload ends a batch first, at ~7,200 partials (a record is ~280 B of data, ~870 B in the
event). A larger batch coalesces more processor batches' partials of one segment window into one put
(``stacks.capacity``)."""
PARTIALS_STREAM = "partials"
"""Concern of the partials stream's name (``tap-partials-<env>``): the processor's partials, keyed by segment."""


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index (on-demand like its table)."""

    name: str
    hash_key: str
    range_key: str
    range_type: str = "S"
    include: tuple[str, ...] | None = None
    """Non-key attributes projected into the index; ``None`` projects them all, ``()`` only the keys. An
    index entry is written (and billed) at its projected size, so an index over large items projects
    little."""

    @property
    def projection_type(self) -> str:
        return "ALL" if self.include is None else "INCLUDE" if self.include else "KEYS_ONLY"


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
    "sensor-windows",
    hash_key="sensor_id",
    range_key="window_part",
    ttl=True,
)
"""Each sensor's distinct readings per window (sort key ``<window start>#<part>``, see
``lambdas.processor.logic``: a window's readings are split over bounded parts), with their exact sums
per segment and the part's newest reading. A sensor's current state is the newest reading of its
newest window (a ``Query`` newest first, then that window's parts), so a reading touches one item:
1,000 readings of 1,000 sensors cost 10 BatchGetItem + 40 BatchWriteItem. No stream: the processor sends
the segments' sums on the partials stream itself (``lambdas.processor.service``), and keeps one mark item
per readings shard here (``sensor_id`` ``#partials``, sort key the shard id). Items expire
``AGGREGATE_TTL_DAYS`` after their window: a sensor silent for longer has no current state (its history
stays in the data lake)."""
PENDING_ALERTS = IndexSpec("pending-alerts", hash_key="alert_pending", range_key="alert_lease_until", range_type="N")
"""Sparse: only aggregates whose alert is claimed but not yet sent carry ``alert_pending``; the folder
queries it for claims whose lease ran out (``lambdas.common.alert_state``)."""
SEGMENT_AGGREGATES = TableSpec(
    "segment-aggregates", hash_key="segment_id", range_key="window_start", ttl=True, indexes=(PENDING_ALERTS,)
)
"""Each segment's aggregate per window: its exact sums, the highest cut folded per source shard (``src``),
congestion level, version and alert state; one writer, the folder (``lambdas.folder``)."""
OPEN_OUTAGES = IndexSpec("open-outages", hash_key="outage_open", range_key="sensor_id")
"""Sparse: the outages not yet ended by a recovery notice (or by the sensor leaving the fleet)."""
SENSOR_OUTAGES = TableSpec("sensor-outages", hash_key="sensor_id", range_key="since", ttl=True, indexes=(OPEN_OUTAGES,))
"""One item per outage of a sensor (``since``: the timestamp of its newest reading when it fell silent),
with the outage alert's and the recovery notice's exactly-once state (``lambdas.silence.service``)."""
FLEET = TableSpec("fleet", hash_key="pk", range_key="sk", ttl=True)
"""The fleet registry and the stream shards' watermarks (``lambdas.common.silence``): a sensor's item under
``fleet#<crc32(sensor) mod 64>`` (sort key: the sensor), written by the processor at most once a day per
sensor, and one ``watermark`` item per stream shard, written once per batch. The silence check Queries the
64 registry keys and the watermarks each run: no index, and no key that is hot by minute."""
TABLES = (SENSOR_WINDOWS, SEGMENT_AGGREGATES, SENSOR_OUTAGES, FLEET)

SENSOR_ALLOW_LIST = TableSpec("sensor-allow-list", hash_key="serial")
"""Serials that may onboard by claim, one item each with its ``status`` (``lambdas.provisioning.logic``:
allowed, claimed, registered, revoked). Not in ``TABLES``: the data path never touches it."""


def provisioning_environment(environment_suffix: str, metric_namespace: str, allow_list_table: str) -> dict[str, str]:
    """Environment variables of the pre-provisioning hook."""
    return {
        "ENVIRONMENT_SUFFIX": environment_suffix,
        "METRIC_NAMESPACE": metric_namespace,
        "ALLOW_LIST_TABLE": allow_list_table,
    }


@dataclass(frozen=True)
class RuntimeNames:
    """Physical names the functions are told about (plain strings or Terraform tokens)."""

    environment_suffix: str
    metric_namespace: str
    sensor_windows_table: str
    segment_aggregates_table: str
    quarantine_bucket: str
    alert_topic_arn: str
    sensor_outages_table: str
    partials_stream: str
    fleet_table: str


def processor_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    """Environment variables of the processor function."""
    return {
        **_common_environment(names, config),
        "PARTIALS_STREAM": names.partials_stream,
        "QUARANTINE_BUCKET": names.quarantine_bucket,
        "QUARANTINE_PREFIX": QUARANTINE_PREFIX,
        "MAX_READING_AGE_SECONDS": str(config.max_reading_age_seconds),
        "FLEET_TABLE": names.fleet_table,
        "FLEET_RETENTION_DAYS": str(config.fleet_retention_days),
        "WINDOW_TTL_DAYS": str(config.window_ttl_days),
    }


def folder_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    """Environment variables of the folder function."""
    return {
        **_common_environment(names, config),
        "SEGMENT_AGGREGATES_TABLE": names.segment_aggregates_table,
        "ALERT_TOPIC_ARN": names.alert_topic_arn,
        "CLAIM_LEASE_SECONDS": str(claim_lease_seconds(config)),
    }


def silence_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    """Environment variables of the silence check function."""
    return {
        **_common_environment(names, config),
        "SENSOR_OUTAGES_TABLE": names.sensor_outages_table,
        "FLEET_TABLE": names.fleet_table,
        "ALERT_TOPIC_ARN": names.alert_topic_arn,
        "SILENCE_FACTOR": str(config.silence_factor),
        "FLEET_RETENTION_DAYS": str(config.fleet_retention_days),
        "CLAIM_LEASE_SECONDS": str(config.silence.timeout_seconds + 60),
        "BATCHING_ALLOWANCE_SECONDS": str(batching_allowance_seconds(config)),
    }


def batching_allowance_seconds(config: EnvironmentConfig) -> int:
    """How long a record may wait in the stream while the processor keeps up: the mapping's batching window,
    then one processor run of at most its timeout (``lambdas.common.silence.judged_at``)."""
    return config.batching_window_seconds + config.processor.timeout_seconds


def claim_lease_seconds(config: EnvironmentConfig) -> int:
    """How long an alert claim is its owner's: past the folder's timeout (Lambda has ended the invocation
    by then), with a minute for clocks and the runtime's shutdown."""
    return config.folder.timeout_seconds + 60


def _common_environment(names: RuntimeNames, config: EnvironmentConfig) -> dict[str, str]:
    return {
        "ENVIRONMENT_SUFFIX": names.environment_suffix,
        "METRIC_NAMESPACE": names.metric_namespace,
        "SENSOR_WINDOWS_TABLE": names.sensor_windows_table,
        "WINDOW_SECONDS": str(config.aggregation_window_seconds),
        "AGGREGATE_TTL_DAYS": str(config.lifecycle.aggregate_ttl_days),
    }
