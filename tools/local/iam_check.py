"""Least privilege, proven by running the code: every AWS call each function makes, checked against its role.

    check = Check(SynthesizedRoles(stack_json))       # the local run: the synthesized stack
    check = Check(DeployedRoles(endpoint, outputs))   # deploy-local: the roles as the emulator's IAM holds them
    check.watch("processor", processor)               # before the handlers run
    report = check.evaluate(clients, targets)         # after: denied calls, unused grants

1. **Recording.** :meth:`Check.watch` hands a service object (``Processor``, ``Folder``) clients that
   register a botocore ``before-parameter-build`` hook, and runs its ``handle`` with a context variable
   naming the function: each API call made while a function handles an event is recorded with its
   parameters and attributed to that function (threads included); the harness's own calls are not.
2. **Mapping.** :data:`OPERATIONS` maps each API operation to the IAM action(s) and resource ARN(s) AWS
   authorizes it as (the Service Authorization Reference, cited there), with condition values, and the
   KMS calls a destination encrypted with a customer managed key makes with the caller's permissions.
   An operation not in the table is reported as unmapped and fails the check: a new call cannot slip by.
3. **Policies.** :class:`SynthesizedRoles` takes the function's inline role policies from the synthesized
   stack JSON (``aws_iam_role_policy`` -> ``aws_iam_policy_document``), every ``${...}`` replaced by the
   real name or ARN of the local run's resources; :class:`DeployedRoles` reads them from the emulator's IAM
   (``ListRolePolicies`` / ``GetRolePolicy`` on the function's role), as Terraform applied them.
4. **Evaluation.** Every recorded (action, resource, condition values) goes through moto's evaluator
   (``moto.iam.access_control.IAMPolicy``), one statement at a time, combined as AWS does: an applicable
   Deny wins, else an applicable Allow allows, else the call is denied. moto treats a condition it cannot
   evaluate as true and one on a key the request lacks as met; so a statement with an operator moto does
   not implement raises :class:`Unsupported`, and one on a key the call does not carry does not apply.
5. **Unused grants.** Each (statement, action) of the role that no call used is listed with its reason
   from :data:`UNUSED_REASONS` (actions Lambda performs with the role on the function's behalf, or a code
   path only some runs reach); one without a reason fails the check.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from lambdas.common.aws import Clients

if TYPE_CHECKING:
    from tools.local.targets import Targets

ROOT = Path(__file__).resolve().parents[2]
PARTITION = "aws"
FUNCTIONS = ("processor", "folder", "silence")
"""The functions of the data path, by concern (their handler is ``lambdas.<concern>.handler.handler``)."""

_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("iam_check_function", default=None)


class Unsupported(Exception):
    """Something this check cannot evaluate faithfully (rather than guessing)."""


# ------------------------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Call:
    """One API call a function made: the service's botocore name, the operation and its parameters."""

    function: str
    service: str
    operation: str
    region: str
    params: Mapping[str, Any]


class Service(Protocol):
    clients: Clients

    def handle(self, event: Any) -> dict[str, Any]: ...


class _Watched(Clients):
    """A service's clients: each one handed out is hooked first (clients are shared with the harness)."""

    def __init__(self, inner: Clients, hook: Callable[[Any], None]) -> None:
        super().__init__()
        self._inner, self._hook = inner, hook

    def __getitem__(self, service: str) -> Any:
        client = self._inner[service]
        self._hook(client)
        return client


class Recorder:
    """Every API call made while a watched service handles an event, attributed to its function."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._hooked: dict[int, Any] = {}

    def watch(self, function: str, service: Service) -> None:
        service.clients = _Watched(service.clients, self._hook)
        handle = service.handle

        def attributed(event: Any) -> dict[str, Any]:
            with acting_as(function):
                return handle(event)

        service.handle = attributed  # type: ignore[method-assign]

    def _hook(self, client: Any) -> None:
        region = client.meta.region_name

        def record(params: Mapping[str, Any], model: Any, **_: Any) -> None:
            function = _CURRENT.get()
            if function is None:  # the harness's own call (setting up, reading back)
                return
            kept = {k: v for k, v in params.items() if k != "Body"}
            with self._lock:
                self.calls.append(Call(function, model.service_model.service_name, model.name, region, kept))

        with self._lock:  # registered before any thread is handed the client
            if id(client) not in self._hooked:
                self._hooked[id(client)] = client  # kept alive, so its id is not reused
                client.meta.events.register("before-parameter-build", record, unique_id=f"tap-iam-check-{id(self)}")


@contextmanager
def acting_as(function: str) -> Iterator[None]:
    """Attribute the calls made in the block (on watched clients) to ``function``."""
    token = _CURRENT.set(function)
    try:
        yield
    finally:
        _CURRENT.reset(token)


# --------------------------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class Access:
    """One authorization AWS makes for a call: an action on a resource, with the request's condition values."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    via: str = ""
    """The API call it authorizes (``s3.PutObject``; ``... (SSE-KMS)`` for the implied KMS call)."""


