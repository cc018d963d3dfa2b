"""An interleaving explorer for handler invocations on one moto backend (a test utility).

AWS runs one Lambda invocation per shard at once, so the handlers' AWS calls interleave in any order.
Each invocation here runs on its own thread with its own boto3 clients; botocore's ``before-call`` hook
pauses it before every DynamoDB call (the only service whose state the invocations share: an SNS
publish or a metric commutes with everything the others do), and a scheduler lets exactly one
invocation run at a time, from one call boundary to the next (each starts by running up to its first
call). Each run follows a *schedule*: which invocation executes its next call at each decision point.
:meth:`Explorer.explore` enumerates the schedules depth-first, replaying each from a fresh state, so
every interleaving of the calls is run, once per class of equivalent orders (sleep sets: two steps on
different items, or two reads, commute).

A *crash* (:class:`CrashAt`) kills one invocation before or after any of its AWS calls, of any service
(the runtime's timeout or an out-of-memory kill), by raising :class:`Killed` from the hook: a
``BaseException``, so the handler's own error handling cannot swallow it, as it cannot a real kill.

What the invocations do, how Lambda retries them and what must hold afterwards is the scenario's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PAUSE_SERVICES = frozenset({"dynamodb"})
STEP_TIMEOUT_SECONDS = 60


class Killed(BaseException):
    """The invocation's execution environment was killed at this point."""


class Stuck(AssertionError):
    """An invocation neither reached its next call nor finished in time."""


@dataclass(frozen=True)
class CrashAt:
    invocation: int
    call: int
    """Index of the AWS call in that invocation (every service counts), from 0."""
    after: bool
    """After the call's response came back (the call took effect), or before it was sent."""

    def __str__(self) -> str:
        return f"invocation {self.invocation} {'after' if self.after else 'before'} call {self.call}"


@dataclass
class Call:
    invocation: int
    service: str
    operation: str
    params: dict[str, Any]
    response: Any = None
    ok: bool = False


@dataclass
class Outcome:
    """One run: what each invocation returned (``None`` if killed), every call made, the schedule."""

    results: list[Any]
    killed: list[bool]
    calls: list[Call]
    schedule: list[int]
    crash: CrashAt | None = None

    def ok_calls(self, operation: str, invocation: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.ok and c.operation == operation and invocation in (None, c.invocation)]


class _Run:
    def __init__(
        self, bodies: Sequence[Callable[[], Any]], crash: CrashAt | None, unshared: frozenset[str] = frozenset()
    ) -> None:
        n = len(bodies)
        self.bodies = bodies
        self.crash = crash
        self.unshared = unshared
        self.turn = [threading.Semaphore(0) for _ in range(n)]
        self.back = threading.Semaphore(0)
        self.done = [False] * n
        self.killed = [False] * n
        self.results: list[Any] = [None] * n
        self.errors: list[BaseException | None] = [None] * n
        self.counts = [0] * n
        self.calls: list[Call] = []
        self.current: list[Call | None] = [None] * n
        self.threads = [threading.Thread(target=self._body, args=(i,), daemon=True) for i in range(n)]
        for thread in self.threads:
            thread.start()

    def _body(self, i: int) -> None:
        self.turn[i].acquire()
        try:
            self.results[i] = self.bodies[i]()
        except Killed:
            self.killed[i] = True
        except BaseException as error:
            self.errors[i] = error
        finally:
            self.done[i] = True
            self.back.release()

    def before(self, i: int, service: str, operation: str, params: dict[str, Any]) -> None:
        index = self.counts[i]
        self.counts[i] += 1
        call = Call(i, service, operation, params)
        self.current[i] = call
        self.calls.append(call)
        if self.crash == CrashAt(i, index, after=False):
            raise Killed(str(self.crash))
        if service in PAUSE_SERVICES and not _local(operation, params, self.unshared):
            self.back.release()
            self.turn[i].acquire()

    def after(self, i: int, parsed: Any, http_status: int) -> None:
        call = self.current[i]
        if call is not None:
            call.response = parsed
            call.ok = 200 <= http_status < 300
        if self.crash == CrashAt(i, self.counts[i] - 1, after=True):
            raise Killed(str(self.crash))

    def step(self, i: int) -> None:
        self.turn[i].release()
        if not self.back.acquire(timeout=STEP_TIMEOUT_SECONDS):
            raise Stuck(f"invocation {i} did not reach a call boundary in {STEP_TIMEOUT_SECONDS} s")


