"""Where data rests: DynamoDB state tables and the S3 buckets (lake, quarantine, Athena results, logs)."""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTableGlobalSecondaryIndex,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
    DynamodbTableTtl,
)
from constructs import Construct

from stacks.buckets import SecureBucket, SecureBucketProps, Transition
from stacks.capacity import Throughput, model, provisioned_throughput
from stacks.context import StackContext
from stacks.layout import (
    FLEET,
    SEGMENT_AGGREGATES,
    SENSOR_ALLOW_LIST,
    SENSOR_OUTAGES,
    SENSOR_WINDOWS,
    TABLES,
    TTL_ATTRIBUTE,
    TableSpec,
)
from stacks.naming import Kind
from stacks.table_scaling import TableAutoScaling


class Storage(Construct):
    """DynamoDB tables and S3 buckets of one environment."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, kms_key_arn: str) -> None:
        super().__init__(scope, id_)
        self._ctx = ctx
        self._kms_key_arn = kms_key_arn
        self.throughput = provisioned_throughput(model(ctx.config.fleet, ctx.config.pipeline))
        """Provisioned units by table concern and ``<table>/<index>``; empty on demand (``dynamodb_capacity``)."""
        self.sensor_windows = self._table("sensor-windows-table", SENSOR_WINDOWS)
        self.segment_aggregates = self._table("segment-aggregates-table", SEGMENT_AGGREGATES)
        self.sensor_outages = self._table("sensor-outages-table", SENSOR_OUTAGES)
        self.fleet = self._table("fleet-table", FLEET)
        """The fleet registry and the stream shards' watermarks (``lambdas.common.silence``)."""
        self.sensor_allow_list = self._table("sensor-allow-list-table", SENSOR_ALLOW_LIST)
        """Serials that may onboard by claim (``stacks.provisioning``)."""
        self.table_names = tuple(ctx.namer.name(Kind.DYNAMODB_TABLE, s.concern) for s in TABLES)

        life = ctx.config.lifecycle
        namer = ctx.namer
        self.access_logs = SecureBucket(
            self,
            "access-logs",
            SecureBucketProps(
                name=namer.bucket("access-logs", ctx.account_id),
                production=ctx.production,
                kms_key_arn=None,
                noncurrent_version_days=life.noncurrent_version_days,
                expiration_days=life.access_logs_expiration_days,
                receives_access_logs=True,
                source_account=ctx.account_id,
            ),
        )

        def bucket(
            id_: str, concern: str, expiration: int | None, transitions: tuple[Transition, ...] = ()
        ) -> SecureBucket:
            return SecureBucket(
                self,
                id_,
                SecureBucketProps(
                    name=namer.bucket(concern, ctx.account_id),
                    production=ctx.production,
                    kms_key_arn=kms_key_arn,
                    noncurrent_version_days=life.noncurrent_version_days,
                    access_log_bucket=self.access_logs,
                    expiration_days=expiration,
                    transitions=transitions,
                ),
            )

        transitions = tuple(
            Transition(days, storage_class)
            for days, storage_class in (
                (life.lake_infrequent_access_days, "STANDARD_IA"),
                (life.lake_glacier_days, "GLACIER_IR"),
            )
            if days is not None
        )
        self.lake = bucket("lake", "lake", life.lake_expiration_days, transitions)
        self.quarantine = bucket("quarantine", "quarantine", life.quarantine_expiration_days)
        self.athena_results = bucket("athena-results", "athena-results", life.athena_results_expiration_days)

    def _table(self, id_: str, spec: TableSpec) -> DynamodbTable:
        """The table as ``spec`` says; provisioned and auto scaled when the model sizes it
        (``stacks.capacity.provisioned_throughput``), on demand otherwise."""
        units = self.throughput.get(spec.concern)
        attributes = [DynamodbTableAttribute(name=name, type=kind) for name, kind in spec.attribute_types().items()]
        indexes = []
        for index in spec.indexes:
            fixed = self._index_units(spec, index.name) if units else None
            indexes.append(
                DynamodbTableGlobalSecondaryIndex(
                    name=index.name,
                    hash_key=index.hash_key,
                    range_key=index.range_key,
                    projection_type=index.projection_type,
                    non_key_attributes=list(index.include) if index.include else None,
                    write_capacity=fixed.max_write if fixed else None,
                    read_capacity=fixed.max_read if fixed else None,
                )
            )
        ignored = ["read_capacity", "write_capacity"] if units else None  # auto scaling owns them
        production = self._ctx.production
        table = DynamodbTable(
            self,
            id_,
            name=self._ctx.namer.name(Kind.DYNAMODB_TABLE, spec.concern),
            billing_mode="PROVISIONED" if units else "PAY_PER_REQUEST",
            write_capacity=units.min_write if units else None,
            read_capacity=units.min_read if units else None,
            hash_key=spec.hash_key,
            range_key=spec.range_key,
            attribute=attributes,
            global_secondary_index=indexes or None,
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=self._kms_key_arn),
            ttl=DynamodbTableTtl(attribute_name=TTL_ATTRIBUTE, enabled=True) if spec.ttl else None,
            stream_enabled=spec.stream_view_type is not None,
            stream_view_type=spec.stream_view_type,
            deletion_protection_enabled=production,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True if production else None, ignore_changes=ignored)
            if production or ignored
            else None,
        )
        if units:
            TableAutoScaling(self, f"{id_}-scaling", self._ctx, table=table, concern=spec.concern, units=units)
        return table

    def _index_units(self, spec: TableSpec, index: str) -> Throughput:
        try:
            return self.throughput[f"{spec.concern}/{index}"]
        except KeyError:
            raise ValueError(
                f"stacks.capacity.provisioned_throughput sizes table {spec.concern!r} but not its index {index!r}"
            ) from None
