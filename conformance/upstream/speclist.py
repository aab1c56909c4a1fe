"""The ``[Conformance]`` specs of a built suite, as the runner will see them.

The list comes from a Ginkgo dry run of the binary itself (``e2e.test --ginkgo.dry-run
--ginkgo.focus='\\[Conformance\\]' --ginkgo.json-report=…``), not from
``e2e.test --list-conformance-tests``. That flag only prints ``conformance.yaml`` as embedded in
the binary (documentation: test names, descriptions, releases); the dry run walks the spec tree
with the same focus the runner passes, so it returns exactly the specs a run executes, under
the names the JUnit report will carry, with their source location and labels (``Serial``,
``Slow``, ``Disruptive``), which the runner needs to split the parallel part from the serial
one. A dry run needs no cluster and takes about two seconds; its result is cached beside the
binary (``conformance-tests.json``), keyed by the binary's sha256 and the focus.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from build.runner import CommandLog, call
from conformance.upstream.errors import UpstreamError

if TYPE_CHECKING:
    from conformance.upstream.build import Suite

CONFORMANCE_FOCUS = r"\[Conformance\]"
CACHE_FILE = "conformance-tests.json"
PACKAGE_PREFIX = "k8s.io/kubernetes/"


@dataclass(frozen=True, kw_only=True)
class ConformanceTest:
    """One spec: its full text (what ``--ginkgo.focus`` matches and JUnit names), where it is, its labels."""

    name: str
    file: str
    """Path in the kubernetes repository (``test/e2e/apps/deployment.go``), as conformance.yaml has it."""
    line: int
    labels: tuple[str, ...]

    @property
    def serial(self) -> bool:
        """Must run alone (``[Serial]``): the runner runs these after the parallel part."""
        return "Serial" in self.labels

    @property
    def area(self) -> str:
        """The SIG of the spec (``sig-apps``), from its first ``[sig-…]`` tag; ``""`` if none."""
        head = self.name.split("]", 1)[0]
        return head[1:] if head.startswith("[sig-") else ""


def list_conformance_tests(
    suite: Suite, *, focus: str = CONFORMANCE_FOCUS, skip: str = "", log: CommandLog | None = None
) -> list[ConformanceTest]:
    """The specs a run of ``suite`` with ``focus`` (and ``skip``) executes, in name order."""
    key = {"e2e_test_sha256": suite.manifest.binaries["e2e.test"].sha256, "focus": focus, "skip": skip}
    cached = suite.directory / _cache_name(focus, skip)
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
        if data.get("key") == key:
            return [
                ConformanceTest(name=t["name"], file=t["file"], line=t["line"], labels=tuple(t["labels"]))
                for t in data["tests"]
            ]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if log is not None:
        tests = _dry_run(suite, focus, skip, log)
    else:
        with CommandLog(suite.directory / "dry-run.log") as own:
            tests = _dry_run(suite, focus, skip, own)
    partial = cached.with_name(cached.name + ".partial")
    partial.write_text(
        json.dumps({"key": key, "tests": [asdict(t) for t in tests]}, indent=1) + "\n", encoding="utf-8"
    )
    partial.replace(cached)
    return tests


def _cache_name(focus: str, skip: str) -> str:
    """``conformance-tests.json`` for the plain conformance focus, ``specs-<digest>.json`` otherwise."""
    if (focus, skip) == (CONFORMANCE_FOCUS, ""):
        return CACHE_FILE
    digest = hashlib.sha256((focus + "\0" + skip).encode()).hexdigest()[:12]
    return f"specs-{digest}.json"


def _dry_run(suite: Suite, focus: str, skip: str, log: CommandLog) -> list[ConformanceTest]:
    with tempfile.TemporaryDirectory(prefix="k3py-dry-run-") as scratch:
        report = Path(scratch) / "report.json"
        command: list[str | Path] = [
            suite.e2e_test,
            "--ginkgo.dry-run",
            f"--ginkgo.focus={focus}",
            "--ginkgo.no-color",
            f"--ginkgo.json-report={report}",
            f"--report-dir={scratch}",
        ]
        if skip:
            command.append(f"--ginkgo.skip={skip}")
        # No cluster is contacted in a dry run; an empty KUBECONFIG keeps the host's out of it.
        call(command, log=log, cwd=Path(scratch), env={"PATH": "/usr/bin:/bin", "KUBECONFIG": ""})
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UpstreamError(
                f"the dry run of {suite.e2e_test} wrote no readable JSON report: {exc}"
            ) from exc
    return parse_dry_run_report(data)


def parse_dry_run_report(report: Iterable[Mapping[str, object]]) -> list[ConformanceTest]:
    """The ``It`` specs a Ginkgo JSON report (a list of suite reports) says would run, by name."""
    tests: dict[str, ConformanceTest] = {}
    for suite_report in report:
        specs = suite_report.get("SpecReports") or []
        assert isinstance(specs, list)
        for spec in specs:
            if spec.get("LeafNodeType") != "It" or spec.get("State") != "passed":
                continue
            texts = [*(spec.get("ContainerHierarchyTexts") or []), spec.get("LeafNodeText", "")]
            name = " ".join(text for text in texts if text)
            location = spec.get("LeafNodeLocation") or {}
            labels = [
                *(label for level in spec.get("ContainerHierarchyLabels") or [] for label in level or []),
                *(spec.get("LeafNodeLabels") or []),
            ]
            tests[name] = ConformanceTest(
                name=name,
                file=str(location.get("FileName", "")).removeprefix(PACKAGE_PREFIX),
                line=int(location.get("LineNumber", 0)),
                labels=tuple(dict.fromkeys(labels)),
            )
    return [tests[name] for name in sorted(tests)]