class Explorer:
    """Runs invocations on slots of clients, under schedules and crashes.

    ``slots[i]`` is the ``dict`` of boto3 clients invocation ``i`` uses (all on one moto backend); hooks
    are registered on them once.
    """

    def __init__(
        self,
        slots: Sequence[dict[str, Any]],
        key_names: dict[str, Sequence[str]] | None = None,
        unshared: frozenset[str] = frozenset(),
    ) -> None:
        self.slots = slots
        self.key_names = dict(key_names or {})
        """Each table's key attributes, so that an item a PutItem writes is known by its key."""
        self.unshared = unshared
        """Tables no invocation of the scenario writes: a read of one commutes with every step of every
        invocation, so it is run as part of the step before it, not as a scheduling point of its own
        (a scenario that writes such a table while others read it must not name it)."""
        self._run: _Run | None = None
        self._params: dict[int, dict[str, Any]] = {}
        for index, clients in enumerate(slots):
            for service, client in clients.items():
                client.meta.events.register_first(
                    "before-parameter-build.*.*",
                    lambda params, index=index, **_: self._params.__setitem__(index, dict(params)),
                )
                client.meta.events.register_first(
                    "before-call.*.*",
                    lambda model, params, index=index, service=service, **_: self._before(
                        index, service, model, params
                    ),
                )
                client.meta.events.register_first(
                    "after-call.*.*",
                    lambda http_response, parsed, index=index, **_: self._after(index, http_response, parsed),
                )

    def _before(self, index: int, service: str, model: Any, params: dict[str, Any]) -> None:
        if self._run is not None and index < len(self._run.bodies):
            self._run.before(index, service, model.name, self._params.pop(index, {}))

    def _after(self, index: int, http_response: Any, parsed: Any) -> None:
        if self._run is not None and index < len(self._run.bodies):
            self._run.after(index, parsed, getattr(http_response, "status_code", 200))

    def run(
        self,
        bodies: Sequence[Callable[[], Any]],
        schedule: Sequence[int] = (),
        crash: CrashAt | None = None,
        sleep: frozenset[int] = frozenset(),
    ) -> tuple[Outcome, list[Decision]]:
        """Run ``bodies`` concurrently following ``schedule``, then, at each later decision, the one that
        went last if it can go on (no preemption), else the lowest invocation that is neither finished
        nor asleep (``sleep``: the sleep set at the end of the schedule, see :meth:`explore`). Returns
        the outcome and every decision taken after the schedule."""
        run = _Run(bodies, crash, self.unshared)
        self._run = run
        taken: list[int] = []
        decisions: list[Decision] = []
        asleep = set(sleep)
        try:
            for i in range(len(bodies)):  # up to each one's first call: local work, nothing shared yet
                run.step(i)
            while not all(run.done):
                enabled = [i for i, done in enumerate(run.done) if not done]
                if len(taken) < len(schedule):
                    pick = schedule[len(taken)]
                    assert pick in enabled, (schedule, taken, enabled)
                else:
                    pending = {i: run.current[i] for i in enabled}
                    asleep &= set(enabled)
                    awake = [i for i in enabled if i not in asleep]
                    if taken and taken[-1] in awake:  # going on first keeps preemptions few
                        awake.remove(taken[-1])
                        awake.insert(0, taken[-1])
                    redundant = not awake or (decisions and decisions[-1].redundant)
                    pick = (awake or enabled)[0]
                    decisions.append(Decision(len(taken), awake, frozenset(asleep), pending, bool(redundant)))
                    asleep = {u for u in asleep if self.independent(pending[u], pending[pick])}
                taken.append(pick)
                run.step(pick)
        finally:
            self._run = None
        for error in run.errors:
            if error is not None:
                raise error
        return Outcome(run.results, run.killed, run.calls, taken, crash), decisions

    def explore(
        self,
        reset: Callable[[], Sequence[Callable[[], Any]]],
        check: Callable[[Outcome], list[str]],
        crash: CrashAt | None = None,
        limit: int = 20_000,
        preemptions: int | None = None,
    ) -> Exploration:
        """Every interleaving of the bodies ``reset()`` makes (on a fresh state each time), each checked.

        Depth-first over schedules, with sleep sets (Godefroid's partial-order reduction): two steps
        whose DynamoDB calls are independent (both reads, or different items) give the same state in
        either order, so only one order of them is run. ``check`` returns one run's violations.
        ``preemptions`` bounds how often a schedule may switch away from an invocation that could have
        gone on (CHESS's context bounding), for scenarios too large to run every order of."""
        found = Exploration()
        todo: list[tuple[list[int], frozenset[int]]] = [([], frozenset())]
        while todo:
            prefix, sleep = todo.pop()
            outcome, decisions = self.run(reset(), prefix, crash, sleep)
            if decisions and decisions[-1].redundant:
                found.pruned += 1
            else:
                found.runs += 1
                violations = check(outcome)
                if violations:
                    found.failures.append((outcome.schedule, crash, violations))
            for decision in decisions:
                if decision.redundant:
                    break
                done = [decision.awake[0]]
                for alternative in decision.awake[1:]:
                    branch = [*outcome.schedule[: decision.depth], alternative]
                    if preemptions is not None and _preemptions(branch, decision.depth, decision.pending) > preemptions:
                        continue
                    later = {
                        u
                        for u in decision.asleep | set(done)
                        if self.independent(decision.pending[u], decision.pending[alternative])
                    }
                    todo.append((branch, frozenset(later)))
                    done.append(alternative)
            if found.runs + found.pruned >= limit:  # pragma: no cover - a scenario grown too large
                raise AssertionError(f"more than {limit} interleavings: the scenario is too large to explore")
        return found

    def independent(self, a: Call | None, b: Call | None) -> bool:
        """Whether two pending calls commute: both read, or they touch no common item."""
        items_a, read_a = touched(a, self.key_names)
        items_b, read_b = touched(b, self.key_names)
        if read_a and read_b:
            return True
        for table, key in items_a:
            for other_table, other_key in items_b:
                same_table = table == other_table or "*" in (table, other_table)
                if same_table and (key == other_key or "*" in (key, other_key)):
                    return False
        return True


