"""A Glue table over an S3 prefix of day folders (``dt=YYYY-MM-DD``), the shape of both tables Athena
reads: the lake's Parquet readings (``analytics.py``) and the quarantine's JSON lines
(``quarantine_catalog.py``).

Partitions are not registered: Athena's partition projection (``projection.*`` parameters) derives
them from the query's ``dt`` predicate, so a query bounded to a week reads that week's folders and nothing needs a
crawler or ``MSCK REPAIR``. Anything the query does not bound falls back to the projected range
(2024-01-01 up to today), which is why every query of the platform names ``dt``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.glue_catalog_table import (
    GlueCatalogTable,
    GlueCatalogTablePartitionKeys,
    GlueCatalogTableStorageDescriptor,
    GlueCatalogTableStorageDescriptorColumns,
    GlueCatalogTableStorageDescriptorSerDeInfo,
)
from constructs import Construct

from stacks.schema import Column

PARTITION_KEY = "dt"
"""The day folder's key: ``<prefix>dt=YYYY-MM-DD/`` (UTC)."""
FIRST_DAY = "2024-01-01"


@dataclass(frozen=True)
class Format:
    """How the objects are stored: the table's ``classification`` and its Hive input, output and SerDe."""

    classification: str
    input_format: str
    output_format: str
    serialization_library: str
    serde_parameters: Mapping[str, str]


PARQUET = Format(
    classification="parquet",
    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    serde_parameters={"serialization.format": "1"},
)
JSON_LINES = Format(
    classification="json",
    input_format="org.apache.hadoop.mapred.TextInputFormat",
    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    serialization_library="org.openx.data.jsonserde.JsonSerDe",
    # A line that is not JSON becomes a row of NULLs instead of failing the query.
    serde_parameters={"ignore.malformed.json": "true"},
)


def dated_table(
    scope: Construct,
    id_: str,
    *,
    database_name: str,
    name: str,
    description: str,
    location: str,
    storage: Format,
    columns: Sequence[Column],
) -> GlueCatalogTable:
    """The external table over ``location`` (``s3://bucket/prefix/``), one ``dt`` folder a day."""
    return GlueCatalogTable(
        scope,
        id_,
        database_name=database_name,
        name=name,
        table_type="EXTERNAL_TABLE",
        description=description,
        parameters={
            "classification": storage.classification,
            "EXTERNAL": "TRUE",
            "projection.enabled": "true",
            f"projection.{PARTITION_KEY}.type": "date",
            f"projection.{PARTITION_KEY}.format": "yyyy-MM-dd",
            f"projection.{PARTITION_KEY}.range": f"{FIRST_DAY},NOW",
            f"projection.{PARTITION_KEY}.interval": "1",
            f"projection.{PARTITION_KEY}.interval.unit": "DAYS",
            # ``$${`` is Terraform's escape: Glue receives the template ``.../dt=${dt}/``.
            "storage.location.template": f"{location}{PARTITION_KEY}=$${{{PARTITION_KEY}}}/",
        },
        partition_keys=[GlueCatalogTablePartitionKeys(name=PARTITION_KEY, type="string")],
        storage_descriptor=GlueCatalogTableStorageDescriptor(
            location=location,
            input_format=storage.input_format,
            output_format=storage.output_format,
            ser_de_info=GlueCatalogTableStorageDescriptorSerDeInfo(
                serialization_library=storage.serialization_library,
                parameters=dict(storage.serde_parameters),
            ),
            columns=[
                GlueCatalogTableStorageDescriptorColumns(name=c.name, type=c.glue_type, comment=c.comment)
                for c in columns
            ],
        ),
    )
