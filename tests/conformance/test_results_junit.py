"""JUnit parsing and merging: ginkgo's reports (upstream e2e.test) and pytest's (the native suite).

The fixtures follow real reports: ginkgo v2 as written by e2e.test into its --report-dir (the
`[It] ` prefix, a `status` attribute, suite nodes beside the specs; see the junit_01.xml files of
cncf/k8s-conformance submissions), pytest's xunit2 as `--junitxml` writes it.
"""

# ruff: noqa: E501  (fixtures copy real reports, whose test names are long)
from __future__ import annotations

from pathlib import Path

import pytest

from conformance.results_junit import JUnitError, merge_junit, parse_junit, write_junit
from conformance.results_model import Case

GINKGO = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="7" disabled="3" errors="1" failures="1" time="161.4">
  <testsuite name="Kubernetes e2e suite" package="/usr/local/bin" tests="7" disabled="0" skipped="3"
             errors="1" failures="1" time="161.4" timestamp="2026-01-06T13:08:19">
    <properties>
      <property name="SuiteSucceeded" value="false"></property>
      <property name="FocusStrings" value="\\[Conformance\\]"></property>
    </properties>
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed"
              time="0.05322762"></testcase>
    <testcase name="[It] [sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate configmap [Conformance]"
              classname="Kubernetes e2e suite" status="passed" time="2.726099552"></testcase>
    <testcase name="[It] [sig-network] Services should serve a basic endpoint from pods  [Conformance]"
              classname="Kubernetes e2e suite" status="failed" time="135.25">
      <failure message="failed to get service endpoints: timed out waiting for the condition" type="failed">[FAILED] failed to get service endpoints: timed out waiting for the condition
In [It] at: k8s.io/kubernetes/test/e2e/network/service.go:797 @ 01/06/26 13:10:34.5</failure>
      <system-err>&gt; Enter [BeforeEach] [sig-network] Services - set up framework</system-err>
    </testcase>
    <testcase name="[It] [sig-node] Pods should be submitted and removed [NodeConformance] [Conformance]"
              classname="Kubernetes e2e suite" status="panicked" time="23.4">
      <error message="runtime error: invalid memory address or nil pointer dereference" type="panicked">[PANICKED] Test Panicked</error>
    </testcase>
    <testcase name="[It] [sig-api-machinery] API Streaming (aka. WatchList) [FeatureGate:WatchList] [Beta] server supports sending resources in Table format"
              classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [sig-storage] In-tree Volumes [Driver: local] should support readOnly [Slow]"
              classname="Kubernetes e2e suite" status="pending" time="0"></testcase>
    <testcase name="[It] [sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]"
              classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped - the parallel run leaves [Serial] tests to the serial one"></skipped>
    </testcase>
  </testsuite>
