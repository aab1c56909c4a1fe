"""The suite runners: ginkgo command lines, the two upstream phases, live progress, Ctrl-C, the native suite.

Upstream runs use a fake ``ginkgo``: a small script standing where the real CLI would, below the
runner under test. It applies the --focus/--skip regular expressions to a planned list of specs
the way ginkgo does, prints what ginkgo -v prints (following a real v1.33 e2e.log), writes
``junit_01.xml`` into the ``--report-dir`` as e2e.test does, and on SIGINT writes a partial
report and exits, as ginkgo does. The native run is real: pytest with xdist on a tiny suite.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from conformance.results import RunMeta, exit_code, parse_junit, write_results
from conformance.runner import (
    CONFORMANCE_FOCUS,
    KUBECONFIG_ENV,
    Phase,
    RunnerError,
    SuiteInterrupted,
    ginkgo_command,
    native_command,
    probe_cluster,
    run_native,
    run_upstream,
    serial_focus,
    upstream_phases,
)

FAKE_GINKGO = r"""
import json, os, re, signal, subprocess, sys, time
from pathlib import Path
from xml.sax.saxutils import quoteattr

args = sys.argv[1:]
with open(os.environ["FAKE_GINKGO_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\n")
plan = json.loads(Path(os.environ["FAKE_GINKGO_PLAN"]).read_text())
dash = args.index("--")
ginkgo_flags, test_args = args[: dash - 1], args[dash + 1 :]
focus = [a.split("=", 1)[1] for a in ginkgo_flags if a.startswith("--focus=")]
skip = [a.split("=", 1)[1] for a in ginkgo_flags if a.startswith("--skip=")]
report_dir = Path(next(a.split("=", 1)[1] for a in test_args if a.startswith("--report-dir=")))
specs = plan["specs"]

def selected(name):
    return (not focus or any(re.search(f, name) for f in focus)) and not any(re.search(s, name) for s in skip)

results, current = {}, None
SUITE = "Kubernetes e2e suite"

def report():
    cases = ['<testcase name="[SynchronizedBeforeSuite]" classname="%s" status="passed" time="0.1"/>' % SUITE]
    for spec in specs:
        name = spec["name"]
        status = results.get(name) or ("interrupted" if name == current else "skipped")
        body = {
            "passed": "",
            "skipped": '<skipped message="skipped"></skipped>',
            "failed": '<failure message=%s type="failed">[FAILED] %s</failure>' % (
                quoteattr(spec.get("message", "")), spec.get("message", "")),
            "interrupted": '<error message="interrupted by user" type="interrupted"></error>',
        }[status]
        seconds = spec["seconds"] if status != "skipped" else 0
        cases.append('<testcase name=%s classname="%s" status="%s" time="%s">%s</testcase>'
                     % (quoteattr("[It] " + name), SUITE, status, seconds, body))
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "junit_01.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="Kubernetes e2e suite">'
        + "".join(cases) + "</testsuite></testsuites>\n")

def interrupted(signum, frame):
    print("\nReceived interrupt.  Running AfterSuite...", flush=True)
    if not plan.get("ignore_sigint"):
        report()
        sys.exit(1)

signal.signal(signal.SIGINT, signal.SIG_IGN if plan.get("ignore_sigint") else interrupted)
if plan.get("helper_pid_file"):
    helper = subprocess.Popen(["sleep", "300"])
    Path(plan["helper_pid_file"]).write_text(str(helper.pid))
run = [s for s in specs if selected(s["name"])]
print("Running Suite: Kubernetes e2e suite - /usr/local/bin")
print("  I0509 12:46:26.798506 20 e2e.go:245] e2e test version: v1.37.0")
print(f"Will run {len(run)} of {len(specs)} specs", flush=True)
for spec in specs:
    print("------------------------------")
    if not selected(spec["name"]):
        print("S", flush=True)
        continue
    current = spec["name"]
    print(f"{spec['name']} [sig-x, Conformance]")
    print("k8s.io/kubernetes/test/e2e/fake.go:1")
    print("  STEP: Creating a kubernetes client @ 05/09/25 12:46:26.999", flush=True)
    if spec.get("pause"):
        Path(os.environ["FAKE_GINKGO_PAUSED"]).write_text(current)
        time.sleep(120)
    if spec["status"] == "failed":
        print(f"• [FAILED] [{spec['seconds']:.3f} seconds]")
        print(spec["name"])
        print("k8s.io/kubernetes/test/e2e/fake.go:1\n")
        print(f"  [FAILED] {spec['message']}")
    else:
        print(f"• [{spec['seconds']:.3f} seconds]")
    results[spec["name"]] = spec["status"]
    sys.stdout.flush()
