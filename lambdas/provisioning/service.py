"""The pre-provisioning hook's AWS side: one conditional UpdateItem on the allow-list, a log line and an
EMF metric per decision.

The hook must answer within 5 seconds (a late answer is ``ACCESS_DENIED`` for the device, which retries),
so the client's timeouts and retries are short and any fault refuses (``allow_list_unavailable``) rather
than admitting a serial nobody checked. The happy path is one request: the claim (``allowed`` ->
``claimed``); a refused claim reads the entry back from the failed condition
(``ReturnValuesOnConditionCheckFailure``), so the refusal's reason costs no second request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import metrics
from lambdas.common.aws import Backoff, Clients, call_with_retries, deserialize
from lambdas.common.log import emit_metrics, log_event
from lambdas.provisioning import logic

HOOK_BOTO_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=1)
"""Within IoT's 5 seconds: at most two attempts of at most ~2 s each."""


@dataclass(frozen=True)
class Settings:
    environment: str
    allow_list_table: str
    metric_namespace: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(env["ENVIRONMENT_SUFFIX"], env["ALLOW_LIST_TABLE"], env["METRIC_NAMESPACE"])


class HookClients(Clients):
    """Clients created on first use with the hook's short timeouts (:data:`HOOK_BOTO_CONFIG`)."""

    def __getitem__(self, service: str) -> Any:
        if service not in self._clients:
            import boto3  # noqa: PLC0415 - created on first use

            self._clients[service] = boto3.client(service, config=HOOK_BOTO_CONFIG)  # type: ignore[call-overload]
        return self._clients[service]


class Provisioner:
    """Answers IoT's pre-provisioning hook for one environment."""

    def __init__(
        self,
        settings: Settings,
        clients: Clients | None = None,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients or HookClients()
        self._clock = clock
        self._backoff = backoff or Backoff(attempts=2, base_seconds=0.05, cap_seconds=0.2)

    @property
    def dynamodb(self) -> Any:
        return self.clients["dynamodb"]

    def handle(self, event: Any) -> dict[str, Any]:
        request = logic.parse(event)
        decision = logic.precheck(request) or self._claim(request)
        self._record(request, decision)
        return logic.response(decision)

    def _claim(self, request: logic.Request) -> logic.Decision:
        assert request.serial is not None
        serial, certificate = request.serial, request.certificate_id or ""
        try:
            old = call_with_retries(
                self._backoff,
                lambda: move_serial(
                    self.dynamodb,
                    self.settings.allow_list_table,
                    serial,
                    logic.CLAIMED,
                    now=self._clock(),
                    allowed_from=(logic.ALLOWED,),
                    extra={"certificate_id": certificate},
                ),
            )
        except (ClientError, BotoCoreError) as error:
            return logic.Decision(False, logic.ALLOW_LIST_UNAVAILABLE, str(error))
        return logic.after_claim(old is None, old or None)

    def _record(self, request: logic.Request, decision: logic.Decision) -> None:
        fields = {
            "environment": self.settings.environment,
            "serial": request.serial,
            "certificate_id": request.certificate_id,
            "claim_certificate_id": request.claim_certificate_id,
        }
        namespace = self.settings.metric_namespace
        if decision.allow:
            log_event("info", "provisioning_allowed", **fields)
            emit_metrics(namespace, {metrics.PROVISIONING_ALLOWED: 1})
        else:
            log_event("warning", "provisioning_refused", reason=decision.reason, detail=decision.detail, **fields)
            emit_metrics(
                namespace, {metrics.PROVISIONING_REFUSED: 1}, {metrics.REASON_DIMENSION: decision.reason or "unknown"}
            )


def move_serial(
    dynamodb: Any,
    table: str,
    serial: str,
    status: str,
    *,
    now: float,
    allowed_from: Sequence[str] | None,
    if_absent: bool = False,
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """Set a serial's allow-list ``status`` (and ``<status>_at``, and ``extra``) in one conditional
    UpdateItem, if its status is one of ``allowed_from`` or, with ``if_absent``, it has no entry yet
    (``allowed_from=None`` without ``if_absent``: whatever it is). ``None`` when it moved; else the entry
    as it was (``{}``: no entry), read back from the failed condition. The hook's claim and ``tools.fleet`` share it."""
    conditions = []
    values: dict[str, Any] = {":status": {"S": status}, ":now": {"N": str(int(now))}}
    if allowed_from:
        names = [f":from{i}" for i in range(len(allowed_from))]
        values.update({name: {"S": value} for name, value in zip(names, allowed_from, strict=True)})
        conditions.append(f"#s IN ({', '.join(names)})")
    if if_absent:
        conditions.append("attribute_not_exists(serial)")
    updates = ["#s = :status", f"{status}_at = :now"]
    for i, (name, value) in enumerate(sorted((extra or {}).items())):
        updates.append(f"{name} = :extra{i}")
        values[f":extra{i}"] = {"S": value}
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"serial": {"S": serial}},
            UpdateExpression="SET " + ", ".join(updates),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **({"ConditionExpression": " OR ".join(conditions)} if conditions else {}),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        old: Mapping[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
        return deserialize(old) if old else {}
    return None