@dataclass(frozen=True)
class KeyUse:
    """A destination's customer managed key (``bucket_key``: an S3 Bucket Key, whose context is the bucket)."""

    key_arn: str
    bucket_key: bool = False


class Encryption(Protocol):
    def key_of(self, service: str, resource_arn: str) -> KeyUse | None: ...


@dataclass(frozen=True)
class Scope:
    account: str
    encryption: Encryption
    partition: str = PARTITION


Mapper = Callable[[Call, Scope], list[Access]]


def _table(call: Call, scope: Scope, name: str) -> str:
    """A table's ARN (DynamoDB also takes the ARN itself where a table name goes)."""
    return (
        name
        if name.startswith("arn:")
        else f"arn:{scope.partition}:dynamodb:{call.region}:{scope.account}:table/{name}"
    )


def _each_table(action: str) -> Mapper:
    """Batch operations: the action on every table of ``RequestItems``."""
    return lambda call, scope: [Access(action, _table(call, scope, t)) for t in call.params["RequestItems"]]


def _one_table(action: str) -> Mapper:
    """Item and query operations: the table, or ``<table>/index/<index>`` when the call names an index."""

    def mapper(call: Call, scope: Scope) -> list[Access]:
        arn = _table(call, scope, call.params["TableName"])
        index = call.params.get("IndexName")
        return [Access(action, f"{arn}/index/{index}" if index else arn)]

    return mapper


def _kms(call: Call, scope: Scope, key: KeyUse, actions: Sequence[str], context: Mapping[str, str]) -> list[Access]:
    """What the destination's service asks KMS for with the caller's permissions (``kms:ViaService``:
    ``<service>.<region>.amazonaws.com``; the encryption context the service passes)."""
    values = {
        "kms:ViaService": f"{call.service}.{call.region}.amazonaws.com",
        "kms:CallerAccount": scope.account,
        **context,
    }
    via = f"{call.service}.{call.operation} (SSE-KMS)"
    return [Access(a, key.key_arn, tuple(sorted(values.items())), via) for a in actions]


def _put_object(call: Call, scope: Scope) -> list[Access]:
    params = call.params
    if params.get("SSEKMSKeyId") or str(params.get("ServerSideEncryption", "")).startswith("aws:kms"):
        raise Unsupported("s3.PutObject with request-level SSE-KMS: map the key it names first")
    bucket = f"arn:{scope.partition}:s3:::{params['Bucket']}"
    obj = f"{bucket}/{params['Key']}"
    accesses = [Access("s3:PutObject", obj)]
    key = scope.encryption.key_of("s3", bucket)
    if key:  # a Bucket Key's encryption context is the bucket's ARN, else the object's
        accesses += _kms(
            call,
            scope,
            key,
            ("kms:GenerateDataKey",),
            {"kms:EncryptionContext:aws:s3:arn": bucket if key.bucket_key else obj},
        )
    return accesses


def _publish(call: Call, scope: Scope) -> list[Access]:
    topic = call.params.get("TopicArn") or call.params.get("TargetArn")
    if not topic:
        raise Unsupported("sns.Publish to a phone number: map it first")
    accesses = [Access("sns:Publish", topic)]
    key = scope.encryption.key_of("sns", topic)
    if key:
        accesses += _kms(
            call, scope, key, ("kms:GenerateDataKey", "kms:Decrypt"), {"kms:EncryptionContext:aws:sns:topicArn": topic}
        )
    return accesses


def queue_arn(queue_url: str, region: str, partition: str = PARTITION) -> str:
    """``https://<host>/<account>/<name>`` -> ``arn:aws:sqs:<region>:<account>:<name>``."""
    account, name = urlparse(queue_url).path.strip("/").split("/")[-2:]
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def _send_message(call: Call, scope: Scope) -> list[Access]:
    queue = queue_arn(call.params["QueueUrl"], call.region, scope.partition)
    accesses = [Access("sqs:SendMessage", queue)]
    key = scope.encryption.key_of("sqs", queue)
    if key:
        accesses += _kms(
            call, scope, key, ("kms:GenerateDataKey", "kms:Decrypt"), {"kms:EncryptionContext:aws:sqs:arn": queue}
        )
    return accesses


def _put_records(call: Call, scope: Scope) -> list[Access]:
    stream = call.params.get("StreamARN") or (
        f"arn:{scope.partition}:kinesis:{call.region}:{scope.account}:stream/{call.params['StreamName']}"
    )
    accesses = [Access("kinesis:PutRecords", stream)]
    key = scope.encryption.key_of("kinesis", stream)
    if key:  # producers of an SSE-KMS stream need GenerateDataKey; the context is the stream's ARN
        accesses += _kms(call, scope, key, ("kms:GenerateDataKey",), {"kms:EncryptionContext:aws:kinesis:arn": stream})
    return accesses


def _put_metric_data(call: Call, scope: Scope) -> list[Access]:
    return [Access("cloudwatch:PutMetricData", "*", (("cloudwatch:namespace", call.params["Namespace"]),))]