print("------------------------------\n")
failed = sum(s == "failed" for s in results.values())
print(f"Ran {len(run)} of {len(specs)} Specs in 1.000 seconds")
verdict = "FAIL" if failed else "SUCCESS"
passed, skipped = len(run) - failed, len(specs) - len(run)
print(f"{verdict}! -- {passed} Passed | {failed} Failed | 0 Pending | {skipped} Skipped")
if not plan.get("no_report"):
    report()
sys.exit(1 if failed else 0)
"""

PARALLEL_OK = "[sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]"
PARALLEL_FAIL = "[sig-network] Services should serve a basic endpoint from pods  [Conformance]"
SERIAL_OK = "[sig-apps] Daemon set [Serial] should rollback without unnecessary restarts [Conformance]"
SERIAL_FAIL = "[sig-scheduling] SchedulerPredicates [Serial] validates resource limits of pods [Conformance]"
NOT_CONFORMANCE = "[sig-storage] CSI Mock volume expansion should expand volume [Slow]"
NOT_CONFORMANCE_SERIAL = "[sig-node] Eviction [Serial] [Slow] evicts pods"

PLAN = [
    {"name": PARALLEL_OK, "status": "passed", "seconds": 4.5},
    {
        "name": PARALLEL_FAIL,
        "status": "failed",
        "seconds": 135.25,
        "message": "timed out waiting for endpoints",
    },
    {"name": SERIAL_OK, "status": "passed", "seconds": 30.0},
    {"name": SERIAL_FAIL, "status": "failed", "seconds": 7.0, "message": "pod stayed Pending"},
    {"name": NOT_CONFORMANCE, "status": "passed", "seconds": 1.0},
    {"name": NOT_CONFORMANCE_SERIAL, "status": "passed", "seconds": 1.0},
]


class FakeGinkgo:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "ginkgo"
        self.path.write_text(f"#!{sys.executable}\n{FAKE_GINKGO}")
        self.path.chmod(0o755)
        self.e2e_test = directory / "e2e.test"
        self.e2e_test.write_text("#!/bin/sh\nexit 99\n")  # never run: ginkgo would run it
        self.e2e_test.chmod(0o755)
        self.kubeconfig = directory / "kubeconfig"
        self.kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
        self.calls = directory / "calls.jsonl"
        self.plan_file = directory / "plan.json"
        self.paused = directory / "paused"

    def plan(self, specs: list[dict[str, object]], **options: object) -> dict[str, str]:
        self.plan_file.write_text(json.dumps({"specs": specs, **options}))
        return {
            **os.environ,
            "FAKE_GINKGO_PLAN": str(self.plan_file),
            "FAKE_GINKGO_CALLS": str(self.calls),
            "FAKE_GINKGO_PAUSED": str(self.paused),
        }

    def invocations(self) -> list[list[str]]:
        return [json.loads(line) for line in self.calls.read_text().splitlines()]


@pytest.fixture
def fake(tmp_path: Path) -> FakeGinkgo:
    return FakeGinkgo(tmp_path / "bin")


def quiet_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_the_phases_split_the_focus_into_parallel_and_serial_without_overlap() -> None:
    parallel, serial = upstream_phases(CONFORMANCE_FOCUS, "", 4)
    assert parallel == Phase("parallel", r"\[Conformance\]", r"\[Serial\]", 4)
    assert serial == Phase("serial", serial_focus(r"\[Conformance\]"), "", 1)
    names = [str(spec["name"]) for spec in PLAN]

    def runs(phase: Phase, name: str) -> bool:
        return bool(re.search(phase.focus, name)) and not (phase.skip and re.search(phase.skip, name))

    assert [n for n in names if runs(parallel, n)] == [PARALLEL_OK, PARALLEL_FAIL]
    assert [n for n in names if runs(serial, n)] == [SERIAL_OK, SERIAL_FAIL]
    # a user's skip applies to both phases; one process means one phase
    parallel, serial = upstream_phases(r"sig-apps", "Deployment", 2)
    assert (parallel.skip, serial.skip) == (r"\[Serial\]|Deployment", "Deployment")
    assert upstream_phases(CONFORMANCE_FOCUS, "", 1) == [Phase("serial", CONFORMANCE_FOCUS, "", 1)]


def test_the_ginkgo_command_line() -> None:
    phase = upstream_phases(CONFORMANCE_FOCUS, "", 8)[0]
    command = ginkgo_command(
        Path("/c/ginkgo"),
        Path("/c/e2e.test"),
        Path("/run/kubeconfig"),
        phase=phase,
        report_dir=Path("/run/phases/parallel"),
        extra_args=["--non-blocking-taints=node-role.kubernetes.io/control-plane"],
    )
    assert command == [
        "/c/ginkgo",
        "--procs=8",
        "--timeout=24h",
        "--no-color",
        "-v",
        r"--focus=\[Conformance\]",
        r"--skip=\[Serial\]",
        "/c/e2e.test",
        "--",
        "--kubeconfig=/run/kubeconfig",
        "--provider=skeleton",
        f"--kubectl-path={Path(sys.executable).parent / 'kubectl'}",  # the dev extra's kubectl 1.37
        "--report-dir=/run/phases/parallel",
        "--disable-log-dump",
        "--non-blocking-taints=node-role.kubernetes.io/control-plane",
    ]
    serial = ginkgo_command(
        Path("g"), Path("e"), Path("k"), phase=Phase("serial", "x", "", 1), report_dir=Path("r"), timeout="2h"
    )
    assert serial[:5] == ["g", "--timeout=2h", "--no-color", "-v", "--focus=x"]
    assert not any(arg.startswith(("--procs", "--skip")) for arg in serial)


def test_an_upstream_run_runs_both_phases_and_merges_their_reports(fake: FakeGinkgo, tmp_path: Path) -> None:
    env = fake.plan(PLAN)
    console, shown = quiet_console()
    run_dir = tmp_path / "run"

    cases = run_upstream(
        fake.e2e_test, fake.path, fake.kubeconfig, run_dir=run_dir, parallel=3, env=env, console=console
    )

    first, second = fake.invocations()
    assert first[0] == "--procs=3"
    assert first[first.index("--") - 1] == str(fake.e2e_test.resolve())
    assert f"--report-dir={(run_dir / 'phases' / 'parallel').resolve()}" in first
    assert f"--report-dir={(run_dir / 'phases' / 'serial').resolve()}" in second
    assert not any(arg.startswith("--procs") for arg in second)
    assert f"--kubeconfig={fake.kubeconfig.resolve()}" in second
    assert "--provider=skeleton" in second

    status = {case.name: case.status for case in cases}
    assert status == {
        "[SynchronizedBeforeSuite]": "passed",
        PARALLEL_OK: "passed",
        PARALLEL_FAIL: "failed",
        SERIAL_OK: "passed",
        SERIAL_FAIL: "failed",
        NOT_CONFORMANCE: "skipped",
        NOT_CONFORMANCE_SERIAL: "skipped",
    }
    assert parse_junit(run_dir / "junit_01.xml") == cases
    failure = next(case for case in cases if case.name == SERIAL_FAIL)
    assert (failure.area, failure.seconds, failure.message) == (
        "scheduling",
        7.0,
        "[FAILED] pod stayed Pending",
    )

    log = (run_dir / "e2e.log").read_text()
    assert log.count("Running Suite: Kubernetes e2e suite") == 2
    assert log.index(PARALLEL_FAIL) < log.index(SERIAL_FAIL)
    assert "e2e test version: v1.37.0" in log
    # live progress named each failure as it happened
    assert f"FAILED {PARALLEL_FAIL}" in shown.getvalue()
    assert f"FAILED {SERIAL_FAIL}" in shown.getvalue()


def test_an_upstream_run_feeds_the_whole_results_layout(fake: FakeGinkgo, tmp_path: Path) -> None:
    run_dir = tmp_path / "dist" / "conformance" / "r1"
    cases = run_upstream(
        fake.e2e_test,
        fake.path,
        fake.kubeconfig,
        run_dir=run_dir,
        parallel=2,
        env=fake.plan(PLAN),
        console=quiet_console()[0],
    )
    now = datetime.now(UTC)
    results = write_results(
        run_dir,
        cases,
        suite="cncf",
        meta=RunMeta(run_id="r1", started=now, finished=now, k3py_version="0", commit="c"),
    )
    assert results.e2e_version == "v1.37.0"
    assert exit_code(results) == 1 and exit_code(results, allow_failures=True) == 0
    with tarfile.open(results.files.tarball) as archive:
        member = archive.extractfile("plugins/e2e/results/global/junit_01.xml")
        assert member is not None
        assert member.read() == (run_dir / "junit_01.xml").read_bytes()


def test_processes_a_finished_suite_left_behind_are_stopped(fake: FakeGinkgo, tmp_path: Path) -> None:
    helper = tmp_path / "helper.pid"
    started = time.monotonic()
    run_upstream(
        fake.e2e_test,
        fake.path,
        fake.kubeconfig,
        run_dir=tmp_path / "run",
        parallel=1,
        env=fake.plan(PLAN[:1], helper_pid_file=str(helper)),
        console=quiet_console()[0],
    )
    assert not alive(int(helper.read_text()))
    assert time.monotonic() - started < 10  # the straggler held the output pipe: not waited for


def test_a_phase_without_a_report_still_yields_the_specs_its_output_named(
    fake: FakeGinkgo, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    cases = run_upstream(
        fake.e2e_test,
        fake.path,
        fake.kubeconfig,
        run_dir=run_dir,
        parallel=1,
        env=fake.plan(PLAN[:2], no_report=True),
        console=quiet_console()[0],
    )
    assert [(c.name, c.status) for c in cases] == [(PARALLEL_OK, "passed"), (PARALLEL_FAIL, "failed")]
    assert "timed out waiting for endpoints" in cases[1].message
    assert not (run_dir / "junit_01.xml").exists()  # write_results renders one from the cases


def test_a_suite_that_runs_nothing_is_an_error_that_shows_its_output(
    fake: FakeGinkgo, tmp_path: Path
) -> None:
    fake.path.write_text(
        f"#!{sys.executable}\nprint('flag provided but not defined: -no-color')\nraise SystemExit(1)\n"
    )
    with pytest.raises(RunnerError, match="ginkgo exited with 1 before any test ran") as failure:
        run_upstream(
            fake.e2e_test, fake.path, fake.kubeconfig, run_dir=tmp_path / "run", console=quiet_console()[0]
        )
    assert "flag provided but not defined" in str(failure.value)


def test_missing_programs_are_named(fake: FakeGinkgo, tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match=r"e2e\.test not found or not executable"):
        run_upstream(tmp_path / "nope", fake.path, fake.kubeconfig, run_dir=tmp_path / "run")
    with pytest.raises(RunnerError, match="kubeconfig not found"):
        run_upstream(fake.e2e_test, fake.path, tmp_path / "nope", run_dir=tmp_path / "run")


@pytest.fixture
def sigint_raises() -> Iterator[int]:
    """Ctrl-C as a terminal delivers it: SIGINT to this (main) thread, raising KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield threading.get_ident()
    finally:
        signal.signal(signal.SIGINT, previous)


