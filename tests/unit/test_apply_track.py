"""Field tracking for writes that are not applies (create, update, patch) and its interplay with apply.

The expected managedFields are kube-apiserver's: its integration tests
(``test/integration/apiserver/apply``: TestApplyManagedFields, TestClearManagedFields*,
TestApplyConvertsManagedFieldsVersion) and apimachinery's manager chain (capmanagers,
skipnonapplied, managedfieldsupdater, stripmeta).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k3py.api.apply import apply, default_reset_fields, fieldmanager, track_update
from k3py.api.schema import Node, Schemas

T0, T1, T2, T3 = (f"2024-05-01T10:0{n}:00Z" for n in range(4))


def kind(group: str, version: str, name: str) -> Node:
    node = Schemas.get().kind(group, version, name)
    assert node is not None
    return node


CONFIGMAP = kind("", "v1", "ConfigMap")
DEPLOYMENT = kind("apps", "v1", "Deployment")


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    now: str = T1,
    node: Node = CONFIGMAP,
    subresource: str = "",
) -> dict[str, Any]:
    before = copy.deepcopy((old, new))
    result = track_update(
        old, new, manager=manager, node=node, api_version=new["apiVersion"], now=now, subresource=subresource
    )
    assert (old, new) == before, "track_update must not modify its arguments"
    return stored(result)


def applied(
    live: dict[str, Any] | None, config: dict[str, Any], manager: str, *, now: str = T0
) -> dict[str, Any]:
    node = CONFIGMAP if config["kind"] == "ConfigMap" else DEPLOYMENT
    result = apply(
        live, config, manager=manager, force=False, node=node, api_version=config["apiVersion"], now=now
    )
    return stored(result)


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    obj = json.loads(json.dumps(obj))
    obj["metadata"].setdefault("uid", "0f6e2b1c")
    return obj


def merge_patched(obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patched(out[key], value)
        else:
            out[key] = value
    return out


def configmap(**data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "test-cm", "namespace": "default"},
        "data": data,
    }


def test_create_gives_every_field_to_the_creator() -> None:
    new = configmap(key="value")
    new["metadata"]["labels"] = {"app": "web"}
    created = update(None, new, "kubectl-create", now=T0)
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {".": {}, "f:key": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            },
        }
    ]


def test_apply_then_merge_patches_match_kube_apiserver() -> None:
    # kube-apiserver TestApplyManagedFields: apply, then two merge patches by "updater".
    config = configmap(key="value")
    config["metadata"]["labels"] = {"test-label": "test"}
    live = applied(None, config, "apply_test", now=T0)
    live = update(live, merge_patched(live, {"data": {"new-key": "value"}}), "updater", now=T1)
    live = update(live, merge_patched(live, {"data": {"key": "new value"}}), "updater", now=T2)
    assert live["data"] == {"key": "new value", "new-key": "value"}
    assert live["metadata"]["managedFields"] == [
        {
            "manager": "apply_test",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:test-label": {}}}},
        },
        {
            "manager": "updater",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}, "f:new-key": {}}},
        },
    ]


def test_removed_fields_leave_every_owner() -> None:
    config = configmap(a="1", b="2")
    live = applied(None, config, "alice")
    patched = copy.deepcopy(live)
    del patched["data"]["a"]
    live = update(live, patched, "editor")
    assert live["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:b": {}}}
    assert [e["manager"] for e in live["metadata"]["managedFields"]] == ["alice"]


def test_an_update_that_changes_nothing_keeps_managed_fields() -> None:
    live = applied(None, configmap(a="1"), "alice")
    assert update(live, copy.deepcopy(live), "editor", now=T3) == live


def test_updates_merge_into_the_writers_entry_and_move_its_time() -> None:
    live = update(None, configmap(a="1"), "ctl", now=T0)
    live = update(live, merge_patched(live, {"data": {"b": "2"}}), "ctl", now=T1)
    assert live["metadata"]["managedFields"] == [
        {
            "manager": "ctl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:a": {}, "f:b": {}}},
        }
    ]


def test_updates_through_different_versions_are_separate_entries() -> None:
    live = update(None, configmap(a="1"), "ctl", now=T0)
    other = merge_patched(live, {"data": {"b": "2"}})
    other["apiVersion"] = "v2"  # as if the kind were served at another version too
    live = update(live, other, "ctl", now=T1)
    assert [(e["manager"], e["apiVersion"]) for e in live["metadata"]["managedFields"]] == [
        ("ctl", "v1"),
        ("ctl", "v2"),
    ]


@pytest.mark.parametrize("reset", [[{}], []])
def test_clearing_managed_fields(reset: list[Any]) -> None:
    # kube-apiserver TestClearManagedFieldsWithMergePatch / ...WithUpdateEmptyList.
    live = applied(None, configmap(key="value"), "apply_test")
    cleared = update(live, merge_patched(live, {"metadata": {"managedFields": reset}}), "updater")
    assert "managedFields" not in cleared["metadata"]
    # Untracked objects stay untracked through updates...
    assert (
        "managedFields" not in update(cleared, merge_patched(cleared, {"data": {"x": "y"}}), "u")["metadata"]
    )
    # ...until someone applies; everything already there goes to before-first-apply.
    reapplied = applied(cleared, configmap(key="value"), "apply_test", now=T2)
    assert [(e["manager"], e["operation"]) for e in reapplied["metadata"]["managedFields"]] == [
        ("apply_test", "Apply"),
        ("before-first-apply", "Update"),
    ]


def test_managed_fields_written_by_the_client_are_used() -> None:
    # kube-apiserver TestApplyConvertsManagedFieldsVersion, with the versions k3py serves.
    created = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "deployment",
            "labels": {"app": "nginx"},
            "managedFields": [
                {
                    "manager": "sidecar_controller",
                    "operation": "Apply",
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:sidecar_version": {}}},
                        "f:spec": {
                            "f:template": {
                                "f: spec": {
                                    "f:containers": {'k:{"name":"sidecar"}': {".": {}, "f:image": {}}}
                                }
                            }
                        },
                    },
                }
            ],
        },
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]},
            },
        },
    }
    live = update(None, created, "kubectl-create", node=DEPLOYMENT, now=T0)
    assert [e["manager"] for e in live["metadata"]["managedFields"]] == [
        "sidecar_controller",
        "kubectl-create",
    ]
    config = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "deployment", "labels": {"sidecar_version": "release"}},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "sidecar:latest"}]}}},
    }
    live = applied(live, config, "sidecar_controller", now=T1)
    sidecar = [e for e in live["metadata"]["managedFields"] if e["manager"] == "sidecar_controller"]
    assert json.dumps(sidecar[0]["fieldsV1"], separators=(",", ":")) == (
        r'{"f:metadata":{"f:labels":{"f:sidecar_version":{}}},"f:spec":{"f:template":{"f:spec":'
        r'{"f:containers":{"k:{\"name\":\"sidecar\"}":{".":{},"f:image":{},"f:name":{}}}}}}}'
    )
    assert len(live["metadata"]["managedFields"]) == 2


def test_unreadable_managed_fields_in_the_request_fall_back_to_the_live_ones() -> None:
    live = applied(None, configmap(a="1"), "alice")
    broken = merge_patched(live, {"data": {"b": "2"}})
    broken["metadata"]["managedFields"] = [{"manager": "x", "operation": "Sideways"}]
    result = update(live, broken, "editor")
    assert [e["manager"] for e in result["metadata"]["managedFields"]] == ["alice", "editor"]


def test_unreadable_live_managed_fields_are_dropped() -> None:
    live = stored(configmap(a="1"))
    live["metadata"]["managedFields"] = [{"operation": "Apply"}]
    assert "managedFields" not in update(live, merge_patched(live, {"data": {"a": "2"}}), "e")["metadata"]


def test_identity_and_server_fields_are_never_owned() -> None:
    new = configmap(a="1")
    new["metadata"].update(resourceVersion="7", generation=1, creationTimestamp="2024-05-01T10:00:00Z")
    created = update(None, new, "creator")
    assert created["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}


def test_status_subresource_writes_own_status_only() -> None:
    config = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {}},
    }
    live = applied(None, config, "kubectl")
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 1}
    new["spec"]["replicas"] = 9  # the status strategy would reset this; it is not tracked
    result = update(live, new, "kube-controller-manager", node=DEPLOYMENT, subresource="status")
    entry = result["metadata"]["managedFields"][1]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {".": {}, "f:replicas": {}}}
    assert "f:replicas" in result["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]


def test_default_reset_fields() -> None:
    assert default_reset_fields(DEPLOYMENT) == (("status",),)
    assert default_reset_fields(DEPLOYMENT, "status") == (("spec",),)
    assert default_reset_fields(CONFIGMAP) == ()
    assert default_reset_fields(None) == ()


def test_at_most_ten_updaters_are_kept() -> None:
    live = update(None, configmap(), "creator", now="2024-05-01T09:00:00Z")
    for n in range(12):
        live = update(
            live, merge_patched(live, {"data": {f"k{n}": "v"}}), f"m{n:02}", now=f"2024-05-01T10:{n:02}:00Z"
        )
    managers = [e["manager"] for e in live["metadata"]["managedFields"]]
    assert len(managers) == 10
    assert managers[0] == "ancient-changes"
    # The oldest (creator, m00, m01, m02) were folded into one entry, with the newest time.
    ancient = live["metadata"]["managedFields"][0]
    assert ancient["fieldsV1"] == {"f:data": {".": {}, "f:k0": {}, "f:k1": {}, "f:k2": {}}}
    assert ancient["time"] == "2024-05-01T10:02:00Z"


_writes = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob", "cid"]),
        st.dictionaries(st.sampled_from(["k1", "k2", "k3", "k4"]), st.sampled_from(["x", "y"]), max_size=4),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150)
@given(_writes)
def test_each_key_belongs_to_the_last_writer_that_changed_it(
    writes: list[tuple[str, dict[str, str]]],
) -> None:
    live: dict[str, Any] | None = None
    expected: dict[str, str] = {}
    for step, (manager, data) in enumerate(writes):
        before = live["data"] if live is not None else {}
        expected = {k: (manager if before.get(k) != v else expected[k]) for k, v in data.items()}
        live = update(live, configmap(**data), manager, now=f"2024-05-01T10:{step:02}:00Z")
    assert live is not None
    owners: dict[str, str] = {}
    for entry in live["metadata"].get("managedFields", []):
        for key in entry["fieldsV1"].get("f:data", {}):
            if key != ".":
                assert key[2:] not in owners, "a key has one owner"
                owners[key[2:]] = entry["manager"]
    assert owners == expected


created_objects = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),  # name
        st.dictionaries(st.sampled_from(["k1", "k2", "k.3"]), st.sampled_from(["", "v"]), max_size=3),
        st.dictionaries(st.sampled_from(["app", "tier"]), st.just("web"), max_size=2),
        st.sampled_from(["kubectl-create", "controller"]),
        st.sampled_from([T0, T1]),
        st.booleans(),  # a ConfigMap, else a Deployment
    ),
    min_size=1,
    max_size=12,
)


@given(created_objects)
@settings(max_examples=60, deadline=None)
def test_creates_of_one_shape_record_what_each_would_alone(creates: list[Any]) -> None:
    """Creates are remembered by their shape (names and uids aside); each still gets exactly the
    managedFields it would get first, with its own manager and time."""
    fresh = fieldmanager._CreatedFields
    for name, data, labels, manager, now, is_configmap in creates:
        if is_configmap:
            new: dict[str, Any] = configmap(**data)
            node = CONFIGMAP
        else:
            new = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
            new["spec"] = {"replicas": 1, "selector": {"matchLabels": dict(labels) or {"x": "y"}}}
            node = DEPLOYMENT
        new["metadata"].update(name=name, uid=f"uid-{name}", creationTimestamp=now)
        if labels:
            new["metadata"]["labels"] = dict(labels)
        raw = track_update(None, new, manager=manager, node=node, api_version=new["apiVersion"], now=now)
        got = stored(raw)
        kept, fieldmanager._created = fieldmanager._created, fresh()
        try:
            alone = update(None, new, manager, now=now, node=node)
        finally:
            fieldmanager._created = kept
        assert got == alone
        raw["metadata"]["managedFields"][0]["fieldsV1"]["f:changed"] = {}  # the caller owns what it got
