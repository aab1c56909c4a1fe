"""Server-side apply on real Kubernetes 1.37 kinds: ownership, pruning, merging and conflicts.

Each case is what kube-apiserver does with the same requests (the Server-Side Apply
documentation, structured-merge-diff's merge tests, kube-apiserver's integration tests in
``test/integration/apiserver/apply``); conflict messages are upstream's, word for word.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from k3py.api.apply import ApplyConflict, ApplyError, apply, track_update
from k3py.api.schema import Node, Schemas

T0, T1, T2, T3 = (f"2024-05-01T10:0{n}:00Z" for n in range(4))


def kind(group: str, version: str, name: str) -> Node:
    node = Schemas.get().kind(group, version, name)
    assert node is not None
    return node


DEPLOYMENT = kind("apps", "v1", "Deployment")
CONFIGMAP = kind("", "v1", "ConfigMap")


def do_apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    *,
    force: bool = False,
    now: str = T0,
    node: Node | None = DEPLOYMENT,
) -> dict[str, Any]:
    before = copy.deepcopy((live, config))
    result = apply(
        live, config, manager=manager, force=force, node=node, api_version=config["apiVersion"], now=now
    )
    assert (live, config) == before, "apply must not modify its arguments"
    return stored(result)


def do_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    now: str = T1,
    node: Node | None = DEPLOYMENT,
) -> dict[str, Any]:
    return stored(track_update(old, new, manager=manager, node=node, api_version=new["apiVersion"], now=now))


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the store keeps it: JSON, with the identity the server adds on create."""
    obj = json.loads(json.dumps(obj))
    obj["metadata"].setdefault("uid", "8b0a0c9e")
    return obj


def fields(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    found = [e for e in entries(obj) if e["manager"] == manager and e["operation"] == operation]
    assert len(found) == 1, f"no single {operation} entry for {manager}: {entries(obj)}"
    document: dict[str, Any] = found[0]["fieldsV1"]
    return document


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    managed: list[dict[str, Any]] = obj["metadata"].get("managedFields", [])
    return managed


def owners(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in entries(obj)]


def deployment(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]},
        },
    }
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": body}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return found


# Create through apply, then apply again.


def test_apply_creates_the_object_and_owns_what_it_set() -> None:
    config = deployment(replicas=2)
    config["metadata"]["labels"] = {"app": "web"}
    created = do_apply(None, config, "kubectl")
    assert {k: v for k, v in created.items() if k != "metadata"} == {
        k: v for k, v in config.items() if k != "metadata"
    }
    assert entries(created) == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},  # LabelSelector is an atomic struct
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {
                            "f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}}
                        },
                    },
                },
            },
        }
    ]


def test_reapply_updates_changed_removes_dropped_and_keeps_other_managers_fields() -> None:
    first = deployment(replicas=2, minReadySeconds=5)
    live = do_apply(None, first, "kubectl")
    # A controller sets a field of its own through an ordinary update.
    annotated = copy.deepcopy(live)
    annotated["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    annotated["spec"]["progressDeadlineSeconds"] = 600
    live = do_update(live, annotated, "kube-controller-manager")

    second = deployment(replicas=4)  # minReadySeconds dropped, replicas changed
    result = do_apply(live, second, "kubectl", now=T2)

    assert result["spec"]["replicas"] == 4
    assert "minReadySeconds" not in result["spec"]
    assert result["spec"]["progressDeadlineSeconds"] == 600
    assert result["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert "f:minReadySeconds" not in fields(result, "kubectl")["f:spec"]
    assert fields(result, "kube-controller-manager", "Update") == {
        "f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}},
        "f:spec": {"f:progressDeadlineSeconds": {}},
    }


def test_dropping_a_field_another_manager_also_owns_keeps_it() -> None:
    live = do_apply(None, deployment(minReadySeconds=5), "kubectl")
    shared = do_apply(live, {**deployment(minReadySeconds=5)}, "other-applier")
    result = do_apply(shared, deployment(), "kubectl", now=T2)
    assert result["spec"]["minReadySeconds"] == 5
    assert "f:minReadySeconds" in fields(result, "other-applier")["f:spec"]
    assert "f:minReadySeconds" not in fields(result, "kubectl")["f:spec"]


def test_applying_only_identity_leaves_no_managed_fields() -> None:
    # kube-apiserver TestApplyRemovesEmptyManagedFields.
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "test-cm", "namespace": "default"},
    }
    created = do_apply(None, config, "apply_test", node=CONFIGMAP)
    again = do_apply(created, config, "apply_test", node=CONFIGMAP, now=T1)
    assert "managedFields" not in again["metadata"]