def press_ctrl_c_when(ready: Path, thread: int, *, timeout: float = 30.0) -> threading.Thread:
    def wait_and_interrupt() -> None:
        deadline = time.monotonic() + timeout
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        signal.pthread_kill(thread, signal.SIGINT)

    presser = threading.Thread(target=wait_and_interrupt, name="ctrl-c")
    presser.start()
    return presser


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs a moment from now (SIGKILL is sent at once, but acts a little later)."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1][0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in "ZX":  # dead; its new parent just has not reaped it yet
            return False
        time.sleep(0.05)
    return True


def test_ctrl_c_stops_the_suites_process_group_and_keeps_partial_results(
    fake: FakeGinkgo, tmp_path: Path, sigint_raises: int
) -> None:
    plan = [dict(spec) for spec in PLAN]
    plan[3]["pause"] = True  # the serial phase's second spec hangs until interrupted
    helper = tmp_path / "helper.pid"
    env = fake.plan(plan, helper_pid_file=str(helper))
    run_dir = tmp_path / "run"
    presser = press_ctrl_c_when(fake.paused, sigint_raises)

    with pytest.raises(SuiteInterrupted) as stopped:
        run_upstream(
            fake.e2e_test,
            fake.path,
            fake.kubeconfig,
            run_dir=run_dir,
            parallel=2,
            env=env,
            console=quiet_console()[0],
            grace=20,
        )
    presser.join()

    assert isinstance(stopped.value, KeyboardInterrupt)
    status = {case.name: case.status for case in stopped.value.cases}
    assert status[PARALLEL_OK] == "passed"
    assert status[PARALLEL_FAIL] == "failed"
    assert status[SERIAL_OK] == "passed"
    assert status[SERIAL_FAIL] == "failed"  # ginkgo reports the interrupted spec as such: not passed
    assert parse_junit(run_dir / "junit_01.xml") == stopped.value.cases
    assert "Received interrupt" in (run_dir / "e2e.log").read_text()
    # nothing the suite started outlives it
    assert not alive(int(helper.read_text()))


