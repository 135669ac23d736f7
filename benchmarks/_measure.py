"""Timing and statistics helpers for the benchmarks: spawn, time, summarise.

Processes are started with ``os.posix_spawn`` and reaped with ``os.waitpid`` so the harness adds
as little as possible around the interpreter being measured (``subprocess`` adds about a
millisecond of its own, which would dilute every ratio towards 1).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable

DEVNULL = os.devnull


@dataclass(frozen=True)
class Command:
    """One way of starting an interpreter: a label, its argv and its environment."""

    label: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    stderr_path: str | None = None
    """Where stderr goes (``None``: /dev/null)."""


@dataclass
class Samples:
    """Wall-clock samples of one command, in seconds, in the order they were taken."""

    label: str
    values: list[float] = field(default_factory=list)


def run_once(command: Command) -> tuple[float, int]:
    """Start ``command``, wait for it; return (wall seconds, exit status)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, DEVNULL, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, DEVNULL, os.O_WRONLY, 0),
        (
            os.POSIX_SPAWN_OPEN,
            2,
            command.stderr_path or DEVNULL,
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
            0o644,
        ),
    ]
    start = time.perf_counter()
    pid = os.posix_spawn(command.argv[0], list(command.argv), dict(command.env), file_actions=actions)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, os.waitstatus_to_exitcode(status)


def interleaved(
    commands: Sequence[Command],
    rounds: int,
    *,
    warmup: int = 3,
    expect_status: Mapping[str, int] | None = None,
    after_each: Callable[[Command, int], None] | None = None,
    seed: int = 20240601,
) -> dict[str, Samples]:
    """Run every command once per round, in a new random order each round.

    Interleaving spreads slow drift (another process's test run, CPU frequency) evenly over
    the commands, so ratios of the same round cancel it. ``expect_status`` maps labels to the
    exit status each run must have; ``after_each(command, round)`` can check the output.
    """
    rng = random.Random(seed)
    results = {command.label: Samples(command.label) for command in commands}
    order = list(commands)
    for number in range(-warmup, rounds):
        rng.shuffle(order)
        for command in order:
            elapsed, status = run_once(command)
            wanted = (expect_status or {}).get(command.label, 0)
            if status != wanted:
                raise RuntimeError(f"{command.label}: exit status {status}, expected {wanted}: {command.argv}")
            if number < 0:
                continue
            if after_each is not None:
                after_each(command, number)
            results[command.label].values.append(elapsed)
    return results


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """Median, quartiles and the 10th/90th percentiles, multiplied by ``scale`` (s -> ms)."""
    return {
        "n": len(values),
        "median": statistics.median(values) * scale,
        "p25": quantile(values, 0.25) * scale,
        "p75": quantile(values, 0.75) * scale,
        "p10": quantile(values, 0.10) * scale,
        "p90": quantile(values, 0.90) * scale,
    }


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, float]:
    """Median and spread of the per-round ratios ``numerator[i] / denominator[i]``."""
    ratios = [a / b for a, b in zip(numerator, denominator)]
    return {
        "median": statistics.median(ratios),
        "p25": quantile(ratios, 0.25),
        "p75": quantile(ratios, 0.75),
        "p10": quantile(ratios, 0.10),
        "p90": quantile(ratios, 0.90),
        "ratio_of_medians": statistics.median(numerator) / statistics.median(denominator),
    }


def paired_differences(
    minuend: Sequence[float], subtrahend: Sequence[float], scale: float = 1000.0
) -> dict[str, float]:
    """Median and spread of the per-round differences, multiplied by ``scale``."""
    diffs = [a - b for a, b in zip(minuend, subtrahend)]
    return {
        "median": statistics.median(diffs) * scale,
        "p25": quantile(diffs, 0.25) * scale,
        "p75": quantile(diffs, 0.75) * scale,
        "p10": quantile(diffs, 0.10) * scale,
        "p90": quantile(diffs, 0.90) * scale,
    }


def repeat_timing(function: Callable[[], object], *, min_time: float = 0.3, min_runs: int = 20) -> list[float]:
    """Seconds per call of ``function``, measured one call at a time until both minimums are met."""
    values: list[float] = []
    started = time.perf_counter()
    while len(values) < min_runs or time.perf_counter() - started < min_time:
        begin = time.perf_counter()
        function()
        values.append(time.perf_counter() - begin)
    return values
