"""Synthesized environment stacks: every part of the path exists, is wired, and is locked down."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from stacks.analytics import NAMED_QUERIES, estimated_scan_bytes
from stacks.budget import MAX_NOTIFICATIONS
from stacks.capacity import (
    ATHENA_MIN_CUTOFF_BYTES,
    PROVISIONED_TABLES,
    DynamoDBCapacity,
    athena_cutoff_bytes,
    model,
    monthly_cost,
    prices_for,
    provisioned_throughput,
)
from stacks.config import DEFAULT_STATE_BUCKET, PROFILES, STATE_KEY_ALIAS, UNRESERVED_MINIMUM
from stacks.schema import lake_columns
from tests.conftest import AD_HOC_SUFFIX, ENVIRONMENTS, ROOT, Synth
from tests.tfjson import StackDoc, ref, walk_strings

PROFILE_OF = {"dev": "dev", "staging": "staging", "prod": "prod", AD_HOC_SUFFIX: "dev"}
REQUIRED_TYPES = {
    "aws_kms_key", "aws_kms_alias", "aws_iam_role", "aws_iam_role_policy", "aws_iot_topic_rule", "aws_iot_policy",
    "aws_kinesis_stream", "aws_kinesis_firehose_delivery_stream", "aws_glue_catalog_database",
    "aws_glue_catalog_table", "aws_athena_workgroup", "aws_athena_named_query", "aws_dynamodb_table", "aws_s3_bucket",
    "aws_s3_bucket_public_access_block", "aws_s3_bucket_policy", "aws_s3_bucket_versioning",
    "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging", "aws_lambda_function", "aws_lambda_event_source_mapping", "aws_cloudwatch_log_group",
    "aws_sqs_queue", "aws_sns_topic", "aws_cloudwatch_metric_alarm", "aws_cloudwatch_dashboard",
}  # fmt: skip
NAME_ATTRIBUTES = ("name", "bucket", "function_name", "alarm_name", "dashboard_name")


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest, synth: Synth) -> tuple[str, StackDoc]:
    return request.param, synth.env(request.param)


def function(doc: StackDoc, concern: str) -> tuple[str, dict[str, Any]]:
    for name, body in doc.resources("aws_lambda_function").items():
        if body["function_name"].startswith(f"tap-{concern}-"):
            return name, body
    raise AssertionError(f"no {concern} function")


def test_every_resource_type_exists(env: tuple[str, StackDoc]) -> None:
    _, doc = env
    assert set(doc.doc["resource"]) >= REQUIRED_TYPES, REQUIRED_TYPES - set(doc.doc["resource"])


def test_state_backend_is_s3_per_environment_with_native_locking(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    backend = doc.doc["terraform"]["backend"]
    assert list(backend) == ["s3"]
    s3 = backend["s3"]
    assert s3["key"] == f"tap/{suffix}/terraform.tfstate"
    assert s3["encrypt"] is True
    assert s3["use_lockfile"] is True
    assert "dynamodb_table" not in s3
    assert s3["bucket"] == DEFAULT_STATE_BUCKET == "tap-traffic-tfstate-000000000000-us-east-1"
    assert s3["kms_key_id"] == STATE_KEY_ALIAS, "without it, state, lock and digest are written with AES256"


def test_state_key_alias_is_the_one_the_bootstrap_stack_creates(synth: Synth) -> None:
    doc = synth.docs["tap-state-bootstrap"]
    (alias,) = doc.resources("aws_kms_alias").values()
    assert alias["name"] == STATE_KEY_ALIAS
    assert synth.env("dev").doc["terraform"]["backend"]["s3"]["kms_key_id"] == alias["name"]


def test_bootstrap_refuses_a_bucket_name_carrying_another_account(synth: Synth) -> None:
    """The default bucket name carries the account id; unset, it is the placeholder, which no caller is."""
    _, key = synth.docs["tap-state-bootstrap"].one("aws_kms_key")
    (precondition,) = key["lifecycle"]["precondition"]
    assert precondition["condition"] == '${(data.aws_caller_identity.current.account_id == "000000000000")}'
    assert "TF_STATE_ACCOUNT_ID" in precondition["error_message"]


def test_names_carry_the_suffix(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    iot_suffix = suffix.replace("-", "_")
    for type_, name, body in doc.all_resources():
        for attribute in NAME_ATTRIBUTES:
            value = body.get(attribute)
            if not isinstance(value, str) or value.startswith("${") or type_ == "aws_cloudwatch_log_stream":
                continue
            if type_ in ("aws_iam_role_policy",) and attribute == "name":
                assert suffix in value
                continue
            assert suffix in value or iot_suffix in value, f"{type_}.{name}.{attribute} = {value!r}"


def literal_names(doc: StackDoc) -> set[str]:
    names = set()
    for type_, _, body in doc.all_resources():
        if type_ == "aws_cloudwatch_log_stream":
            continue
        for attribute in NAME_ATTRIBUTES:
            value = body.get(attribute)
            if isinstance(value, str) and not value.startswith("${"):
                names.add(f"{type_}:{value}")
    return names


def test_names_never_collide_across_environments(synth: Synth) -> None:
    seen: dict[str, str] = {}
    for suffix in ENVIRONMENTS:
        for name in literal_names(synth.env(suffix)):
            assert name not in seen, f"{name} in both {seen[name]} and {suffix}"
            seen[name] = suffix
    assert len(seen) > 40


def test_ingestion_rule_puts_on_the_stream_with_error_action(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, rule = doc.one("aws_iot_topic_rule")
    assert rule["sql_version"] == "2016-03-23"
    assert rule["sql"] == f"SELECT * FROM 'tap/{suffix}/sensors/+/readings'"
    (kinesis,) = rule["kinesis"]
    stream_name, _ = readings_stream(doc, suffix)
    assert kinesis["stream_name"] == f"${{aws_kinesis_stream.{stream_name}.name}}"
    assert kinesis["partition_key"] == "$${topic(4)}"
    assert doc.actions_of(kinesis["role_arn"]) == {"kinesis:PutRecord", "kms:GenerateDataKey"}
    error_s3 = rule["error_action"]["s3"]
    quarantine = doc.resolve(error_s3["bucket_name"].replace(".bucket}", ".arn}"))
    assert quarantine["bucket"].startswith(f"tap-quarantine-{suffix}-")
    assert error_s3["key"].startswith("iot-errors/$${topic(4)}/")
    assert doc.actions_of(error_s3["role_arn"]) == {"s3:PutObject", "kms:GenerateDataKey"}


def test_sensor_policy_binds_client_id_and_topic_to_thing_name(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    (policy,) = [p for p in doc.resources("aws_iot_policy").values() if p["name"] == f"tap-sensor-{suffix}"]
    statements = {s["sid"]: s for s in doc.policy_statements(policy["policy"])}
    assert set(statements) == {"ConnectAsOwnThing", "PublishOwnReadings"}
    connect, publish = statements["ConnectAsOwnThing"], statements["PublishOwnReadings"]
    assert connect["actions"] == ["iot:Connect"]
    (client,) = connect["resources"]
    assert client.endswith(":client/$${iot:Connection.Thing.ThingName}")
    assert connect["condition"] == [{"test": "Bool", "variable": "iot:Connection.Thing.IsAttached", "values": ["true"]}]
    assert publish["actions"] == ["iot:Publish"]
    basic, contract = publish["resources"]
    # The thing's own topic only: through Basic Ingest, addressed to this environment's rule by name, and
    # the contract's topic (existing firmware keeps working; that one is billed as messaging)
    _, rule = doc.one("aws_iot_topic_rule")
    assert rule["name"] == f"tap_ingest_{suffix.replace('-', '_')}"
    thing = "$${iot:Connection.Thing.ThingName}"
    assert basic.endswith(f":topic/$aws/rules/{rule['name']}/tap/{suffix}/sensors/{thing}/readings")
    assert contract.endswith(f":topic/tap/{suffix}/sensors/{thing}/readings")
    assert "*" not in basic + contract


def test_outputs_tell_sensors_where_to_publish(env: tuple[str, StackDoc]) -> None:
    """The rule sees the publish topic without its ``$aws/rules/<rule>/`` prefix: the topic filter output,
    the rule's FROM and the partition key's level 4 all follow from it."""
    suffix, doc = env
    _, rule = doc.one("aws_iot_topic_rule")
    publish = doc.doc["output"]["iot_publish_topic"]["value"]
    seen = doc.doc["output"]["iot_topic_filter"]["value"]
    assert publish == f"$aws/rules/{rule['name']}/tap/{suffix}/sensors/+/readings"
    assert publish.removeprefix(f"$aws/rules/{rule['name']}/") == seen
    assert rule["sql"] == f"SELECT * FROM '{seen}'"
    assert seen.split("/")[3] == "+"  # topic(4), 1-based: the thing name
    assert "Basic Ingest" in doc.doc["output"]["iot_publish_topic"]["description"]


def test_no_unescaped_aws_interpolation(env: tuple[str, StackDoc]) -> None:
    _, doc = env
    for value in walk_strings(doc.doc):
        for match in re.finditer(r"(?<!\$)\$\{([^}]*)\}", value):
            expr = match.group(1)
            assert not expr.startswith(("iot:", "topic(", "timestamp(", "newuuid(", "dt")), value


def test_stream_capacity_retention_and_encryption_from_config(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    config = PROFILES[PROFILE_OF[suffix]]
    _, stream = readings_stream(doc, suffix)
    assert stream["stream_mode_details"]["stream_mode"] == config.stream_mode.value
    assert stream.get("shard_count") == config.shard_count
    assert stream["retention_period"] == config.stream_retention_hours
    assert stream["encryption_type"] == "KMS"
    assert ref(stream["kms_key_id"]) is not None and ref(stream["kms_key_id"]).type == "aws_kms_key"  # type: ignore[union-attr]


def test_processor_mapping_reports_failures_and_sends_exhausted_records_to_the_dlq(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    config = PROFILES[PROFILE_OF[suffix]]
    stream_name, _ = readings_stream(doc, suffix)
    processor_name, _ = function(doc, "processor")
    _, mapping = doc.find(
        "aws_lambda_event_source_mapping", event_source_arn=f"${{aws_kinesis_stream.{stream_name}.arn}}"
    )
    assert mapping["function_name"] == f"${{aws_lambda_function.{processor_name}.arn}}"
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["bisect_batch_on_function_error"] is True
    assert mapping["batch_size"] == config.batch_size
    assert mapping["maximum_batching_window_in_seconds"] == config.batching_window_seconds
    assert 0 <= mapping["maximum_retry_attempts"] == config.max_retry_attempts
    assert 0 < mapping["maximum_record_age_in_seconds"] == config.max_record_age_seconds
    dlq = doc.resolve(mapping["destination_config"]["on_failure"]["destination_arn"])
    assert dlq["name"] == f"tap-processor-dlq-{suffix}"
    assert ref(dlq["kms_master_key_id"]).type == "aws_kms_key"  # type: ignore[union-attr]


def readings_stream(doc: StackDoc, suffix: str) -> tuple[str, dict[str, Any]]:
    return doc.find("aws_kinesis_stream", name=f"tap-readings-{suffix}")


def test_partials_stream_is_provisioned_encrypted_and_read_by_the_folder_alone(env: tuple[str, StackDoc]) -> None:
    """Issue 20: the processor sends partials keyed by segment; one folder batch per segment at a time."""
    suffix, doc = env
    config = PROFILES[PROFILE_OF[suffix]]
    name, stream = doc.find("aws_kinesis_stream", name=f"tap-partials-{suffix}")
    assert stream["stream_mode_details"]["stream_mode"] == "PROVISIONED"
    assert stream["shard_count"] == config.partials_shard_count
    assert stream["retention_period"] == 24
    assert stream["encryption_type"] == "KMS" and ref(stream["kms_key_id"]).type == "aws_kms_key"  # type: ignore[union-attr]
    folder_name, _ = function(doc, "folder")
    (mapping,) = [m for m in doc.resources("aws_lambda_event_source_mapping").values()
                  if m["event_source_arn"] == f"${{aws_kinesis_stream.{name}.arn}}"]  # fmt: skip
    assert mapping["function_name"] == f"${{aws_lambda_function.{folder_name}.arn}}"
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["bisect_batch_on_function_error"] is True
    assert mapping.get("parallelization_factor", 1) == 1
    assert doc.resolve(mapping["destination_config"]["on_failure"]["destination_arn"])["name"] == (
        f"tap-folder-dlq-{suffix}"
    )
    _, processor = function(doc, "processor")
    (send,) = [s for s in doc.role_statements(processor["role"]) if "kinesis:PutRecords" in s["actions"]]
    assert (send["actions"], send["resources"]) == (["kinesis:PutRecords"], [f"${{aws_kinesis_stream.{name}.arn}}"])
    assert processor["environment"]["variables"]["PARTIALS_STREAM"] == f"tap-partials-{suffix}"
    processor_name, _ = function(doc, "processor")
    _, processor_mapping = doc.find(
        "aws_lambda_event_source_mapping", function_name=f"${{aws_lambda_function.{processor_name}.arn}}"
    )
    # one processor batch per readings shard at a time: the shard's partials mark has one writer
    assert processor_mapping.get("parallelization_factor", 1) == 1


def test_no_table_stream_and_no_alert_function_any_more(env: tuple[str, StackDoc]) -> None:
    _, doc = env
    assert not any(t.get("stream_enabled") for t in doc.resources("aws_dynamodb_table").values())
    assert not [f for f in doc.resources("aws_lambda_function").values() if "alert" in str(f["function_name"])]


def test_silence_schedule_runs_in_the_environments_group_without_a_key_scheduler_cannot_use(
    env: tuple[str, StackDoc],
) -> None:
    suffix, doc = env
    group_name, group = doc.one("aws_scheduler_schedule_group")
    assert group["name"] == f"tap-schedules-{suffix}"
    _, schedule = doc.one("aws_scheduler_schedule")
    assert schedule["group_name"] == f"${{aws_scheduler_schedule_group.{group_name}.name}}"
    # The key policy lets account principals use the key only through the data services; Scheduler would
    # be refused. Its input is the constant "{}", encrypted with an AWS owned key.
    assert "kms_key_arn" not in schedule and schedule["target"]["input"] == "{}"


def test_functions_runtime_packaging_logging_and_tracing(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    config = PROFILES[PROFILE_OF[suffix]]
    for concern, settings in (("processor", config.processor), ("folder", config.folder)):
        _, fn = function(doc, concern)
        assert fn["runtime"] == "python3.12"
        assert fn["architectures"] == ["arm64"]
        assert fn["handler"] == f"lambdas.{concern}.handler.handler"
        zip_path = rf"assets/[^/]+/[0-9A-F]{{32}}/{concern}-[0-9a-f]{{16}}\.zip"
        assert re.fullmatch(zip_path, fn["filename"]), fn["filename"]
        assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", fn["source_code_hash"]), "base64 SHA-256 of the zip"
        assert fn["memory_size"] == settings.memory_mb
        assert fn["timeout"] == settings.timeout_seconds
        assert fn.get("reserved_concurrent_executions") == settings.reserved_concurrency
        assert fn["tracing_config"]["mode"] == "Active"
        log_group = doc.resolve(fn["logging_config"]["log_group"].replace(".name}", ".arn}"))
        assert log_group["name"] == f"/aws/lambda/tap-{concern}-{suffix}"
        assert log_group["retention_in_days"] == config.log_retention_days
        assert ref(log_group["kms_key_id"]).type == "aws_kms_key"  # type: ignore[union-attr]


def test_processor_role_may_do_exactly_what_it_needs(env: tuple[str, StackDoc]) -> None:
    _, doc = env
    _, fn = function(doc, "processor")
    assert doc.actions_of(fn["role"]) == {
        "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator",
        "kinesis:ListShards", "kinesis:PutRecords", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
        "dynamodb:PutItem", "dynamodb:UpdateItem", "s3:PutObject",
        "kms:Decrypt", "kms:GenerateDataKey",
        "logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }  # fmt: skip
    assert "cloudwatch:PutMetricData" not in doc.actions_of(fn["role"])
    quarantine = next(s for s in doc.role_statements(fn["role"]) if s["actions"] == ["s3:PutObject"])
    assert quarantine["resources"] == [quarantine["resources"][0]] and quarantine["resources"][0].endswith(
        ".arn}/rejected/*"
    )


def test_folder_role_publishes_metrics_only_in_its_namespace_and_only_to_the_alert_topic(
    env: tuple[str, StackDoc],
) -> None:
    suffix, doc = env
    _, fn = function(doc, "folder")
    statements = doc.role_statements(fn["role"])
    (put_metric,) = [s for s in statements if "cloudwatch:PutMetricData" in s["actions"]]
    assert put_metric["actions"] == ["cloudwatch:PutMetricData"]
    assert put_metric["condition"] == [
        {"test": "StringEquals", "variable": "cloudwatch:namespace", "values": [f"TAP/Traffic/{suffix}"]}
    ]
    (publish,) = [s for s in statements if "sns:Publish" in s["actions"]]
    topic_name, _ = doc.one("aws_sns_topic")
    assert publish["resources"] == [f"${{aws_sns_topic.{topic_name}.arn}}"]
    assert fn["environment"]["variables"]["METRIC_NAMESPACE"] == f"TAP/Traffic/{suffix}"


def test_folder_role_writes_aggregates_conditionally_and_queries_only_the_pending_claims_index(
    env: tuple[str, StackDoc],
) -> None:
    _, doc = env
    _, fn = function(doc, "folder")
    statements = doc.role_statements(fn["role"])
    table_name = next(n for n, t in doc.resources("aws_dynamodb_table").items() if "segment-aggregates" in t["name"])
    table_arn = f"${{aws_dynamodb_table.{table_name}.arn}}"
    (aggregates,) = [s for s in statements if "dynamodb:PutItem" in s["actions"]]
    assert sorted(aggregates["actions"]) == [
        "dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
    ]  # fmt: skip
    assert aggregates["resources"] == [table_arn]
    (query,) = [s for s in statements if "dynamodb:Query" in s["actions"]]
    assert (query["actions"], query["resources"]) == (["dynamodb:Query"], [f"{table_arn}/index/pending-alerts"])
    assert not [s for s in statements if any(a.startswith("dynamodb:") and "Stream" in a for a in s["actions"])]
    environment = fn["environment"]["variables"]
    assert int(environment["CLAIM_LEASE_SECONDS"]) > int(fn["timeout"]), "a claim outlives its owner's timeout"


def test_processor_is_told_the_reading_age_limit(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, fn = function(doc, "processor")
    config = PROFILES.get(suffix) or PROFILES["dev"]
    assert fn["environment"]["variables"]["MAX_READING_AGE_SECONDS"] == str(config.max_reading_age_seconds)


def test_no_wildcard_actions_and_wildcard_resources_only_where_aws_requires(env: tuple[str, StackDoc]) -> None:
    _, doc = env
    allowed_star = {
        ("xray:PutTelemetryRecords", "xray:PutTraceSegments"),
        ("cloudwatch:PutMetricData",),
        ("dynamodb:ListStreams",),
        ("iot:AttachThingPrincipal",),  # no resource-level permissions (the provisioning role)
    }
    for role_name in doc.resources("aws_iam_role"):
        for statement in doc.role_statements(f"${{aws_iam_role.{role_name}.arn}}"):
            for action in statement["actions"]:
                assert action != "*" and not action.endswith(":*"), (role_name, action)
            if "*" in statement["resources"]:
                assert tuple(statement["actions"]) in allowed_star, (role_name, statement)
                if statement["actions"] == ["cloudwatch:PutMetricData"]:
                    assert statement["condition"], "PutMetricData on * needs its namespace condition"


def _without_capacity(indexes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in i.items() if k not in ("read_capacity", "write_capacity")} for i in indexes]


def test_tables_have_pitr_kms_and_ttl(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    tables = {t["name"]: t for t in doc.resources("aws_dynamodb_table").values()}
    assert set(tables) == {
        f"tap-{n}-{suffix}"
        for n in ("sensor-windows", "segment-aggregates", "sensor-outages", "sensor-allow-list", "fleet")
    }
    indexes = {name: _without_capacity(t.get("global_secondary_index", [])) for name, t in tables.items()}
    for table in tables.values():
        assert table["point_in_time_recovery"] == {"enabled": True}
        assert table["server_side_encryption"]["enabled"] is True
        assert ref(table["server_side_encryption"]["kms_key_arn"]).type == "aws_kms_key"  # type: ignore[union-attr]
    # a sensor's items sort by window: its newest item is its current state (one Query, newest first)
    windows = tables[f"tap-sensor-windows-{suffix}"]
    assert (windows["hash_key"], windows["range_key"]) == ("sensor_id", "window_part")
    # no index: the silence check polls the fleet registry (issue 20: the minute index was a hot key)
    assert indexes[f"tap-sensor-windows-{suffix}"] == []
    assert {(a["name"], a["type"]) for a in windows["attribute"]} == {("sensor_id", "S"), ("window_part", "S")}
    fleet = tables[f"tap-fleet-{suffix}"]
    assert (fleet["hash_key"], fleet["range_key"], indexes[f"tap-fleet-{suffix}"]) == ("pk", "sk", [])
    assert fleet["ttl"] == {"attribute_name": "expires_at", "enabled": True}
    outages = tables[f"tap-sensor-outages-{suffix}"]
    assert (outages["hash_key"], outages["range_key"]) == ("sensor_id", "since")
    assert indexes[f"tap-sensor-outages-{suffix}"] == [
        {"name": "open-outages", "hash_key": "outage_open", "range_key": "sensor_id", "projection_type": "ALL"}
    ]
    aggregates = tables[f"tap-segment-aggregates-{suffix}"]
    assert (aggregates["hash_key"], aggregates["range_key"]) == ("segment_id", "window_start")
    # the sparse index of pending alert claims, which the alert function sweeps for expired leases
    assert indexes[f"tap-segment-aggregates-{suffix}"] == [
        {"name": "pending-alerts", "hash_key": "alert_pending", "range_key": "alert_lease_until",
         "projection_type": "ALL"}
    ]  # fmt: skip
    assert {(a["name"], a["type"]) for a in aggregates["attribute"]} == {
        ("segment_id", "S"), ("window_start", "S"), ("alert_pending", "S"), ("alert_lease_until", "N"),
    }  # fmt: skip
    for transient in ("sensor-windows", "segment-aggregates", "sensor-outages"):
        assert tables[f"tap-{transient}-{suffix}"]["ttl"] == {"attribute_name": "expires_at", "enabled": True}


def test_table_capacity_follows_the_config_and_the_model(env: tuple[str, StackDoc]) -> None:
    """On demand everywhere but prod (``dynamodb_capacity``); in prod the data path's tables are provisioned at
    the model's steady load (auto scaling owns their units afterwards: Terraform ignores them) and scale up to
    a replay's burst, each index fixed at its headroom; the outages and allow-list tables stay on demand."""
    suffix, doc = env
    config = PROFILES[PROFILE_OF[suffix]]
    sized = provisioned_throughput(model(config.fleet, config.pipeline))
    tables = {t["name"]: t for t in doc.resources("aws_dynamodb_table").values()}
    targets = {
        (_table_of(doc, t["resource_id"]), t["scalable_dimension"]): t
        for t in doc.resources("aws_appautoscaling_target").values()
    }
    policies = doc.resources("aws_appautoscaling_policy").values()
    if config.dynamodb_capacity is DynamoDBCapacity.ON_DEMAND:
        assert not sized and not targets and not policies
        assert {t["billing_mode"] for t in tables.values()} == {"PAY_PER_REQUEST"}
        assert all("read_capacity" not in i for t in tables.values() for i in t.get("global_secondary_index", []))
        return
    assert set(PROVISIONED_TABLES) < {n.removeprefix("tap-").removesuffix(f"-{suffix}") for n in tables}
    for name, table in tables.items():
        concern = name.removeprefix("tap-").removesuffix(f"-{suffix}")
        if concern not in PROVISIONED_TABLES:
            assert table["billing_mode"] == "PAY_PER_REQUEST", name
            continue
        units = sized[concern]
        assert table["billing_mode"] == "PROVISIONED"
        assert (table["write_capacity"], table["read_capacity"]) == (units.min_write, units.min_read)
        assert set(table["lifecycle"]["ignore_changes"]) == {"read_capacity", "write_capacity"}
        assert table["lifecycle"]["prevent_destroy"] is True
        for index in table.get("global_secondary_index", []):
            fixed = sized[f"{concern}/{index['name']}"]
            assert (index["write_capacity"], index["read_capacity"]) == (fixed.max_write, fixed.max_read)
            assert fixed.max_write >= fixed.write_load / config.dynamodb_target_utilisation
        for kind, low, high in (("Write", units.min_write, units.max_write), ("Read", units.min_read, units.max_read)):
            target = targets[(name, f"dynamodb:table:{kind}CapacityUnits")]
            assert (target["min_capacity"], target["max_capacity"]) == (low, high)
            assert target["service_namespace"] == "dynamodb"
            assert low < high <= 40_000  # a burst above the steady load, within the per-table quota
    assert len(policies) == 2 * len(PROVISIONED_TABLES)
    for policy in policies:
        assert policy["policy_type"] == "TargetTrackingScaling"
        assert policy["name"].endswith(f"-{suffix}")
        tracking = policy["target_tracking_scaling_policy_configuration"]
        assert tracking["target_value"] == config.dynamodb_target_utilisation * 100
        metric = tracking["predefined_metric_specification"]["predefined_metric_type"]
        assert metric in ("DynamoDBWriteCapacityUtilization", "DynamoDBReadCapacityUtilization")