</testsuites>
"""

PYTEST = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" \
errors="1" failures="2" skipped="1" tests="6" time="4.210" timestamp="2026-01-06T10:00:00.000000+00:00" \
hostname="ci"><testcase classname="conformance.suites.apps.test_workloads" name="test_deployment_rolls_out" \
time="1.500" /><testcase classname="conformance.suites.network.test_services" name="test_cluster_ip_reachable" \
time="0.800"><failure message="AssertionError: service not reachable&#10;assert False">def \
test_cluster_ip_reachable(kube):
&gt;       assert False
E       AssertionError: service not reachable</failure></testcase><testcase \
classname="conformance.suites.storage.test_claims" name="test_claim_binds" time="0.000"><skipped \
type="pytest.skip" message="no default StorageClass">conformance/suites/storage/test_claims.py:12: no default \
StorageClass</skipped></testcase><testcase classname="conformance.suites.auth.test_rbac" name="test_role_binding" \
time="0.300"><failure message="AssertionError: forbidden">AssertionError: forbidden</failure></testcase>\
<testcase classname="conformance.suites.auth.test_rbac" name="test_role_binding" time="0.100"><error \
message="failed on teardown with &quot;RuntimeError: namespace stuck&quot;">RuntimeError: namespace stuck\
</error></testcase><testcase classname="conformance.suites.kube" name="test_watch[events]" time="0.2">\
<properties><property name="area" value="api_machinery" /></properties></testcase></testsuite></testsuites>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def by_name(cases: list[Case]) -> dict[str, Case]:
    return {case.name: case for case in cases}


def test_ginkgo_report_statuses_names_areas_and_times(tmp_path: Path) -> None:
    cases = by_name(parse_junit(write(tmp_path, "junit_01.xml", GINKGO)))

    assert len(cases) == 7
    webhook = cases[
        "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate configmap [Conformance]"
    ]
    assert (webhook.status, webhook.area, webhook.classname) == (
        "passed",
        "api-machinery",
        "Kubernetes e2e suite",
    )
    assert webhook.seconds == pytest.approx(2.726099552)
    assert webhook.message == ""
    assert webhook.conformance

    service = cases["[sig-network] Services should serve a basic endpoint from pods  [Conformance]"]
    assert (service.status, service.area, service.seconds) == ("failed", "network", 135.25)
    assert "timed out waiting for the condition" in service.message
    assert "service.go:797" in service.message

    panicked = cases["[sig-node] Pods should be submitted and removed [NodeConformance] [Conformance]"]
    assert (panicked.status, panicked.area) == ("failed", "node")
    assert "nil pointer dereference" in panicked.message

    pending = cases["[sig-storage] In-tree Volumes [Driver: local] should support readOnly [Slow]"]
    assert (pending.status, pending.area, pending.message) == ("skipped", "storage", "pending")
    assert not pending.conformance

    skipped = cases["[sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]"]
    assert skipped.status == "skipped"
    assert "serial one" in skipped.message

    suite_node = cases["[SynchronizedBeforeSuite]"]
    assert (suite_node.status, suite_node.area) == ("passed", "suite")


def test_pytest_report_statuses_areas_and_folded_duplicates(tmp_path: Path) -> None:
    cases = parse_junit(write(tmp_path, "junit.xml", PYTEST))
    named = by_name(cases)

    # the test that failed and then errored in teardown is reported twice by pytest: one case
    assert len(cases) == 5
    rbac = named["test_role_binding"]
    assert (rbac.status, rbac.area) == ("failed", "auth")
    assert "forbidden" in rbac.message and "namespace stuck" in rbac.message
    assert rbac.seconds == pytest.approx(0.4)

    assert (named["test_deployment_rolls_out"].status, named["test_deployment_rolls_out"].area) == (
        "passed",
        "apps",
    )
    assert named["test_deployment_rolls_out"].classname == "conformance.suites.apps.test_workloads"
    network = named["test_cluster_ip_reachable"]
    assert (network.status, network.area) == ("failed", "network")
    assert "assert False" in network.message
    claim = named["test_claim_binds"]
    assert (claim.status, claim.area) == ("skipped", "storage")
    assert "no default StorageClass" in claim.message
    # a declared area property wins over a path that names none
    assert named["test_watch[events]"].area == "api-machinery"


def test_a_lone_testsuite_root_and_odd_times_are_read(tmp_path: Path) -> None:
    old_pytest = (
        '<testsuite name="pytest" tests="2"><testcase classname="t" name="a" time="1,234.5"/>'
        '<testcase classname="t" name="b" time="fast"/></testsuite>'
    )
    cases = parse_junit(write(tmp_path, "j.xml", old_pytest))
    assert [(c.name, c.seconds, c.status) for c in cases] == [("a", 1234.5, "passed"), ("b", 0.0, "passed")]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "not a JUnit report"),
        ("<testsuites><testsuite><testcase name='cut off", "not a JUnit report"),
        ("<html><body>502</body></html>", "root element <html>"),
    ],
)
def test_unreadable_reports_raise_a_named_error(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(JUnitError, match=complaint):
        parse_junit(write(tmp_path, "bad.xml", text))
    with pytest.raises(JUnitError, match="no such JUnit report"):
        parse_junit(tmp_path / "missing.xml")


def ginkgo_report(statuses: dict[str, str]) -> str:
    cases = []
    for name, status in statuses.items():
        body = {
            "passed": "",
            "skipped": '<skipped message="skipped"></skipped>',
            "failed": '<failure message="boom" type="failed">boom</failure>',
        }[status]
        cases.append(
            f'<testcase name="[It] {name}" classname="Kubernetes e2e suite" status="{status}" time="1.5">'
            f"{body}</testcase>"
        )
    return (
        '<testsuites><testsuite name="Kubernetes e2e suite">'
        '<testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="0.1"/>'
        + "".join(cases)
        + "</testsuite></testsuites>"
    )


def test_merge_keeps_for_each_spec_the_run_that_executed_it(tmp_path: Path) -> None:
    parallel_name = "[sig-apps] Job should run a job to completion [Conformance]"
    serial_name = "[sig-apps] Daemon set [Serial] should rollback without unnecessary restarts [Conformance]"
    other = "[sig-storage] Volumes should do something [Feature:Foo]"
    parallel = write(
        tmp_path,
        "parallel.xml",
        ginkgo_report({parallel_name: "passed", serial_name: "skipped", other: "skipped"}),
    )
    serial = write(
        tmp_path,
        "serial.xml",
        ginkgo_report({parallel_name: "skipped", serial_name: "failed", other: "skipped"}),
    )
    target = tmp_path / "out" / "junit_01.xml"

    merge_junit([parallel, serial, tmp_path / "never-written.xml"], target)

    cases = by_name(parse_junit(target))
    assert set(cases) == {"[SynchronizedBeforeSuite]", parallel_name, serial_name, other}
    assert cases[parallel_name].status == "passed"
    assert cases[serial_name].status == "failed"
    assert cases[serial_name].message == "boom"
    assert cases[other].status == "skipped"
    text = target.read_text()
    assert text.startswith("<?xml")
    assert '<testsuites tests="4" disabled="0" errors="0" failures="1"' in text
    assert 'skipped="1"' in text


def test_merge_without_any_readable_report_fails(tmp_path: Path) -> None:
    with pytest.raises(JUnitError, match="no readable JUnit report"):
        merge_junit([tmp_path / "a.xml", write(tmp_path, "b.xml", "garbage")], tmp_path / "out.xml")


def test_rendered_cases_read_back_the_same(tmp_path: Path) -> None:
    cases = [
        Case("[sig-cli] Kubectl version [Conformance]", "Kubernetes e2e suite", "cli", "passed", 1.25),
        Case(
            "test_x",
            "conformance.suites.node.test_node_api",
            "node",
            "failed",
            2.0,
            "AssertionError: x\nmore",
        ),
        Case("test_y", "conformance.suites.storage.test_claims", "storage", "skipped", 0.0, "no storage"),
    ]
    target = tmp_path / "junit_01.xml"
    write_junit(cases, target, suite_name="k3py native conformance suite")
    assert parse_junit(target) == cases