# Each operation the functions call -> what AWS authorizes it as. Actions, resource types and condition keys
# from the Service Authorization Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/
#   DynamoDB   list_amazondynamodb.html: BatchGetItem/BatchWriteItem on each table (RequestItems), GetItem/
#              PutItem/UpdateItem on the table (a conditional write needs nothing more), Query on the table or
#              "index" arn:...:table/<t>/index/<i>. Items of a table encrypted with a customer managed key need
#              no KMS permission of the caller: DynamoDB uses its grant ("DynamoDB encryption at rest",
#              amazondynamodb/latest/developerguide/encryption.usagenotes.html; kms developerguide
#              services-dynamodb.html).
#   S3         list_amazons3.html: PutObject on "object" arn:aws:s3:::<bucket>/<key>. SSE-KMS: "To upload an
#              object encrypted with an AWS KMS key ... you need kms:GenerateDataKey permissions on the key"
#              (kms:Decrypt only for multipart uploads), AmazonS3/latest/userguide/UsingKMSEncryption.html;
#              with an S3 Bucket Key the encryption context is the bucket ARN, userguide/bucket-key.html.
#   SNS        list_amazonsns.html: Publish on "topic". Encrypted topic: "the publisher must have the
#              kms:GenerateDataKey* and kms:Decrypt permissions", sns/latest/dg/sns-key-management.html.
#   SQS        list_amazonsqs.html: SendMessage on "queue" arn:aws:sqs:<region>:<account>:<name>. Encrypted
#              queue: producers need kms:GenerateDataKey and kms:Decrypt, AWSSimpleQueueService/latest/
#              SQSDeveloperGuide/sqs-key-management.html.
#   Kinesis    list_amazonkinesis.html: PutRecords on "stream" arn:aws:kinesis:<region>:<account>:stream/<name>.
#              SSE-KMS stream: "Your Kinesis stream producers must have the kms:GenerateDataKey permission";
#              the encryption context is the stream's ARN, streams/latest/dev/permissions-user-key-KMS.html.
#   CloudWatch list_amazoncloudwatch.html: PutMetricData has no resource type ("*"); condition key
#              cloudwatch:namespace, AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html.
#   KMS        list_awskeymanagementservice.html: GenerateDataKey/Decrypt on "key"; kms:ViaService,
#              kms:CallerAccount and kms:EncryptionContext:<key> condition keys (kms developerguide
#              conditions-kms.html).
OPERATIONS: dict[tuple[str, str], Mapper] = {
    ("dynamodb", "BatchGetItem"): _each_table("dynamodb:BatchGetItem"),
    ("dynamodb", "BatchWriteItem"): _each_table("dynamodb:BatchWriteItem"),
    ("dynamodb", "GetItem"): _one_table("dynamodb:GetItem"),
    ("dynamodb", "PutItem"): _one_table("dynamodb:PutItem"),
    ("dynamodb", "UpdateItem"): _one_table("dynamodb:UpdateItem"),
    ("dynamodb", "Query"): _one_table("dynamodb:Query"),
    ("s3", "PutObject"): _put_object,
    ("sns", "Publish"): _publish,
    ("sqs", "SendMessage"): _send_message,
    ("kinesis", "PutRecords"): _put_records,
    ("cloudwatch", "PutMetricData"): _put_metric_data,
}


def accesses_of(call: Call, scope: Scope) -> list[Access]:
    """The authorizations ``call`` needs; raises :class:`Unsupported` for an operation not in the table."""
    mapper = OPERATIONS.get((call.service, call.operation))
    if mapper is None:
        raise Unsupported(f"{call.service}.{call.operation} is not in tools/local/iam_check.py OPERATIONS")
    common = (("aws:RequestedRegion", call.region), ("aws:SecureTransport", "true"))
    return [
        Access(
            a.action,
            a.resource,
            tuple(sorted({**dict(common), **dict(a.context)}.items())),
            a.via or f"{call.service}.{call.operation}",
        )
        for a in mapper(call, scope)
    ]


# ---------------------------------------------------------------------------------------- unused grants

_KINESIS_MAPPING = (
    "Lambda's Kinesis event source mapping reads the stream with the function's role "
    "(lambda/latest/dg/services-kinesis-create.html)"
)
_LOGS = "the Lambda runtime writes the function's logs (lambda/latest/dg/monitoring-cloudwatchlogs.html)"
_XRAY = "active tracing: Lambda sends the function's trace segments (lambda/latest/dg/services-xray.html)"

_KINESIS_READ = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)

