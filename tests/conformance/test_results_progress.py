"""Live progress from a suite's output: ginkgo v2 (verbose and not) and pytest (with and without xdist).

The ginkgo samples follow the e2e.log of a real v1.33 submission (cncf/k8s-conformance, k3s),
where ginkgo ran with -v; the failure block follows ginkgo v2's default reporter.
"""

# ruff: noqa: E501  (fixtures copy real suite output, whose lines are long)
from __future__ import annotations

from conformance.results_progress import GinkgoOutput, PytestOutput, SpecEvent

VERBOSE = """\
  I0509 12:46:26.335929      20 e2e.go:109] Starting e2e run "1abf14f2" on Ginkgo node 1
Running Suite: Kubernetes e2e suite - /usr/local/bin
====================================================
Random Seed: 1746794785 - will randomize all specs

Will run 4 of 6731 specs
------------------------------
[SynchronizedBeforeSuite] \n\
k8s.io/kubernetes/test/e2e/e2e.go:69
  I0509 12:46:26.798506 20 e2e.go:245] e2e test version: v1.37.0
[SynchronizedBeforeSuite] PASSED [0.138 seconds]
------------------------------
[sig-auth] ServiceAccounts should create a serviceAccountToken and ensure a successful TokenReview [Conformance] [sig-auth, Conformance]
k8s.io/kubernetes/test/e2e/auth/service_accounts.go:877
  STEP: Creating a kubernetes client @ 05/09/25 12:46:26.999
• [0.438 seconds]
------------------------------
SSSS
------------------------------
[sig-network] Services should serve a basic endpoint from pods  [Conformance] [sig-network, Conformance]
k8s.io/kubernetes/test/e2e/network/service.go:787
  STEP: creating service endpoint-test2 in namespace services-5454 @ 05/09/25 12:51:54.41
  [FAILED] in [It] - k8s.io/kubernetes/test/e2e/network/service.go:797 @ 05/09/25 12:54:09.6
• [FAILED] [135.250 seconds]
[sig-network] Services [It] should serve a basic endpoint from pods  [Conformance] [sig-network, Conformance]
k8s.io/kubernetes/test/e2e/network/service.go:787

  [FAILED] failed to get service endpoints: timed out waiting for the condition
  In [It] at: k8s.io/kubernetes/test/e2e/network/service.go:797 @ 05/09/25 12:54:09.6
------------------------------
SS
------------------------------
[sig-apps] CronJob should not schedule jobs when suspended [Slow] [Conformance] [sig-apps, Slow, Conformance]
k8s.io/kubernetes/test/e2e/apps/cronjob.go:97
• [300.063 seconds]
------------------------------
[sig-node] Pods should support retrieving logs from the container over websockets [NodeConformance] [Conformance] [sig-node, NodeConformance, Conformance]
k8s.io/kubernetes/test/e2e/common/node/pods.go:620
S [SKIPPED] [0.001 seconds]
[sig-node] Pods [It] should support retrieving logs from the container over websockets
  [SKIPPED] Only supported for providers [gce]
------------------------------
[ReportAfterSuite] Kubernetes e2e JUnit report
k8s.io/kubernetes/test/e2e/framework/test_context.go:615
[ReportAfterSuite] PASSED [0.059 seconds]
------------------------------

Ran 3 of 6731 Specs in 436.1 seconds
FAIL! -- 2 Passed | 1 Failed | 0 Pending | 6728 Skipped
"""


def feed_all(parser: GinkgoOutput | PytestOutput, text: str) -> list[SpecEvent]:
    events = []
    for line in text.splitlines(keepends=True):
        event = parser.feed(line)
        if event is not None:
            events.append(event)
    return events


def test_verbose_ginkgo_output_counts_and_names_every_spec() -> None:
    parser = GinkgoOutput()
    parser.start_phase("parallel")
    seen_totals = []
    for line in VERBOSE.splitlines(keepends=True):
        parser.feed(line)
        seen_totals.append(parser.snapshot().total)
    assert seen_totals[0] is None  # unknown until "Will run"
    snapshot = parser.snapshot()
    assert (snapshot.phase, snapshot.total) == ("parallel", 4)
    assert (snapshot.passed, snapshot.failed, snapshot.skipped) == (2, 1, 1 + 6)
    assert snapshot.done == 3  # the "Ran 3 of 6731" line has the last word
    assert (
        snapshot.last_failure
        == "[sig-network] Services should serve a basic endpoint from pods  [Conformance]"
    )

    cases = {case.name: case for case in parser.cases()}
    assert set(cases) == {
        "[sig-auth] ServiceAccounts should create a serviceAccountToken and ensure a successful TokenReview "
        "[Conformance]",
        "[sig-network] Services should serve a basic endpoint from pods  [Conformance]",
        "[sig-apps] CronJob should not schedule jobs when suspended [Slow] [Conformance]",
        "[sig-node] Pods should support retrieving logs from the container over websockets [NodeConformance] "
        "[Conformance]",
    }
    failed = cases["[sig-network] Services should serve a basic endpoint from pods  [Conformance]"]
    assert (failed.status, failed.area, failed.seconds) == ("failed", "network", 135.25)
    assert "timed out waiting for the condition" in failed.message
    skipped = cases[
        "[sig-node] Pods should support retrieving logs from the container over websockets [NodeConformance] "
        "[Conformance]"
    ]
    assert skipped.status == "skipped"
    assert "Only supported for providers" in skipped.message
    assert (
        cases["[sig-apps] CronJob should not schedule jobs when suspended [Slow] [Conformance]"].seconds
        == 300.063
    )


