"""The bundled API definitions load, resolve and describe kinds the way patching needs."""

from __future__ import annotations

import functools
import gzip
import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from k3py.api.schema import DATA_FILE, GroupVersionKind, Node, SchemaError, Schemas

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "distro" / "k3py" / "api" / "data" / DATA_FILE


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas.get()


def pod_spec(schemas: Schemas) -> Node:
    pod = schemas.kind("", "v1", "Pod")
    assert pod is not None
    spec = pod.field("spec")
    assert spec is not None
    return spec


def walk(node: Node | None, *path: str) -> Node:
    """Follow fields; ``[]`` steps into list items, ``{}`` into map values."""
    for step in path:
        assert node is not None, f"no node before {step!r}"
        node = node.items() if step == "[]" else node.values() if step == "{}" else node.field(step)
    assert node is not None
    return node


def test_bundled_definitions_are_all_there(schemas: Schemas) -> None:
    assert len(schemas) == 862
    assert Schemas.get() is schemas
    assert "io.k8s.api.apps.v1.Deployment" in schemas
    assert schemas.definition("io.k8s.api.apps.v1.Deployment")["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]


def test_kinds_are_found_by_group_version_kind(schemas: Schemas) -> None:
    deployment = schemas.kind("apps", "v1", "Deployment")
    assert deployment is not None
    assert deployment.name == "io.k8s.api.apps.v1.Deployment"
    assert deployment.type == "object"
    assert deployment.group_version_kinds == (GroupVersionKind("apps", "v1", "Deployment"),)
    assert deployment.required == ("spec",)
    assert "Deployment enables declarative updates" in deployment.description
    assert schemas.kind("apps", "v1", "NoSuchKind") is None
    assert schemas.kind("", "v1", "Deployment") is None
    core = schemas.kind("", "v1", "Pod")
    assert core is not None and core.name == "io.k8s.api.core.v1.Pod"
    assert GroupVersionKind("", "v1", "Pod") in schemas.kinds()
    assert str(GroupVersionKind("apps", "v1", "Deployment")) == "apps/v1, Kind=Deployment"


def test_one_definition_may_serve_many_kinds(schemas: Schemas) -> None:
    core = schemas.kind("", "v1", "DeleteOptions")
    admission = schemas.kind("admission.k8s.io", "v1", "DeleteOptions")
    assert core is not None and admission is not None
    assert core.name == admission.name == "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"


def test_unknown_definition_is_a_key_error(schemas: Schemas) -> None:
    with pytest.raises(KeyError, match=re.escape("io.k8s.nope")):
        schemas.definition("io.k8s.nope")
    with pytest.raises(KeyError):
        schemas.node("io.k8s.nope")


def test_fields_resolve_refs_and_keep_the_fields_own_annotations(schemas: Schemas) -> None:
    strategy = walk(schemas.kind("apps", "v1", "Deployment"), "spec", "strategy")
    assert strategy.name == "io.k8s.api.apps.v1.DeploymentStrategy"
    assert strategy.patch_strategy == {"retainKeys"}
    # The property's description, not the type's.
    assert strategy.description.startswith("The deployment strategy to use")
    assert strategy.field_names == ("rollingUpdate", "type")
    assert walk(strategy, "rollingUpdate", "maxSurge").type == "int-or-string"


def test_list_merge_metadata(schemas: Schemas) -> None:
    spec = pod_spec(schemas)
    containers = walk(spec, "containers")
    assert containers.type == "array"
    assert containers.patch_strategy == {"merge"}
    assert containers.merge_key == "name"
    assert containers.list_type == "map"
    assert containers.list_map_keys == ("name",)
    container = walk(containers, "[]")
    assert container.name == "io.k8s.api.core.v1.Container"
    ports = walk(container, "ports")
    assert ports.merge_key == "containerPort"
    assert ports.list_map_keys == ("containerPort", "protocol")
    port = walk(ports, "[]", "containerPort")
    assert (port.type, port.format) == ("integer", "int32")
    assert walk(spec, "volumes").patch_strategy == {"merge", "retainKeys"}


def test_atomic_lists_and_maps(schemas: Schemas) -> None:
    spec = pod_spec(schemas)
    tolerations = walk(spec, "tolerations")
    assert tolerations.list_type == "atomic"
    assert tolerations.patch_strategy == frozenset()
    assert tolerations.merge_key is None
    args = walk(spec, "containers", "[]", "args")
    assert (args.list_type, walk(args, "[]").type) == ("atomic", "string")
    node_selector = walk(spec, "nodeSelector")
    assert node_selector.map_type == "atomic"
    assert node_selector.list_type is None
    assert walk(node_selector, "{}").type == "string"
    assert walk(spec, "affinity").map_type is None


def test_set_lists(schemas: Schemas) -> None:
    finalizers = walk(schemas.kind("", "v1", "Pod"), "metadata", "finalizers")
    assert finalizers.list_type == "set"
    assert finalizers.patch_strategy == {"merge"}
    assert finalizers.merge_key is None


def test_maps_expose_their_values(schemas: Schemas) -> None:
    limits = walk(pod_spec(schemas), "containers", "[]", "resources", "limits")
    assert limits.type == "object"
    assert limits.field("cpu") is None
    quantity = limits.values()
    assert quantity is not None
    assert quantity.name == "io.k8s.apimachinery.pkg.api.resource.Quantity"
    assert quantity.type == "string"  # string or number on input, a string on output
    assert limits.child("cpu") is quantity
    labels = walk(schemas.kind("", "v1", "ConfigMap"), "metadata", "labels")
    assert walk(labels, "{}").type == "string"
    assert labels.items() is None


def test_types_are_normalized(schemas: Schemas) -> None:
    spec = pod_spec(schemas)
    assert walk(spec, "hostNetwork").type == "boolean"  # ["boolean", "null"] in the data
    assert walk(spec, "terminationGracePeriodSeconds").format == "int64"
    assert walk(spec, "containers", "[]", "name").type == "string"
    service_port = walk(schemas.kind("", "v1", "Service"), "spec", "ports", "[]")
    assert walk(service_port, "targetPort").type == "int-or-string"
    assert walk(service_port, "port").type == "integer"
    assert schemas.node("io.k8s.apimachinery.pkg.apis.meta.v1.Time").type == "string"
    assert schemas.node("io.k8s.apimachinery.pkg.apis.meta.v1.Time").format == "date-time"
    assert schemas.node("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON").type == "any"
    assert schemas.node("io.k8s.apimachinery.pkg.runtime.RawExtension").type == "object"


def test_nodes_are_cached(schemas: Schemas) -> None:
    first = walk(pod_spec(schemas), "containers", "[]")
    again = walk(pod_spec(schemas), "containers", "[]")
    assert first.field("image") is again.field("image")
    # Every reference to a definition shares its resolved fields.
    template = walk(schemas.kind("apps", "v1", "Deployment"), "spec", "template", "spec")
    assert template.field("containers") is pod_spec(schemas).field("containers")


def test_every_reference_resolves(schemas: Schemas) -> None:
    for name in schemas.names():
        node = schemas.node(name)
        for field in node.field_names:
            child = node.field(field)
            assert child is not None
            child.items()
            child.values()
            assert child.type in {
                "object",
                "array",
                "string",
                "integer",
                "number",
                "boolean",
                "int-or-string",
                "any",
            }


def test_custom_definitions_and_bad_references() -> None:
    schemas = Schemas(
        {
            "thing": {
                "type": "object",
                "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "parts": {"type": "object", "additionalProperties": {"$ref": "#/$defs/part"}},
                    "broken": {"$ref": "#/$defs/missing"},
                    "external": {"$ref": "other.json#/x"},
                    "port": {"x-kubernetes-int-or-string": True},
                    "free": {"additionalProperties": True},
                },
            },
            "part": {"type": ["object", "null"], "properties": {"size": {"type": "integer"}}},
        }
    )
    thing = schemas.node("thing")
    assert thing.name == "thing"
    assert walk(thing, "tags", "[]").name is None
    assert walk(thing, "parts", "{}", "size").type == "integer"
    assert walk(thing, "port").type == "int-or-string"
    assert walk(thing, "free", "{}").type == "any"
    with pytest.raises(SchemaError, match="unknown definition 'missing'"):
        thing.field("broken")
    with pytest.raises(SchemaError, match="unsupported"):
        thing.field("external")