UNUSED_REASONS: dict[tuple[str, str], str] = {
    **{("processor", action): _KINESIS_MAPPING for action in _KINESIS_READ},
    ("processor", "kms:Decrypt"): "Lambda decrypts the stream's SSE-KMS records with the function's role "
    "(streams/latest/dev/permissions-user-key-KMS.html: Lambda uses roles to consume Kinesis streams), and "
    "sending to the encrypted dead-letter queue needs it (sqs-key-management.html)",
    **{("folder", action): _KINESIS_MAPPING for action in _KINESIS_READ},
    ("folder", "kms:Decrypt"): "Lambda decrypts the partials stream's SSE-KMS records with the function's role "
    "(streams/latest/dev/permissions-user-key-KMS.html), and sending to the encrypted dead-letter queue needs it",
    ("folder", "dynamodb:GetItem"): "code path: the re-read after a conditional write lost to another writer "
    "(lambdas/common/alert_state.py AlertState.get); one writer per segment window never reaches it, "
    "tests/test_iam_check.py drives it",
    ("*", "logs:CreateLogStream"): _LOGS,
    ("*", "logs:PutLogEvents"): _LOGS,
    ("*", "sqs:SendMessage"): "the event source mapping's on-failure destination and the asynchronous dead-letter "
    "queue: Lambda sends with the function's role (lambda/latest/dg/kinesis-on-failure-destination.html)",
    ("*", "xray:PutTraceSegments"): _XRAY,
    ("*", "xray:PutTelemetryRecords"): _XRAY,
    **{
        ("provisioning", action): "the pre-provisioning hook's dead-letter queue (every function has one, "
        "``stacks.processing.Function``) is encrypted with the environment's key, and Lambda sends to it with "
        "the function's role (sqs-key-management.html); IoT invokes the hook synchronously, so only a "
        "misrouted asynchronous invocation would reach it"
        for action in ("kms:Decrypt", "kms:GenerateDataKey")
    },
}
"""Why a granted action may go unused by the handlers' own calls, by (function or ``*``, action)."""


# ------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class Policy:
    """One of a role's policies: its name and its document (the JSON AWS holds)."""

    name: str
    document: Mapping[str, Any]

    def statements(self) -> list[dict[str, Any]]:
        found = self.document["Statement"]
        return list(found) if isinstance(found, list) else [found]


def _as_list(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def applies(statement: Mapping[str, Any], access: Access) -> bool:
    """Whether ``statement`` covers ``access`` (action, resource, then conditions), by moto's evaluator."""
    from moto.iam.access_control import IAMPolicy, PermissionResult  # noqa: PLC0415
    from moto.iam.policy_conditions import CONDITION_OPERATIONS  # noqa: PLC0415

    def permitted(probe: Mapping[str, Any], context: dict[str, str] | None = None) -> bool:
        policy = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": [{**probe, "Effect": "Allow"}]}))
        return policy.is_action_permitted(access.action, access.resource, incoming_condition_values=context) is (
            PermissionResult.PERMITTED
        )

    for element in ("NotResource", "NotPrincipal"):
        if element in statement:
            raise Unsupported(f"statement {statement.get('Sid', '')!r}: {element} is not evaluated by moto")
    conditions = statement.get("Condition", {})
    if not permitted({k: v for k, v in statement.items() if k != "Condition"}):
        return False  # not this action or resource
    if not conditions:
        return True
    context = dict(access.context)
    for operator, tests in conditions.items():
        if operator not in CONDITION_OPERATIONS:
            raise Unsupported(f"statement {statement.get('Sid', '')!r}: moto cannot evaluate condition {operator}")
        if any(key not in context for key in tests):  # AWS: a condition on a key the request lacks is false
            return False
    return permitted(statement, context)


def allowed(policies: Sequence[Policy], access: Access) -> bool:
    """AWS's evaluation of one principal's policies: an applicable Deny wins, then an applicable Allow."""
    effects = {s.get("Effect", "Allow") for p in policies for s in p.statements() if applies(s, access)}
    return "Deny" not in effects and "Allow" in effects


@dataclass(frozen=True)
class Denied:
    function: str
    action: str
    resource: str
    via: str
    context: Mapping[str, str]


@dataclass(frozen=True)
class Unused:
    function: str
    policy: str
    sid: str
    action: str
    resources: tuple[str, ...]
    reason: str | None


@dataclass
class Report:
    calls: dict[str, int]
    """Recorded API calls per function."""
    used: dict[str, list[str]]
    """Actions each function's calls needed (allowed or not), sorted."""
    checked: int = 0
    """Distinct (function, action, resource, condition values) evaluated."""
    denied: list[Denied] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    unused: list[Unused] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.denied and not self.unmapped and all(u.reason for u in self.unused)

    def problems(self) -> list[str]:
        lines = [
            f"{d.function}: {d.action} on {d.resource} ({d.via}{_keys(d.context)}) is not allowed by its role"
            for d in self.denied
        ]
        lines += [f"unmapped call: {u}" for u in self.unmapped]
        lines += [
            f"{u.function}: {u.action} on {', '.join(u.resources)} (policy {u.policy}, statement {u.sid}) is granted "
            "but no call used it and UNUSED_REASONS gives no reason"
            for u in self.unused
            if not u.reason
        ]
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "calls": dict(self.calls),
            "checked": self.checked,
            "used": {f: list(a) for f, a in self.used.items()},
            "denied": [asdict(d) for d in self.denied],
            "unmapped": list(self.unmapped),
            "unused": [asdict(u) for u in self.unused],
            "problems": self.problems(),
        }


