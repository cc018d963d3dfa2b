"""The only place an AWS resource name is built.

Every name is ``<prefix><sep><concern><sep><environment suffix>`` shaped to the rules of the service
that owns it (character set, separator, case and length). A name that cannot satisfy its service's
rules raises :class:`NamingError` at synth time instead of failing at apply time.

S3 bucket names are global, so they also carry the AWS account id (a Terraform token resolved at plan
time); their length is checked with a 12-digit account id in its place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

PREFIX = "tap"
BOOTSTRAP_STACK_ID = f"{PREFIX}-state-bootstrap"
"""The stack that creates the state bucket (stacks/bootstrap.py)."""
SUFFIX_PATTERN = re.compile(r"^[a-z0-9-]{1,16}$")
_ACCOUNT_ID_PLACEHOLDER = "0" * 12


class NamingError(ValueError):
    """A resource name would break its service's naming rules."""


@dataclass(frozen=True)
class NameRule:
    """Naming rule of one AWS service."""

    max_length: int
    pattern: str
    separator: str = "-"
    min_length: int = 1


class Kind(Enum):
    """Kinds of AWS names, each with the rule of the service that owns it."""

    S3_BUCKET = NameRule(63, r"^[a-z0-9][a-z0-9-]*[a-z0-9]$", min_length=3)
    IAM_ROLE = NameRule(64, r"^[A-Za-z0-9+=,.@_-]+$")
    IAM_POLICY = NameRule(128, r"^[A-Za-z0-9+=,.@_-]+$")
    LAMBDA_FUNCTION = NameRule(64, r"^[A-Za-z0-9_-]+$")
    DYNAMODB_TABLE = NameRule(255, r"^[A-Za-z0-9_.-]+$", min_length=3)
    KINESIS_STREAM = NameRule(128, r"^[A-Za-z0-9_.-]+$")
    FIREHOSE_STREAM = NameRule(64, r"^[A-Za-z0-9_.-]+$")
    SQS_QUEUE = NameRule(80, r"^[A-Za-z0-9_-]+$")
    SNS_TOPIC = NameRule(256, r"^[A-Za-z0-9_-]+$")
    IOT_RULE = NameRule(128, r"^[A-Za-z0-9_]+$", separator="_")
    IOT_POLICY = NameRule(128, r"^[A-Za-z0-9+=,.@_-]+$")
    GLUE = NameRule(255, r"^[a-z0-9_]+$", separator="_")
    ATHENA_WORKGROUP = NameRule(128, r"^[A-Za-z0-9._-]+$")
    ATHENA_QUERY = NameRule(128, r"^[A-Za-z0-9 ._-]+$")
    LOG_GROUP = NameRule(512, r"^[A-Za-z0-9_./#-]+$")
    ALARM = NameRule(255, r"^[A-Za-z0-9_.-]+$")
    DASHBOARD = NameRule(255, r"^[A-Za-z0-9_-]+$")
    KMS_ALIAS = NameRule(256, r"^alias/[A-Za-z0-9/_-]+$")
    METRIC_NAMESPACE = NameRule(255, r"^[A-Za-z0-9./#:_-]+$", separator="/")
    BUDGET = NameRule(100, r"^[^:\\]+$")
    SCHEDULE = NameRule(64, r"^[0-9A-Za-z_.-]+$")
    SCHEDULE_GROUP = NameRule(64, r"^[0-9A-Za-z_.-]+$")
    IOT_THING_GROUP = NameRule(128, r"^[a-zA-Z0-9:_-]+$")
    IOT_PROVISIONING_TEMPLATE = NameRule(36, r"^[0-9A-Za-z_-]+$")
    """CreateProvisioningTemplate: 1-36 characters of ``[0-9A-Za-z_-]``."""
    SCALING_POLICY = NameRule(256, r"^[\x20-\x7e]+$")
    """PutScalingPolicy ``PolicyName``: 1-256 printable characters."""


def validate_suffix(suffix: str, field: str = "environment_suffix") -> str:
    """Return ``suffix`` if it is a valid environment suffix, else raise :class:`NamingError`."""
    if not isinstance(suffix, str) or not SUFFIX_PATTERN.fullmatch(suffix):
        raise NamingError(
            f"{field}: {suffix!r} is not a valid environment suffix "
            "(1-16 characters of lowercase letters, digits and '-')"
        )
    return suffix


