"""The conformance test list read from a Ginkgo dry run's JSON report."""

from __future__ import annotations

from conformance.upstream.speclist import ConformanceTest, parse_dry_run_report


def spec(
    texts: list[str], leaf: str, labels: list[str], *, kind: str = "It", state: str = "passed"
) -> dict[str, object]:
    return {
        "ContainerHierarchyTexts": texts,
        "ContainerHierarchyLabels": [["sig-apps"], []][: len(texts)],
        "LeafNodeType": kind,
        "LeafNodeText": leaf,
        "LeafNodeLabels": labels,
        "LeafNodeLocation": {"FileName": "k8s.io/kubernetes/test/e2e/apps/statefulset.go", "LineNumber": 723},
        "State": state,
    }


REPORT = [
    {
        "SuiteDescription": "Kubernetes e2e suite",
        "SpecReports": [
            {"LeafNodeType": "ReportBeforeSuite", "State": "passed"},
            spec(
                ["[sig-apps] StatefulSet", "Basic StatefulSet functionality [StatefulSetBasic]"],
                "should perform rolling updates [Conformance] [Serial]",
                ["Serial", "Conformance"],
            ),
            spec(
                ["[sig-apps] Deployment"], "deployment should support rollover [Conformance]", ["Conformance"]
            ),
            spec(["[sig-apps] Deployment"], "skipped by focus", [], state="skipped"),
        ],
    }
]


def test_only_specs_that_would_run_are_listed_with_their_full_names() -> None:
    tests = parse_dry_run_report(REPORT)
    assert [t.name for t in tests] == [
        "[sig-apps] Deployment deployment should support rollover [Conformance]",
        "[sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic] "
        "should perform rolling updates [Conformance] [Serial]",
    ]


def test_location_labels_serial_and_area() -> None:
    rolling = parse_dry_run_report(REPORT)[1]
    assert rolling.file == "test/e2e/apps/statefulset.go"
    assert rolling.line == 723
    assert rolling.labels == ("sig-apps", "Serial", "Conformance")
    assert rolling.serial
    assert rolling.area == "sig-apps"
    rollover = parse_dry_run_report(REPORT)[0]
    assert not rollover.serial


def test_a_spec_without_a_sig_has_no_area() -> None:
    assert ConformanceTest(name="plain [Conformance]", file="f.go", line=1, labels=()).area == ""