def test_removing_a_container_port_removes_it() -> None:
    # kube-apiserver TestApplyRemoveContainerPort.
    with_port = deployment(replicas=3)
    containers(with_port)[0]["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    live = do_apply(None, with_port, "apply_test")
    result = do_apply(live, deployment(replicas=3), "apply_test", now=T1)
    assert "ports" not in containers(result)[0]


def test_key_field_defaults_name_items_as_the_defaulted_live_object_does() -> None:
    config = deployment()
    containers(config)[0]["ports"] = [{"containerPort": 80}]
    live = do_apply(None, config, "kubectl")
    containers(live)[0]["ports"][0]["protocol"] = "TCP"  # defaulted by the server
    containers(config)[0]["ports"][0]["name"] = "http"
    result = do_apply(live, config, "kubectl", now=T1)
    assert containers(result)[0]["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}]


def test_noop_apply_keeps_the_time() -> None:
    live = do_apply(None, deployment(replicas=2), "kubectl", now=T0)
    again = do_apply(live, deployment(replicas=2), "kubectl", now=T3)
    assert again == live
    changed = do_apply(live, deployment(replicas=3), "kubectl", now=T3)
    assert entries(changed)[0]["time"] == T3


# Conflicts.


def scaled(live: dict[str, Any], replicas: int, manager: str = "kubectl-scale") -> dict[str, Any]:
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = replicas
    return do_update(live, new, manager)


def test_conflict_with_an_updater_has_upstreams_message_and_causes() -> None:
    live = scaled(do_apply(None, deployment(replicas=2), "kubectl"), 5, "kubectl-client-side-apply")
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, deployment(replicas=3), "kubectl", now=T2)
    assert str(caught.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
        ".spec.replicas"
    )
    assert caught.value.causes == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    assert caught.value.code == 409


def test_plural_conflict_message() -> None:
    config = deployment(replicas=2)
    containers(config)[0]["name"] = "php-redis"
    live = do_apply(None, config, "kubectl")
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 5
    containers(edited)[0]["image"] = "redis:7"
    live = do_update(live, edited, "kubectl-client-side-apply")
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, config, "kubectl", now=T2)
    assert str(caught.value) == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="php-redis"].image'
    )


def test_conflicts_are_grouped_by_sorted_manager() -> None:
    live = do_apply(None, deployment(replicas=2, minReadySeconds=1), "kubectl")
    live = scaled(live, 5, "unknown")
    edited = copy.deepcopy(live)
    edited["spec"]["minReadySeconds"] = 9
    live = do_update(live, edited, "kubectl-set")
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, deployment(replicas=2, minReadySeconds=1), "kubectl", now=T2)
    assert str(caught.value) == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-set" using apps/v1:\n'
        "- .spec.minReadySeconds\n"
        'conflicts with "unknown" using apps/v1:\n'
        "- .spec.replicas"
    )


def test_force_moves_ownership() -> None:
    live = scaled(do_apply(None, deployment(replicas=2), "kubectl"), 5)
    result = do_apply(live, deployment(replicas=3), "kubectl", force=True, now=T2)
    assert result["spec"]["replicas"] == 3
    assert "f:replicas" in fields(result, "kubectl")["f:spec"]
    assert owners(result) == [("kubectl", "Apply")]  # kubectl-scale owned nothing else


def test_an_update_takes_fields_without_conflict() -> None:
    live = scaled(do_apply(None, deployment(replicas=2), "kubectl"), 5)
    assert fields(live, "kubectl-scale", "Update") == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in fields(live, "kubectl")["f:spec"]


def test_appliers_setting_the_same_value_share_it() -> None:
    live = do_apply(None, deployment(replicas=3), "alice")
    shared = do_apply(live, {**deployment(replicas=3)}, "bob")
    assert "f:replicas" in fields(shared, "alice")["f:spec"]
    assert "f:replicas" in fields(shared, "bob")["f:spec"]
    with pytest.raises(ApplyConflict) as caught:
        do_apply(shared, deployment(replicas=4), "bob", now=T2)
    assert str(caught.value) == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    # Alice gives it up by leaving it out; then Bob changes it freely.
    released = do_apply(shared, deployment(), "alice", now=T2)
    assert released["spec"]["replicas"] == 3
    assert do_apply(released, deployment(replicas=4), "bob", now=T3)["spec"]["replicas"] == 4


