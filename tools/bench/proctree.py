"""Runs a command and measures its wall time and the peak memory of every process in its tree.

Each process's own peak resident set (``VmHWM``, kept by the kernel) is read from ``/proc`` every
``interval`` seconds while the command runs, for the command and all of its descendants (the jsii
runtime starts node processes of its own). The last value read before a process exits is its peak;
the kernel keeps the high-water mark, so a short spike between two samples is not lost, only growth
in a process's final ``interval`` can be. Linux only.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessPeak:
    pid: int
    name: str
    peak_mib: float


@dataclass(frozen=True)
class Run:
    """One measured run: wall seconds, exit status and each process's own peak."""

    wall_s: float
    returncode: int
    processes: tuple[ProcessPeak, ...] = field(default_factory=tuple)

    def peak_of(self, name: str) -> float:
        """The largest single-process peak among processes called ``name`` (e.g. python, node)."""
        return max((p.peak_mib for p in self.processes if p.name == name), default=0.0)

    @property
    def total_mib(self) -> float:
        """The sum of every process's own peak: an upper bound of the tree's peak at any instant."""
        return sum(p.peak_mib for p in self.processes)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    task = PROC / str(pid) / "task"
    try:
        threads = os.listdir(task)
    except OSError:
        return found
    for tid in threads:
        try:
            found.extend(int(c) for c in (task / tid / "children").read_text().split())
        except OSError:
            continue
    return found


def _status(pid: int) -> tuple[str, float] | None:
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    name, hwm = "", 0.0
    for line in text.splitlines():
        if line.startswith("Name:"):
            name = line.split(None, 1)[1].strip()
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return name, hwm


def _family(name: str) -> str:
    """Group interpreter names: ``python3.11`` and ``python`` are both python."""
    return "python" if name.startswith("python") else name


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    interval: float = 0.01,
    timeout: float = 600.0,
) -> Run:
    """Run ``argv`` to completion (output discarded unless it fails) and measure it."""
    peaks: dict[int, tuple[str, float]] = {}
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pending, seen = [proc.pid], set()
            while pending:
                pid = pending.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                status = _status(pid)
                if status is not None and status[1] > 0:
                    name, hwm = status
                    previous = peaks.get(pid)
                    peaks[pid] = (name, max(hwm, previous[1] if previous else 0.0))
                pending.extend(_children(pid))
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, stderr = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        sampler.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{stderr.decode(errors='replace')[-4000:]}")
    return Run(
        wall_s=wall,
        returncode=proc.returncode,
        processes=tuple(ProcessPeak(pid, _family(name), round(hwm, 1)) for pid, (name, hwm) in sorted(peaks.items())),
    )
