"""Silence check entry point (an EventBridge Scheduler schedule invokes it every minute).

Thin: the check is built on the first invocation from the environment the stack sets, and reused while
the execution environment lives. The event carries nothing the check needs: it runs at its own clock.
"""

from __future__ import annotations

from lambdas.common.entry import Entry
from lambdas.silence.service import Settings, SilenceCheck

_entry: Entry[SilenceCheck] = Entry(lambda: SilenceCheck(Settings.from_env()))
handler = _entry.handler
install = _entry.install
