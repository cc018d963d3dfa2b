"""Pre-provisioning hook entry point (AWS IoT invokes it for every RegisterThing of the claim template).

Thin: the service is built on the first invocation from the environment the stack sets; the answer is
``{"allowProvisioning": bool}``.
"""

from __future__ import annotations

from lambdas.common.entry import Entry
from lambdas.provisioning.service import Provisioner, Settings

_entry: Entry[Provisioner] = Entry(lambda: Provisioner(Settings.from_env()))
handler = _entry.handler
install = _entry.install
