"""The results of one conformance run, laid out in ``dist/conformance/<run-id>/``.

A suite runner (:mod:`conformance.runner`) leaves the suite's own report and output in the run
directory and returns the parsed cases; :func:`write_results` then completes the directory::

    junit_01.xml                          the suite's report (rendered from the cases if it wrote none)
    e2e.log                               the suite's output (a listing of the cases if none was captured)
    <YYYYmmDDHHMM>_sonobuoy_<uuid>.tar.gz the same, in sonobuoy's archive layout (results_sonobuoy)
    PRODUCT.yaml                          the CNCF k8s-conformance submission template
    summary.md                            the scorecard: by area, failures, slowest tests, versions

:func:`exit_code` turns the results into the command's exit status and
:func:`render_conformance_doc` into ``docs/conformance.md`` (written by the task, not here).
The pieces live in ``results_model`` (values), ``results_junit`` (JUnit in and out),
``results_sonobuoy`` (the archive) and ``results_report`` (the Markdown and YAML).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from conformance.results_junit import JUnitError, merge_junit, parse_junit, write_junit
from conformance.results_model import (
    AREAS,
    Case,
    ClusterInfo,
    ResultFiles,
    Results,
    RunMeta,
    Status,
    Tally,
    area_of,
)
from conformance.results_report import render_conformance_doc, render_product_yaml, render_summary
from conformance.results_sonobuoy import SUITE_NAMES, write_tarball

__all__ = [
    "AREAS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_RAN",
    "EXIT_OK",
    "SUITES",
    "Case",
    "ClusterInfo",
    "JUnitError",
    "Results",
    "RunMeta",
    "Status",
    "Tally",
    "area_of",
    "exit_code",
    "merge_junit",
    "parse_junit",
    "render_conformance_doc",
    "write_results",
]

SUITES = ("native", "cncf")
EXIT_OK = 0
EXIT_FAILED = 1  # some test failed (forgiven by allow_failures)
EXIT_NOTHING_RAN = 2  # no test passed or failed: the run proves nothing
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT

_E2E_VERSION = re.compile(r"e2e test version: (v\S+)")


def write_results(run_dir: Path, cases: Sequence[Case], *, suite: str, meta: RunMeta) -> Results:
    """Complete ``run_dir`` with every result file of the run and return what was written."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}")
    run_dir.mkdir(parents=True, exist_ok=True)
    junit = run_dir / "junit_01.xml"
    if not junit.is_file():
        write_junit(cases, junit, suite_name=SUITE_NAMES[suite])
    e2e_log = run_dir / "e2e.log"
    if not e2e_log.is_file():
        e2e_log.write_text(_listing(cases, suite), encoding="utf-8")
    for stale in run_dir.glob("*_sonobuoy_*.tar.gz"):
        stale.unlink()
    tarball = write_tarball(run_dir, cases, meta, suite=suite, junit=junit, e2e_log=e2e_log)
    product = run_dir / "PRODUCT.yaml"
    product.write_text(render_product_yaml(meta), encoding="utf-8")
    results = Results(
        run_dir=run_dir,
        suite=suite,
        cases=tuple(cases),
        meta=meta,
        files=ResultFiles(
            junit=junit, e2e_log=e2e_log, tarball=tarball, product=product, summary=run_dir / "summary.md"
        ),
        e2e_version=_e2e_version(e2e_log),
    )
    results.files.summary.write_text(render_summary(results), encoding="utf-8")
    return results


def exit_code(results: Results, allow_failures: bool = False) -> int:
    """0 only if nothing failed; ``allow_failures`` forgives failed tests, not an empty or interrupted run."""
    if results.meta.interrupted:
        return EXIT_INTERRUPTED
    counts = results.counts
    if counts.ran == 0:
        return EXIT_NOTHING_RAN
    if counts.failed and not allow_failures:
        return EXIT_FAILED
    return EXIT_OK


def _listing(cases: Sequence[Case], suite: str) -> str:
    lines = [f"# {SUITE_NAMES[suite]}: no output was captured; these are the cases of junit_01.xml."]
    lines += [f"{case.status.upper():8} {case.seconds:8.3f}s  {case.name}" for case in cases]
    return "\n".join(lines) + "\n"


def _e2e_version(e2e_log: Path) -> str | None:
    with e2e_log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if found := _E2E_VERSION.search(line):
                return found.group(1)
    return None
