"""The scheduler's filters, scores and messages, as pure functions over Node and Pod dicts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from k3py.api.taints import tolerates
from k3py.scheduler import plugins
from k3py.scheduler.cycle import Placement, Unschedulable, find_node
from k3py.scheduler.plugins import Status
from k3py.scheduler.resources import NodeInfo, host_ports, pod_requests

Obj = dict[str, Any]
MI = 1024 * 1024
GI = 1024 * MI


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    ready: str | None = "True",
    unschedulable: bool = False,
    images: list[Obj] | None = None,
    extra: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {}
    if taints is not None:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    status: Obj = {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready}]
    if images is not None:
        status["images"] = images
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": status}


def container(cpu: str | None = None, memory: str | None = None, **more: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "image": "busybox", "resources": {"requests": requests}, **more}


def pod(*containers: Obj, name: str = "p", **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": list(containers) or [container()], **spec},
    }


def info(n: Obj, *pods: Obj) -> NodeInfo:
    return NodeInfo.of(n, pods)


# -- requests ---------------------------------------------------------------------------------


def test_requests_sum_containers_take_the_largest_init_container_and_add_overhead() -> None:
    p = pod(
        container("250m", "64Mi"),
        container("250m", "64Mi"),
        initContainers=[container("1", "10Mi"), container("100m", "1Gi")],
        overhead={"cpu": "50m", "memory": "1Mi"},
    )
    assert pod_requests(p) == {"cpu": 1000 + 50, "memory": 1 * GI + 1 * MI}


def test_sidecars_run_alongside_and_count_for_later_init_containers() -> None:
    sidecar = container("200m", "100Mi", restartPolicy="Always")
    p = pod(container("100m", "100Mi"), initContainers=[sidecar, container("500m", "10Mi")])
    # containers 100m + sidecar 200m = 300m; the init step after the sidecar: 500m + 200m.
    assert pod_requests(p) == {"cpu": 700, "memory": 200 * MI}


def test_non_zero_requests_fill_in_the_defaults_and_pod_level_requests_win() -> None:
    p = pod(container(), container("1"))
    assert pod_requests(p) == {"cpu": 1000}
    assert pod_requests(p, non_zero=True) == {"cpu": 1100, "memory": 400 * MI}
    pod_level = pod(container("1", "1Gi"), resources={"requests": {"cpu": "2"}})
    assert pod_requests(pod_level) == {"cpu": 2000, "memory": GI}
    assert pod_requests(pod(container("0.1m"))) == {"cpu": 1}  # rounded up, as MilliValue


# -- filters ----------------------------------------------------------------------------------


def test_node_resources_fit_counts_the_pods_already_there() -> None:
    n = node("n1", cpu="1", memory="1Gi", pods="2")
    running = pod(container("600m", "512Mi"))
    assert plugins.node_resources_fit(pod(container("400m", "512Mi")), info(n, running)) is None
    status = plugins.node_resources_fit(pod(container("500m", "600Mi")), info(n, running))
    assert status == Status("NodeResourcesFit", ("Insufficient cpu", "Insufficient memory"), resolvable=True)
    full = info(n, running, pod(container()))
    assert plugins.insufficient_resources(pod(container()), full) == [
        plugins.Insufficient("Too many pods", resource="pods", requested=1, used=2, capacity=2)
    ]
    # Asking for more than the whole node has cannot be helped by evicting pods.
    too_big = plugins.node_resources_fit(pod(container("2")), info(n))
    assert too_big == Status("NodeResourcesFit", ("Insufficient cpu",), resolvable=False)


def test_node_resources_fit_checks_extended_resources_and_ephemeral_storage() -> None:
    n = node("n1", extra={"example.com/gpu": "1", "ephemeral-storage": "1Gi"})
    gpu = container("1")
    gpu["resources"]["requests"]["example.com/gpu"] = "2"
    gpu["resources"]["requests"]["ephemeral-storage"] = "2Gi"
    assert plugins.insufficient_resources(pod(gpu), info(n)) == [
        plugins.Insufficient(
            "Insufficient ephemeral-storage", True, "ephemeral-storage", 2 * 2**30, 0, 2**30
        ),
        plugins.Insufficient("Insufficient example.com/gpu", True, "example.com/gpu", 2, 0, 1),
    ]


def test_node_name() -> None:
    assert plugins.node_name(pod(), info(node("n1"))) is None
    assert plugins.node_name(pod(nodeName="n1"), info(node("n1"))) is None
    assert plugins.node_name(pod(nodeName="n2"), info(node("n1"))) == Status(
        "NodeName", ("node(s) didn't match the requested node name",)
    )


def test_node_unschedulable_unless_the_pod_tolerates_the_cordon() -> None:
    cordoned = info(node("n1", unschedulable=True))
    assert plugins.node_unschedulable(pod(), cordoned) == Status(
        "NodeUnschedulable", ("node(s) were unschedulable",)
    )
    tolerant = pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}])
    assert plugins.node_unschedulable(tolerant, cordoned) is None
    assert plugins.node_unschedulable(pod(), info(node("n1"))) is None


def test_taint_toleration_checks_no_schedule_and_no_execute_only() -> None:
    taints = [
        {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "db", "effect": "NoExecute"},
    ]
    n = info(node("n1", taints=taints))
    first = plugins.taint_toleration(pod(), n)
    assert first == Status(
        "TaintToleration", ("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",)
    )
    control_plane = {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    second = plugins.taint_toleration(pod(tolerations=[control_plane]), n)
    assert second is not None and second.reasons == ("node(s) had untolerated taint {dedicated: db}",)
    db = {"key": "dedicated", "operator": "Equal", "value": "db"}
    assert plugins.taint_toleration(pod(tolerations=[control_plane, db]), n) is None
    assert plugins.taint_toleration(pod(tolerations=[{"operator": "Exists"}]), n) is None


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, True),
        ({"key": "k", "value": "v"}, True),
        ({"key": "k", "value": "other"}, False),
        ({"key": "k", "operator": "Exists"}, True),
        ({"key": "other", "operator": "Exists"}, False),
        ({"operator": "Exists", "effect": "NoExecute"}, False),
        ({"operator": "Exists"}, True),
    ],
)
def test_tolerates(toleration: Obj, expected: bool) -> None:
    assert tolerates(toleration, {"key": "k", "value": "v", "effect": "NoSchedule"}) is expected


def test_node_ready_acts_as_the_not_ready_and_unreachable_taints() -> None:
    assert plugins.node_ready(pod(), info(node("n1"))) is None
    not_ready = plugins.node_ready(pod(), info(node("n1", ready="False")))
    assert not_ready is not None
    assert not_ready.reasons == ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)
    unknown = plugins.node_ready(pod(), info(node("n1", ready="Unknown")))
    assert unknown is not None
    assert unknown.reasons == ("node(s) had untolerated taint {node.kubernetes.io/unreachable: }",)
    assert plugins.node_ready(pod(), info(node("n1", ready=None))) is not None  # never reported
    daemon = pod(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    assert plugins.node_ready(daemon, info(node("n1", ready="False"))) is None
    # A node that carries the taint already is the taint filter's business, reported once.
    tainted = node(
        "n1", ready="False", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    )
    assert plugins.node_ready(pod(), info(tainted)) is None
    assert plugins.run_filters(pod(), info(tainted)) == Status(
        "TaintToleration", ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)
    )


def test_node_verdicts_are_remembered_per_node_object_and_per_pod_shape() -> None:
    """The node-only filters' verdict is reused for pods that read the same of the node, and
    recomputed for a pod that tolerates more or for a newer node object."""
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    shared = info(node("n1", taints=[taint]))
    refused = Status("TaintToleration", ("node(s) had untolerated taint {dedicated: db}",))
    assert plugins.run_filters(pod(name="a"), shared) == refused
    assert plugins.run_filters(pod(name="b"), shared) == refused
    tolerant = pod(name="c", tolerations=[{"key": "dedicated", "operator": "Exists"}])
    assert plugins.run_filters(tolerant, shared) is None
    shared.node = node("n1")  # the taint was removed: a new object, as the informer delivers
    assert plugins.run_filters(pod(name="a"), shared) is None
    shared.node = node("n1", labels={"disk": "ssd"}, taints=[taint])
    assert plugins.run_filters(tolerant, shared) is None
    picky = pod(name="d", nodeSelector={"disk": "hdd"}, **tolerant["spec"])
    assert plugins.run_filters(picky, shared) == Status("NodeAffinity", (plugins.ERR_AFFINITY,))
    # Room is counted afresh for every pod: a full node refuses the next one.
    small = info(node("n2", pods="1"))
    assert plugins.run_filters(pod(name="a"), small) is None
    small.add(pod(name="a"))
    assert plugins.run_filters(pod(name="b"), small) == Status(
        "NodeResourcesFit", ("Too many pods",), resolvable=True
    )


def test_room_verdicts_and_allocation_scores_follow_the_nodes_pods_and_object() -> None:
    """What depends on the node's pods (resource fit, least and balanced allocation) is
    remembered for pods asking the same, and recomputed after a pod is added or removed and
    for a new node object."""
    n = info(node("n1", cpu="1", memory="4Gi"))
    half = pod(container("500m", "1Gi"), name="a")
    assert plugins.run_filters(half, n) is None
    scores = plugins.plugin_scores(half, [n], [n])
    fresh = plugins.plugin_scores(half, [info(node("n1", cpu="1", memory="4Gi"))], [n])
    assert scores["NodeResourcesFit"] == fresh["NodeResourcesFit"] == {"n1": 62}
    n.add(pod(container("500m", "1Gi"), name="b"))
    n.add(pod(container("100m", "1Gi"), name="c"))
    assert plugins.run_filters(half, n) == Status("NodeResourcesFit", ("Insufficient cpu",), resolvable=True)
    assert plugins.plugin_scores(half, [n], [n])["NodeResourcesFit"] == {"n1": 12}  # (0 + 25) / 2
    n.remove(n.pods[-1])
    assert plugins.run_filters(half, n) is None
    n.node = node("n1", cpu="500m", memory="4Gi")
    assert plugins.run_filters(half, n) == Status("NodeResourcesFit", ("Insufficient cpu",), resolvable=True)
    assert plugins.plugin_scores(half, [n], [n])["NodeResourcesFit"] == {"n1": 25}


def test_node_selector_needs_every_label() -> None:
    n = node("n1", labels={"disk": "ssd", "zone": "a"})
    assert plugins.required_node_affinity_matches(pod(nodeSelector={"disk": "ssd"}), n)
    assert not plugins.required_node_affinity_matches(pod(nodeSelector={"disk": "ssd", "gpu": "yes"}), n)
    status = plugins.node_affinity(pod(nodeSelector={"disk": "hdd"}), info(n))
    assert status == Status("NodeAffinity", ("node(s) didn't match Pod's node affinity/selector",))


def required(*terms: Obj) -> Obj:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "zone", "operator": "In", "values": ["c"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["c"]}, True),
        ({"key": "missing", "operator": "NotIn", "values": ["c"]}, True),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
        ({"key": "zone", "operator": "Exists"}, True),
        ({"key": "missing", "operator": "Exists"}, False),
        ({"key": "missing", "operator": "DoesNotExist"}, True),
        ({"key": "zone", "operator": "DoesNotExist"}, False),
        ({"key": "cores", "operator": "Gt", "values": ["8"]}, True),
        ({"key": "cores", "operator": "Gt", "values": ["16"]}, False),
        ({"key": "cores", "operator": "Lt", "values": ["16"]}, True),
        ({"key": "zone", "operator": "Lt", "values": ["16"]}, False),  # not a number
        ({"key": "missing", "operator": "Gt", "values": ["1"]}, False),
    ],
)
def test_node_affinity_operators(expression: Obj, expected: bool) -> None:
    n = node("n1", labels={"zone": "a", "cores": "12"})
    assert plugins.required_node_affinity_matches(
        pod(affinity=required({"matchExpressions": [expression]})), n
    ) is (expected)


def test_node_affinity_terms_are_ored_and_match_fields_name_the_node() -> None:
    n = node("n1", labels={"zone": "a"})
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    other_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
    wrong_zone = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
    assert plugins.required_node_affinity_matches(pod(affinity=required(wrong_zone, by_name)), n)
    assert not plugins.required_node_affinity_matches(pod(affinity=required(wrong_zone, other_name)), n)
    assert not plugins.required_node_affinity_matches(pod(affinity=required({})), n)  # an empty term
    both = {**wrong_zone, **by_name}
    assert not plugins.required_node_affinity_matches(pod(affinity=required(both)), n)


def test_node_ports_conflict_on_the_same_port_protocol_and_address() -> None:
    def with_port(port: int, protocol: str = "TCP", ip: str = "") -> Obj:
        return pod(
            container(ports=[{"containerPort": 80, "hostPort": port, "protocol": protocol, "hostIP": ip}])
        )

    n = info(node("n1"), with_port(8080))
    assert plugins.node_ports(with_port(8080), n) == Status(
        "NodePorts", ("node(s) didn't have free ports for the requested pod ports",), resolvable=True
    )
    assert plugins.node_ports(with_port(8080, "UDP"), n) is None
    assert plugins.node_ports(with_port(8081), n) is None
    specific = info(node("n1"), with_port(9000, ip="10.0.0.1"))
    assert plugins.node_ports(with_port(9000, ip="10.0.0.2"), specific) is None
    assert plugins.node_ports(with_port(9000), specific) is not None  # 0.0.0.0 takes every address
    assert host_ports(pod(container(ports=[{"containerPort": 80}]))) == []


# -- scores -----------------------------------------------------------------------------------


def test_least_allocated_prefers_the_emptier_node() -> None:
    p = pod(container("1", "1Gi"))
    empty = info(node("empty", cpu="4", memory="4Gi"))
    busy = info(node("busy", cpu="4", memory="4Gi"), pod(container("2", "2Gi")))
    assert plugins.least_allocated(p, empty) == 75  # (3/4 + 3/4) / 2
    assert plugins.least_allocated(p, busy) == 25
    defaults = pod(container())  # 100m and 200Mi are counted for scoring
    assert plugins.least_allocated(defaults, info(node("n", cpu="1", memory="1000Mi"))) == (90 + 80) // 2


def test_balanced_allocation_prefers_even_use() -> None:
    n = info(node("n", cpu="4", memory="4Gi"))
    assert plugins.balanced_allocation(pod(container("2", "2Gi")), n) == 100
    assert plugins.balanced_allocation(pod(container("2", "1Gi")), n) == 87  # 1 - |0.5-0.25|/2


def test_preferred_node_affinity_sums_weights_and_normalizes() -> None:
    preferred = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 10,
                    "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                },
                {"weight": 30, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}},
            ]
        }
    }
    p = pod(affinity=preferred)
    a = node("a", labels={"zone": "a"})
    both = node("both", labels={"zone": "a", "ssd": "1"})
    assert plugins.preferred_node_affinity(p, a) == 10
    assert plugins.preferred_node_affinity(p, both) == 40
    scores = plugins.plugin_scores(p, [info(a), info(both), info(node("none"))], [])
    assert scores["NodeAffinity"] == {"a": 25, "both": 100, "none": 0}


def test_taint_toleration_score_counts_prefer_no_schedule_reversed() -> None:
    soft = [{"key": "soft", "effect": "PreferNoSchedule"}, {"key": "softer", "effect": "PreferNoSchedule"}]
    nodes = [info(node("clean")), info(node("one", taints=soft[:1])), info(node("two", taints=soft))]
    assert plugins.plugin_scores(pod(), nodes, nodes)["TaintToleration"] == {
        "clean": 100,
        "one": 50,
        "two": 0,
    }
    tolerant = pod(tolerations=[{"key": "soft", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert plugins.intolerable_prefer_no_schedule(tolerant, nodes[2]) == 1
    assert plugins.normalize({"a": 0, "b": 0}, reverse=True) == {"a": 100, "b": 100}


def test_image_locality_favours_nodes_that_have_the_images() -> None:
    big = [{"names": ["busybox:latest"], "sizeBytes": 500 * MI}]
    nodes = [info(node("has", images=big)), info(node("lacks"))]
    spread = {"busybox:latest": 1}
    assert plugins.image_locality(pod(), nodes[0], spread, 2) == 100 * (250 * MI - 23 * MI) // (977 * MI)
    assert plugins.image_locality(pod(), nodes[1], spread, 2) == 0
    assert plugins.normalized_image_name("registry:5000/app") == "registry:5000/app:latest"
    assert plugins.normalized_image_name("app:v1") == "app:v1"


def test_find_node_picks_the_highest_total_score() -> None:
    small = info(node("small", cpu="2", memory="2Gi"))
    large = info(node("large", cpu="16", memory="32Gi"))
    placed = find_node(pod(container("1", "1Gi")), [small, large], random.Random(1))
    assert isinstance(placed, Placement)
    assert placed.node == "large"
    assert placed.scores["large"] > placed.scores["small"]


def test_find_node_breaks_ties_at_random_among_the_best() -> None:
    nodes = [info(node(f"n{i}")) for i in range(4)]
    chosen = set()
    for seed in range(40):
        placed = find_node(pod(), nodes, random.Random(seed))
        assert isinstance(placed, Placement)
        chosen.add(placed.node)
    assert chosen == {"n0", "n1", "n2", "n3"}


# -- the FailedScheduling message -------------------------------------------------------------


def test_message_of_the_upstream_example() -> None:
    control_plane = node(
        "cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    )
    worker = node("w", cpu="1")
    result = find_node(pod(container("2")), [info(control_plane), info(worker)], random.Random(0))
    assert isinstance(result, Unschedulable)
    assert result.message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: "
        "2 Preemption is not helpful for scheduling."
    )


def test_message_when_the_room_is_taken_by_pods_of_the_same_priority() -> None:
    control_plane = node(
        "cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    )
    worker = info(node("w", cpu="2"), pod(container("1500m"), name="running"))
    result = find_node(pod(container("1")), [info(control_plane), worker], random.Random(0))
    assert isinstance(result, Unschedulable)
    assert result.message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: "
        "1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    )


def test_message_counts_and_sorts_reasons_over_nodes() -> None:
    statuses = {
        "a": Status("NodeAffinity", (plugins.ERR_AFFINITY,)),
        "b": Status("NodeAffinity", (plugins.ERR_AFFINITY,)),
        "c": Status("NodeResourcesFit", ("Insufficient cpu", "Insufficient memory"), resolvable=True),
    }
    assert plugins.fit_error_message(3, statuses) == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "2 node(s) didn't match Pod's node affinity/selector."
    )
    assert plugins.fit_error_message(3, statuses, "preemption: x.").endswith("selector. preemption: x.")


def test_message_when_no_node_could_ever_help() -> None:
    nodes = [info(node(f"n{i}", labels={"zone": "a"})) for i in range(2)]
    result = find_node(pod(nodeSelector={"zone": "b"}), nodes, random.Random(0))
    assert isinstance(result, Unschedulable)
    assert result.message == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )


def test_message_without_nodes_and_with_preemption_off() -> None:
    assert find_node(pod(), [], random.Random(0)) == Unschedulable("no nodes available to schedule pods", {})
    never = pod(container("8"), preemptionPolicy="Never")
    result = find_node(never, [info(node("n1"))], random.Random(0))
    assert isinstance(result, Unschedulable)
    assert result.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )


def test_preemption_part_reports_what_evicting_lower_priority_pods_would_leave() -> None:
    n = node("n1", cpu="2")
    low = pod(container("1"), name="low", priority=0)
    medium = pod(container("800m"), name="medium", priority=500)
    nodes = [info(n, low, medium)]
    # Only "low" may be evicted for this pod, and 1.2 cores would still be too few.
    result = find_node(pod(container("1500m"), priority=100), nodes, random.Random(0))
    assert isinstance(result, Unschedulable)
    assert result.message == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: 0/1 nodes are available: 1 Insufficient cpu."
    )
    # Evicting both would make room: upstream would preempt and its message has no preemption part.
    again = find_node(pod(container("1500m"), priority=1000), nodes, random.Random(0))
    assert isinstance(again, Unschedulable)
    assert again.message == "0/1 nodes are available: 1 Insufficient cpu."
