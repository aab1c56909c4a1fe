"""Strategic merge patch on real Kubernetes 1.37 kinds, and its agreement with merge patch.

Each case is what kube-apiserver does with the same object and patch (the behaviour is
upstream's documented one: api-conventions' "Strategic Merge Patch", the field tags in
k8s.io/api, and apimachinery's strategicpatch tests).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from k3py.api.patch import InvalidPatch, PatchError, merge_patch, strategic
from k3py.api.schema import Node, Schemas


def kind(group: str, version: str, name: str) -> Node:
    node = Schemas.get().kind(group, version, name)
    assert node is not None
    return node


POD = """
metadata:
  name: web
  labels: {app: web, tier: front}
  finalizers: [example.com/a]
spec:
  nodeSelector: {disk: ssd}
  tolerations:
  - {key: a, operator: Exists}
  imagePullSecrets:
  - name: registry
  volumes:
  - {name: cache, emptyDir: {}}
  - {name: conf, configMap: {name: web-conf}}
  containers:
  - name: app
    image: web:1
    args: [--port=8080]
    ports:
    - {containerPort: 8080, name: http}
    env:
    - {name: A, value: "1"}
    - {name: B, value: "2"}
    resources:
      limits: {cpu: 500m, memory: 128Mi}
  - name: sidecar
    image: proxy:1
status:
  phase: Running
"""

DEPLOYMENT = """
metadata: {name: web}
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}
  template:
    spec:
      containers:
      - {name: app, image: web:1}