def _table_of(doc: StackDoc, resource_id: str) -> str:
    """The name of the table a scalable target's ``table/${aws_dynamodb_table.X.name}`` refers to."""
    reference = ref(resource_id.removeprefix("table/"))
    assert reference is not None and reference.type == "aws_dynamodb_table"
    return doc.resources("aws_dynamodb_table")[reference.name]["name"]


def bucket_parts(doc: StackDoc) -> dict[str, dict[str, dict[str, Any]]]:
    """For each bucket name: its companion resources by type."""
    parts: dict[str, dict[str, dict[str, Any]]] = {}
    for bucket_name, bucket in doc.resources("aws_s3_bucket").items():
        own = f"${{aws_s3_bucket.{bucket_name}.id}}"
        parts[bucket["bucket"]] = {
            type_: body
            for type_, _, body in doc.all_resources()
            if type_.startswith("aws_s3_bucket_") and body.get("bucket") == own
        }
        parts[bucket["bucket"]]["aws_s3_bucket"] = bucket
    return parts


def test_buckets_are_private_encrypted_versioned_logged_and_tls_only(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    parts = bucket_parts(doc)
    concerns = {re.sub(rf"^tap-(.*)-{suffix}-.*$", r"\1", name) for name in parts}
    assert concerns == {"access-logs", "lake", "quarantine", "athena-results"}
    log_bucket_name = next(n for n, b in doc.resources("aws_s3_bucket").items() if "access-logs" in b["bucket"])
    for name, p in parts.items():
        block = p["aws_s3_bucket_public_access_block"]
        assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                               "restrict_public_buckets"))  # fmt: skip
        assert p["aws_s3_bucket_versioning"]["versioning_configuration"]["status"] == "Enabled"
        (rule,) = p["aws_s3_bucket_server_side_encryption_configuration"]["rule"]
        default = rule["apply_server_side_encryption_by_default"]
        if "access-logs" in name:
            assert default["sse_algorithm"] == "AES256"  # S3 access logging cannot target SSE-KMS buckets
            assert "aws_s3_bucket_logging" not in p
        else:
            assert default["sse_algorithm"] == "aws:kms" and rule["bucket_key_enabled"] is True
            assert ref(default["kms_master_key_id"]).type == "aws_kms_key"  # type: ignore[union-attr]
            assert p["aws_s3_bucket_logging"]["target_bucket"] == f"${{aws_s3_bucket.{log_bucket_name}.id}}"
            # S3 refuses the logging configuration until the target's policy lets the logging service write.
            (dependency,) = p["aws_s3_bucket_logging"]["depends_on"]
            assert dependency.startswith("aws_s3_bucket_policy.storage_access-logs_policy")
        rules = p["aws_s3_bucket_lifecycle_configuration"]["rule"]
        assert any(r.get("abort_incomplete_multipart_upload") for r in rules)
        assert any(r.get("noncurrent_version_expiration") for r in rules)
        deny = [s for s in doc.policy_statements(p["aws_s3_bucket_policy"]["policy"]) if s["effect"] == "Deny"]
        assert deny and deny[0]["condition"] == [
            {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}
        ]


