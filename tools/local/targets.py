"""The physical names of one environment's data path, as the local run, its IAM check and the operator tools
address them (from the emulated resources the local run creates, or from ``terraform output -json``).

Its own module so that ``tools.local.simulate`` and ``tools.local.iam_check`` both use it without importing
each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stacks.layout import RuntimeNames


@dataclass(frozen=True)
class Targets:
    """Physical names of one environment's data path."""

    environment: str
    region: str
    stream_name: str
    sensor_windows_table: str
    segment_aggregates_table: str
    quarantine_bucket: str
    alert_topic_arn: str
    processor_dlq_url: str
    metric_namespace: str
    sensor_outages_table: str
    folder_dlq_url: str
    partials_stream: str
    fleet_table: str

    def runtime_names(self) -> RuntimeNames:
        return RuntimeNames(
            environment_suffix=self.environment,
            metric_namespace=self.metric_namespace,
            sensor_windows_table=self.sensor_windows_table,
            segment_aggregates_table=self.segment_aggregates_table,
            quarantine_bucket=self.quarantine_bucket,
            alert_topic_arn=self.alert_topic_arn,
            sensor_outages_table=self.sensor_outages_table,
            partials_stream=self.partials_stream,
            fleet_table=self.fleet_table,
        )

    @classmethod
    def from_outputs(cls, environment: str, region: str, outputs: Mapping[str, Any]) -> Targets:
        """From ``terraform output -json`` of a deployed environment stack."""
        value = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in outputs.items()}
        return cls(
            environment=environment,
            region=region,
            stream_name=value["kinesis_stream_name"],
            sensor_windows_table=value["sensor_windows_table_name"],
            segment_aggregates_table=value["segment_aggregates_table_name"],
            quarantine_bucket=value["quarantine_bucket_name"],
            alert_topic_arn=value["alert_topic_arn"],
            processor_dlq_url=value["processor_dlq_url"],
            metric_namespace=value["metric_namespace"],
            sensor_outages_table=value["sensor_outages_table_name"],
            folder_dlq_url=value["folder_dlq_url"],
            partials_stream=value["partials_stream_name"],
            fleet_table=value["fleet_table_name"],
        )