def test_definitions_added_to_the_bundled_ones_join_them(schemas: Schemas) -> None:
    """A custom resource's definitions beside the bundled ones (kept compressed until asked
    for): each set is found, a definition of the same name replaces the bundled one, and the
    kinds of both are indexed."""
    widget = {
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "Widget"}],
        "properties": {"metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}},
    }
    replaced = {"type": "object", "description": "replaced"}
    both = schemas.with_definitions({"com.example.v1.Widget": widget, "io.k8s.api.core.v1.PodSpec": replaced})
    assert len(both) == len(schemas) + 1
    assert "com.example.v1.Widget" in both and "io.k8s.api.apps.v1.Deployment" in both
    assert both.definition("io.k8s.api.core.v1.PodSpec") == replaced
    assert (
        "containers" in schemas.definition("io.k8s.api.core.v1.PodSpec")["properties"]
    )  # the base is unchanged
    found = both.kind("example.com", "v1", "Widget")
    assert found is not None and walk(found, "metadata", "labels", "{}").type == "string"
    assert both.kind("apps", "v1", "Deployment") is not None
    assert schemas.kind("example.com", "v1", "Widget") is None
    assert len(set(both.names())) == len(both)


def test_documents_without_defs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no \\$defs"):
        Schemas.from_document(b'{"definitions": {}}')
    with pytest.raises(SchemaError, match="not JSON"):
        Schemas.from_document(b"{")
    path = tmp_path / "defs.json.gz"
    path.write_bytes(gzip.compress(b'{"$defs": {"a": {"type": "string"}}}'))
    assert Schemas.from_file(path).node("a").type == "string"


@functools.cache
def _build_script() -> ModuleType:
    """build/schemas.py, loaded by path: build/ is tooling, not on the import path of every run."""
    name = "k3py_tests_build_schemas"
    spec = importlib.util.spec_from_file_location(name, ROOT / "build" / "schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_bundled_data_matches_the_pinned_kubernetes_validate(tmp_path: Path) -> None:
    """build/schemas.py regenerates the committed file exactly (content, not gzip bytes)."""
    try:
        importlib.metadata.distribution("kubernetes-validate")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("kubernetes-validate is not installed (dev extra)")
    build = _build_script()
    report = build.generate(output=tmp_path / DATA_FILE)
    assert report.definitions == 862
    assert report.written_bytes < report.minified_bytes < report.source_bytes
    fresh = gzip.decompress((tmp_path / DATA_FILE).read_bytes())
    assert fresh == gzip.decompress(DATA.read_bytes())
    assert json.loads(fresh) == json.loads(report.source.read_bytes())


def test_build_script_refuses_the_wrong_version() -> None:
    build = _build_script()
    with pytest.raises(build.SchemaBuildError, match=re.escape("1.99.0")):
        build.source_path("1.99.0")
