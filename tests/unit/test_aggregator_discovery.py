"""Discovery with aggregated API servers: the legacy and aggregated ``/apis`` documents with the
group-versions of remote APIServices merged in by priority, ``/apis/<group>``, and an
APIResourceList turned into the aggregated form."""

from __future__ import annotations

from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver.discovery import (
    AggregatedVersion,
    aggregated,
    aggregated_with,
    api_group,
    group_list,
    group_list_with,
    version_discovery,
)

REGISTRY = Registry(from_manifest(selection()))
FLUNDERS = {
    "resource": "flunders",
    "responseKind": {"group": "wardle.example.com", "version": "v1alpha1", "kind": "Flunder"},
    "scope": "Namespaced",
    "singularResource": "flunder",
    "verbs": ["get", "list"],
}


def test_no_remote_versions_change_nothing() -> None:
    assert group_list_with(REGISTRY, []) == group_list(REGISTRY)
    assert aggregated_with(REGISTRY, []) == aggregated(REGISTRY, core=False)


def test_remote_groups_go_where_their_priority_puts_them() -> None:
    remote = [
        AggregatedVersion("wardle.example.com", "v1beta1", 2000, 100),
        AggregatedVersion("wardle.example.com", "v1alpha1", 2000, 200),
        AggregatedVersion("metrics.k8s.io", "v1beta1", 100, 100),
        AggregatedVersion("first.example.com", "v1", 19000, 100),
    ]
    doc = group_list_with(REGISTRY, remote)
    names = [g["name"] for g in doc["groups"]]
    local = [g["name"] for g in group_list(REGISTRY)["groups"]]
    assert [n for n in names if n in local] == local  # the local order is kept
    assert names.index("first.example.com") == names.index("apiregistration.k8s.io") + 1
    assert names.index("wardle.example.com") < names.index("metrics.k8s.io")
    priority_2000 = max(names.index(g) for g in local if g != "apiregistration.k8s.io")
    assert names.index("wardle.example.com") == priority_2000 + 1  # after every built-in group
    [wardle] = [g for g in doc["groups"] if g["name"] == "wardle.example.com"]
    assert [v["version"] for v in wardle["versions"]] == ["v1alpha1", "v1beta1"]  # versionPriority first
    assert wardle["preferredVersion"] == {
        "groupVersion": "wardle.example.com/v1alpha1",
        "version": "v1alpha1",
    }


def test_a_remote_version_of_a_local_group_is_added_to_it() -> None:
    doc = group_list_with(REGISTRY, [AggregatedVersion("apps", "v9", 17800, 1)])
    [apps] = [g for g in doc["groups"] if g["name"] == "apps"]
    assert [v["version"] for v in apps["versions"]] == [*REGISTRY.versions("apps"), "v9"]
    assert len(doc["groups"]) == len(group_list(REGISTRY)["groups"])


def test_the_aggregated_document_lists_the_backends_resources_and_freshness() -> None:
    remote = [
        AggregatedVersion("wardle.example.com", "v1alpha1", 2000, 200, (FLUNDERS,), current=True),
        AggregatedVersion("metrics.k8s.io", "v1beta1", 100, 100),
    ]
    doc = aggregated_with(REGISTRY, remote)
    items = {item["metadata"]["name"]: item for item in doc["items"]}
    assert items["wardle.example.com"]["versions"] == [
        {"version": "v1alpha1", "resources": [FLUNDERS], "freshness": "Current"}
    ]
    assert items["metrics.k8s.io"]["versions"] == [
        {"version": "v1beta1", "resources": [], "freshness": "Stale"}
    ]
    assert doc["kind"] == "APIGroupDiscoveryList"


def test_api_group_orders_versions_by_priority_then_kube_version() -> None:
    versions = [
        AggregatedVersion("example.com", "v1beta1", 1000, 100),
        AggregatedVersion("example.com", "v1", 1000, 100),
        AggregatedVersion("example.com", "v2alpha1", 1000, 300),
    ]
    doc = api_group("example.com", versions)
    assert [v["version"] for v in doc["versions"]] == ["v2alpha1", "v1", "v1beta1"]
    assert doc["preferredVersion"]["version"] == "v2alpha1"
    assert (doc["kind"], doc["name"]) == ("APIGroup", "example.com")


def test_version_discovery_nests_subresources() -> None:
    resource_list = {
        "kind": "APIResourceList",
        "groupVersion": "wardle.example.com/v1alpha1",
        "resources": [
            {
                "name": "flunders",
                "singularName": "flunder",
                "namespaced": True,
                "kind": "Flunder",
                "verbs": ["get", "list"],
            },
            {
                "name": "flunders/status",
                "singularName": "",
                "namespaced": True,
                "kind": "Flunder",
                "verbs": ["get"],
            },
            {
                "name": "fischers",
                "singularName": "fischer",
                "namespaced": False,
                "kind": "Fischer",
                "verbs": ["get"],
                "shortNames": ["fi"],
                "categories": ["all"],
            },
            {"name": "orphans/status", "kind": "X", "verbs": []},
        ],
    }
    assert version_discovery(resource_list) == [
        {
            **FLUNDERS,
            "subresources": [
                {
                    "subresource": "status",
                    "responseKind": {"group": "wardle.example.com", "version": "v1alpha1", "kind": "Flunder"},
                    "verbs": ["get"],
                }
            ],
        },
        {
            "resource": "fischers",
            "responseKind": {"group": "wardle.example.com", "version": "v1alpha1", "kind": "Fischer"},
            "scope": "Cluster",
            "singularResource": "fischer",
            "verbs": ["get"],
            "shortNames": ["fi"],
            "categories": ["all"],
        },
    ]
