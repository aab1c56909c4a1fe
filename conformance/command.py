"""``invoke conformance``: an ephemeral cluster, a suite against it, results a submission can use.

Flow: build the upstream suite and its images when ``cncf`` is asked for (cached by version in
``.cache/k3py/conformance/``) → start an ephemeral cluster (a server and ``--nodes`` agents, each
in its own network namespace, images in each node's air-gap directory) → run each suite →
write ``dist/conformance/<run-id>-<suite>/`` (junit_01.xml, e2e.log, the sonobuoy-style tarball,
PRODUCT.yaml, summary.md) → for an unfocused ``cncf`` run (also one stopped early, marked as
interrupted), regenerate ``docs/conformance.md`` →
tear the cluster down (unless ``--keep``). The exit code is 0 only when nothing failed
(``--allow-failures`` forgives failed tests, not a run that could not happen).
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from build.report import sha256_of
from conformance import results
from conformance.cluster import ClusterError, ClusterSpec, EphemeralCluster
from conformance.results_model import ClusterInfo, RunMeta
from conformance.runner import (
    CONFORMANCE_FOCUS,
    CONFORMANCE_LABEL,
    RunnerError,
    SuiteInterrupted,
    probe_cluster,
    run_native,
    run_upstream,
)

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("native", "cncf")
CONFORMANCE_DOC = ROOT / "docs" / "conformance.md"
BLOCKERS = [
    "Image volumes (the `ImageVolume` tests): containerd 1.6, Debian 12's, has no CRI support for "
    "mounting an image as a volume.",
    "The busybox test image's `/bin/sh` is Debian's static bash, because Debian's busybox ash drops "
    "environment variables whose names are not shell identifiers (the ConfigMap and Secret "
    "environment tests set such names); bash words its errors otherwise than the ash message the "
    "read-only root filesystem test expects.",
    "Test images that cannot be built offline (see `invoke conformance` output: the images report) "
    "block the tests that use them.",
    "A failing upstream test waits out its timeouts (often 2-15 minutes), so a run with many "
    "failures takes hours on two cores.",
]


@dataclass(frozen=True)
class Options:
    suite: str = "native"
    focus: str = ""
    skip: str = ""
    nodes: int = 1
    parallel: int = 2
    binary: Path | None = None
    datastore: str = "sqlite"
    keep: bool = False
    allow_failures: bool = False
    version: str | None = None


def run(options: Options, console: Console) -> int:
    """Run the chosen suites against one ephemeral cluster; the exit code. SIGTERM stops the run
    as Ctrl-C does: the results so far are written and the cluster is torn down."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(options, console)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(options: Options, console: Console) -> int:
    suites = SUITES if options.suite == "all" else (options.suite,)
    if any(s not in SUITES for s in suites):
        raise ValueError(f"--suite {options.suite}: one of native, cncf, all")
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    upstream = None
    images: tuple[Path, ...] = ()
    conformance_tests: list[str] = []
    if "cncf" in suites:
        from conformance import upstream as upstream_build  # Go and apt only when needed

        upstream = upstream_build.build_suite(options.version, console=console)
        upstream_build.build_images(upstream, "amd64", console=console)
        images = tuple(upstream_build.airgap_images(upstream.directory))
        conformance_tests = [t.name for t in upstream_build.list_conformance_tests(upstream)]
        console.print(f"[bold]cncf:[/] {upstream.version}, {len(conformance_tests)} [Conformance] tests")
    spec = ClusterSpec(
        base_dir=ROOT / ".cache" / "k3py" / "clusters" / run_id,
        agents=options.nodes,
        binary=options.binary,
        datastore=options.datastore,
        keep=options.keep,
        airgap_images=images,
    )
    codes = []
    try:
        with EphemeralCluster(spec) as cluster:
            console.print(
                f"[bold]cluster {cluster.run_id}:[/] {cluster.server_url}, kubeconfig {cluster.kubeconfig}"
            )
            info = probe_cluster(cluster.kubeconfig)
            for suite in suites:
                codes.append(
                    _one_suite(
                        suite, options, cluster.kubeconfig, run_id, info, upstream, conformance_tests, console
                    )
                )
            if options.keep:
                console.print(f"[yellow]--keep: the cluster stays up.[/]\n{cluster.how_to_reach()}")
    except ClusterError as exc:
        console.print(f"[red]conformance: the cluster did not come up:[/] {exc}")
        return 1
    return max(codes, default=1)


def _one_suite(
    suite: str,
    options: Options,
    kubeconfig: Path,
    run_id: str,
    info: ClusterInfo,
    upstream: object,
    conformance_tests: list[str],
    console: Console,
) -> int:
    run_dir = ROOT / "dist" / "conformance" / f"{run_id}-{suite}"
    started = datetime.now(UTC)
    interrupted = False
    try:
        if suite == "native":
            cases = run_native(
                kubeconfig,
                focus=options.focus,
                skip=options.skip,
                parallel=options.parallel,
                run_dir=run_dir,
                console=console,
            )
        else:
            cases = run_upstream(
                upstream.e2e_test,  # type: ignore[attr-defined]
                upstream.ginkgo,  # type: ignore[attr-defined]
                kubeconfig,
                run_dir=run_dir,
                focus=options.focus or CONFORMANCE_FOCUS,
                label_filter=CONFORMANCE_LABEL,
                skip=options.skip,
                parallel=options.parallel,
                console=console,
            )
    except SuiteInterrupted as stop:
        cases, interrupted = stop.cases, True
    except RunnerError as exc:
        console.print(f"[red]{suite}: {exc}[/]")
        return 1
    meta = RunMeta(
        run_id=run_id,
        started=started,
        finished=datetime.now(UTC),
        k3py_version=_k3py_version(),
        commit=_commit(),
        binary=options.binary,
        binary_sha256=sha256_of(options.binary) if options.binary else None,
        cluster=info,
        datastore=options.datastore,
        focus=options.focus,
        skip=options.skip,
        interrupted=interrupted,
    )
    written = results.write_results(run_dir, cases, suite=suite, meta=meta)
    console.print(_table(suite, written))
    console.print(f"[dim]{run_dir}[/]")
    if suite == "cncf" and not options.focus and not options.skip:
        stopped = [c.message.splitlines()[0] for c in written.failures if c.area == "suite" and c.message]
        blockers = (
            [f"This run stopped before its first test: {stopped[0]}", *BLOCKERS] if stopped else BLOCKERS
        )
        doc = results.render_conformance_doc(
            written, commit=meta.commit, blockers=blockers, conformance_tests=conformance_tests
        )
        used = f"invoke conformance --suite cncf --nodes {options.nodes}"
        doc = doc.replace("invoke conformance --suite cncf\n", used + "\n")
        CONFORMANCE_DOC.write_text(doc, encoding="utf-8")
        console.print(f"[green]wrote {CONFORMANCE_DOC.relative_to(ROOT)}[/]")
    if interrupted:
        raise KeyboardInterrupt
    return results.exit_code(written, options.allow_failures)


def _table(suite: str, written: results.Results) -> Table:
    table = Table(title=f"{suite}: by area", title_justify="left")
    for column in ("area", "passed", "failed", "skipped"):
        table.add_column(column, justify="left" if column == "area" else "right")
    for area, tally in sorted(written.by_area().items()):
        table.add_row(area, str(tally.passed), str(tally.failed), str(tally.skipped))
    return table


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return f"{commit}-dirty" if git("status", "--porcelain", "--untracked-files=no") else commit


def _k3py_version() -> str:
    from k3py import __version__

    return __version__