def test_a_suite_that_ignores_ctrl_c_is_killed_after_the_grace_period(
    fake: FakeGinkgo, tmp_path: Path, sigint_raises: int
) -> None:
    plan = [dict(PLAN[0], pause=True)]
    env = fake.plan(plan, ignore_sigint=True, helper_pid_file=str(tmp_path / "helper.pid"))
    presser = press_ctrl_c_when(fake.paused, sigint_raises)
    started = time.monotonic()
    with pytest.raises(SuiteInterrupted) as stopped:
        run_upstream(
            fake.e2e_test,
            fake.path,
            fake.kubeconfig,
            run_dir=tmp_path / "run",
            parallel=1,
            env=env,
            console=quiet_console()[0],
            grace=1.0,
        )
    presser.join()
    assert time.monotonic() - started < 60  # not the 120s the fake would sleep
    assert stopped.value.cases == []  # killed before it reported anything
    assert not alive(int((tmp_path / "helper.pid").read_text()))


NATIVE_CONFTEST = """
import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        item.user_properties.append(("area", Path(str(item.path)).parent.name))


@pytest.fixture
def kubeconfig():
    return Path(os.environ["K3PY_CONFORMANCE_KUBECONFIG"])
"""

NATIVE_TESTS = {
    "apps/test_workloads.py": """
        def test_kubeconfig_is_passed_through(kubeconfig):
            assert kubeconfig.read_text() == "apiVersion: v1\\nkind: Config\\n"

        def test_rollout_fails():
            assert 1 == 2, "rollout stuck"
    """,
    "storage/test_claims.py": """
        import pytest

        def test_claim_binds():
            pytest.skip("no default StorageClass")

        def test_slow_one():
            pass
    """,
}


