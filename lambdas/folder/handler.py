"""Folder entry point (Kinesis event source mapping of the partials stream, ReportBatchItemFailures).

Thin: the folder is built on the first invocation from the environment the stack sets, and reused while
the execution environment lives.
"""

from __future__ import annotations

from lambdas.common.entry import Entry
from lambdas.folder.service import Folder, settings_from_env

_entry: Entry[Folder] = Entry(lambda: Folder(settings_from_env()))
handler = _entry.handler
install = _entry.install