def _keys(context: Mapping[str, str]) -> str:
    """The service-specific condition values of a request, for a message (``aws:*`` ones are left out)."""
    shown = [f"{k}={v}" for k, v in sorted(context.items()) if not k.startswith("aws:")]
    return f"; {', '.join(shown)}" if shown else ""


def summary_line(report: Mapping[str, Any]) -> str:
    """One line of a report (``Report.as_dict()``) for the local run's summary."""
    calls = report["calls"]
    unused = report["unused"]
    return (
        f"IAM check {'passed' if report['passed'] else 'FAILED'}: {sum(calls.values()):,} calls "
        f"({', '.join(f'{f} {n:,}' for f, n in sorted(calls.items()))}), {report['checked']:,} authorizations "
        f"checked, {len(report['denied'])} denied, {len(report['unmapped'])} unmapped; {len(unused)} grants "
        f"unused, {sum(1 for u in unused if u['reason'])} of them with their reason"
    )


def evaluate(
    calls: Iterable[Call],
    roles: Mapping[str, Sequence[Policy]],
    scope: Scope,
    reasons: Mapping[tuple[str, str], str] = UNUSED_REASONS,
) -> Report:
    """Every call against its function's role policies; the granted actions no call used, with reasons."""
    counts: dict[str, int] = dict.fromkeys(roles, 0)
    wanted: dict[str, set[Access]] = {f: set() for f in roles}
    unmapped: set[str] = set()
    for call in calls:
        if call.function not in roles:
            raise Unsupported(f"calls of {call.function!r}, whose role is not known")
        counts[call.function] += 1
        try:
            wanted[call.function].update(accesses_of(call, scope))
        except Unsupported as error:
            unmapped.add(f"{call.function}: {error}")
    report = Report(counts, {f: sorted({a.action for a in accesses}) for f, accesses in wanted.items()})
    report.unmapped = sorted(unmapped)
    for function, accesses in wanted.items():
        policies = roles[function]
        ordered = sorted(accesses, key=lambda a: (a.action, a.resource, a.context))
        report.checked += len(ordered)
        report.denied += [
            Denied(function, a.action, a.resource, a.via, dict(a.context)) for a in ordered if not allowed(policies, a)
        ]
        report.unused += _unused(function, policies, ordered, reasons)
    return report


def _unused(
    function: str, policies: Sequence[Policy], accesses: Sequence[Access], reasons: Mapping[tuple[str, str], str]
) -> list[Unused]:
    found = []
    for policy in policies:
        for statement in policy.statements():
            if statement.get("Effect", "Allow") != "Allow":
                continue
            if "NotAction" in statement:
                raise Unsupported(f"{policy.name}: an Allow with NotAction has no list of grants to account for")
            for action in _as_list(statement["Action"]):
                narrowed = {**statement, "Action": [action]}
                if any(applies(narrowed, a) for a in accesses):
                    continue
                reason = reasons.get((function, action)) or reasons.get(("*", action))
                resources = tuple(_as_list(statement.get("Resource", "*")))
                found.append(Unused(function, policy.name, statement.get("Sid", ""), action, resources, reason))
    return found


# ------------------------------------------------------------------------------------------- the roles


@dataclass(frozen=True)
class Resolved:
    account: str
    roles: Mapping[str, Sequence[Policy]]
    encryption: Encryption


class RoleSource(Protocol):
    def resolve(self, clients: Clients, targets: Targets) -> Resolved: ...


class Check:
    """Records the watched functions' calls; :meth:`evaluate` checks them against ``source``'s roles."""

    def __init__(self, source: RoleSource, reasons: Mapping[tuple[str, str], str] = UNUSED_REASONS) -> None:
        self.source, self.reasons = source, reasons
        self.recorder = Recorder()

    def watch(self, function: str, service: Service) -> None:
        self.recorder.watch(function, service)

    def evaluate(self, clients: Clients, targets: Targets, source: RoleSource | None = None) -> Report:
        resolved = (source or self.source).resolve(clients, targets)
        scope = Scope(resolved.account, resolved.encryption)
        return evaluate(list(self.recorder.calls), resolved.roles, scope, self.reasons)


@dataclass
class KeysByArn:
    """Encryption known in advance: destination ARN -> its key."""

    keys: Mapping[str, KeyUse]

    def key_of(self, service: str, resource_arn: str) -> KeyUse | None:
        return self.keys.get(resource_arn)


# ``$${`` is Terraform's escape for a literal ``${`` (IAM policy variables such as ``${aws:username}``).
_INTERPOLATION = re.compile(r"\$\$\{|\$\{([^}]*)\}")


