"""Alert entry point (DynamoDB stream of the sensor windows table, ReportBatchItemFailures).

Thin: the alerter is built on the first invocation from the environment the stack sets, and reused
while the execution environment lives.
"""

from __future__ import annotations

from lambdas.alert.service import Alerter, Settings
from lambdas.common.entry import Entry

_entry: Entry[Alerter] = Entry(lambda: Alerter(Settings.from_env()))
handler = _entry.handler
install = _entry.install
