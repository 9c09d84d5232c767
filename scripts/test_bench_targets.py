"""Tests of bench-targets.py on the outputs of a bench.sh run (the lines of run AI, with a
door-alone step added): python3 -m unittest discover -s scripts -p 'test_*.py'"""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).with_name("bench-targets.py")

RUN = {
    "hello.txt": """usher bench: scenario Baseline, 100000 requests, closed loop over 64 connections, against http://127.0.0.1:42723
accepted   100000 of 100000 in 1.15 s: 87199/s; accept latency p50 0.7 ms, p99 1.7 ms, max 8.9 ms
""",
    "holds.txt": """usher bench: scenario Holds, 100000 requests, closed loop over 64 connections, against http://127.0.0.1:59619
accepted   100000 of 100000 in 12.79 s: 7818/s; accept latency p50 7.6 ms, p99 18.0 ms, max 26.8 ms
terminal   100000 in 12.80 s from the first admission: 7815/s; accept→terminal p50 11.0 ms, p99 23.0 ms, max 33.0 ms
drain      the last command ended 0.01 s after the load's 12.79 s
""",
    "contention.txt": """accepted   10000 of 10000 in 1.57 s: 6365/s; accept latency p50 9.4 ms, p99 21.0 ms, max 25.9 ms
terminal   10000 in 1.58 s from the first admission: 6345/s; accept→terminal p50 13.0 ms, p99 24.0 ms, max 29.0 ms
drain      the last command ended 0.00 s after the load's 1.57 s
outcome    booking.hold.place failed seats_unavailable: 9900
outcome    booking.hold.place succeeded: 100
""",
    "sustained.txt": """accepted   600000 of 600000 in 89.76 s: 6685/s; accept latency p50 14966.8 ms, p99 29409.3 ms, max 29769.7 ms
terminal   600000 in 89.78 s from the first admission: 6683/s; accept→terminal p50 64.0 ms, p99 115.0 ms, max 161.0 ms
drain      the last command ended 0.02 s after the load's 89.76 s
""",
    "rss.txt": "== 3. peak RSS of usher dev: 126.4 MiB\n",
    "wrk.txt": "== wrk ratio: 5829.36 holds/s against 91358.64/s: 0.064x\n",
    "door.txt": """accepted   100000 of 100000 in 5.52 s: 18100/s; accept latency p50 3.4 ms, p99 7.2 ms, max 10.0 ms
terminal   100000 in 13.20 s from the first admission: 7576/s; accept→terminal p50 6578.2 ms, p99 7655.4 ms, max 7692.3 ms
drain      the last command ended 8.00 s after the load's 5.52 s
""",
}


def targets(files, rate="10000", seconds="60", skipped="0"):
    with tempfile.TemporaryDirectory() as directory:
        for name, text in files.items():
            Path(directory, name).write_text(text)
        done = subprocess.run(
            [sys.executable, str(SCRIPT), directory, rate, seconds, skipped],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.splitlines()


def line(lines, start):
    """The one line that starts with START."""
    found = [text for text in lines if text.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


class BenchTargets(unittest.TestCase):
    def test_each_target_of_a_run_is_read_and_judged(self):
        self.assertEqual(
            targets(RUN),
            [
                "admissions: 7818 holds/s against the hello-world's 87199/s: 0.090x (target 0.2x): NOT met",
                "admissions' p99 at 64 connections: 18.0 ms (target 10 ms): NOT met",
                "admissions by wrk: 5829.36 holds/s against 91358.64/s: 0.064x (target 0.2x): NOT met",
                "(the door alone, no worker running: 18100 holds/s, 0.208x, p99 7.2 ms)",
                "(the workers alone, started after that load: 100000 holds to a terminal status in 8.00 s, "
                "at least 12500/s)",
                "end to end: 10000/s offered for 60 s, the door took 6685/s, 6683/s reached a terminal status, "
                "the last 0.02 s after the load (target 10000/s for 60 s, no backlog): NOT met",
                "contention: 100 of 10000 won the 100 seats, accept→terminal p99 24.0 ms "
                "(target exactly 100, p99 250 ms): met",
                "peak RSS: 126.4 MiB, 132.5 MB (target 150 MB): met",
            ],
        )

    def test_a_run_that_meets_them_says_so(self):
        fast = dict(RUN)
        fast["holds.txt"] = RUN["holds.txt"].replace("7818/s; accept latency p50 7.6 ms, p99 18.0 ms",
                                                     "18000/s; accept latency p50 3.0 ms, p99 9.5 ms")
        fast["sustained.txt"] = RUN["sustained.txt"].replace("6685/s", "9999/s").replace("6683/s", "9998/s")
        lines = targets(fast)
        self.assertIn("0.206x (target 0.2x): met", line(lines, "admissions:"))
        self.assertTrue(line(lines, "admissions' p99").endswith("(target 10 ms): met"))
        self.assertTrue(line(lines, "end to end").endswith("no backlog): met"))

    def test_backlog_or_a_lower_rate_is_not_the_end_to_end_target(self):
        behind = dict(RUN)
        behind["sustained.txt"] = (
            RUN["sustained.txt"]
            .replace("6685/s", "10000/s")
            .replace("6683/s", "9990/s")
            .replace("ended 0.02 s", "ended 7.04 s")
        )
        self.assertTrue(line(targets(behind), "end to end").endswith("NOT met"))
        kept_up = dict(behind)
        kept_up["sustained.txt"] = behind["sustained.txt"].replace("ended 7.04 s", "ended 0.01 s")
        self.assertTrue(line(targets(kept_up), "end to end").endswith("no backlog): met"))
        slower = line(targets(kept_up, rate="5000"), "end to end")
        self.assertTrue(slower.endswith("NOT met"), "5,000/s is not the 10,000/s asked")
        shorter = line(targets(kept_up, seconds="30"), "end to end")
        self.assertTrue(shorter.endswith("NOT met"), "30 s is not the 60 s asked")

    def test_more_or_fewer_than_100_winners_fail_contention(self):
        extra = dict(RUN)
        extra["contention.txt"] = RUN["contention.txt"].replace("succeeded: 100", "succeeded: 101")
        self.assertTrue(line(targets(extra), "contention").endswith("NOT met"))

    def test_missing_steps_are_named_not_guessed(self):
        lines = targets({"rss.txt": RUN["rss.txt"]}, skipped="1")
        self.assertEqual(
            lines,
            [
                "admissions: no hello-world or holds result in this run",
                "end to end: not run (BENCH_SKIP_SUSTAINED=1)",
                "contention: no result in this run",
                "peak RSS: 126.4 MiB, 132.5 MB (target 150 MB): met",
            ],
        )


if __name__ == "__main__":
    unittest.main()
