"""A run's results: the files of dist/conformance/<run-id>/, the tarball's layout, exit codes, reports."""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from conformance.results import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOTHING_RAN,
    EXIT_OK,
    Case,
    ClusterInfo,
    Results,
    RunMeta,
    area_of,
    exit_code,
    parse_junit,
    render_conformance_doc,
    write_results,
)

SERVER_VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-k3py.1",
    "gitCommit": "0123abc",
    "platform": "linux/amd64",
}


def case(name: str, status: str = "passed", seconds: float = 1.0, message: str = "") -> Case:
    assert status in ("passed", "failed", "skipped")
    return Case(name, "Kubernetes e2e suite", area_of(name), status, seconds, message)  # type: ignore[arg-type]


CASES = [
    case("[sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]", seconds=40.0),
    case(
        "[sig-apps] ReplicaSet should serve a basic image on each replica [Conformance]",
        "failed",
        12.5,
        "[FAILED] pods never became ready\nIn [It] at: k8s.io/kubernetes/test/e2e/apps/replica_set.go:111",
    ),
    case(
        "[sig-network] DNS should provide DNS for services  [Conformance]",
        "failed",
        300.0,
        "DNS lookup timed out",
    ),
    case("[sig-node] Pods should get a host IP [NodeConformance] [Conformance]", seconds=3.5),
    case(
        "[sig-storage] Secrets should be consumable from pods in volume [NodeConformance] [Conformance]",
        seconds=7,
    ),
    case("[sig-storage] CSI Mock volume expansion should expand [Slow]", "skipped", 0.0, "skipped"),
    case(
        "[sig-cli] Kubectl client Kubectl version should check is all data is printed  [Conformance]",
        "skipped",
        0,
        "x",
    ),
    case("[sig-windows] Hybrid cluster network should pass [Feature:Windows]", "skipped", 0.0, "skipped"),
]