def test_events_name_failures_as_they_happen() -> None:
    events = feed_all(GinkgoOutput(), VERBOSE)
    assert [(e.status, e.name.split("]")[0]) for e in events] == [
        ("passed", "[sig-auth"),
        ("failed", "[sig-network"),
        ("passed", "[sig-apps"),
        ("skipped", "[sig-node"),
    ]


def test_a_new_phase_restarts_done_and_total_but_keeps_the_failures() -> None:
    parser = GinkgoOutput()
    parser.start_phase("parallel")
    feed_all(parser, VERBOSE)
    parser.start_phase("serial")
    assert (parser.snapshot().done, parser.snapshot().total) == (0, None)
    feed_all(parser, "Will run 1 of 6731 specs\n------------------------------\n[sig-x] A [Serial] b\nloc\n")
    feed_all(parser, "• [1.000 seconds]\n")
    snapshot = parser.snapshot()
    assert (snapshot.phase, snapshot.done, snapshot.total, snapshot.failed) == ("serial", 1, 1, 1)


def test_succinct_ginkgo_output_counts_dots_and_names_failures_from_the_next_line() -> None:
    succinct = """\
Will run 5 of 100 specs
SSSS••S•
------------------------------
• [FAILED] [3.100 seconds]
[sig-cli] Kubectl client [It] should check is all data is printed  [Conformance]
k8s.io/kubernetes/test/e2e/kubectl/kubectl.go:1234

  [FAILED] expected version
------------------------------
[SynchronizedAfterSuite] [FAILED] [0.500 seconds]
"""
    parser = GinkgoOutput()
    events = feed_all(parser, succinct)
    snapshot = parser.snapshot()
    assert (snapshot.done, snapshot.total, snapshot.passed, snapshot.failed, snapshot.skipped) == (
        4,
        5,
        3,
        2,
        5,
    )
    assert [(e.status, e.name) for e in events] == [
        ("failed", "[sig-cli] Kubectl client should check is all data is printed  [Conformance]"),
        ("failed", "[SynchronizedAfterSuite]"),
    ]  # each failure's event comes once its name is known
    named = [case for case in parser.cases() if case.name]
    assert [(c.name, c.area) for c in named] == [
        ("[sig-cli] Kubectl client should check is all data is printed  [Conformance]", "cli"),
        ("[SynchronizedAfterSuite]", "suite"),
    ]
    assert "expected version" in named[0].message


def test_pytest_xdist_output() -> None:
    output = """\
============================= test session starts ==============================
created: 2/2 workers
2 workers [4 items]

[gw0] [ 25%] PASSED conformance/suites/apps/test_workloads.py::test_deployment_rolls_out
[gw1] [ 50%] FAILED conformance/suites/network/test_services.py::test_cluster_ip_reachable
[gw0] [ 75%] SKIPPED conformance/suites/storage/test_claims.py::test_claim_binds
[gw1] [100%] PASSED conformance/suites/auth/test_rbac.py::test_role_binding[admin edits]
[gw1] [100%] ERROR conformance/suites/auth/test_rbac.py::test_role_binding[admin edits]
[gw1] [100%] ERROR conformance/suites/network/test_services.py::test_cluster_ip_reachable
"""
    parser = PytestOutput()
    events = feed_all(parser, output)
    snapshot = parser.snapshot()
    assert (snapshot.total, snapshot.done, snapshot.passed, snapshot.failed, snapshot.skipped) == (
        4,
        4,
        1,
        2,
        1,
    )
    assert snapshot.last_failure == "conformance/suites/auth/test_rbac.py::test_role_binding[admin edits]"
    # a teardown error after a failure is the same failure: not shown twice
    assert [e.status for e in events] == ["passed", "failed", "skipped", "passed", "failed"]
    areas = {case.name: case.area for case in parser.cases()}
    assert areas["test_role_binding[admin edits]"] == "auth"
    assert areas["test_claim_binds"] == "storage"


def test_plain_pytest_output() -> None:
    output = """\
collected 2 items

conformance/suites/cli/test_kubectl.py::test_version PASSED              [ 50%]
conformance/suites/cli/test_kubectl.py::test_explain FAILED              [100%]

=================================== FAILURES ===================================
"""
    parser = PytestOutput()
    feed_all(parser, output)
    snapshot = parser.snapshot()
    assert (snapshot.total, snapshot.done, snapshot.failed) == (2, 2, 1)
    assert [(c.name, c.status, c.area) for c in parser.cases()] == [
        ("test_version", "passed", "cli"),
        ("test_explain", "failed", "cli"),
    ]
