"""``bench/storage.py --quick`` runs to the end and prints every figure the benchmark promises.

The figures themselves depend on the disk; this test only checks that each one is printed,
is a positive number, and that the run leaves nothing behind in the directory it was given.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "storage.py"

NUMBER = r"([\d,]+(?:\.\d+)?)"
FIGURES = {
    "fsync reference": (
        rf"^disk: 4 KiB write \+ fdatasync, preallocated file \(/s\)\s+{NUMBER}\s+physical reference$"
    ),
    "append reference": rf"^disk: 4 KiB append \+ fsync, growing file \(/s\)\s+{NUMBER}\s+naive log append$",
    "1 writer": (
        rf"^durable writes/s, 1 writer \(512 B values\)\s+{NUMBER}\s+"
        r"\d+% of the physical reference, \d+% of append \+ fsync$"
    ),
    "64 writers": rf"^durable writes/s, 64 concurrent writers\s+{NUMBER}\s*$",
    "reads": rf"^reads/s \(get by key, 1 reader\)\s+{NUMBER}\s*$",
    "list 1,000": rf"^list 1,000 keys \(ms\)\s+{NUMBER}\s*$",
    "list big": rf"^list (?!1,000 )[\d,]+ keys \(ms\)\s+{NUMBER}\s*$",
    "watch p99": rf"^watch latency p99, [\d,]+ watchers at \d+ writes/s \(ms\)\s+{NUMBER}\s+p50 ",
    "churn first pass": rf"^DB\+WAL after first pass over [\d,]+ keys \(KiB\)\s+{NUMBER}\s*$",
    "churn": rf"^DB\+WAL after [\d,]+ updates, compaction on \(KiB\)\s+{NUMBER}\s+[\d.]+x the first pass$",
}


def figure(output: str, name: str) -> float:
    found = re.search(FIGURES[name], output, re.MULTILINE)
    assert found is not None, f"the benchmark did not print {name!r}:\n{output}"
    return float(found.group(1).replace(",", ""))


def test_quick_benchmark_prints_every_figure(tmp_path: Path) -> None:
    # The tree under test, whatever the venv has installed.
    path = os.pathsep.join(p for p in (str(REPO / "distro"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = done.stdout
    values = {name: figure(out, name) for name in FIGURES}
    rates = ("fsync reference", "append reference", "1 writer", "64 writers", "reads")
    for name in (*rates, "churn first pass", "churn"):
        assert values[name] > 0, (name, out)
    assert values["list big"] >= 0 and values["list 1,000"] >= 0
    sizes = [int(n.replace(",", "")) for n in re.findall(r"^list ([\d,]+) keys", out, re.MULTILINE)]
    assert len(sizes) == 2 and sizes[0] == 1000 and sizes[1] > 1000, sizes
    watchers = re.search(r"watch latency p99, ([\d,]+) watchers", out)
    assert watchers is not None and int(watchers.group(1).replace(",", "")) > 1
    assert list(tmp_path.iterdir()) == [], "the benchmark left files behind"


@pytest.mark.parametrize("line", ["list 1,000 keys (ms)   3.8", "reads/s (get by key, 1 reader)  12"])
def test_figure_patterns_match_only_their_own_line(line: str) -> None:
    """The patterns are anchored: a figure cannot be satisfied by another figure's line."""
    matched = [name for name, pattern in FIGURES.items() if re.search(pattern, line, re.MULTILINE)]
    assert len(matched) == 1, matched
