"""The readable reports of a run: ``summary.md``, the ``PRODUCT.yaml`` template, ``docs/conformance.md``.

``summary.md`` is the run's scorecard: the outcome, the versions of everything involved, passed /
failed / skipped by area, every failure with its message, and the slowest tests.
``docs/conformance.md`` is the project's standing record of the upstream suite: how many of the
Kubernetes v1.37 ``[Conformance]`` tests pass, by area, at which commit, and what blocks the
rest (the caller says what; this module only lays it out). ``PRODUCT.yaml`` is the file the
CNCF k8s-conformance repository asks of a submission, with what we know filled in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml

from conformance.results_model import (
    AREAS,
    CONFORMANCE_TAG,
    Case,
    Results,
    RunMeta,
    Tally,
    area_of,
    tally_by_area,
)

SLOWEST = 10
MESSAGE_LINES = 40
MESSAGE_CHARS = 4000

# The fields k8s-conformance's instructions.md lists for PRODUCT.yaml, in its order; the bot
# (kubernetes-sigs/verify-conformance) rejects empty ones, so the unknown ones say so.
PRODUCT_FIELDS = (
    "vendor",
    "name",
    "version",
    "website_url",
    "repo_url",
    "documentation_url",
    "product_logo_url",
    "type",
    "description",
    "contact_email_address",
)
FILL_IN = "FILL IN before submitting"


def render_summary(results: Results) -> str:
    meta, counts = results.meta, results.counts
    lines = [f"# Conformance run `{meta.run_id}`: {results.suite} suite", ""]
    if meta.interrupted:
        lines += ["> **Interrupted**: these are partial results; tests that did not run are missing.", ""]
    lines += [
        f"**{_verdict(results)}** {counts.passed} passed, {counts.failed} failed, "
        f"{counts.skipped} skipped, {counts.total} in all, in {_duration(meta.seconds)}.",
        "",
        "## Versions",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in _versions(results).items()),
        "",
        "## By area",
        "",
        _area_table(results.by_area(), ("passed", "failed", "skipped", "total")),
        "",
    ]
    lines += _failures(results.failures)
    lines += _slowest(results.cases)
    lines += ["## Files", "", *(f"- `{path.name}`" for path in _files(results)), ""]
    return "\n".join(lines)


def _verdict(results: Results) -> str:
    counts = results.counts
    if results.meta.interrupted:
        return "INTERRUPTED:"
    if counts.ran == 0:
        return "NOTHING RAN:"
    return "FAILED:" if counts.failed else "PASSED:"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _versions(results: Results) -> dict[str, str]:
    meta = results.meta
    cluster = meta.cluster
    binary = f"`{meta.binary}` (sha256 `{meta.binary_sha256 or 'unknown'}`)" if meta.binary else "from source"
    return {
        "Kubernetes (target)": meta.kubernetes_version,
        "server version": _code(cluster.server_git_version),
        "kubectl version": _code(cluster.kubectl_version),
        "e2e.test version": _code(results.e2e_version),
        "k3py version": _code(meta.k3py_version),
        "k3py binary": binary,
        "commit": _code(meta.commit),
        "datastore": meta.datastore,
        "nodes": (
            ", ".join(f"{name} ({'Ready' if ready else 'NotReady'})" for name, ready in cluster.nodes.items())
            or "unknown"
        ),
        "focus": _code(meta.focus),
        "skip": _code(meta.skip),
        "started": meta.started.isoformat(timespec="seconds"),
        "finished": meta.finished.isoformat(timespec="seconds"),
    }


def _code(value: str | None) -> str:
    return f"`{value}`" if value else "unknown" if value is None else "none"


def _area_table(areas: Mapping[str, Tally], columns: Sequence[str]) -> str:
    rows = ["| area | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for area, count in areas.items():
        rows.append(f"| {area} | " + " | ".join(str(getattr(count, c)) for c in columns) + " |")
    total = _sum(areas.values())
    rows.append("| **all** | " + " | ".join(f"**{getattr(total, c)}**" for c in columns) + " |")
    return "\n".join(rows)


def _sum(counts: Iterable[Tally]) -> Tally:
    every = list(counts)
    return Tally(
        passed=sum(c.passed for c in every),
        failed=sum(c.failed for c in every),
        skipped=sum(c.skipped for c in every),
    )


def _failures(failures: Sequence[Case]) -> list[str]:
    if not failures:
        return ["## Failures", "", "None.", ""]
    lines = [f"## Failures ({len(failures)})", ""]
    for case in failures:
        lines += [f"### {case.name}", "", f"{case.area}, {case.seconds:.1f}s", "", "```", _clip(case.message)]
        lines += ["```", ""]
    return lines


def _clip(message: str) -> str:
    text = message.strip() or "(no message)"
    lines = text.splitlines()
    if len(lines) > MESSAGE_LINES:
        text = "\n".join([*lines[:MESSAGE_LINES], f"... ({len(lines) - MESSAGE_LINES} more lines)"])
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + " ... (clipped)"
    return text.replace("```", "'''")


def _slowest(cases: Sequence[Case]) -> list[str]:
    ran = sorted((c for c in cases if c.status != "skipped"), key=lambda c: c.seconds, reverse=True)
    if not ran:
        return []
    lines = [
        f"## Slowest tests ({min(SLOWEST, len(ran))})",
        "",
        "| seconds | status | test |",
        "|---:|---|---|",
    ]
    lines += [f"| {c.seconds:.1f} | {c.status} | {c.name.replace('|', '/')} |" for c in ran[:SLOWEST]]
    return [*lines, ""]


def _files(results: Results) -> list[Path]:
    files = results.files
    return [files.summary, files.junit, files.e2e_log, files.tarball, files.product]


def render_product_yaml(meta: RunMeta) -> str:
    """The ``PRODUCT.yaml`` of a k8s-conformance submission, unknown fields marked to fill in."""
    known = {
        "name": "k3py",
        "version": meta.k3py_version,
        "type": "distribution",
        "description": "A lightweight, conformant Kubernetes distribution in one Python binary",
    }
    header = (
        "# PRODUCT.yaml for a CNCF k8s-conformance submission "
        f"({meta.kubernetes_version}/k3py; see github.com/cncf/k8s-conformance, instructions.md).\n"
        f"# Run {meta.run_id} at commit {meta.commit}. Every '{FILL_IN}' needs a real value.\n"
    )
    body = {key: known.get(key, FILL_IN) for key in PRODUCT_FIELDS}
    return header + yaml.safe_dump(body, sort_keys=False, width=1000)


def render_conformance_doc(
    results: Results,
    *,
    commit: str,
    blockers: Sequence[str],
    conformance_tests: Sequence[str] = (),
) -> str:
    """``docs/conformance.md``: passed / failed / total upstream ``[Conformance]`` tests, by area.

    The total is the number of ``[Conformance]`` tests in the run's report, or, when given,
    ``conformance_tests`` (the authoritative v1.37 list, e.g. from ``e2e.test --ginkgo.dry-run``):
    a listed test the run did not execute counts as "not run", never as passed.
    """
    if results.suite != "cncf":
        raise ValueError(f"docs/conformance.md reports the upstream suite; these are {results.suite} results")
    cases = _conformance_cases(results.cases, conformance_tests)
    areas = tally_by_area(cases, every_area=True)
    total = _sum(areas.values())
    meta = results.meta
    lines = [
        "# Conformance",
        "",
        "<!-- Generated by `invoke conformance --suite cncf`; edits are overwritten by the next run. -->",
        "",
        f"k3py against the upstream Kubernetes {meta.kubernetes_version} conformance suite: the "
        "`[Conformance]` tests of `e2e.test`, run with `--provider=skeleton`, parallel tests first, "
        "then the `[Serial]` ones.",
        "",
        f"**{total.passed} passed, {total.failed} failed, {total.skipped} not run, of {total.total} "
        f"`[Conformance]` tests** at commit `{commit}`.",
        "",
    ]
    if meta.interrupted:
        lines += ["> The run was **interrupted**: tests it did not reach count as not run.", ""]
    build = f"binary sha256 `{meta.binary_sha256 or 'unknown'}`" if meta.binary else "from source"
    lines += [
        f"Run `{meta.run_id}`, finished {meta.finished.isoformat(timespec='minutes')}; "
        f"k3py `{meta.k3py_version}` ({build}); server `{meta.cluster.server_git_version or 'unknown'}`; "
        f"e2e.test `{results.e2e_version or 'unknown'}`.",
        "",
        "## By area",
        "",
        _doc_area_table(areas),
        "",
        "## What blocks the rest",
        "",
    ]
    if blockers:
        lines += [f"- {blocker}" for blocker in blockers]
    elif total.passed == total.total and total.total:
        lines += ["Nothing: every `[Conformance]` test passed."]
    else:
        lines += ["Not analysed for this run."]
    lines += [
        "",
        *_doc_failures(cases),
        "## Reproduce",
        "",
        "```",
        "invoke conformance --suite cncf",
        "```",
        "",
    ]
    return "\n".join(lines)


def _conformance_cases(cases: Sequence[Case], expected: Sequence[str]) -> list[Case]:
    ran = {case.name: case for case in cases if CONFORMANCE_TAG in case.name}
    if not expected:
        return list(ran.values())
    found = []
    for name in expected:
        case = ran.get(name)
        found.append(case or Case(name=name, classname="", area=area_of(name), status="skipped", seconds=0.0))
    return found


def _doc_area_table(areas: Mapping[str, Tally]) -> str:
    rows = ["| area | passed | failed | not run | total |", "|---|---:|---:|---:|---:|"]
    for area, count in areas.items():
        rows.append(f"| {area} | {count.passed} | {count.failed} | {count.skipped} | {count.total} |")
    total = _sum(areas.values())
    rows.append(
        f"| **all** | **{total.passed}** | **{total.failed}** | **{total.skipped}** | **{total.total}** |"
    )
    return "\n".join(rows)


def _doc_failures(cases: Sequence[Case]) -> list[str]:
    failed = [case for case in cases if case.status == "failed"]
    if not failed:
        return []
    lines = [f"## Failed tests ({len(failed)})", ""]
    for area in [*AREAS, *sorted({c.area for c in failed} - set(AREAS))]:
        names = sorted(case.name for case in failed if case.area == area)
        if names:
            lines += [f"**{area}**", "", *(f"- {name}" for name in names), ""]
    return lines
