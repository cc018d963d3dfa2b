"""The naming helper: every name carries the suffix and fits its service's rules for any valid suffix."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacks.naming import Kind, Namer, NamingError, check, validate_suffix

suffixes = st.from_regex(r"\A[a-z0-9-]{1,16}\Z")
CONCERNS = ("sensor-windows", "segment-aggregates", "processor-dlq", "firehose-lake", "iot-to-kinesis", "alerts")
ACCOUNT = "123456789012"


@given(suffixes)
def test_every_kind_of_name_is_valid_for_any_suffix(suffix: str) -> None:
    namer = Namer(suffix)
    for kind in Kind:
        if kind in (Kind.S3_BUCKET, Kind.LOG_GROUP, Kind.IOT_PROVISIONING_TEMPLATE):
            continue  # the template's 36 characters fit its own concern only (below)
        for concern in CONCERNS:
            name = namer.name(kind, concern)
            assert re.fullmatch(kind.value.pattern, name)
            assert len(name) <= kind.value.max_length
            assert suffix.replace("-", kind.value.separator) in name
    for concern in ("access-logs", "athena-results", "quarantine", "lake"):
        bucket = namer.bucket(concern, ACCOUNT)
        check(Kind.S3_BUCKET, bucket)
        assert bucket.endswith(f"-{suffix}-{ACCOUNT}")
    assert namer.log_group("lambda", "processor").endswith(f"tap-processor-{suffix}")
    assert namer.provisioning_template_name() == f"tap-sensor-claim-{suffix}"
    assert namer.fleet_thing_group() == f"tap-sensors-{suffix}"


@given(suffixes)
def test_iot_and_glue_names_use_underscores(suffix: str) -> None:
    namer = Namer(suffix)
    assert "-" not in namer.name(Kind.IOT_RULE, "ingest")
    assert "-" not in namer.name(Kind.GLUE, "traffic")


def test_distinct_suffixes_give_distinct_names() -> None:
    assert Namer("pr-1").name(Kind.IOT_RULE, "ingest") == "tap_ingest_pr_1"
    assert Namer("dev").name(Kind.LAMBDA_FUNCTION, "processor") == "tap-processor-dev"
    assert Namer("dev").state_key() == "tap/dev/terraform.tfstate"
    assert Namer("dev").topic_filter() == "tap/dev/sensors/+/readings"


@pytest.mark.parametrize("suffix", ["", "Dev", "dev_1", "x" * 17, "dév"])
def test_invalid_suffix_is_refused(suffix: str) -> None:
    with pytest.raises(NamingError, match="environment_suffix"):
        validate_suffix(suffix)
    with pytest.raises(NamingError):
        Namer(suffix)


def test_too_long_name_is_refused() -> None:
    with pytest.raises(NamingError, match="allowed 1-64"):
        Namer("a" * 16).name(Kind.LAMBDA_FUNCTION, "x" * 50)
