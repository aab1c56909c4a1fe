"""Fixtures of the build tests: a binary built once per test session and target, and servers run from it.

``built`` builds ``dist/k3py-linux-<arch>`` through the same pipeline as ``invoke build`` (warm
caches make that quick), once per session even across pytest-xdist workers: the first worker
builds under a lock, the others read its report. ``K3PY_TEST_REUSE_BINARY=1`` skips the build
when ``dist/`` already holds a binary and its report (for iterating on the tests themselves).

Running a binary (natively or in a chroot of its target's Debian) is :mod:`build.smoke`'s, which
``bench/build.py`` shares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

from build.paths import DIST
from build.pipeline import BuildOptions, build_target
from build.report import BuildReport
from build.runner import QuietSink
from build.targets import Target, load_target
from k3py.util.locks import exclusive

Build = Callable[[str], BuildReport]


class Recorder:
    """A log sink that keeps what it is sent (``+ cmd`` lines and output lines)."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.lines: list[str] = []

    def command(self, line: str) -> None:
        self.commands.append(line)

    def output(self, line: str) -> None:
        self.lines.append(line)


class Silent:
    def stage_started(self, target: Target, stage: str) -> None:
        pass

    def stage_finished(self, target: Target, stage: str, seconds: float, note: str) -> None:
        pass


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """``built("amd64")`` → the report of this session's build of that target (built on first use)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    # Read now: the function-scoped autouse fixture hides K3PY_* variables from the tests.
    reuse = os.environ.get("K3PY_TEST_REUSE_BINARY") == "1"

    def get(name: str) -> BuildReport:
        marker = shared / f"built-{name}.json"
        with exclusive(shared / f"build-{name}.lock"):
            if not marker.exists():
                report = _build_or_reuse(load_target(name), reuse=reuse)
                marker.write_text(json.dumps(report.__dict__), encoding="utf-8")
        return BuildReport(**json.loads(marker.read_text(encoding="utf-8")))

    return get


def _build_or_reuse(target: Target, *, reuse: bool) -> BuildReport:
    report = DIST / f"{target.artifact_name}.report.json"
    if reuse and report.is_file():
        return BuildReport(**json.loads(report.read_text(encoding="utf-8")))
    return build_target(target, options=BuildOptions(), listener=Silent(), sink=QuietSink())
