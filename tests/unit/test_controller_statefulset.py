"""The StatefulSet controller's decisions and the revision helpers, as pure functions."""

from __future__ import annotations

import copy
from typing import Any

from k3py.controllers.history import (
    REVISION_HASH_LABEL,
    apply_revision,
    equal_revision,
    fnv32,
    hash_revision,
    new_revision,
    next_revision_number,
    safe_encode,
    sort_revisions,
    template_patch,
)
from k3py.controllers.objects import pod_available
from k3py.controllers.statefulset import (
    count,
    new_claims,
    new_pod,
    ordinal_of,
    plan_scale,
    plan_update,
)

Obj = dict[str, Any]


def statefulset(**spec: Any) -> Obj:
    base: Obj = {
        "metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {
            "replicas": 3,
            "serviceName": "svc",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox"}],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "other", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "db"}}, "spec": {}}],
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        },
    }
    base["spec"].update(spec)
    return base


def pod(name: str, revision: str = "web-r1", *, ready: bool = True, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "labels": {"controller-revision-hash": revision}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": meta,
        "status": {"phase": "Running" if ready else "Pending", "conditions": conditions},
    }


# -- revisions ------------------------------------------------------------------------------------


def test_fnv32_is_go_fnv1_and_safe_encoding_avoids_vowels() -> None:
    assert fnv32(b"") == 0x811C9DC5
    assert fnv32(b"a") == 0x050C5D7E
    assert fnv32(b"foobar") == 0x31F0B262
    assert safe_encode("0123456789") == "456789bcdf"
    encoded = safe_encode(str(fnv32(b"x")))
    assert encoded and not set(encoded) & set("aeiou013")


def test_the_hash_follows_the_template_and_the_collision_count() -> None:
    sts = statefulset()
    data = template_patch(sts)
    assert data["spec"]["template"]["$patch"] == "replace"
    template = data["spec"]["template"]
    assert list(template) == ["$patch", "metadata", "spec"]  # sorted, as Go marshals a map
    assert "creationTimestamp" not in template["metadata"]  # omitzero in Go's ObjectMeta
    same = hash_revision(template_patch(copy.deepcopy(sts)))
    assert hash_revision(data) == same
    assert hash_revision(data, 1) != same
    changed = statefulset()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
    assert hash_revision(template_patch(changed)) != same


def test_a_revision_is_named_after_its_owner_and_restores_the_template() -> None:
    sts = statefulset()
    revision = new_revision(sts, "StatefulSet", 3, None)
    hash_ = revision["metadata"]["labels"][REVISION_HASH_LABEL]
    assert revision["metadata"]["name"] == f"web-{hash_}"
    assert revision["metadata"]["labels"]["app"] == "web"
    assert revision["revision"] == 3
    [owner] = revision["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("StatefulSet", "u-1", True)
    changed = statefulset()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
    expected = copy.deepcopy(sts["spec"]["template"])
    for container in expected["spec"]["containers"]:
        container.setdefault("resources", {})  # as Go's typed encoding writes the template
    assert apply_revision(changed, revision)["spec"]["template"] == expected
    assert equal_revision(revision, new_revision(sts, "StatefulSet", 9, None))
    assert not equal_revision(revision, new_revision(changed, "StatefulSet", 3, None))


def test_revisions_with_the_same_data_are_equal_unless_their_numeric_hashes_differ() -> None:
    revision = new_revision(statefulset(), "StatefulSet", 1, None)
    handmade = copy.deepcopy(revision)
    del handmade["metadata"]["labels"][REVISION_HASH_LABEL]
    assert equal_revision(revision, handmade), "a missing hash label compares data only"
    handmade["metadata"]["labels"][REVISION_HASH_LABEL] = "zz7b"
    assert equal_revision(revision, handmade), "a safe-encoded hash is not a number: data only"
    numbered = [copy.deepcopy(revision), copy.deepcopy(revision)]
    numbered[0]["metadata"]["labels"][REVISION_HASH_LABEL] = "12"
    numbered[1]["metadata"]["labels"][REVISION_HASH_LABEL] = "13"
    assert not equal_revision(*numbered), "two numeric hashes must agree"


def test_revision_numbers_and_order() -> None:
    revisions = [{"metadata": {"name": n}, "revision": r} for n, r in (("b", 2), ("a", 5), ("c", 1))]
    assert next_revision_number(revisions) == 6
    assert next_revision_number([]) == 1
    assert [r["metadata"]["name"] for r in sort_revisions(revisions)] == ["c", "b", "a"]


def test_availability_counts_min_ready_seconds_from_the_ready_transition() -> None:
    ready = {
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }
    }
    since = 1767225600.0  # 2026-01-01T00:00:00Z
    assert pod_available(ready, 0, since)
    assert not pod_available(ready, 10, since + 5)
    assert pod_available(ready, 10, since + 10)
    assert not pod_available({"status": {}}, 0, since)


