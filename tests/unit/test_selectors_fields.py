"""Field selectors: parsing with escapes, matching, and which fields each resource accepts.

The per-kind tables mirror kube-apiserver's field-label conversions (which decide acceptance
and the 400 message) and its selectable-field sets (what a term is matched against).
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given

from k3py.api.selectors import (
    CustomResourceFields,
    FieldRequirement,
    FieldSelector,
    SelectorError,
    check_field_selector,
    escape_field_value,
    parse_field_selector,
    selectable_fields,
)

DEFAULT_REJECTION = '"{}" is not a known field selector: only "metadata.name", "metadata.namespace"'

# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "requirements", "printed"),
    [
        ("", (), ""),
        (",", (), ""),
        (",,a=b,", (FieldRequirement("a", "b"),), "a=b"),
        ("a=b", (FieldRequirement("a", "b"),), "a=b"),
        ("a==b", (FieldRequirement("a", "b"),), "a=b"),
        ("a!=b", (FieldRequirement("a", "b", equals=False),), "a!=b"),
        ("a=", (FieldRequirement("a", ""),), "a="),
        ("=b", (FieldRequirement("", "b"),), "=b"),
        ("a= b ", (FieldRequirement("a", " b "),), "a= b "),  # no whitespace trimming
        ("b=2,a=1", (FieldRequirement("a", "1"), FieldRequirement("b", "2")), "a=1,b=2"),  # terms are sorted
        (
            "status.phase!=Running,spec.restartPolicy=Always",
            (
                FieldRequirement("spec.restartPolicy", "Always"),
                FieldRequirement("status.phase", "Running", False),
            ),
            "spec.restartPolicy=Always,status.phase!=Running",
        ),
        ("a=b\\,c", (FieldRequirement("a", "b,c"),), "a=b\\,c"),
        ("a=b\\=c", (FieldRequirement("a", "b=c"),), "a=b\\=c"),
        ("a=b\\\\c", (FieldRequirement("a", "b\\c"),), "a=b\\\\c"),
        ("a=\\,,b=\\=", (FieldRequirement("a", ","), FieldRequirement("b", "=")), "a=\\,,b=\\="),
    ],
)
def test_parse(text: str, requirements: tuple[FieldRequirement, ...], printed: str) -> None:
    selector = parse_field_selector(text)
    assert selector.requirements == requirements
    assert str(selector) == printed
    assert selector.empty is (not requirements)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a in (b)", "invalid selector: 'a in (b)'; can't understand 'a in (b)'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a!==b", "invalid field selector: unescaped character in value: 61"),
        ("a=!=b", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
        ("a=b\\\\\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_field_selector(text)
    assert caught.value.message == message


def test_an_escaped_comma_does_not_split_terms() -> None:
    assert parse_field_selector("metadata.name=a\\,b").requirements == (
        FieldRequirement("metadata.name", "a,b"),
    )


@pytest.mark.parametrize(
    ("text", "fields", "matches"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a=", {}, True),  # a missing field reads as ""
        ("a!=b", {}, True),
        ("a!=", {}, False),
        ("a=b,c!=d", {"a": "b", "c": "e"}, True),
        ("a=b,c!=d", {"a": "b", "c": "d"}, False),
    ],
)
def test_matching(text: str, fields: dict[str, str], matches: bool) -> None:
    assert parse_field_selector(text).matches(fields) is matches


def test_requires_exact_match() -> None:
    selector = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert selector.requires_exact_match("spec.nodeName") == "n1"
    assert selector.requires_exact_match("status.phase") is None
    assert selector.requires_exact_match("metadata.name") is None


_FIELD = st.text(alphabet="abc.XY", min_size=1, max_size=8)
_VALUE = st.text(alphabet="ab=,\\ !é", max_size=8)


@given(st.lists(st.tuples(_FIELD, _VALUE, st.booleans()), max_size=4))
def test_escaping_round_trips(terms: list[tuple[str, str, bool]]) -> None:
    text = ",".join(f"{f}{'=' if eq else '!='}{escape_field_value(v)}" for f, v, eq in terms)
    selector = parse_field_selector(text)
    assert sorted((r.field, r.value, r.equals) for r in selector.requirements) == sorted(terms)
    assert parse_field_selector(str(selector)) == selector


# -- which labels each resource accepts ---------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "label"),
    [
        ("pods", "metadata.name"),
        ("pods", "metadata.namespace"),
        ("pods", "spec.nodeName"),
        ("pods", "spec.restartPolicy"),
        ("pods", "spec.schedulerName"),
        ("pods", "spec.serviceAccountName"),
        ("pods", "spec.hostNetwork"),
        ("pods", "status.phase"),
        ("pods", "status.podIP"),
        ("pods", "status.podIPs"),
        ("pods", "status.nominatedNodeName"),
        ("nodes", "metadata.name"),
        ("nodes", "spec.unschedulable"),
        ("replicationcontrollers", "status.replicas"),
        ("events", "involvedObject.kind"),
        ("events", "involvedObject.uid"),
        ("events", "involvedObject.fieldPath"),
        ("events", "reason"),
        ("events", "reportingComponent"),
        ("events", "source"),
        ("events", "type"),
        ("events", "metadata.namespace"),
        ("namespaces", "status.phase"),
        ("secrets", "type"),
        ("services", "spec.clusterIP"),
        ("services", "spec.type"),
        ("jobs.batch", "status.successful"),
        ("certificatesigningrequests.certificates.k8s.io", "spec.signerName"),
        ("resourceslices.resource.k8s.io", "spec.driver"),
        ("resourceslices.resource.k8s.io", "spec.nodeName"),
        ("configmaps", "metadata.namespace"),
        ("deployments.apps", "metadata.name"),
        ("customresourcedefinitions.apiextensions.k8s.io", "metadata.name"),
    ],
)
def test_supported_labels_pass_unchanged(resource: str, label: str) -> None:
    selector = parse_field_selector(f"{label}=x")
    assert check_field_selector(resource, selector) == selector


@pytest.mark.parametrize(
    ("resource", "label", "converted"),
    [
        ("pods", "spec.host", "spec.nodeName"),  # old v1 clients
        ("events.events.k8s.io", "regarding.kind", "involvedObject.kind"),
        ("events.events.k8s.io", "regarding.name", "involvedObject.name"),
        ("events.events.k8s.io", "regarding.resourceVersion", "involvedObject.resourceVersion"),
        ("events.events.k8s.io", "reportingController", "reportingComponent"),
        ("events.events.k8s.io", "type", "type"),
    ],
)
def test_labels_are_converted(resource: str, label: str, converted: str) -> None:
    checked = check_field_selector(resource, parse_field_selector(f"{label}!=x"))
    assert checked.requirements == (FieldRequirement(converted, "x", equals=False),)


@pytest.mark.parametrize(
    ("resource", "label", "message"),
    [
        ("pods", "spec.containers", "field label not supported: spec.containers"),
        ("nodes", "metadata.namespace", "field label not supported: metadata.namespace"),
        ("nodes", "status.phase", "field label not supported: status.phase"),
        ("namespaces", "name", "field label not supported: name"),
        ("namespaces", "metadata.namespace", "field label not supported: metadata.namespace"),
        ("events", "involvedObject.foo", "field label not supported: involvedObject.foo"),
        ("events.events.k8s.io", "involvedObject.kind", "field label not supported: involvedObject.kind"),
        ("events.events.k8s.io", "reportingComponent", "field label not supported: reportingComponent"),
        ("secrets", "data", "field label not supported: data"),
        ("services", "spec.ports", "field label not supported: spec.ports"),
        ("jobs.batch", "status.active", 'field label "status.active" not supported for batchv1.Job'),
        (
            "certificatesigningrequests.certificates.k8s.io",
            "metadata.namespace",
            "field label not supported: metadata.namespace",
        ),
        (
            "resourceslices.resource.k8s.io",
            "spec.pool",
            "field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: spec.pool",
        ),
        ("configmaps", "data.x", DEFAULT_REJECTION.format("data.x")),
        ("cronjobs.batch", "status.successful", DEFAULT_REJECTION.format("status.successful")),
        # upstream computes status.replicas for ReplicaSets but never registered the label (#135136)
        ("replicasets.apps", "status.replicas", DEFAULT_REJECTION.format("status.replicas")),
        ("deployments.apps", "spec.paused", DEFAULT_REJECTION.format("spec.paused")),
        (
            "jobs",
            "status.successful",
            DEFAULT_REJECTION.format("status.successful"),
        ),  # unqualified: not batch
    ],
)
def test_unsupported_labels_are_rejected(resource: str, label: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        check_field_selector(resource, parse_field_selector(f"{label}=x"))
    assert caught.value.message == message


def test_the_first_bad_term_in_sorted_order_is_reported() -> None:
    with pytest.raises(SelectorError) as caught:
        check_field_selector("pods", parse_field_selector("zzz=1,status.phase=Running,aaa=2"))
    assert caught.value.message == "field label not supported: aaa"


def test_the_default_rejection_quotes_like_go() -> None:
    with pytest.raises(SelectorError) as caught:
        check_field_selector("configmaps", parse_field_selector('a"b=1'))
    assert caught.value.message == DEFAULT_REJECTION.format('a\\"b')


def test_custom_resources_accept_their_selectable_fields() -> None:
    namespaced = CustomResourceFields(selectable_fields=("spec.color",))
    selector = parse_field_selector("spec.color=red,metadata.namespace=ns")
    assert check_field_selector("widgets.example.com", selector, custom=namespaced) == selector
    with pytest.raises(SelectorError) as caught:
        check_field_selector("widgets.example.com", parse_field_selector("spec.size=1"), custom=namespaced)
    assert caught.value.message == "field label not supported: spec.size"
    cluster = CustomResourceFields(cluster_scoped=True)
    with pytest.raises(SelectorError) as caught:
        check_field_selector(
            "gadgets.example.com", parse_field_selector("metadata.namespace="), custom=cluster
        )
    assert caught.value.message == "field label not supported: metadata.namespace"


# -- what objects are matched against -----------------------------------------------------------


def test_pod_fields() -> None:
    pod = {
        "metadata": {"name": "web-0", "namespace": "shop"},
        "spec": {
            "nodeName": "n1",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "web",
            "hostNetwork": True,
        },
        "status": {
            "phase": "Running",
            "podIP": "10.42.0.9",
            "podIPs": [{"ip": "10.42.0.9"}, {"ip": "fd00::9"}],
            "nominatedNodeName": "n2",
        },
    }
    assert selectable_fields("pods", pod) == {
        "metadata.name": "web-0",
        "metadata.namespace": "shop",
        "spec.nodeName": "n1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "web",
        "spec.hostNetwork": "true",
        "status.phase": "Running",
        "status.podIP": "10.42.0.9",
        "status.nominatedNodeName": "n2",
    }


def test_a_bare_pod_has_every_field_empty_or_false() -> None:
    fields = selectable_fields("pods", {"metadata": {"name": "p", "namespace": "d"}})
    assert fields["spec.hostNetwork"] == "false"
    assert fields["status.podIP"] == ""
    assert "status.podIPs" not in fields  # accepted by the label check, never computed: matches only ""
    assert parse_field_selector("status.podIPs=").matches(fields)


def test_pod_ip_falls_back_to_the_singular_field() -> None:
    pod = {"metadata": {"name": "p"}, "status": {"podIP": "10.0.0.1"}}
    assert selectable_fields("pods", pod)["status.podIP"] == "10.0.0.1"


@pytest.mark.parametrize(
    ("resource", "obj", "expected"),
    [
        (
            "nodes",
            {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}},
            {"metadata.name": "n1", "spec.unschedulable": "true"},
        ),
        ("nodes", {"metadata": {"name": "n1"}}, {"metadata.name": "n1", "spec.unschedulable": "false"}),
        (
            "namespaces",
            {"metadata": {"name": "dev"}, "status": {"phase": "Terminating"}},
            {"metadata.name": "dev", "status.phase": "Terminating", "name": "dev"},
        ),
        (
            "secrets",
            {"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls"},
            {"metadata.name": "s", "metadata.namespace": "d", "type": "kubernetes.io/tls"},
        ),
        (
            "services",
            {"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": "None", "type": "ClusterIP"}},
            {
                "metadata.name": "s",
                "metadata.namespace": "d",
                "spec.clusterIP": "None",
                "spec.type": "ClusterIP",
            },
        ),
        (
            "replicationcontrollers",
            {"metadata": {"name": "r", "namespace": "d"}, "status": {"replicas": 3}},
            {"metadata.name": "r", "metadata.namespace": "d", "status.replicas": "3"},
        ),
        (
            "replicasets.apps",
            {"metadata": {"name": "r", "namespace": "d"}},
            {"metadata.name": "r", "metadata.namespace": "d", "status.replicas": "0"},
        ),
        (
            "jobs.batch",
            {"metadata": {"name": "j", "namespace": "d"}, "status": {"succeeded": 2}},
            {"metadata.name": "j", "metadata.namespace": "d", "status.successful": "2"},
        ),
        (
            "certificatesigningrequests.certificates.k8s.io",
            {"metadata": {"name": "csr-1"}, "spec": {"signerName": "kubernetes.io/kubelet-serving"}},
            {"metadata.name": "csr-1", "spec.signerName": "kubernetes.io/kubelet-serving"},
        ),
        (
            "resourceslices.resource.k8s.io",
            {"metadata": {"name": "rs"}, "spec": {"driver": "gpu.example.com", "nodeName": "n1"}},
            {"metadata.name": "rs", "spec.nodeName": "n1", "spec.driver": "gpu.example.com"},
        ),
        (
            "configmaps",
            {"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "b"}},
            {"metadata.name": "c", "metadata.namespace": "d"},
        ),
        (
            "clusterroles.rbac.authorization.k8s.io",
            {"metadata": {"name": "admin"}},
            {"metadata.name": "admin"},
        ),
    ],
)
def test_selectable_fields(resource: str, obj: dict[str, Any], expected: dict[str, str]) -> None:
    assert selectable_fields(resource, obj) == expected


def test_core_and_events_k8s_io_events_have_the_same_fields() -> None:
    core = {
        "metadata": {"name": "e1", "namespace": "d"},
        "involvedObject": {
            "kind": "Pod",
            "namespace": "d",
            "name": "web-0",
            "uid": "u1",
            "apiVersion": "v1",
            "resourceVersion": "42",
            "fieldPath": "spec.containers{web}",
        },
        "reason": "BackOff",
        "type": "Warning",
        "reportingComponent": "kubelet",
        "source": {"component": "kubelet", "host": "n1"},
    }
    new = {
        "metadata": {"name": "e1", "namespace": "d"},
        "regarding": core["involvedObject"],
        "reason": "BackOff",
        "type": "Warning",
        "reportingController": "kubelet",
        "deprecatedSource": {"component": "kubelet", "host": "n1"},
        "note": "Back-off restarting failed container",
    }
    expected = {
        "metadata.name": "e1",
        "metadata.namespace": "d",
        "involvedObject.kind": "Pod",
        "involvedObject.namespace": "d",
        "involvedObject.name": "web-0",
        "involvedObject.uid": "u1",
        "involvedObject.apiVersion": "v1",
        "involvedObject.resourceVersion": "42",
        "involvedObject.fieldPath": "spec.containers{web}",
        "reason": "BackOff",
        "reportingComponent": "kubelet",
        "source": "kubelet",
        "type": "Warning",
    }
    assert selectable_fields("events", core) == expected
    assert selectable_fields("events.events.k8s.io", new) == expected


def test_event_source_falls_back_to_the_reporting_controller() -> None:
    event = {"metadata": {"name": "e"}, "reportingComponent": "scheduler"}
    assert selectable_fields("events", event)["source"] == "scheduler"


def test_unknown_resources_follow_the_object_scope() -> None:
    assert selectable_fields("widgets.example.com", {"metadata": {"name": "w", "namespace": "d"}}) == {
        "metadata.name": "w",
        "metadata.namespace": "d",
    }
    assert selectable_fields("gadgets.example.com", {"metadata": {"name": "g"}}) == {"metadata.name": "g"}


def test_custom_resource_fields() -> None:
    widget = {
        "metadata": {"name": "w", "namespace": "d"},
        "spec": {"color": "red", "size": 3, "shiny": False},
    }
    custom = CustomResourceFields(selectable_fields=("spec.color", "spec.size", "spec.shiny", "spec.missing"))
    assert selectable_fields("widgets.example.com", widget, custom=custom) == {
        "metadata.name": "w",
        "metadata.namespace": "d",
        "spec.color": "red",
        "spec.size": "3",
        "spec.shiny": "false",
        "spec.missing": "",
    }


def test_end_to_end_list_filtering() -> None:
    pods = [
        {
            "metadata": {"name": "a", "namespace": "d"},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"},
        },
        {
            "metadata": {"name": "b", "namespace": "d"},
            "spec": {"nodeName": "n2"},
            "status": {"phase": "Running"},
        },
        {
            "metadata": {"name": "c", "namespace": "d"},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Failed"},
        },
    ]
    selector = check_field_selector("pods", parse_field_selector("spec.host=n1,status.phase!=Failed"))
    assert selector == FieldSelector(
        (FieldRequirement("spec.nodeName", "n1"), FieldRequirement("status.phase", "Failed", equals=False))
    )
    assert [p["metadata"]["name"] for p in pods if selector.matches(selectable_fields("pods", p))] == ["a"]