def test_removal_behaviour_non_prod_cleans_up_prod_retains(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    production = PROFILES[PROFILE_OF[suffix]].production
    for bucket in doc.resources("aws_s3_bucket").values():
        assert bucket["force_destroy"] is (not production)
        assert bucket.get("lifecycle", {}).get("prevent_destroy", False) is production
    for table in doc.resources("aws_dynamodb_table").values():
        assert table["deletion_protection_enabled"] is production
        assert table.get("lifecycle", {}).get("prevent_destroy", False) is production
    for stateful in ("aws_kinesis_stream", "aws_kms_key"):  # the readings and the partials stream
        for body in doc.resources(stateful).values():
            assert body.get("lifecycle", {}).get("prevent_destroy", False) is production
    _, workgroup = doc.one("aws_athena_workgroup")
    assert workgroup["force_destroy"] is (not production)


def test_lake_lifecycle_follows_config(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    life = PROFILES[PROFILE_OF[suffix]].lifecycle
    lake = next(p for n, p in bucket_parts(doc).items() if n.startswith(f"tap-lake-{suffix}-"))
    rules = {r["id"]: r for r in lake["aws_s3_bucket_lifecycle_configuration"]["rule"]}
    current = rules.get("current-objects", {})
    expiration = current.get("expiration", [{}])[0].get("days")
    assert expiration == life.lake_expiration_days
    transitions = {t["storage_class"]: t["days"] for t in current.get("transition", [])}
    expected = {"STANDARD_IA": life.lake_infrequent_access_days, "GLACIER_IR": life.lake_glacier_days}
    assert transitions == {k: v for k, v in expected.items() if v is not None}


def test_every_lifecycle_rule_meets_s3s_minimums(synth: Synth) -> None:
    """What S3 refuses: STANDARD_IA before 30 days, and leaving STANDARD_IA less than 30 days later."""
    for doc in synth.docs.values():
        for config in doc.resources("aws_s3_bucket_lifecycle_configuration").values():
            for rule in config["rule"]:
                days = sorted((t["days"], t["storage_class"]) for t in rule.get("transition", []))
                for (day, storage_class), following in zip(days, [*days[1:], None], strict=False):
                    if storage_class == "STANDARD_IA":
                        assert day >= 30, (doc.stack_id, rule["id"])
                        if following is not None:
                            assert following[0] >= day + 30, (doc.stack_id, rule["id"])
                expiry = rule.get("expiration", [{}])[0].get("days")
                if days and expiry is not None:
                    assert expiry > days[-1][0], (doc.stack_id, rule["id"])


def test_reservations_of_all_stacks_leave_lambda_its_unreserved_executions(synth: Synth) -> None:
    """Lambda refuses a reservation leaving fewer than 100 unreserved executions in the account."""
    reserved = [
        fn.get("reserved_concurrent_executions") or 0
        for doc in synth.docs.values()
        for fn in doc.resources("aws_lambda_function").values()
    ]
    quota = min(p.lambda_concurrency_quota for p in PROFILES.values())
    assert 0 < sum(reserved) <= quota - UNRESERVED_MINIMUM


def test_firehose_archives_parquet_through_the_glue_schema(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, firehose = doc.one("aws_kinesis_firehose_delivery_stream")
    stream_name, _ = readings_stream(doc, suffix)
    assert (
        firehose["kinesis_source_configuration"]["kinesis_stream_arn"] == f"${{aws_kinesis_stream.{stream_name}.arn}}"
    )
    s3 = firehose["extended_s3_configuration"]
    assert s3["prefix"] == "readings/dt=!{timestamp:yyyy-MM-dd}/"
    assert s3["error_output_prefix"].startswith("firehose-errors/!{firehose:error-output-type}/")
    assert s3["cloudwatch_logging_options"]["enabled"] is True
    assert ref(s3["kms_key_arn"]).type == "aws_kms_key"  # type: ignore[union-attr]
    conversion = s3["data_format_conversion_configuration"]
    assert "parquet_ser_de" in conversion["output_format_configuration"]["serializer"]
    table_name, _ = doc.find("aws_glue_catalog_table", name=f"tap_readings_{suffix.replace('-', '_')}")
    assert conversion["schema_configuration"]["table_name"] == f"${{aws_glue_catalog_table.{table_name}.name}}"
    assert doc.resolve(s3["bucket_arn"])["bucket"].startswith(f"tap-lake-{suffix}-")


def test_glue_table_columns_follow_the_contract_with_partition_projection(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, table = doc.find("aws_glue_catalog_table", name=f"tap_readings_{suffix.replace('-', '_')}")
    columns = [(c["name"], c["type"]) for c in table["storage_descriptor"]["columns"]]
    assert columns == [(c.name, c.glue_type) for c in lake_columns()]
    assert [name for name, _ in columns][:6] == [
        "sensor_id", "segment_id", "timestamp", "vehicle_count", "average_speed_kmh", "occupancy_percent",
    ]  # fmt: skip
    params = table["parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.dt.type"] == "date"
    assert params["storage.location.template"].endswith("/readings/dt=$${dt}/")
    assert table["partition_keys"] == [{"name": "dt", "type": "string"}]


def test_athena_workgroup_enforces_encrypted_results_and_cutoff(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    config = PROFILES[PROFILE_OF[suffix]]
    workgroup_name, workgroup = doc.one("aws_athena_workgroup")
    conf = workgroup["configuration"]
    assert conf["enforce_workgroup_configuration"] is True
    assert conf["bytes_scanned_cutoff_per_query"] == athena_cutoff_bytes(model(config.fleet, config.pipeline))
    assert conf["result_configuration"]["encryption_configuration"]["encryption_option"] == "SSE_KMS"
    location = re.fullmatch(
        r"s3://(\$\{aws_s3_bucket\.[^.]+)\.bucket\}/results/", conf["result_configuration"]["output_location"]
    )
    assert location, conf["result_configuration"]["output_location"]
    assert doc.resolve(location.group(1) + ".arn}")["bucket"].startswith(f"tap-athena-results-{suffix}-")
    queries = doc.resources("aws_athena_named_query")
    assert len(queries) >= 3
    for query in queries.values():
        assert query["workgroup"] == f"${{aws_athena_workgroup.{workgroup_name}.name}}"
        assert "FROM " in query["query"] and "dt >=" in query["query"]


def test_every_named_query_fits_its_environments_scan_cutoff(env: tuple[str, StackDoc]) -> None:
    """Athena cancels a query that scans past the workgroup's cutoff: each named query's estimated scan at
    the environment's declared fleet (the capacity model's lake) must fit, in every environment (the one
    1 GiB cutoff of every environment cancelled the 7- and 30-day queries at prod's fleet)."""
    suffix, doc = env
    config = PROFILES[PROFILE_OF[suffix]]
    capacity = model(config.fleet, config.pipeline)
    _, workgroup = doc.one("aws_athena_workgroup")
    cutoff = workgroup["configuration"]["bytes_scanned_cutoff_per_query"]
    assert cutoff >= ATHENA_MIN_CUTOFF_BYTES
    by_name = {q["name"]: q for q in doc.resources("aws_athena_named_query").values()}
    assert len(by_name) == len(NAMED_QUERIES)
    for query in NAMED_QUERIES:
        estimate = estimated_scan_bytes(query, capacity)
        assert 0 < estimate <= cutoff, f"{suffix}: {query.query_id} scans ~{estimate:,.0f} B, cutoff {cutoff:,}"
        # the query reads exactly the dt partitions the estimate counts (today and ``days`` before it)
        (text,) = [q["query"] for name, q in by_name.items() if name.endswith(query.query_id + f"-{suffix}")]
        assert f"interval '{query.days}' day" in text


def test_dashboard_follows_the_whole_path(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, dashboard = doc.one("aws_cloudwatch_dashboard")
    body = json.loads(dashboard["dashboard_body"])
    namespaces = {m[0] for w in body["widgets"] for m in w["properties"]["metrics"] if isinstance(m[0], str)}
    assert {"AWS/IoT", "AWS/Kinesis", "AWS/Lambda", "AWS/SQS", "AWS/Firehose", "AWS/DynamoDB"} <= namespaces
    assert f"TAP/Traffic/{suffix}" in namespaces
    text = dashboard["dashboard_body"]
    for name in (f"tap-readings-{suffix}", f"tap-processor-{suffix}", f"tap-folder-{suffix}", f"tap-partials-{suffix}"):
        assert name in text


def test_kms_key_rotates_and_only_environment_services_use_it(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, key = doc.one("aws_kms_key")
    assert key["enable_key_rotation"] is True
    statements = {s["sid"]: s for s in doc.policy_statements(key["policy"])}
    via = next(c for c in statements["UseThroughEnvironmentServices"]["condition"] if c["variable"] == "kms:ViaService")
    services = sorted(v.split(".")[0] for v in via["values"])
    assert services == ["dynamodb", "kinesis", "lambda", "s3", "sns", "sqs"]
    logs = statements["CloudWatchLogsForEnvironmentLogGroups"]
    arns = logs["condition"][0]["values"]
    assert len(arns) == len(doc.resources("aws_cloudwatch_log_group"))
    assert all(suffix in a for a in arns)
    for statement in statements.values():
        assert "kms:*" not in statement["actions"]


def test_key_policy_lets_dynamodb_read_key_metadata_and_only_this_environments_alarms_publish(
    env: tuple[str, StackDoc],
) -> None:
    _, doc = env
    _, key = doc.one("aws_kms_key")
    statements = {s["sid"]: s for s in doc.policy_statements(key["policy"])}
    dynamodb = statements["DynamoDBReadsKeyMetadata"]
    assert sorted(dynamodb["actions"]) == ["kms:Describe*", "kms:Get*", "kms:List*"]
    assert dynamodb["principals"] == [{"type": "Service", "identifiers": ["dynamodb.amazonaws.com"]}]
    alarms = statements["CloudWatchAlarmsToAlertTopic"]
    conditions = {c["variable"]: c for c in alarms["condition"]}
    assert "kms:ViaService" not in conditions, "not documented for a service principal's call through SNS"
    assert conditions["aws:SourceAccount"]["test"] == "StringEquals"
    assert conditions["aws:SourceArn"]["test"] == "ArnEquals"
    alarm_arns = conditions["aws:SourceArn"]["values"]
    names = sorted(a["alarm_name"] for a in doc.resources("aws_cloudwatch_metric_alarm").values())
    assert sorted(arn.rsplit(":alarm:", 1)[1] for arn in alarm_arns) == names, "exactly this environment's alarms"
    assert all(arn.startswith("arn:${data.aws_partition.") and ":cloudwatch:" in arn for arn in alarm_arns)


def test_topic_is_encrypted_and_subscription_follows_config(env: tuple[str, StackDoc]) -> None:
    _, doc = env
    _, topic = doc.one("aws_sns_topic")
    assert ref(topic["kms_master_key_id"]).type == "aws_kms_key"  # type: ignore[union-attr]
    assert "aws_sns_topic_subscription" not in doc.doc["resource"]  # no e-mail configured in the profiles


def test_outputs_name_what_users_need(env: tuple[str, StackDoc]) -> None:
    _, doc = env
    outputs = set(doc.doc["output"])
    assert {
        "iot_publish_topic", "iot_topic_filter", "kinesis_stream_name", "sensor_windows_table_name",
        "segment_aggregates_table_name", "lake_bucket_name", "quarantine_bucket_name", "athena_results_bucket_name",
        "athena_workgroup_name", "alert_topic_arn", "processor_function_name", "folder_function_name",
        "processor_dlq_url",
    } <= outputs  # fmt: skip


def test_no_machine_path_leaks_into_output(synth: Synth) -> None:
    for doc in synth.docs.values():
        text = json.dumps(doc.doc)
        assert str(ROOT) not in text
        assert "/tmp/" not in text


def test_bootstrap_stack_creates_a_locked_down_state_bucket(synth: Synth) -> None:
    doc = synth.docs["tap-state-bootstrap"]
    assert doc.doc["terraform"]["backend"] == {"local": {"path": "../../../terraform.tap-state-bootstrap.tfstate"}}
    parts = bucket_parts(doc)
    state = parts[DEFAULT_STATE_BUCKET]
    assert state["aws_s3_bucket_versioning"]["versioning_configuration"]["status"] == "Enabled"
    (rule,) = state["aws_s3_bucket_server_side_encryption_configuration"]["rule"]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert all(
        state["aws_s3_bucket_public_access_block"][k] is True for k in ("block_public_acls", "block_public_policy")
    )
    statements = doc.policy_statements(state["aws_s3_bucket_policy"]["policy"])
    assert any(s["effect"] == "Deny" and s["condition"][0]["variable"] == "aws:SecureTransport" for s in statements)
    rules = state["aws_s3_bucket_lifecycle_configuration"]["rule"]
    assert any(r.get("noncurrent_version_expiration") for r in rules)
    assert state["aws_s3_bucket"]["lifecycle"]["prevent_destroy"] is True
    _, key = doc.one("aws_kms_key")
    assert key["enable_key_rotation"] is True


def test_every_environment_has_a_cost_budget_warning_the_alert_topic(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    config = PROFILES[PROFILE_OF[suffix]]
    _, budget = doc.one("aws_budgets_budget")
    topic_name, topic = doc.one("aws_sns_topic")
    costs = monthly_cost(model(config.fleet, config.pipeline), prices_for(config.region))
    assert budget["limit_amount"] == str(math.ceil(costs["total"] * config.budget_margin))
    assert (budget["budget_type"], budget["time_unit"], budget["limit_unit"]) == ("COST", "MONTHLY", "USD")
    assert budget["cost_filter"] == [{"name": "TagKeyValue", "values": [f"user:Environment${suffix}"]}]
    # Actual spend first: AWS forecasts only after about five weeks of usage, so a new or ad-hoc
    # environment would get no cost alert from forecasts alone.
    kinds = sorted((n["notification_type"], n["threshold"]) for n in budget["notification"])
    assert kinds == [("ACTUAL", 50), ("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 80), ("FORECASTED", 100)]
    assert len(kinds) <= MAX_NOTIFICATIONS
    for notification in budget["notification"]:
        assert notification["subscriber_sns_topic_arns"] == [f"${{aws_sns_topic.{topic_name}.arn}}"]
    # Budgets checks at creation that it may publish: the budget waits for the topic policy.
    (policy_name,) = doc.resources("aws_sns_topic_policy")
    assert f"aws_sns_topic_policy.{policy_name}" in budget["depends_on"]
    # Budgets may publish to the topic, and use the key that encrypts it, for this account's budgets only.
    (policy,) = doc.resources("aws_sns_topic_policy").values()
    (publish,) = [s for s in doc.policy_statements(policy["policy"]) if s.get("sid") == "BudgetsPublish"]
    _, key = doc.one("aws_kms_key")
    (use_key,) = [s for s in doc.policy_statements(key["policy"]) if s.get("sid") == "BudgetsToAlertTopic"]
    for statement in (publish, use_key):
        assert statement["principals"] == [{"type": "Service", "identifiers": ["budgets.amazonaws.com"]}]
        conditions = {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}
        assert conditions["aws:SourceAccount"][0] == "StringEquals"
        assert conditions["aws:SourceArn"][0] == "ArnLike"
        assert conditions["aws:SourceArn"][1][0].endswith(":budgets::${data.aws_caller_identity.current.account_id}:*")
    assert sorted(use_key["actions"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert topic["kms_master_key_id"]