"""


def at(doc: Any, path: str) -> Any:
    for step in path.split("."):
        doc = doc[int(step)] if isinstance(doc, list) else doc[step]
    return doc


CASES = [
    # (id, kind, object, patch, path to look at, expected value there)
    (
        "containers merge by name",
        "pod",
        POD,
        {"spec": {"containers": [{"name": "sidecar", "image": "proxy:2"}]}},
        "spec.containers",
        [at(yaml.safe_load(POD), "spec.containers.0"), {"name": "sidecar", "image": "proxy:2"}],
    ),
    (
        "a new container comes first, as upstream orders it",
        "pod",
        POD,
        {"spec": {"containers": [{"name": "debug", "image": "busybox"}]}},
        "spec.containers.*.name",
        ["debug", "app", "sidecar"],
    ),
    (
        "ports merge by containerPort, an integer",
        "pod",
        POD,
        {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}},
        "spec.containers.0.ports",
        [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
    ),
    (
        "env merges by name; $patch: delete removes one",
        "pod",
        POD,
        {
            "spec": {
                "containers": [
                    {"name": "app", "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}]}
                ]
            }
        },
        "spec.containers.0.env",
        [{"name": "B", "value": "3"}],
    ),
    (
        "$patch: delete removes a container",
        "pod",
        POD,
        {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}},
        "spec.containers.*.name",
        ["app"],
    ),
    (
        "$patch: replace replaces the container list",
        "pod",
        POD,
        {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}},
        "spec.containers",
        [{"name": "only", "image": "x"}],
    ),
    (
        "$setElementOrder orders containers while one is patched",
        "pod",
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "web:2"}],
            }
        },
        "spec.containers.*.image",
        ["proxy:1", "web:2"],
    ),
    (
        "resource limits are a map: merged, null deletes",
        "pod",
        POD,
        {"spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": None}}}]}},
        "spec.containers.0.resources",
        {"limits": {"cpu": "1"}},
    ),
    (
        "args are atomic: replaced",
        "pod",
        POD,
        {"spec": {"containers": [{"name": "app", "args": ["--port=9090", "--debug"]}]}},
        "spec.containers.0.args",
        ["--port=9090", "--debug"],
    ),
    (
        "tolerations are atomic: replaced",
        "pod",
        POD,
        {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}},
        "spec.tolerations",
        [{"key": "b", "operator": "Exists"}],
    ),
    (
        "nodeSelector is atomic for apply but merged by strategic merge patch",
        "pod",
        POD,
        {"spec": {"nodeSelector": {"zone": "a"}}},
        "spec.nodeSelector",
        {"disk": "ssd", "zone": "a"},
    ),
    (
        "finalizers are a set: union, new values first",
        "pod",
        POD,
        {"metadata": {"finalizers": ["example.com/b", "example.com/a"]}},
        "metadata.finalizers",
        ["example.com/b", "example.com/a"],
    ),
    (
        "$deleteFromPrimitiveList removes finalizers",
        "pod",
        POD,
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/zzz"]}},
        "metadata.finalizers",
        [],
    ),
    (
        "labels merge; null removes one",
        "pod",
        POD,
        {"metadata": {"labels": {"tier": None, "version": "2"}}},
        "metadata.labels",
        {"app": "web", "version": "2"},
    ),
    (
        "$patch: replace replaces the labels",
        "pod",
        POD,
        {"metadata": {"labels": {"$patch": "replace", "only": "this"}}},
        "metadata.labels",
        {"only": "this"},
    ),
    (
        "null removes a whole field",
        "pod",
        POD,
        {"spec": {"tolerations": None, "nodeSelector": None}},
        "spec",
        {k: v for k, v in yaml.safe_load(POD)["spec"].items() if k not in ("tolerations", "nodeSelector")},
    ),
    (
        "imagePullSecrets merge by name",
        "pod",
        POD,
        {"spec": {"imagePullSecrets": [{"name": "mirror"}]}},
        "spec.imagePullSecrets",
        [{"name": "mirror"}, {"name": "registry"}],
    ),
    (
        "volumes: $retainKeys in an element swaps the volume source",
        "pod",
        POD,
        {
            "spec": {
                "volumes": [
                    {"name": "cache", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/tmp"}}
                ]
            }
        },
        "spec.volumes",
        [
            {"name": "cache", "hostPath": {"path": "/tmp"}},
            {"name": "conf", "configMap": {"name": "web-conf"}},
        ],
    ),
    (
        "volumes without $retainKeys keep both sources (which validation then refuses)",
        "pod",
        POD,
        {"spec": {"volumes": [{"name": "cache", "hostPath": {"path": "/tmp"}}]}},
        "spec.volumes.0",
        {"name": "cache", "emptyDir": {}, "hostPath": {"path": "/tmp"}},
    ),
    (
        "a new field drops its nulls and its directives",
        "pod",
        POD,
        {
            "spec": {
                "securityContext": {
                    "runAsUser": 1000,
                    "fsGroup": None,
                    "seccompProfile": {"$patch": "delete"},
                }
            }
        },
        "spec.securityContext",
        {"runAsUser": 1000},
    ),
    (
        "status is patched like any field",
        "pod",
        POD,
        {"status": {"phase": "Succeeded"}},
        "status",
        {"phase": "Succeeded"},
    ),
    (
        "Deployment strategy: $retainKeys clears rollingUpdate when switching to Recreate",
        "deployment",
        DEPLOYMENT,
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        "spec.strategy",
        {"type": "Recreate"},
    ),
    (
        "Deployment strategy without $retainKeys merges",
        "deployment",
        DEPLOYMENT,
        {"spec": {"strategy": {"type": "Recreate"}}},
        "spec.strategy",
        {"type": "Recreate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
    ),
    (
        "Deployment template containers merge by name",
        "deployment",
        DEPLOYMENT,
        {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}},
        "spec",
        {
            "replicas": 3,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}},
        },
    ),
    (
        "a field the schema does not know is merge-patched: its lists replaced",
        "pod",
        POD,
        {"spec": {"containers": [{"name": "app", "futureList": [{"name": "x"}]}]}},
        "spec.containers.0.futureList",
        [{"name": "x"}],
    ),
]


def look(doc: Any, path: str) -> Any:
    """``at`` with ``*`` mapping over a list: ``spec.containers.*.name``."""
    head, star, tail = path.partition(".*.")
    found = at(doc, head)
    return [at(item, tail) for item in found] if star else found


@pytest.mark.parametrize(
    ("kind_name", "obj", "patch", "path", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_real_schema(kind_name: str, obj: str, patch: dict[str, Any], path: str, expected: Any) -> None:
    node = kind("", "v1", "Pod") if kind_name == "pod" else kind("apps", "v1", "Deployment")
    doc = yaml.safe_load(obj)
    before = copy.deepcopy((doc, patch))
    result = strategic.apply(doc, patch, node)
    assert look(result, path) == expected
    assert (doc, patch) == before


def test_untouched_fields_survive() -> None:
    doc = yaml.safe_load(POD)
    result = strategic.apply(
        doc, {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}, kind("", "v1", "Pod")
    )
    doc["spec"]["containers"][0]["image"] = "web:2"
    assert result == doc


def test_the_result_shares_nothing_with_the_inputs() -> None:
    doc = yaml.safe_load(POD)
    patch = {"spec": {"volumes": [{"name": "new", "emptyDir": {}}]}}
    result = strategic.apply(doc, patch, kind("", "v1", "Pod"))
    result["spec"]["volumes"][0]["emptyDir"]["medium"] = "Memory"
    result["metadata"]["labels"]["x"] = "y"
    assert patch == {"spec": {"volumes": [{"name": "new", "emptyDir": {}}]}}
    assert doc == yaml.safe_load(POD)


ERRORS = [
    (
        "a container without its merge key",
        {"spec": {"containers": [{"image": "x"}]}},
        PatchError,
        "does not contain declared merge key: name",
    ),
    (
        "a key outside $retainKeys",
        {"spec": {"volumes": [{"name": "cache", "$retainKeys": ["name"], "hostPath": {}}]}},
        InvalidPatch,
        "invalid patch format of retainKeys",
    ),
    ("$retainKeys that is not a list", {"metadata": {"$retainKeys": "name"}}, InvalidPatch, "retainKeys"),
    (
        "$patch: merge in a map",
        {"metadata": {"labels": {"$patch": "merge"}}},
        InvalidPatch,
        "unknown patch type",
    ),
    (
        "$patch: merge in a list",
        {"spec": {"containers": [{"$patch": "merge"}]}},
        PatchError,
        "merging lists cannot yet be specified",
    ),
    ("a bad $setElementOrder key", {"spec": {"$setElementOrder": []}}, InvalidPatch, "setElementOrder"),
    (
        "a bad $deleteFromPrimitiveList key",
        {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}},
        InvalidPatch,
        "primitive list",
    ),
    (
        "$setElementOrder out of step with the patch",
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "sidecar", "image": "a"}, {"name": "app", "image": "b"}],
            }
        },
        PatchError,
        "doesn't match",
    ),
    (
        "mixed element types",
        {"metadata": {"finalizers": [1]}},
        PatchError,
        "list element types are not identical",
    ),
    ("lists of lists", {"metadata": {"finalizers": [["a"]]}}, PatchError, "lists of lists are not supported"),
    ("a patch that is not an object", ["a"], InvalidPatch, "a strategic merge patch is a JSON object"),
]


@pytest.mark.parametrize(("patch", "error", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors(patch: Any, error: type[PatchError], message: str) -> None:
    with pytest.raises(error, match=message):
        strategic.apply(yaml.safe_load(POD), patch, kind("", "v1", "Pod"))


def test_a_replace_strategy_replaces_a_map() -> None:
    """PodDisruptionBudget's selector has patch strategy replace: no merging of the old one."""
    pdb = kind("policy", "v1", "PodDisruptionBudget")
    doc = {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}
    patch = {"spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}}
    assert strategic.apply(doc, patch, pdb)["spec"] == {
        "minAvailable": 1,
        "selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
    }
    # Without the schema the two selectors would merge.
    assert strategic.apply(doc, patch, None)["spec"]["selector"]["matchLabels"] == {"app": "web"}


def test_top_level_directives() -> None:
    doc = {"a": 1, "b": {"c": 2}}
    assert strategic.apply(doc, {"$patch": "replace", "d": 3}, None) == {"d": 3}
    assert strategic.apply(doc, {"$patch": "delete"}, None) == {}


def test_custom_resources_without_a_schema() -> None:
    doc = {"spec": {"items": [{"name": "a", "size": 1}], "settings": {"x": 1}}}
    patch = {"spec": {"items": [{"name": "a", "size": 2}], "settings": {"y": 2}}}
    assert strategic.apply(doc, patch, None) == {
        "spec": {"items": [{"name": "a", "size": 2}], "settings": {"x": 1, "y": 2}}
    }


# Property tests: without lists of objects, strategic merge patch is JSON merge patch.
keys = st.text(alphabet="abcxyz", max_size=3)
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=3)
values = st.recursive(
    scalars | st.lists(st.booleans() | st.integers() | st.text(max_size=3), max_size=3),
    lambda inner: st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(keys, values, max_size=4)


@given(doc=objects, patch=objects)
def test_without_a_schema_maps_merge_as_merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    assert strategic.apply(doc, patch, None) == merge_patch.apply(doc, patch)


@given(doc=objects, patch=objects)
def test_config_map_data_merges_as_merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    config_map = kind("", "v1", "ConfigMap")
    wrapped_doc, wrapped_patch = {"metadata": {"annotations": doc}}, {"metadata": {"annotations": patch}}
    assert strategic.apply(wrapped_doc, wrapped_patch, config_map) == merge_patch.apply(
        wrapped_doc, wrapped_patch
    )


names = st.sampled_from(["a", "b", "c", "d", "e"])
containers = st.lists(
    st.fixed_dictionaries(
        {"name": names}, optional={"image": st.sampled_from(["x:1", "x:2"]), "tty": st.booleans()}
    ),
    max_size=4,
    unique_by=lambda c: c["name"],
)


@given(live=containers, patch=containers)
def test_container_merges_are_idempotent_and_keep_every_name(
    live: list[dict[str, Any]], patch: list[dict[str, Any]]
) -> None:
    pod = kind("", "v1", "Pod")
    doc, body = {"spec": {"containers": live}}, {"spec": {"containers": patch}}
    once = strategic.apply(doc, body, pod)
    assert strategic.apply(once, body, pod) == once
    merged = once["spec"]["containers"]
    assert sorted(c["name"] for c in merged) == sorted({c["name"] for c in live + patch})
    for container in patch:
        found = next(c for c in merged if c["name"] == container["name"])
        assert found.items() >= container.items()
    patch_names = [c["name"] for c in patch]
    assert [c["name"] for c in merged if c["name"] in patch_names] == patch_names
