"""Processor entry point (Kinesis event source mapping with ReportBatchItemFailures).

Thin: the processor is built on the first invocation from the environment the stack sets, and reused
while the execution environment lives.
"""

from __future__ import annotations

from lambdas.common.entry import Entry
from lambdas.processor.service import Processor, Settings

_entry: Entry[Processor] = Entry(lambda: Processor(Settings.from_env()))
handler = _entry.handler
install = _entry.install