def interpolate(text: str, evaluate: Callable[[str], str]) -> str:
    """A synthesized Terraform string with each ``${expression}`` replaced by ``evaluate(expression)``
    and each ``$${`` unescaped to ``${`` (a literal, such as an IAM policy variable: not evaluated).
    Template directives (``%{``) are not handled."""
    return _INTERPOLATION.sub(lambda m: "${" if m.group(1) is None else evaluate(m.group(1)), text)


# The name attribute of each resource type a role policy may reference, and its ARN (Service Authorization
# Reference, "Resource types defined by ..." of each service).
_NAME_ATTRIBUTE = {
    "aws_dynamodb_table": "name",
    "aws_kinesis_stream": "name",
    "aws_s3_bucket": "bucket",
    "aws_sns_topic": "name",
    "aws_sqs_queue": "name",
    "aws_cloudwatch_log_group": "name",
    "aws_iam_role": "name",
    "aws_lambda_function": "function_name",
}
_ARN = {
    "aws_dynamodb_table": "arn:{partition}:dynamodb:{region}:{account}:table/{name}",
    "aws_kinesis_stream": "arn:{partition}:kinesis:{region}:{account}:stream/{name}",
    "aws_s3_bucket": "arn:{partition}:s3:::{name}",
    "aws_sns_topic": "arn:{partition}:sns:{region}:{account}:{name}",
    "aws_sqs_queue": "arn:{partition}:sqs:{region}:{account}:{name}",
    "aws_cloudwatch_log_group": "arn:{partition}:logs:{region}:{account}:log-group:{name}",
    "aws_iam_role": "arn:{partition}:iam::{account}:role/{name}",
    "aws_lambda_function": "arn:{partition}:lambda:{region}:{account}:function:{name}",
}
# Types whose ``id`` is their ARN.
_ID_IS_ARN = {"aws_sns_topic"}