def test_conflict_leaves_nothing_changed() -> None:
    live = scaled(do_apply(None, deployment(replicas=2), "kubectl"), 5)
    snapshot = copy.deepcopy(live)
    with pytest.raises(ApplyConflict):
        do_apply(live, deployment(replicas=3), "kubectl", now=T2)
    assert live == snapshot


def test_first_apply_to_an_untracked_object_conflicts_with_before_first_apply() -> None:
    live = stored(deployment(replicas=2))
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, deployment(replicas=3), "kubectl")
    assert str(caught.value) == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )
    result = do_apply(live, deployment(replicas=2), "kubectl")
    assert owners(result) == [("kubectl", "Apply"), ("before-first-apply", "Update")]


# Merging by the schema.


def two_containers() -> tuple[dict[str, Any], dict[str, Any]]:
    a = deployment()
    containers(a)[0] = {"name": "a", "image": "a:1"}
    b = deployment()
    containers(b)[0] = {"name": "b", "image": "b:1"}
    return a, b


def test_list_map_items_belong_to_their_appliers() -> None:
    a, b = two_containers()
    live = do_apply(None, a, "alice")
    live = do_apply(live, b, "bob", now=T1)
    assert [c["name"] for c in containers(live)] == ["a", "b"]
    assert list(fields(live, "bob")["f:spec"]["f:template"]["f:spec"]["f:containers"]) == ['k:{"name":"b"}']

    # Alice updates her container; Bob's is untouched.
    containers(a)[0]["image"] = "a:2"
    live = do_apply(live, a, "alice", now=T2)
    assert containers(live) == [{"name": "a", "image": "a:2"}, {"name": "b", "image": "b:1"}]

    # Alice drops her container: it goes, Bob's stays.
    alone = deployment()
    del alone["spec"]["template"]["spec"]["containers"]
    live = do_apply(live, alone, "alice", now=T3)
    assert containers(live) == [{"name": "b", "image": "b:1"}]


def test_list_map_order_follows_the_configuration() -> None:
    config = deployment()
    containers(config)[:] = [{"name": n, "image": n} for n in ("a", "b", "c")]
    live = do_apply(None, config, "alice")
    containers(config)[:] = [{"name": n, "image": n} for n in ("c", "a", "b")]
    assert [c["name"] for c in containers(do_apply(live, config, "alice", now=T1))] == ["c", "a", "b"]


def test_atomic_lists_are_replaced_and_owned_whole() -> None:
    config = deployment()
    containers(config)[0]["args"] = ["--port=80", "--verbose"]
    live = do_apply(None, config, "alice")
    owned = fields(live, "alice")["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert owned["f:args"] == {}

    containers(config)[0]["args"] = ["--port=8080"]
    assert containers(do_apply(live, config, "alice", now=T1))[0]["args"] == ["--port=8080"]

    other = deployment()
    containers(other)[0]["args"] = ["--debug"]
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, other, "bob", now=T1)
    assert str(caught.value) == (
        'Apply failed with 1 conflict: conflict with "alice": '
        '.spec.template.spec.containers[name="nginx"].args'
    )


def test_labels_are_granular() -> None:
    mine = deployment()
    mine["metadata"]["labels"] = {"team": "a"}
    live = do_apply(None, mine, "alice")
    theirs = deployment()
    theirs["metadata"]["labels"] = {"tier": "web"}
    live = do_apply(live, theirs, "bob", now=T1)
    assert live["metadata"]["labels"] == {"team": "a", "tier": "web"}

    live = do_apply(live, deployment(), "alice", now=T2)
    assert live["metadata"]["labels"] == {"tier": "web"}
    assert fields(live, "bob")["f:metadata"] == {"f:labels": {"f:tier": {}}}