def native_suite(directory: Path) -> Path:
    (directory / "conftest.py").parent.mkdir(parents=True)
    (directory / "conftest.py").write_text(NATIVE_CONFTEST)
    for name, text in NATIVE_TESTS.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def test_the_native_command_line() -> None:
    command = native_command(
        python="/venv/bin/python",
        suite_dir=Path("conformance/suites"),
        junit=Path("/run/junit_01.xml"),
        focus="apps or network",
        skip="slow",
        parallel=4,
    )
    assert command == [
        "/venv/bin/python",
        "-m",
        "pytest",
        "conformance/suites",
        "-v",
        "--color=no",
        "-n",
        "4",
        "--junitxml=/run/junit_01.xml",
        "-k",
        "(apps or network) and not (slow)",
    ]
    serial = native_command(python="p", suite_dir=Path("s"), junit=Path("j"), parallel=1)
    assert serial[-3:] == ["-n", "0", "--junitxml=j"]


@pytest.mark.slow  # three real pytest runs, one of them with xdist workers
def test_a_native_run_passes_the_kubeconfig_and_reads_pytests_report(
    fake: FakeGinkgo, tmp_path: Path
) -> None:
    suite = native_suite(tmp_path / "suite")
    run_dir = tmp_path / "run"
    console, shown = quiet_console()

    cases = run_native(fake.kubeconfig, parallel=2, run_dir=run_dir, suite_dir=suite, console=console)

    status = {case.name: (case.status, case.area) for case in cases}
    assert status == {
        "test_kubeconfig_is_passed_through": ("passed", "apps"),
        "test_rollout_fails": ("failed", "apps"),
        "test_claim_binds": ("skipped", "storage"),
        "test_slow_one": ("passed", "storage"),
    }
    assert "rollout stuck" in next(c.message for c in cases if c.status == "failed")
    assert "[gw" in (run_dir / "e2e.log").read_text()  # xdist ran it
    assert re.search(r"FAILED \S*apps/test_workloads\.py::test_rollout_fails", shown.getvalue())

    focused = run_native(
        fake.kubeconfig, focus="storage", skip="slow", parallel=1, run_dir=tmp_path / "run2", suite_dir=suite
    )
    assert [case.name for case in focused] == ["test_claim_binds"]
    assert (
        run_native(fake.kubeconfig, focus="nothing_matches", run_dir=tmp_path / "run3", suite_dir=suite) == []
    )


