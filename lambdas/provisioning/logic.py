"""The pre-provisioning hook's rules, without AWS: which RegisterThing request may become a sensor.

AWS IoT calls the hook for every RegisterThing of the environment's claim template with
``{"claimCertificateId", "certificateId", "certificatePem", "templateArn", "clientId", "parameters"}``
and provisions only if the answer is ``{"allowProvisioning": true}`` (answered within 5 seconds; a
failing or late hook is ``ACCESS_DENIED`` for the device)
(https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html).

A serial is admitted once: the allow-list entry moves from ``allowed`` to ``claimed`` in one conditional
write, so two devices presenting the same serial (a cloned or stolen claim) cannot both become that
sensor, and a serial registered in bulk (``registered``) or revoked cannot be claimed at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.common.identity import serial_problem

SERIAL_PARAMETER = "SerialNumber"
"""The template's parameter (and the device's RegisterThing parameter) naming the sensor."""

# Allow-list entry states (attribute ``status`` of the item keyed by ``serial``).
ALLOWED = "allowed"
CLAIMED = "claimed"
REGISTERED = "registered"
REVOKED = "revoked"
STATUSES = (ALLOWED, CLAIMED, REGISTERED, REVOKED)

# Why a request was refused: the ``Reason`` of the ``ProvisioningRefused`` metric.
MISSING_SERIAL = "missing_serial"
INVALID_SERIAL = "invalid_serial"
NOT_ALLOWED = "not_on_allow_list"
ALREADY_ONBOARDED = "already_onboarded"
REVOKED_SERIAL = "revoked"
ALLOW_LIST_UNAVAILABLE = "allow_list_unavailable"
REFUSALS = (MISSING_SERIAL, INVALID_SERIAL, NOT_ALLOWED, ALREADY_ONBOARDED, REVOKED_SERIAL, ALLOW_LIST_UNAVAILABLE)


@dataclass(frozen=True)
class Request:
    """What the hook uses of IoT's input (never the certificate's PEM)."""

    serial: str | None
    certificate_id: str | None
    claim_certificate_id: str | None
    template_arn: str | None


@dataclass(frozen=True)
class Decision:
    allow: bool
    reason: str | None = None
    detail: str = ""


def parse(event: object) -> Request:
    """The hook's input; anything malformed becomes a request without a serial (refused, not raised)."""
    event = event if isinstance(event, Mapping) else {}
    parameters = event.get("parameters")
    serial = parameters.get(SERIAL_PARAMETER) if isinstance(parameters, Mapping) else None

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return Request(text(serial), text(event.get("certificateId")), text(event.get("claimCertificateId")),
                   text(event.get("templateArn")))  # fmt: skip


def precheck(request: Request) -> Decision | None:
    """A refusal decided from the request alone, or ``None`` when the allow-list must be asked."""
    if request.serial is None or request.serial == "":
        return Decision(False, MISSING_SERIAL, f"no {SERIAL_PARAMETER} parameter")
    problem = serial_problem(request.serial)
    if problem:
        return Decision(False, INVALID_SERIAL, problem)
    return None


def after_claim(claimed: bool, entry: Mapping[str, Any] | None) -> Decision:
    """The decision once the conditional claim was tried: ``entry`` is the allow-list item as it was
    when the claim's condition failed (``None``: no such serial)."""
    if claimed:
        return Decision(True)
    status = (entry or {}).get("status")
    if entry is None:
        return Decision(False, NOT_ALLOWED, "serial not on the allow-list")
    if status in (CLAIMED, REGISTERED):
        return Decision(False, ALREADY_ONBOARDED, f"serial already {status}")
    if status == REVOKED:
        return Decision(False, REVOKED_SERIAL, "serial revoked")
    return Decision(False, NOT_ALLOWED, f"allow-list status {status!r}")


def response(decision: Decision) -> dict[str, Any]:
    """The hook's answer (no ``parameterOverrides``: the template uses the device's serial as is)."""
    return {"allowProvisioning": decision.allow}