def check(kind: Kind, name: str) -> str:
    """Return ``name`` if it satisfies the rule of ``kind``, else raise :class:`NamingError`."""
    rule = kind.value
    if not rule.min_length <= len(name) <= rule.max_length:
        raise NamingError(
            f"{kind.name.lower()} name {name!r} is {len(name)} characters; allowed {rule.min_length}-{rule.max_length}"
        )
    if not re.fullmatch(rule.pattern, name):
        raise NamingError(f"{kind.name.lower()} name {name!r} does not match {rule.pattern}")
    return name


@dataclass(frozen=True)
class Namer:
    """Builds every resource name of one environment."""

    environment_suffix: str

    def __post_init__(self) -> None:
        validate_suffix(self.environment_suffix)

    def _join(self, kind: Kind, concern: str) -> str:
        sep = kind.value.separator
        parts = (PREFIX, concern, self.environment_suffix)
        return sep.join(p.replace("-", sep) for p in parts)

    def name(self, kind: Kind, concern: str) -> str:
        """``tap-<concern>-<suffix>`` shaped for ``kind``."""
        if kind is Kind.S3_BUCKET:
            raise NamingError("use Namer.bucket() for S3 bucket names (they carry the account id)")
        if kind is Kind.KMS_ALIAS:
            return check(kind, f"alias/{PREFIX}/{concern}-{self.environment_suffix}")
        if kind is Kind.LOG_GROUP:
            raise NamingError("use Namer.log_group() for log group names")
        return check(kind, self._join(kind, concern))

    def bucket(self, concern: str, account_id: str) -> str:
        """Globally unique bucket name ``tap-<concern>-<suffix>-<account id>``."""
        stem = self._join(Kind.S3_BUCKET, concern)
        check(Kind.S3_BUCKET, f"{stem}-{_ACCOUNT_ID_PLACEHOLDER}")
        return f"{stem}-{account_id}"

    def log_group(self, service_path: str, concern: str) -> str:
        """Log group ``/aws/<service_path>/tap-<concern>-<suffix>``."""
        return check(Kind.LOG_GROUP, f"/aws/{service_path}/{self._join(Kind.LOG_GROUP, concern)}")

    def metric_namespace(self) -> str:
        """The platform's own CloudWatch namespace in this environment."""
        return check(Kind.METRIC_NAMESPACE, f"TAP/Traffic/{self.environment_suffix}")

    def topic_filter(self) -> str:
        """Topic filter of this environment's readings, ``tap/<env>/sensors/+/readings``: the ingestion
        rule's ``FROM``, and the topic the rule sees once IoT strips the Basic Ingest prefix."""
        return f"{self.sensor_topic_prefix()}/+/readings"

    def sensor_topic_prefix(self) -> str:
        """Topic path up to the sensor id, ``tap/<env>/sensors``."""
        return f"{PREFIX}/{self.environment_suffix}/sensors"

    def ingest_rule_name(self) -> str:
        """The ingestion topic rule; sensors address it by name in their topic (Basic Ingest)."""
        return self.name(Kind.IOT_RULE, "ingest")

    def basic_ingest_prefix(self) -> str:
        """``$aws/rules/<ingestion rule>``: what a Basic Ingest topic starts with. IoT hands the message to
        that rule alone, without the message broker (no messaging charge), and the rule sees the topic
        without this prefix (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html)."""
        return f"$aws/rules/{self.ingest_rule_name()}"

    def sensor_publish_topic(self, thing: str) -> str:
        """The topic a sensor publishes its readings on: ``$aws/rules/<rule>/tap/<env>/sensors/<thing>/readings``
        (the rule sees ``tap/<env>/sensors/<thing>/readings``, so ``topic(4)`` is still the thing name)."""
        return f"{self.basic_ingest_prefix()}/{self.sensor_topic_prefix()}/{thing}/readings"

    def provisioning_template_name(self) -> str:
        """The fleet-provisioning-by-claim template; devices address it in their MQTT topics
        (``$aws/provisioning-templates/<name>/provision/json``)."""
        return self.name(Kind.IOT_PROVISIONING_TEMPLATE, "sensor-claim")

    def fleet_thing_group(self) -> str:
        """The thing group every sensor of this environment belongs to (both ways of onboarding)."""
        return self.name(Kind.IOT_THING_GROUP, "sensors")

    def state_key(self) -> str:
        """Key of this environment's Terraform state in the state bucket."""
        return f"{PREFIX}/{self.environment_suffix}/terraform.tfstate"

    def stack_id(self) -> str:
        """Id of the cdktf stack (and its folder under ``cdktf.out/stacks``)."""
        return f"{PREFIX}-{self.environment_suffix}"