class _Stack:
    """A synthesized stack's values with references resolved against the local run's resources.

    Names come from the stack itself (the same ``Namer`` made the local run's), ARNs are built from them;
    what only the emulator knows (a table's stream ARN) is asked of it, and each ``aws_kms_key`` (the local
    run has none) is created there once, so policies and encrypted destinations name a real key.
    """

    def __init__(self, doc: Mapping[str, Any], clients: Clients, region: str, account: str) -> None:
        self.doc, self.clients, self.region, self.account = doc, clients, region, account

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return dict(self.doc.get("resource", {}).get(type_, {}))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            return interpolate(value, self._expression)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def _expression(self, expression: str) -> str:
        parts = expression.split(".")
        if len(parts) == 4 and parts[0] == "data":
            return self._data(*parts[1:])
        if len(parts) == 3 and parts[0] in self.doc.get("resource", {}):
            return self._attribute(*parts)
        raise Unsupported(f"cannot resolve ${{{expression}}}")

    def _data(self, type_: str, name: str, attribute: str) -> str:
        if (type_, attribute) == ("aws_caller_identity", "account_id"):
            return self.account
        if (type_, attribute) == ("aws_partition", "partition"):
            return PARTITION
        if (type_, attribute) == ("aws_region", "name"):
            return self.region
        if (type_, attribute) == ("aws_iam_policy_document", "json"):
            return json.dumps(self.policy_document(name))
        raise Unsupported(f"cannot resolve data.{type_}.{name}.{attribute}")

    def _attribute(self, type_: str, name: str, attribute: str) -> str:
        body = self.doc["resource"][type_][name]
        if type_ == "aws_kms_key" and attribute in ("arn", "key_id", "id"):
            arn = self._key(name, body)
            return arn if attribute == "arn" else arn.rsplit("/", 1)[1]
        if type_ not in _NAME_ATTRIBUTE:
            raise Unsupported(f"cannot resolve {type_}.{name}.{attribute}")
        own_name = str(self.resolve(body[_NAME_ATTRIBUTE[type_]]))
        if (type_, attribute) in (("aws_sqs_queue", "url"), ("aws_sqs_queue", "id")):
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{own_name}"
        if attribute == "arn" or (attribute == "id" and type_ in _ID_IS_ARN):
            return self.arn(type_, own_name)
        if attribute in (_NAME_ATTRIBUTE[type_], "id"):
            return own_name
        raise Unsupported(f"cannot resolve {type_}.{name}.{attribute}")

    def arn(self, type_: str, own_name: str) -> str:
        return _ARN[type_].format(partition=PARTITION, region=self.region, account=self.account, name=own_name)

    def _key(self, name: str, body: Mapping[str, Any]) -> str:
        """The emulator's key standing in for ``aws_kms_key.<name>``: made once, found by its alias after."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        kms, alias = self.clients["kms"], f"alias/tap-iam-check/{name}"
        try:
            return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"])
        except ClientError:
            created = kms.create_key(Description=str(body.get("description", name)))["KeyMetadata"]
            kms.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])
            return str(created["Arn"])

    def policy_document(self, name: str) -> dict[str, Any]:
        """An ``aws_iam_policy_document`` data source as the JSON Terraform renders from it."""
        data = self.doc["data"]["aws_iam_policy_document"][name]
        unknown = set(data) - {"//", "statement", "version", "policy_id"}
        if unknown:
            raise Unsupported(f"aws_iam_policy_document.{name}: {sorted(unknown)} are not rendered here")
        rendered = {"Version": data.get("version", "2012-10-17"), "Id": data.get("policy_id")}
        return {
            **{k: v for k, v in rendered.items() if v},
            "Statement": [self._statement(s) for s in data["statement"]],
        }

    def _statement(self, s: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"Effect": s.get("effect", "Allow")}
        if s.get("sid"):
            out["Sid"] = s["sid"]
        for source, target in (
            ("actions", "Action"),
            ("not_actions", "NotAction"),
            ("resources", "Resource"),
            ("not_resources", "NotResource"),
        ):
            if s.get(source) is not None:
                out[target] = self.resolve(list(s[source]))
        for principal_field, target in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
            for p in s.get(principal_field) or []:
                out.setdefault(target, {})[p["type"]] = self.resolve(list(p["identifiers"]))
        for c in s.get("condition") or []:
            out.setdefault("Condition", {}).setdefault(c["test"], {})[c["variable"]] = self.resolve(list(c["values"]))
        return out

    def role_policies(self, concern: str) -> list[Policy]:
        """The inline policies of the role of the function whose handler is ``lambdas.<concern>...``."""
        handler = f"lambdas.{concern}.handler.handler"
        functions = [b for b in self.resources("aws_lambda_function").values() if b.get("handler") == handler]
        if len(functions) != 1:
            raise Unsupported(f"expected one aws_lambda_function with handler {handler}, found {len(functions)}")
        match = re.fullmatch(r"\$\{aws_iam_role\.([^.]+)\.arn\}", str(functions[0]["role"]))
        if not match:
            raise Unsupported(f"{handler}: role {functions[0]['role']!r} is not a role of this stack")
        role = match.group(1)
        refs = {f"${{aws_iam_role.{role}.{a}}}" for a in ("id", "name")}
        attached = [b for b in self.resources("aws_iam_role_policy_attachment").values() if b.get("role") in refs]
        if attached or {"inline_policy", "managed_policy_arns"} & set(self.resources("aws_iam_role")[role]):
            raise Unsupported(f"role {role}: only aws_iam_role_policy policies are resolved here")
        inline = [b for b in self.resources("aws_iam_role_policy").values() if b.get("role") in refs]
        return [Policy(str(self.resolve(b["name"])), json.loads(self.resolve(b["policy"]))) for b in inline]

    def encryption(self) -> dict[str, KeyUse]:
        """Each SNS topic, SQS queue and S3 bucket of the stack encrypted with a KMS key, by ARN."""
        keys: dict[str, KeyUse] = {}
        for type_ in ("aws_sns_topic", "aws_sqs_queue"):
            for body in self.resources(type_).values():
                if body.get("kms_master_key_id"):
                    keys[self.arn(type_, self.resolve(body["name"]))] = KeyUse(self._key_arn(body["kms_master_key_id"]))
        for body in self.resources("aws_kinesis_stream").values():
            if body.get("encryption_type") == "KMS":
                keys[self.arn("aws_kinesis_stream", self.resolve(body["name"]))] = KeyUse(
                    self._key_arn(body["kms_key_id"])
                )
        for body in self.resources("aws_s3_bucket_server_side_encryption_configuration").values():
            for rule in body.get("rule", []):
                default = rule.get("apply_server_side_encryption_by_default") or {}
                if str(default.get("sse_algorithm", "")).startswith("aws:kms"):
                    bucket = self.arn("aws_s3_bucket", self.resolve(body["bucket"]))
                    keys[bucket] = KeyUse(
                        self._key_arn(default["kms_master_key_id"]), bool(rule.get("bucket_key_enabled"))
                    )
        return keys

    def _key_arn(self, value: str) -> str:
        arn = str(self.resolve(value))
        if not arn.startswith("arn:"):
            raise Unsupported(f"encryption key {value!r} is not a key ARN")
        return arn

    def outputs(self, names: Iterable[str]) -> dict[str, str]:
        return {name: str(self.resolve(self.doc["output"][name]["value"])) for name in names}


def stack_of(doc: Mapping[str, Any], clients: Clients, region: str, account: str) -> _Stack:
    """A synthesized stack resolved against the local run's resources (for checks of functions outside
    the data path, such as the pre-provisioning hook: ``tests/test_provisioning.py``)."""
    return _Stack(doc, clients, region, account)


# What the local run's Targets must agree on with the stack's own outputs (their names for the same thing).
_TARGET_OUTPUTS = {
    "stream_name": "kinesis_stream_name",
    "sensor_windows_table": "sensor_windows_table_name",
    "segment_aggregates_table": "segment_aggregates_table_name",
    "quarantine_bucket": "quarantine_bucket_name",
    "alert_topic_arn": "alert_topic_arn",
    "metric_namespace": "metric_namespace",
    "partials_stream": "partials_stream_name",
}


@dataclass
class SynthesizedRoles:
    """The roles of the synthesized stack (``cdk.tf.json`` as a dict), resolved against the local run."""

    doc: Mapping[str, Any]

    @classmethod
    def from_file(cls, path: Path) -> SynthesizedRoles:
        return cls(json.loads(path.read_text()))

    def resolve(self, clients: Clients, targets: Targets) -> Resolved:
        account = str(clients["sts"].get_caller_identity()["Account"])
        stack = _Stack(self.doc, clients, targets.region, account)
        stacked = stack.outputs(_TARGET_OUTPUTS.values())
        differ = {
            f: (getattr(targets, f), stacked[o])
            for f, o in _TARGET_OUTPUTS.items()
            if getattr(targets, f) != stacked[o]
        }
        if differ:
            raise Unsupported(f"the local run's resources are not the stack's (local, stack): {differ}")
        roles = {concern: stack.role_policies(concern) for concern in FUNCTIONS}
        return Resolved(account, roles, KeysByArn(stack.encryption()))


class _Deployed:
    """Encryption of deployed destinations, asked of the emulator (key ids normalised to ARNs)."""

    def __init__(self, client: Callable[[str], Any]) -> None:
        self.client = client
        self._cache: dict[tuple[str, str], KeyUse | None] = {}

    def key_of(self, service: str, resource_arn: str) -> KeyUse | None:
        if (service, resource_arn) not in self._cache:
            self._cache[(service, resource_arn)] = self._ask(service, resource_arn)
        return self._cache[(service, resource_arn)]

    def _ask(self, service: str, arn: str) -> KeyUse | None:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        if service == "s3":
            try:
                config = self.client("s3").get_bucket_encryption(Bucket=arn.split(":::", 1)[1])
            except ClientError:
                return None
            for rule in config["ServerSideEncryptionConfiguration"]["Rules"]:
                default = rule.get("ApplyServerSideEncryptionByDefault", {})
                if str(default.get("SSEAlgorithm", "")).startswith("aws:kms") and default.get("KMSMasterKeyID"):
                    return KeyUse(self._arn(default["KMSMasterKeyID"]), bool(rule.get("BucketKeyEnabled")))
            return None
        if service == "sns":
            key = self.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"].get("KmsMasterKeyId")
        elif service == "kinesis":
            summary = self.client("kinesis").describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]
            key = summary.get("KeyId") if summary.get("EncryptionType") == "KMS" else None
        else:  # sqs
            account, name = arn.split(":")[4:6]
            url = self.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            key = (
                self.client("sqs")
                .get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])["Attributes"]
                .get("KmsMasterKeyId")
            )
        return KeyUse(self._arn(key)) if key else None

    def _arn(self, key: str) -> str:
        return str(self.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"])


@dataclass
class DeployedRoles:
    """The functions' roles as deployed: each function (``<concern>_function_name`` in the stack's outputs)
    -> its role -> the role's inline and attached policies, read from the emulator's IAM."""

    endpoint_url: str
    region: str
    outputs: Mapping[str, Any]

    def client(self, service: str) -> Any:
        import boto3  # noqa: PLC0415

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)  # type: ignore[call-overload]

    def resolve(self, clients: Clients, targets: Targets) -> Resolved:
        made: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in made:
                made[service] = self.client(service)
            return made[service]

        value = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in self.outputs.items()}
        roles = {f: self._policies(client, value[f"{f}_function_name"]) for f in FUNCTIONS}
        account = str(client("sts").get_caller_identity()["Account"])
        return Resolved(account, roles, _Deployed(client))

    @staticmethod
    def _policies(client: Callable[[str], Any], function_name: str) -> list[Policy]:
        role = client("lambda").get_function_configuration(FunctionName=function_name)["Role"].rsplit("/", 1)[1]
        iam = client("iam")
        policies = []
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            policies.append(
                Policy(name, _document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]))
            )
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
            policies.append(Policy(attached["PolicyName"], _document(document["Document"])))
        return policies


def for_run(
    environment: str, region: str, endpoint_url: str | None, outputs: Mapping[str, Any], stack_json: Path | None
) -> Check:
    """The check of a local run: the deployed roles with an endpoint, else the synthesized stack's."""
    if endpoint_url:
        return Check(DeployedRoles(endpoint_url, region, outputs))
    path = stack_json or ROOT / "cdktf.out" / "stacks" / f"tap-{environment}" / "cdk.tf.json"
    if not path.exists():
        raise SystemExit(f"--check-iam: {path} not found; synthesize first (make synth) or pass --stack-json")
    return Check(SynthesizedRoles.from_file(path))


def _document(value: Any) -> dict[str, Any]:
    """A policy document as boto3 returns it (parsed, or URL-encoded JSON text)."""
    if isinstance(value, str):
        from urllib.parse import unquote  # noqa: PLC0415

        parsed: dict[str, Any] = json.loads(unquote(value))
        return parsed
    return dict(value)