def _preemptions(schedule: Sequence[int], last: int, enabled_at_last: dict[int, Any]) -> int:
    """Switches away from an invocation that could have gone on, along ``schedule``. Before position
    ``last`` a switch counts when the previous one appears again later (it had not finished); at
    ``last`` the enabled set is known."""
    count = 0
    for position in range(1, len(schedule)):
        previous, current = schedule[position - 1], schedule[position]
        if previous == current:
            continue
        if position == last:
            count += previous in enabled_at_last
        else:
            count += previous in schedule[position:]
    return count


@dataclass(frozen=True)
class Decision:
    depth: int
    awake: list[int]
    """Invocations that could go here and are not asleep; the first one went."""
    asleep: frozenset[int]
    pending: dict[int, Call | None]
    """Each enabled invocation's next DynamoDB call."""
    redundant: bool
    """Every enabled invocation was asleep here (or earlier): this run repeats one already run."""


READS = frozenset({"BatchGetItem", "GetItem", "Query", "Scan", "DescribeTable"})


def touched(call: Call | None, key_names: dict[str, Sequence[str]]) -> tuple[set[tuple[str, str]], bool]:
    """The items a DynamoDB call touches, as (table, key) pairs, and whether it only reads them. A call
    whose items cannot be named (a Query, a Scan) touches ``(table, "*")``, every item of the table."""
    if call is None:
        return set(), True
    p = call.params
    items: set[tuple[str, str]] = set()
    if call.operation in ("GetItem", "DeleteItem", "UpdateItem"):
        items.add((p["TableName"], _key(p["Key"])))
    elif call.operation == "PutItem":
        names = key_names.get(p["TableName"])  # the key is inside the item: without the schema, every item
        items.add((p["TableName"], _key({n: p["Item"][n] for n in names}) if names else "*"))
    elif call.operation == "BatchGetItem":
        items |= {(t, _key(k)) for t, r in p["RequestItems"].items() for k in r["Keys"]}
    elif call.operation == "BatchWriteItem":  # puts (named by their key when the schema is known) and deletes
        for table, requests in p["RequestItems"].items():
            names = key_names.get(table)
            for r in requests:
                if "PutRequest" in r:
                    item = r["PutRequest"]["Item"]
                    items.add((table, _key({n: item[n] for n in names}) if names else "*"))
                else:
                    items.add((table, _key(r["DeleteRequest"]["Key"])))
    else:
        items.add((p.get("TableName", "*"), "*"))
    return items, call.operation in READS


def _local(operation: str, params: dict[str, Any], unshared: frozenset[str]) -> bool:
    """Whether a call only reads tables in ``unshared`` (no scheduling point: see ``Explorer.unshared``)."""
    if operation not in READS or not unshared:
        return False
    tables = set(params.get("RequestItems", {})) if operation == "BatchGetItem" else {params.get("TableName", "*")}
    return tables <= unshared


def _key(key: dict[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in key.items()))


@dataclass
class Exploration:
    runs: int = 0
    """Interleavings run and checked (one per class of equivalent orders)."""
    pruned: int = 0
    """Runs cut short as equivalent to one already checked."""
    failures: list[tuple[list[int], CrashAt | None, list[str]]] = field(default_factory=list)

    def add(self, other: Exploration) -> None:
        self.runs += other.runs
        self.pruned += other.pruned
        self.failures.extend(other.failures)

    def describe(self, most: int = 5) -> str:
        lines = [f"{self.runs} runs ({self.pruned} pruned), {len(self.failures)} with violations"]
        for schedule, crash, violations in self.failures[:most]:
            lines.append(f"  schedule {schedule} crash {crash}: {'; '.join(violations)}")
        return "\n".join(lines)