def meta(**changes: object) -> RunMeta:
    base = RunMeta(
        run_id="20260106-130800-cncf",
        started=datetime(2026, 1, 6, 13, 8, 0, tzinfo=UTC),
        finished=datetime(2026, 1, 6, 14, 55, 46, tzinfo=UTC),
        k3py_version="0.4.0",
        commit="9ff6170",
        binary=Path("dist/k3py-linux-amd64"),
        binary_sha256="ab" * 32,
        cluster=ClusterInfo(
            server_version=SERVER_VERSION,
            kubectl_version="v1.37.1",
            server_groups={"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "apps"}]},
            nodes={"server": True, "agent-1": True},
        ),
        focus=r"\[Conformance\]",
        commands=(("ginkgo", "--procs=4", "e2e.test"), ("ginkgo", "e2e.test")),
        uuid="dfe30ebc-f635-42f4-9608-8abcd6311916",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def results(tmp_path: Path) -> Results:
    run_dir = tmp_path / "dist" / "conformance" / "20260106-130800-cncf"
    run_dir.mkdir(parents=True)
    (run_dir / "e2e.log").write_text(
        "Running Suite: Kubernetes e2e suite - /usr/local/bin\n"
        "  I0106 13:08:26.798506 20 e2e.go:245] e2e test version: v1.37.0\n"
    )
    return write_results(run_dir, CASES, suite="cncf", meta=meta())


@pytest.mark.parametrize(
    ("name", "classname", "declared", "area"),
    [
        (
            "[sig-api-machinery] Watchers should observe add, update, and delete [Conformance]",
            "",
            "",
            "api-machinery",
        ),
        (
            "[sig-scheduling] SchedulerPredicates [Serial] validates resource limits [Conformance]",
            "",
            "",
            "scheduling",
        ),
        (
            "[sig-instrumentation] Events should manage the lifecycle of an event [Conformance]",
            "",
            "",
            "instrumentation",
        ),
        (
            "[sig-architecture] Conformance Tests should have at least two untainted nodes [Conformance]",
            "",
            "",
            "architecture",
        ),
        ("[sig-auth] ServiceAccounts should mount an API token into pods [Conformance]", "", "", "auth"),
        ("[sig-windows] [Feature:Windows] Kubelet-Stats should return stats", "", "", "windows"),
        ("[k8s.io] Some old-style test", "", "", "other"),
        ("[SynchronizedBeforeSuite]", "Kubernetes e2e suite", "", "suite"),
        ("[ReportAfterSuite] Kubernetes e2e JUnit report", "Kubernetes e2e suite", "", "suite"),
        ("test_rollout", "conformance.suites.apps.test_workloads", "", "apps"),
        ("test_crd", "conformance.suites.api_machinery.test_custom_resources", "", "api-machinery"),
        ("test_x", "conformance.suites.test_cli", "", "cli"),
        ("test_x", "conformance.suites.kube", "node", "node"),
        ("test_x [sig-network]", "conformance.suites.apps.test_x", "", "network"),
        ("test_x", "conformance.suites.misc.test_x", "", "other"),
    ],
)
def test_area_of(name: str, classname: str, declared: str, area: str) -> None:
    assert area_of(name, classname, declared) == area


def test_the_run_directory_holds_every_result_file(results: Results) -> None:
    run_dir = results.run_dir
    names = sorted(path.name for path in run_dir.iterdir())
    tarball = results.files.tarball.name
    assert re.fullmatch(r"202601061455_sonobuoy_dfe30ebc-f635-42f4-9608-8abcd6311916\.tar\.gz", tarball)
    assert names == sorted(["junit_01.xml", "e2e.log", tarball, "PRODUCT.yaml", "summary.md"])
    # no report was there, so it is rendered from the cases; the suite's own e2e.log is kept
    assert parse_junit(results.files.junit) == CASES
    assert "Running Suite" in results.files.e2e_log.read_text()
    assert results.e2e_version == "v1.37.0"
    assert (results.counts.passed, results.counts.failed, results.counts.skipped) == (3, 2, 3)


def test_a_report_the_suite_wrote_is_kept_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "junit_01.xml").write_text('<testsuites><testsuite name="raw"/></testsuites>')
    results = write_results(tmp_path, CASES[:1], suite="cncf", meta=meta())
    assert results.files.junit.read_text() == '<testsuites><testsuite name="raw"/></testsuites>'
    # no output was captured: e2e.log lists the cases and says so
    log = results.files.e2e_log.read_text()
    assert "no output was captured" in log
    assert "PASSED" in log and "Deployment should run the lifecycle" in log
    assert results.e2e_version is None


def test_the_tarball_follows_sonobuoys_layout(results: Results) -> None:
    with tarfile.open(results.files.tarball, "r:gz") as archive:
        members = {member.name: member for member in archive.getmembers()}
        files = {name for name, member in members.items() if member.isfile()}
        assert files == {
            "meta/config.json",
            "meta/info.json",
            "meta/run.log",
            "meta/clusterhealth.json",
            "plugins/e2e/results/global/junit_01.xml",
            "plugins/e2e/results/global/e2e.log",
            "plugins/e2e/sonobuoy_results.yaml",
            "serverversion.json",
            "servergroups.json",
        }
        assert {"meta", "plugins", "plugins/e2e", "plugins/e2e/results", "plugins/e2e/results/global"} <= {
            name for name, member in members.items() if member.isdir()
        }
        assert all(member.uid == 0 and member.gid == 0 for member in members.values())

        def read(name: str) -> bytes:
            extracted = archive.extractfile(name)
            assert extracted is not None
            return extracted.read()

        config = json.loads(read("meta/config.json"))
        assert config["UUID"] == "dfe30ebc-f635-42f4-9608-8abcd6311916"
        assert re.fullmatch(r"v\d+\.\d+\.\d+", config["Version"])
        assert config["k3py"]["binarySha256"] == "ab" * 32
        assert json.loads(read("meta/info.json")) == {"plugins": ["e2e"]}
        run_log = [json.loads(line) for line in read("meta/run.log").decode().splitlines()]
        assert {"level", "msg", "time"} <= set(run_log[0])
        assert "3 passed, 2 failed, 3 skipped" in run_log[-1]["msg"]
        assert read("plugins/e2e/results/global/junit_01.xml") == results.files.junit.read_bytes()
        assert read("plugins/e2e/results/global/e2e.log") == results.files.e2e_log.read_bytes()
        assert json.loads(read("serverversion.json")) == SERVER_VERSION
        assert json.loads(read("servergroups.json"))["groups"] == [{"name": "apps"}]
        health = json.loads(read("meta/clusterhealth.json"))
        assert health["api_version"] == "v1.37.0-k3py.1"
        assert (health["node_health"]["total_nodes"], health["node_health"]["healthy_nodes"]) == (2, 2)

        tree = yaml.safe_load(read("plugins/e2e/sonobuoy_results.yaml"))
    # what `sonobuoy results` walks: plugin > file > suite > tests, failures bubbling up
    assert (tree["name"], tree["status"], tree["meta"]) == ("e2e", "failed", {"type": "summary"})
    [junit_item] = tree["items"]
    assert junit_item["meta"] == {"file": "results/global/junit_01.xml", "type": "file"}
    [suite_item] = junit_item["items"]
    assert suite_item["name"] == "Kubernetes e2e suite"
    leaves = suite_item["items"]
    assert [leaf["status"] for leaf in leaves] == [c.status for c in CASES]
    failed = [leaf for leaf in leaves if leaf["status"] == "failed"]
    assert failed[1]["details"] == {"failure": "DNS lookup timed out"}


def test_the_tarball_is_the_same_for_the_same_results(results: Results, tmp_path: Path) -> None:
    again = tmp_path / "again"
    again.mkdir()
    (again / "e2e.log").write_bytes(results.files.e2e_log.read_bytes())
    second = write_results(again, CASES, suite="cncf", meta=meta())
    assert second.files.tarball.read_bytes() == results.files.tarball.read_bytes()
    # rewriting a run directory replaces its tarball, never piles them up
    third = write_results(again, CASES, suite="cncf", meta=meta(uuid="0f0f0f0f-0000-4000-8000-000000000000"))
    assert [p.name for p in again.glob("*_sonobuoy_*")] == [third.files.tarball.name]


def test_unknown_cluster_facts_are_left_out_not_invented(tmp_path: Path) -> None:
    results = write_results(tmp_path, CASES, suite="native", meta=meta(cluster=ClusterInfo(), binary=None))
    with tarfile.open(results.files.tarball, "r:gz") as archive:
        names = archive.getnames()
    assert "serverversion.json" not in names and "servergroups.json" not in names
    summary = results.files.summary.read_text()
    assert "| server version | unknown |" in summary
    assert "| k3py binary | from source |" in summary


def test_the_summary(results: Results) -> None:
    summary = results.files.summary.read_text()
    assert summary.startswith("# Conformance run `20260106-130800-cncf`: cncf suite")
    assert "**FAILED:** 3 passed, 2 failed, 3 skipped, 8 in all, in 1h47m46s." in summary
    # by area, every upstream area listed, others after them
    assert "| apps | 1 | 1 | 0 | 2 |" in summary
    assert "| network | 0 | 1 | 0 | 1 |" in summary
    assert "| storage | 1 | 0 | 1 | 2 |" in summary
    assert "| scheduling | 0 | 0 | 0 | 0 |" in summary
    assert "| windows | 0 | 0 | 1 | 1 |" in summary
    assert summary.index("| architecture |") < summary.index("| windows |")
    assert "| **all** | **3** | **2** | **3** | **8** |" in summary
    # the failures with their messages
    assert "## Failures (2)" in summary
    assert "### [sig-apps] ReplicaSet should serve a basic image on each replica [Conformance]" in summary
    assert (
        "pods never became ready\nIn [It] at: k8s.io/kubernetes/test/e2e/apps/replica_set.go:111" in summary
    )
    assert "DNS lookup timed out" in summary
    # the slowest tests, slowest first, skipped ones left out
    slowest = summary[summary.index("## Slowest tests") :]
    assert slowest.index("| 300.0 | failed | [sig-network] DNS") < slowest.index(
        "| 40.0 | passed | [sig-apps]"
    )
    assert "Hybrid cluster" not in slowest
    # versions
    for fact in (
        "| server version | `v1.37.0-k3py.1` |",
        "| kubectl version | `v1.37.1` |",
        "| e2e.test version | `v1.37.0` |",
        "| k3py version | `0.4.0` |",
        f"| k3py binary | `dist/k3py-linux-amd64` (sha256 `{'ab' * 32}`) |",
        "| commit | `9ff6170` |",
        "| nodes | server (Ready), agent-1 (Ready) |",
    ):
        assert fact in summary


def test_a_long_failure_message_is_clipped_in_the_summary(tmp_path: Path) -> None:
    long = "\n".join(f"line {i}" for i in range(500))
    results = write_results(tmp_path, [case("[sig-cli] x", "failed", 1.0, long)], suite="cncf", meta=meta())
    summary = results.files.summary.read_text()
    assert "line 39" in summary and "line 40\n" not in summary
    assert "(460 more lines)" in summary
    assert results.files.junit.read_text().count("line 499") == 1  # the report keeps it whole


def test_an_interrupted_run_says_so(tmp_path: Path) -> None:
    results = write_results(tmp_path, CASES[:2], suite="cncf", meta=meta(interrupted=True))
    assert "**Interrupted**" in results.files.summary.read_text()
    assert "**INTERRUPTED:**" in results.files.summary.read_text()


def test_product_yaml_has_every_field_the_cncf_asks_for(results: Results) -> None:
    product = yaml.safe_load(results.files.product.read_text())
    assert list(product) == [
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
    ]
    assert (product["name"], product["version"], product["type"]) == ("k3py", "0.4.0", "distribution")
    assert all(value for value in product.values())  # the submission bot rejects empty fields
    assert product["vendor"] == "FILL IN before submitting"


@pytest.mark.parametrize(
    ("statuses", "interrupted", "allow_failures", "code"),
    [
        (["passed", "skipped"], False, False, EXIT_OK),
        (["passed", "failed"], False, False, EXIT_FAILED),
        (["passed", "failed"], False, True, EXIT_OK),
        (["skipped", "skipped"], False, False, EXIT_NOTHING_RAN),
        ([], False, True, EXIT_NOTHING_RAN),
        (["passed"], True, False, EXIT_INTERRUPTED),
        (["passed", "failed"], True, True, EXIT_INTERRUPTED),
    ],
)
def test_exit_code(
    tmp_path: Path, statuses: list[str], interrupted: bool, allow_failures: bool, code: int
) -> None:
    cases = [case(f"[sig-apps] t{i}", status) for i, status in enumerate(statuses)]
    results = write_results(tmp_path, cases, suite="cncf", meta=meta(interrupted=interrupted))
    assert exit_code(results, allow_failures=allow_failures) == code


def test_an_unknown_suite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown suite 'all'"):
        write_results(tmp_path, CASES, suite="all", meta=meta())


def test_the_conformance_doc_counts_conformance_tests_by_area(results: Results) -> None:
    doc = render_conformance_doc(results, commit="9ff6170", blockers=["pods: no CNI yet (network, 41 tests)"])
    # 6 [Conformance] tests in the report: 3 passed, 2 failed, 1 not run; the others do not count
    assert "**3 passed, 2 failed, 1 not run, of 6 `[Conformance]` tests** at commit `9ff6170`." in doc
    assert "| apps | 1 | 1 | 0 | 2 |" in doc
    assert "| cli | 0 | 0 | 1 | 1 |" in doc
    assert "| storage | 1 | 0 | 0 | 1 |" in doc
    assert "| scheduling | 0 | 0 | 0 | 0 |" in doc
    assert "windows" not in doc
    assert "| **all** | **3** | **2** | **1** | **6** |" in doc
    assert "## What blocks the rest\n\n- pods: no CNI yet (network, 41 tests)" in doc
    assert "- [sig-network] DNS should provide DNS for services  [Conformance]" in doc
    assert "v1.37" in doc and "e2e.test `v1.37.0`" in doc


def test_the_conformance_doc_counts_listed_tests_the_run_missed_as_not_run(results: Results) -> None:
    listed = [c.name for c in CASES if c.conformance] + [
        "[sig-scheduling] LimitRange should create a LimitRange with defaults [Conformance]",
        "[sig-auth] SubjectReview should support SubjectReview API operations [Conformance]",
    ]
    doc = render_conformance_doc(results, commit="9ff6170", blockers=[], conformance_tests=listed)
    assert "**3 passed, 2 failed, 3 not run, of 8 `[Conformance]` tests**" in doc
    assert "| scheduling | 0 | 0 | 1 | 1 |" in doc
    assert "| auth | 0 | 0 | 1 | 1 |" in doc
    assert "Not analysed for this run." in doc


def test_the_conformance_doc_is_only_for_the_upstream_suite(tmp_path: Path) -> None:
    native = write_results(tmp_path, CASES, suite="native", meta=meta())
    with pytest.raises(ValueError, match="upstream suite"):
        render_conformance_doc(native, commit="x", blockers=[])


def test_the_conformance_doc_when_everything_passed(tmp_path: Path) -> None:
    passed = [case("[sig-apps] a [Conformance]"), case("[sig-node] b [Conformance]")]
    doc = render_conformance_doc(
        write_results(tmp_path, passed, suite="cncf", meta=meta()), commit="abc", blockers=[]
    )
    assert "**2 passed, 0 failed, 0 not run, of 2 `[Conformance]` tests**" in doc
    assert "Nothing: every `[Conformance]` test passed." in doc
    assert "## Failed tests" not in doc