# -- pods and claims ------------------------------------------------------------------------------


def test_a_pod_has_a_stable_identity_and_mounts_its_claims() -> None:
    sts = statefulset(ordinals={"start": 5})
    made = new_pod(sts, 5, "web-abc")
    assert made["metadata"]["name"] == "web-5"
    assert made["metadata"]["labels"] == {
        "app": "web",
        "statefulset.kubernetes.io/pod-name": "web-5",
        "apps.kubernetes.io/pod-index": "5",
        "controller-revision-hash": "web-abc",
    }
    assert made["metadata"]["annotations"] == {"a": "b"}
    assert (made["spec"]["hostname"], made["spec"]["subdomain"]) == ("web-5", "svc")
    assert made["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-5"}},
        {"name": "other", "emptyDir": {}},
    ]
    assert ordinal_of(sts, made) == 5
    assert ordinal_of(sts, {"metadata": {"name": "web-x"}}) is None
    assert ordinal_of(sts, {"metadata": {"name": "webby-1"}}) is None


def test_claims_carry_the_selector_labels_and_follow_the_retention_policy() -> None:
    [claim] = new_claims(statefulset(), 2)
    assert claim["metadata"]["name"] == "data-web-2"
    assert claim["metadata"]["labels"] == {"tier": "db", "app": "web"}
    assert "ownerReferences" not in claim["metadata"]
    deleting = statefulset(
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"}
    )
    [owned] = new_claims(deleting, 0)
    [owner] = owned["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("StatefulSet", "u-1", False)


# -- scaling and updates --------------------------------------------------------------------------


def test_ordered_ready_creates_one_pod_at_a_time_after_the_previous_is_ready() -> None:
    sts = statefulset()
    assert plan_scale(sts, {}, []).create == [0]
    assert plan_scale(sts, {0: pod("web-0", ready=False)}, []).create == []
    assert plan_scale(sts, {0: pod("web-0")}, []).create == [1]
    assert plan_scale(statefulset(podManagementPolicy="Parallel"), {1: pod("web-1")}, []).create == [0, 2]


def test_scaling_down_deletes_from_the_highest_ordinal() -> None:
    sts = statefulset(replicas=1)
    live = {0: pod("web-0")}
    condemned = [pod("web-1"), pod("web-2")]
    assert plan_scale(sts, live, condemned).delete == ["web-2"]
    assert plan_scale(sts, live, [pod("web-1"), pod("web-2", deleting=True)]).delete == []
    assert plan_scale(sts, {0: pod("web-0", ready=False)}, condemned).delete == []
    parallel = statefulset(replicas=1, podManagementPolicy="Parallel")
    assert plan_scale(parallel, live, condemned).delete == ["web-2", "web-1"]


def test_ordered_scale_down_halts_at_an_unhealthy_pod_but_removes_the_first_unhealthy_one() -> None:
    to_zero = statefulset(replicas=0)
    sick = [pod(f"web-{i}", ready=False) for i in range(3)]
    assert plan_scale(to_zero, {}, sick).delete == []  # web-2 waits for web-0, the first unhealthy
    assert plan_scale(to_zero, {}, [pod("web-0", ready=False), pod("web-1")]).delete == ["web-1"]
    assert plan_scale(to_zero, {}, [pod("web-0", ready=False)]).delete == ["web-0"]
    parallel = statefulset(replicas=0, podManagementPolicy="Parallel")
    assert plan_scale(parallel, {}, sick).delete == ["web-2", "web-1", "web-0"]


def test_a_rolling_update_goes_down_from_the_top_and_stops_at_the_partition() -> None:
    sts = statefulset()
    old = {i: pod(f"web-{i}", "web-r1") for i in range(3)}
    assert plan_update(sts, old, "web-r2") == "web-2"
    half = {**old, 2: pod("web-2", "web-r2", ready=False)}
    assert plan_update(sts, half, "web-r2") is None, "waits for the updated pod to be ready"
    half[2] = pod("web-2", "web-r2")
    assert plan_update(sts, half, "web-r2") == "web-1"
    partitioned = statefulset(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert plan_update(partitioned, half, "web-r2") is None
    on_delete = statefulset(updateStrategy={"type": "OnDelete"})
    assert plan_update(on_delete, old, "web-r2") is None


def test_status_counts() -> None:
    pods = [pod("web-0", "r1"), pod("web-1", "r2"), pod("web-2", "r2", ready=False)]
    counts = count(pods, "r1", "r2", 0, 0.0)
    assert (counts.replicas, counts.ready, counts.available, counts.current, counts.updated) == (
        3,
        2,
        2,
        1,
        2,
    )
