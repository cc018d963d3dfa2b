"""Environment configuration: typed, frozen, validated on construction with messages naming the field."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from stacks.config import (
    DEV,
    PROD,
    PROFILES,
    STAGING,
    AlarmThresholds,
    ConfigError,
    DataLifecycle,
    Environment,
    EnvironmentConfig,
    FunctionSettings,
    Onboarding,
    StateConfig,
    StreamMode,
    check_shared_quota,
    load,
)
from stacks.naming import NamingError


def test_standing_profiles_are_dev_staging_prod() -> None:
    assert list(PROFILES) == ["dev", "staging", "prod"]
    assert [c.production for c in (DEV, STAGING, PROD)] == [False, False, True]


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEV.batch_size = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEV.alarms.dlq_messages = 5  # type: ignore[misc]


BAD_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("region", {"region": "moon-1"}),
    ("shard_count", {"shard_count": 0}),
    ("shard_count", {"shard_count": None}),
    ("shard_count", {"stream_mode": StreamMode.ON_DEMAND, "shard_count": 2}),
    ("stream_mode", {"stream_mode": "FAST"}),
    ("stream_retention_hours", {"stream_retention_hours": 12}),
    ("log_retention_days", {"log_retention_days": 10}),
    ("processor.memory_mb", {"processor": FunctionSettings(memory_mb=64)}),
    ("processor.timeout_seconds", {"processor": FunctionSettings(timeout_seconds=901)}),
    ("folder.reserved_concurrency", {"folder": FunctionSettings(reserved_concurrency=0)}),
    ("batch_size", {"batch_size": 10_001}),
    ("batch_size", {"batch_size": True}),
    ("batching_window_seconds", {"batching_window_seconds": 301}),
    ("max_retry_attempts", {"max_retry_attempts": -1}),
    ("max_record_age_seconds", {"max_record_age_seconds": -1}),
    ("aggregation_window_seconds", {"aggregation_window_seconds": 7 * 60}),
    ("athena_bytes_scanned_cutoff", {"athena_bytes_scanned_cutoff": 1024}),
    # below the longest named query's estimated scan at the fleet: Athena would cancel it every time
    ("athena_bytes_scanned_cutoff", {"athena_bytes_scanned_cutoff": 2**30, "sensors": 10_000, "shard_count": 3}),
    ("alarms.iterator_age_ms", {"alarms": AlarmThresholds(iterator_age_ms=3_600_000)}),
    ("alarms.dlq_messages", {"alarms": AlarmThresholds(dlq_messages=0)}),
    ("alarms.firehose_freshness_seconds", {"alarms": AlarmThresholds(firehose_freshness_seconds=120)}),
    ("lifecycle.lake_infrequent_access_days", {"lifecycle": DataLifecycle(lake_infrequent_access_days=10)}),
    (
        "lifecycle.lake_expiration_days",
        {"lifecycle": DataLifecycle(lake_infrequent_access_days=60, lake_expiration_days=30)},
    ),
    ("lifecycle.aggregate_ttl_days", {"lifecycle": DataLifecycle(aggregate_ttl_days=0)}),
    # S3's minimums: 30 days in STANDARD before STANDARD_IA, 30 days in STANDARD_IA before the next class
    ("lifecycle.lake_infrequent_access_days", {"lifecycle": DataLifecycle(lake_infrequent_access_days=29)}),
    (
        "lifecycle.lake_glacier_days",
        {"lifecycle": DataLifecycle(lake_infrequent_access_days=30, lake_glacier_days=59, lake_expiration_days=None)},
    ),
    # Lambda keeps 100 executions unreserved: a quota of 50 allows no reservation at all
    (
        "processor.reserved_concurrency",
        {"lambda_concurrency_quota": 50, "processor": FunctionSettings(reserved_concurrency=1)},
    ),
    (
        "processor.reserved_concurrency",
        {
            "lambda_concurrency_quota": 150,
            "processor": FunctionSettings(reserved_concurrency=40),
            "folder": FunctionSettings(reserved_concurrency=11),
        },
    ),
    ("lambda_concurrency_quota", {"lambda_concurrency_quota": 5}),
    ("budget_margin", {"budget_margin": 0.5}),
    ("budget_margin", {"budget_margin": True}),
    # issue 20, item 4: how the tables buy throughput
    ("dynamodb_capacity", {"dynamodb_capacity": "provisioned"}),
    ("dynamodb_target_utilisation", {"dynamodb_target_utilisation": 0.95}),
    ("dynamodb_target_utilisation", {"dynamodb_target_utilisation": True}),
    ("alarms.dynamodb_throttle_events", {"alarms": AlarmThresholds(dynamodb_throttle_events=0)}),
    ("alert_email", {"alert_email": "not-an-address"}),
    ("max_reading_age_seconds", {"max_reading_age_seconds": 0}),
    ("max_reading_age_seconds", {"max_reading_age_seconds": -5}),
    ("max_reading_age_seconds", {"max_reading_age_seconds": 1.5}),
    # never more than the state TTL: an accepted reading must not be written already expired (issue 11)
    ("max_reading_age_seconds", {"max_reading_age_seconds": 8 * 86_400}),
    (
        "max_reading_age_seconds",
        {"max_reading_age_seconds": 3 * 86_400, "lifecycle": DataLifecycle(aggregate_ttl_days=2)},
    ),
    ("max_record_age_seconds", {"max_record_age_seconds": 200_000, "stream_retention_hours": 24}),
    ("processor.reserved_concurrency", {"shard_count": 4, "processor": FunctionSettings(reserved_concurrency=2)}),
    # the fleet (issue 13): validated like every other field, then checked against the capacity model
    ("sensors", {"sensors": 0}),
    ("sensors", {"sensors": 2.5}),
    ("reading_interval_seconds", {"reading_interval_seconds": 0}),
    ("payload_bytes", {"payload_bytes": 200 * 1024}),
    ("sensors_per_segment", {"sensors_per_segment": 41}),
    ("dynamodb_table_write_quota", {"dynamodb_table_write_quota": 0}),
    ("shard_count", {"sensors": 100_000, "reading_interval_seconds": 20}),
]


@pytest.mark.parametrize(("field", "changes"), BAD_VALUES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_VALUES)])
def test_bad_value_names_environment_and_field(field: str, changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        dataclasses.replace(DEV, **changes)
    assert caught.value.environment == "dev"
    assert caught.value.field_name == field
    assert f"environment 'dev': field '{field}'" in str(caught.value)


def test_production_keeps_the_lake() -> None:
    with pytest.raises(ConfigError, match=r"lifecycle\.lake_expiration_days"):
        dataclasses.replace(PROD, lifecycle=DataLifecycle(lake_expiration_days=365))


def test_valid_alternatives_are_accepted() -> None:
    on_demand = dataclasses.replace(
        DEV, stream_mode=StreamMode.ON_DEMAND, shard_count=None, alert_email="ops@example.org"
    )
    assert on_demand.shard_count is None
    assert EnvironmentConfig(name="qa").region == "us-east-1"


def test_lifecycle_at_s3s_minimums_is_accepted() -> None:
    life = DataLifecycle(lake_infrequent_access_days=30, lake_glacier_days=60, lake_expiration_days=None)
    EnvironmentConfig(name="x", lifecycle=life)


def test_reservations_of_environments_sharing_an_account_add_up() -> None:
    """staging (10) and prod (62, its pre-provisioning hook's 1 included) reserve 72: fine under 1,000;
    under 162, each fits its 62 alone, not both."""
    assert sum(e.config.reserved_total for e in load({}).environments) == 72
    small = {n: dataclasses.replace(c, lambda_concurrency_quota=162) for n, c in PROFILES.items()}
    environments = [Environment(suffix=n, config=c) for n, c in small.items()]
    with pytest.raises(ConfigError, match=r"reservations add up to 72 \(staging 10, prod 62\)"):
        check_shared_quota(environments)


def test_load_defaults_to_three_environments() -> None:
    platform = load({})
    assert [e.suffix for e in platform.environments] == ["dev", "staging", "prod"]
    assert platform.state.bucket == "tap-traffic-tfstate-000000000000-us-east-1", "placeholder account"
    assert platform.state.kms_key == "alias/tap/terraform-state"


def test_default_state_bucket_carries_the_account_and_region() -> None:
    """S3 bucket names are global: a fixed default belongs to whoever creates it first."""
    state = load({"TF_STATE_ACCOUNT_ID": "111122223333", "TF_STATE_REGION": "eu-west-1"}).state
    assert (state.bucket, state.region, state.account_id) == (
        "tap-traffic-tfstate-111122223333-eu-west-1", "eu-west-1", "111122223333",
    )  # fmt: skip
    named = load({"TF_STATE_BUCKET": "acme-tap-state", "TF_STATE_ACCOUNT_ID": "111122223333"}).state
    assert (named.bucket, named.account_id) == ("acme-tap-state", None)


@pytest.mark.parametrize("account", ["12345", "12345678901a", "1234567890123"])
def test_bad_state_account_names_the_variable(account: str) -> None:
    with pytest.raises(ConfigError, match=r"account_id \(TF_STATE_ACCOUNT_ID\)"):
        load({"TF_STATE_ACCOUNT_ID": account})


@pytest.mark.parametrize(
    "key", ["alias/tap/terraform-state", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:alias/tap/terraform-state", "1234abcd-12ab-34cd-56ef-1234567890ab"],
)  # fmt: skip
def test_state_kms_key_accepts_what_terraforms_backend_does(key: str) -> None:
    assert load({"TF_STATE_KMS_KEY": key}).state.kms_key == key


@pytest.mark.parametrize("key", ["tap/terraform-state", "arn:aws:s3:::bucket", "alias/has space"])
def test_bad_state_kms_key_names_the_variable(key: str) -> None:
    with pytest.raises(ConfigError, match=r"kms_key \(TF_STATE_KMS_KEY\)"):
        load({"TF_STATE_KMS_KEY": key})


def test_ad_hoc_environment_uses_dev_profile() -> None:
    platform = load({"ENVIRONMENT_SUFFIX": "pr123", "TF_STATE_BUCKET": "acme-tap-state"})
    extra = platform.environments[-1]
    assert extra.suffix == "pr123"
    assert extra.config == dataclasses.replace(DEV, name="pr123")
    assert platform.state.bucket == "acme-tap-state"


@pytest.mark.parametrize("suffix", ["PR1", "pr_1", "a" * 17, "pr 1", "prod", "dev", "staging"])
def test_bad_ad_hoc_suffix_names_the_variable(suffix: str) -> None:
    with pytest.raises(NamingError, match="ENVIRONMENT_SUFFIX"):
        load({"ENVIRONMENT_SUFFIX": suffix})


@pytest.mark.parametrize("bucket", ["Bad_Bucket", "ab", "x" * 60, "-leading"])
def test_bad_state_bucket_names_the_field(bucket: str) -> None:
    with pytest.raises(ConfigError, match=r"state_bucket \(TF_STATE_BUCKET\)"):
        load({"TF_STATE_BUCKET": bucket})


def test_bad_state_region_names_the_field() -> None:
    with pytest.raises(ConfigError, match="TF_STATE_REGION"):
        StateConfig(region="nowhere")


def test_silence_settings_are_validated_and_bound_the_batching_window() -> None:
    with pytest.raises(ConfigError, match="silence_factor"):
        EnvironmentConfig(name="x", silence_factor=1)
    with pytest.raises(ConfigError, match="fleet_retention_days"):
        EnvironmentConfig(name="x", fleet_retention_days=0)
    with pytest.raises(ConfigError, match=r"silence\.timeout_seconds"):
        EnvironmentConfig(name="x", silence=FunctionSettings(timeout_seconds=60))
    # dev batches for 90 s with readings every 60 s: fine at 3 x 60 s, but at 2 x 60 s a sensor that never
    # stopped would look silent while its readings wait in a batch
    assert EnvironmentConfig(name="x", batching_window_seconds=90).silence_factor == 3
    with pytest.raises(ConfigError, match="batching_window_seconds"):
        EnvironmentConfig(name="x", batching_window_seconds=90, silence_factor=2)


@pytest.mark.parametrize(
    ("field", "onboarding"),
    [
        ("onboarding.hook.timeout_seconds", {"hook": FunctionSettings(timeout_seconds=6)}),
        ("onboarding.hook.memory_mb", {"hook": FunctionSettings(memory_mb=64, timeout_seconds=5)}),
        ("onboarding.allow_list_source", {"allow_list_source": "/etc/serials.csv"}),
        ("onboarding.allow_list_source", {"allow_list_source": "fleet/../../serials.csv"}),
        ("onboarding.allow_list_source", {"allow_list_source": "fleet/serials.txt"}),
        ("onboarding.allow_list_source", {"allow_list_source": 7}),
        ("onboarding.claim_template_enabled", {"claim_template_enabled": "yes"}),
    ],
)
def test_bad_onboarding_value_stops_synth_naming_the_field(field: str, onboarding: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=rf"environment 'x': field '{re.escape(field)}'"):
        EnvironmentConfig(name="x", onboarding=Onboarding(**onboarding))


def test_onboarding_defaults_and_a_good_allow_list_source_are_accepted() -> None:
    config = EnvironmentConfig(name="x", onboarding=Onboarding(allow_list_source="fleet/x-serials.csv"))
    assert config.onboarding.hook.timeout_seconds == 5 and config.onboarding.claim_template_enabled
