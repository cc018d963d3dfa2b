"""Sensor identity (contract "Identity" and "Origin"): a sensor's ``sensor_id`` is its AWS IoT thing name.

Both ways of onboarding (fleet provisioning by claim, ``lambdas.provisioning``; bulk registration,
``tools.fleet``) name the thing after the sensor's serial, so a serial is acceptable only if it is a
valid ``sensor_id`` (the schema's pattern) and a valid thing name (CreateThing: ``[a-zA-Z0-9:_-]+``,
1-128): the schema allows ``.``, a thing name does not, so a serial with a dot is refused.
"""

from __future__ import annotations

import re

from lambdas.common.contract import SENSOR_ID

THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
"""CreateThing's ``thingName``: https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html"""


def serial_problem(serial: object) -> str | None:
    """Why ``serial`` cannot name a sensor's thing, or ``None`` if it can."""
    if not isinstance(serial, str) or not serial:
        return "missing serial"
    if not SENSOR_ID.fullmatch(serial):
        return f"{serial!r} is not a sensor_id (1-64 letters, digits, '_', '.', ':' or '-', first a letter or digit)"
    if not THING_NAME.fullmatch(serial):
        return f"{serial!r} is not an AWS IoT thing name (no '.')"
    return None
