#!/usr/bin/env python3
"""Reads the throughput issue's targets off one scripts/bench.sh run and says whether each
is met:  bench-targets.py DIR RATE SECONDS SKIPPED_SUSTAINED

DIR holds the run's outputs as scripts/bench.sh saves them: hello.txt, holds.txt,
contention.txt, sustained.txt, rss.txt, wrk.txt and door.txt. RATE and SECONDS are the sustained
step's offered rate and length; SKIPPED_SUSTAINED is 1 when that step was left out. Prints one line a target,
and the door alone for comparison. It only reports: the run's own checks already failed it
if an invariant broke.
"""

import re
import sys
from pathlib import Path

RATIO = 0.2  # admissions against the same run's hello-world
P99_MS = 10.0  # admissions' p99 at 64 connections
SUSTAINED = 10_000  # holds/s to a terminal status, for SUSTAINED_S
SUSTAINED_S = 60
KEPT_UP_S = 1.0  # the last hold ends at most this long after the load
CONTENTION_P99_MS = 250.0
RSS_MB = 150.0

ACCEPTED = re.compile(r"^accepted\s+\d+ of \d+ in [\d.]+ s: (\d+)/s; accept latency p50 ([\d.]+) ms, p99 ([\d.]+) ms")
TERMINAL = re.compile(r"^terminal\s+\d+ in [\d.]+ s from the first admission: (\d+)/s; accept→terminal p50 [\d.]+ ms, p99 ([\d.]+) ms")
DRAIN = re.compile(r"^drain\s+the last command ended ([\d.]+) s after")
TERMINAL_COUNT = re.compile(r"^terminal\s+(\d+) in")
WON = re.compile(r"^outcome\s+booking\.hold\.place succeeded: (\d+)")
RSS = re.compile(r"peak RSS of usher dev: ([\d.]+) MiB")
WRK = re.compile(r"^== wrk ratio: ([\d.]+) holds/s against ([\d.]+)/s")


def first(directory, name, pattern):
    """The groups of the first line of DIR/NAME that PATTERN matches, or None."""
    path = directory / name
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        found = pattern.search(line)
        if found:
            return found.groups()
    return None


def verdict(ok):
    return "met" if ok else "NOT met"


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: bench-targets.py DIR RATE SECONDS SKIPPED_SUSTAINED")
    directory, rate, seconds, skipped = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    lines = []
    hello = first(directory, "hello.txt", ACCEPTED)
    holds = first(directory, "holds.txt", ACCEPTED)
    if hello and holds:
        ratio = int(holds[0]) / int(hello[0])
        lines.append(
            f"admissions: {holds[0]} holds/s against the hello-world's {hello[0]}/s: {ratio:.3f}x "
            f"(target {RATIO}x): {verdict(ratio >= RATIO)}"
        )
        p99 = float(holds[2])
        lines.append(f"admissions' p99 at 64 connections: {p99} ms (target {P99_MS:g} ms): {verdict(p99 <= P99_MS)}")
    else:
        lines.append("admissions: no hello-world or holds result in this run")
    wrk = first(directory, "wrk.txt", WRK)
    if wrk:
        ratio = float(wrk[0]) / float(wrk[1])
        lines.append(
            f"admissions by wrk: {wrk[0]} holds/s against {wrk[1]}/s: {ratio:.3f}x (target {RATIO}x): "
            f"{verdict(ratio >= RATIO)}"
        )
    door = first(directory, "door.txt", ACCEPTED)
    if door and hello:
        lines.append(
            f"(the door alone, no worker running: {door[0]} holds/s, {int(door[0]) / int(hello[0]):.3f}x, "
            f"p99 {door[2]} ms)"
        )
    # The workers start once the door's load has ended, so the drain is their time alone
    # (their start-up included: a lower bound on their rate).
    drained = first(directory, "door.txt", TERMINAL_COUNT)
    door_drain = first(directory, "door.txt", DRAIN)
    if drained and door_drain and float(door_drain[0]) > 0:
        lines.append(
            f"(the workers alone, started after that load: {drained[0]} holds to a terminal status in "
            f"{door_drain[0]} s, at least {int(drained[0]) / float(door_drain[0]):.0f}/s)"
        )
    if skipped:
        lines.append("end to end: not run (BENCH_SKIP_SUSTAINED=1)")
    else:
        taken = first(directory, "sustained.txt", ACCEPTED)
        ended = first(directory, "sustained.txt", TERMINAL)
        drain = first(directory, "sustained.txt", DRAIN)
        if taken and ended and drain:
            kept_up = float(drain[0]) <= KEPT_UP_S
            at_rate = (
                rate >= SUSTAINED
                and seconds >= SUSTAINED_S
                and int(taken[0]) >= 0.99 * rate
                and int(ended[0]) >= 0.99 * rate
            )
            lines.append(
                f"end to end: {rate}/s offered for {seconds} s, the door took {taken[0]}/s, {ended[0]}/s reached a "
                f"terminal status, the last {drain[0]} s after the load (target {SUSTAINED}/s for {SUSTAINED_S} s, no backlog): "
                f"{verdict(at_rate and kept_up)}"
            )
        else:
            lines.append("end to end: no sustained result in this run")
    won = first(directory, "contention.txt", WON)
    ended = first(directory, "contention.txt", TERMINAL)
    if won and ended:
        ok = int(won[0]) == 100 and float(ended[1]) <= CONTENTION_P99_MS
        lines.append(
            f"contention: {won[0]} of 10000 won the 100 seats, accept→terminal p99 {ended[1]} ms "
            f"(target exactly 100, p99 {CONTENTION_P99_MS:g} ms): {verdict(ok)}"
        )
    else:
        lines.append("contention: no result in this run")
    rss = first(directory, "rss.txt", RSS)
    if rss:
        megabytes = float(rss[0]) * 1024 * 1024 / 1e6
        lines.append(
            f"peak RSS: {rss[0]} MiB, {megabytes:.1f} MB (target {RSS_MB:g} MB): {verdict(megabytes <= RSS_MB)}"
        )
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
