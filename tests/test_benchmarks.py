"""The benchmark command runs end to end: a tiny run of every benchmark prints its line.

Only that it runs and reports is checked here; its figures belong to benchmarks/ (timings on a
loaded machine would make a test flaky).
"""

import re
import subprocess
import sys

from conftest import ROOT

LINE = re.compile(r"ratio +[\d.]+ +target .* (PASS|FAIL)$")


def test_every_benchmark_prints_its_line(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            *("--scale", "0.002", "--big-megabytes", "2", "--work", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if LINE.search(line)]
    names = [line.split("  ")[0] for line in lines]
    expected = ["ingest poll", "ingest files", "idle poll", "status", "stats", "dashboard"]
    expected += ["report weekly", "tick", "console /", "big attachment", "replies", "consolidate"]
    for name in expected:
        assert any(n.startswith(name) for n in names), (name, done.stdout)
    assert done.returncode in (0, 1)