def test_the_kubeconfig_variable_is_the_one_the_native_suite_reads() -> None:
    from conformance.suites import conftest

    assert conftest.KUBECONFIG_ENV == KUBECONFIG_ENV


FAKE_KUBECTL = r"""
import json, sys

def ready(status):
    return {"status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": status}]}}

args = sys.argv[2:]
if args == ["version", "-o", "json"]:
    server = {"major": "1", "minor": "37", "gitVersion": "v1.37.0-k3py"}
    print(json.dumps({"clientVersion": {"gitVersion": "v1.37.1"}, "serverVersion": server}))
elif args == ["get", "--raw", "/api"]:
    print(json.dumps({"kind": "APIVersions", "versions": ["v1"]}))
elif args == ["get", "--raw", "/apis"]:
    apps = {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}]}
    print(json.dumps({"kind": "APIGroupList", "groups": [apps]}))
elif args == ["get", "nodes", "-o", "json"]:
    nodes = [{"metadata": {"name": "server"}, **ready("True")},
             {"metadata": {"name": "agent-1"}, **ready("Unknown")}]
    print(json.dumps({"items": nodes}))
else:
    sys.exit("unexpected: " + " ".join(sys.argv[1:]))
"""


def test_probe_cluster_reads_versions_groups_and_nodes(fake: FakeGinkgo, tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
    kubectl.chmod(0o755)
    info = probe_cluster(fake.kubeconfig, kubectl=kubectl)
    assert info.server_git_version == "v1.37.0-k3py"
    assert info.kubectl_version == "v1.37.1"
    assert info.nodes == {"server": True, "agent-1": False}
    assert info.server_groups is not None
    groups = info.server_groups["groups"]
    assert isinstance(groups, list)
    assert [group["name"] for group in groups] == ["", "apps"]


def test_probe_cluster_leaves_what_it_cannot_read_unknown(fake: FakeGinkgo, tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\necho 'The connection to the server was refused' >&2\nexit 1\n")
    kubectl.chmod(0o755)
    info = probe_cluster(fake.kubeconfig, kubectl=kubectl)
    assert (info.server_version, info.kubectl_version, info.server_groups, dict(info.nodes)) == (
        None,
        None,
        None,
        {},
    )
    missing = probe_cluster(fake.kubeconfig, kubectl=tmp_path / "no-kubectl")
    assert missing.server_version is None