def test_sets_merge_by_value() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a.io/x"]}}
    live = do_apply(None, config, "alice", node=CONFIGMAP)
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["b.io/y"]}}
    live = do_apply(live, other, "bob", node=CONFIGMAP, now=T1)
    assert live["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]
    assert fields(live, "bob") == {"f:metadata": {"f:finalizers": {'v:"b.io/y"': {}}}}
    mine = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    live = do_apply(live, mine, "alice", node=CONFIGMAP, now=T2)
    assert live["metadata"]["finalizers"] == ["b.io/y"]


def test_atomic_structs_are_replaced_whole() -> None:
    live = do_apply(None, deployment(selector={"matchLabels": {"app": "web", "v": "1"}}), "alice")
    result = do_apply(live, deployment(selector={"matchLabels": {"app": "web"}}), "alice", now=T1)
    assert result["spec"]["selector"] == {"matchLabels": {"app": "web"}}


def test_status_is_not_owned_through_the_main_resource() -> None:
    config = deployment(replicas=1)
    config["status"] = {"replicas": 1}
    live = do_apply(None, config, "kubectl")
    assert "f:status" not in fields(live, "kubectl")


def test_unknown_kinds_have_granular_maps_and_atomic_lists() -> None:
    config = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "1"}},
        "spec": {"size": 1, "ports": [1, 2]},
    }
    live = do_apply(None, config, "alice", node=None)
    assert fields(live, "alice") == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {".": {}, "f:ports": {}, "f:size": {}},
    }
    other = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"color": "red"},
    }
    live = do_apply(live, other, "bob", node=None, now=T1)
    assert live["spec"] == {"size": 1, "ports": [1, 2], "color": "red"}
    with pytest.raises(ApplyConflict):
        do_apply(live, {**other, "spec": {"ports": [3]}}, "bob", node=None, now=T2)


# Configurations kube-apiserver refuses.

TYPED = "failed to create typed patch object (/web; apps/v1, Kind=Deployment): "


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["metadata"].update(managedFields=[]),
            "metadata.managedFields must be nil",
        ),
        (
            lambda c: c.update(apiVersion="apps/v1beta2"),
            "invalid object type: apps/v1beta2, Kind=Deployment",
        ),
        (
            lambda c: c["spec"].update(foo=1),
            TYPED + ".spec.foo: field not declared in schema",
        ),
        (
            lambda c: containers(c).append({"name": "nginx"}),
            TYPED + '.spec.template.spec.containers: duplicate entries for key [name="nginx"]',
        ),
        (
            lambda c: c["spec"].update(replicas={"n": 1}),
            TYPED + ".spec.replicas: expected scalar, got map",
        ),
    ],
)
def test_refused_configurations(change: Any, message: str) -> None:
    config = deployment()
    change(config)
    with pytest.raises(ApplyError) as caught:
        apply(None, config, manager="m", force=False, node=DEPLOYMENT, api_version="apps/v1", now=T0)
    assert str(caught.value) == message


def test_dropping_a_struct_removes_it_unless_someone_owns_part_of_it() -> None:
    config = deployment()
    containers(config)[0]["securityContext"] = {"runAsUser": 1000}
    live = do_apply(None, config, "alice")
    assert "securityContext" not in containers(do_apply(live, deployment(), "alice", now=T1))[0]

    edited = copy.deepcopy(live)
    containers(edited)[0]["securityContext"]["runAsNonRoot"] = True
    live = do_update(live, edited, "hardener")
    assert containers(do_apply(live, deployment(), "alice", now=T2))[0]["securityContext"] == {
        "runAsNonRoot": True
    }


# kubectl moving from client-side to server-side apply (kubernetes.io "Server-Side Apply",
# "Upgrading from client-side apply to server-side apply").

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def client_side_applied(config: dict[str, Any]) -> dict[str, Any]:
    created = copy.deepcopy(config)
    created["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(config)}
    return do_update(None, created, "kubectl-client-side-apply", now=T0)


def test_kubectl_takes_over_from_client_side_apply_without_conflicts() -> None:
    live = client_side_applied(deployment(replicas=2))
    result = do_apply(live, deployment(replicas=3), "kubectl", now=T1)
    assert result["spec"]["replicas"] == 3
    assert json.loads(result["metadata"]["annotations"][LAST_APPLIED]) == deployment(replicas=3)
    assert result["metadata"]["annotations"][LAST_APPLIED].endswith("\n")
    assert "f:replicas" in fields(result, "kubectl")["f:spec"]


def test_fields_changed_since_the_client_side_apply_still_conflict() -> None:
    live = scaled(client_side_applied(deployment(replicas=2)), 5)
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, deployment(replicas=3), "kubectl", now=T2)
    assert (
        str(caught.value)
        == 'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    )


def test_other_managers_do_not_take_over_from_client_side_apply() -> None:
    live = client_side_applied(deployment(replicas=2))
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, deployment(replicas=3), "my-manager", now=T1)
    assert str(caught.value).endswith('"kubectl-client-side-apply" using apps/v1: .spec.replicas')
