"""What the EndpointSlice mirroring controller computes from a custom Endpoints object."""

from __future__ import annotations

from typing import Any

from k3py.controllers.endpoints import TRIGGER_TIME_ANNOTATION
from k3py.controllers.endpointslice import MANAGED_BY_LABEL, SERVICE_NAME_LABEL
from k3py.controllers.endpointslicemirroring import (
    LAST_APPLIED_ANNOTATION,
    LEADER_ANNOTATION,
    MANAGED_BY,
    SKIP_MIRROR_LABEL,
    address_endpoint,
    desired_slices,
    plan_slices,
    service_mirrorable,
    should_mirror,
    slice_annotations,
    slice_labels,
)

Obj = dict[str, Any]
HTTP = [{"name": "http", "port": 80, "protocol": "TCP"}]


def endpoints(*subsets: Obj, labels: Obj | None = None, annotations: Obj | None = None) -> Obj:
    meta: Obj = {"name": "ext", "namespace": "ns", "uid": "uid-ext"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": list(subsets)}


def subset(*ips: str, not_ready: tuple[str, ...] = (), ports: list[Obj] | None = None) -> Obj:
    return {
        "addresses": [{"ip": ip} for ip in ips],
        "notReadyAddresses": [{"ip": ip} for ip in not_ready],
        "ports": HTTP if ports is None else ports,
    }


def ips(endpoints_: list[Obj]) -> list[str]:
    return [e["addresses"][0] for e in endpoints_]


def existing(name: str, *ips_: str, family: str = "IPv4", ports: list[Obj] | None = None, **meta: Any) -> Obj:
    """A slice as the server lists one this controller wrote."""
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "5", **meta},
        "addressType": family,
        "ports": HTTP if ports is None else ports,
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips_],
    }


LABELS = {SERVICE_NAME_LABEL: "ext", MANAGED_BY_LABEL: MANAGED_BY}


# -- what is mirrored ------------------------------------------------------------------------------


def test_mirroring_is_refused_by_the_skip_label_and_leader_records() -> None:
    assert should_mirror(endpoints())
    assert should_mirror(endpoints(labels={SKIP_MIRROR_LABEL: "false"}))
    assert not should_mirror(endpoints(labels={SKIP_MIRROR_LABEL: "true"}))
    assert not should_mirror(endpoints(annotations={LEADER_ANNOTATION: "{}"}))
    assert not should_mirror(None)


def test_only_services_without_a_selector_are_mirrored() -> None:
    assert service_mirrorable({"metadata": {"name": "ext"}, "spec": {"ports": HTTP}})
    assert service_mirrorable({"metadata": {"name": "ext"}, "spec": {"selector": {}}})
    assert not service_mirrorable({"metadata": {"name": "ext"}, "spec": {"selector": {"app": "web"}}})
    assert not service_mirrorable(None)


def test_an_address_becomes_an_endpoint_of_its_family() -> None:
    target = {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u1"}
    address = {"ip": "10.1.2.3", "hostname": "h", "nodeName": "n1", "targetRef": target}
    assert address_endpoint(address, True) == (
        "IPv4",
        {
            "addresses": ["10.1.2.3"],
            "conditions": {"ready": True},
            "hostname": "h",
            "nodeName": "n1",
            "targetRef": target,
        },
    )
    assert address_endpoint({"ip": "fd00::0:1"}, False) == (
        "IPv6",
        {"addresses": ["fd00::1"], "conditions": {"ready": False}},
    )
    assert address_endpoint({"ip": "::ffff:10.0.0.1"}, True) == (
        "IPv4",
        {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
    )
    assert address_endpoint({"ip": "not-an-ip"}, True) is None
    assert address_endpoint({}, True) is None


def test_subsets_group_by_family_and_port_set() -> None:
    other_ports = [{"port": 81}]  # unnamed, no protocol: named "" and TCP as the server defaults it
    desired = desired_slices(
        endpoints(
            subset("10.0.0.1", not_ready=("10.0.0.2",)),
            subset("fd00::1"),
            subset("10.0.0.3", ports=other_ports),
            subset("10.0.0.4"),  # same ports as the first: the same slices
        )
    )
    groups = {key: group for key, group in desired.groups.items()}
    assert sorted((family, len(group.endpoints)) for (family, _), group in groups.items()) == [
        ("IPv4", 1),
        ("IPv4", 3),
        ("IPv6", 1),
    ]
    main = next(g for (f, _), g in groups.items() if f == "IPv4" and len(g.endpoints) == 3)
    assert main.ports == HTTP
    assert [(e["addresses"][0], e["conditions"]["ready"]) for e in main.endpoints.values()] == [
        ("10.0.0.1", True),
        ("10.0.0.2", False),
        ("10.0.0.4", True),
    ]
    single = next(g for (f, _), g in groups.items() if f == "IPv4" and len(g.endpoints) == 1)
    assert single.ports == [{"name": "", "port": 81, "protocol": "TCP"}]
    assert desired.invalid == 0 and desired.over_limit == 0


def test_invalid_addresses_are_skipped_and_counted() -> None:
    desired = desired_slices(endpoints(subset("10.0.0.1", "999.0.0.1", not_ready=("x",))))
    (group,) = desired.groups.values()
    assert ips(list(group.endpoints.values())) == ["10.0.0.1"]
    assert desired.invalid == 2


def test_at_most_the_per_subset_maximum_is_mirrored() -> None:
    ready = tuple(f"10.0.0.{i}" for i in range(1, 5))
    desired = desired_slices(
        endpoints(subset(*ready, not_ready=("10.0.1.1",)), subset("10.0.2.1", "10.0.2.2")),
        max_per_subset=3,
    )
    (group,) = desired.groups.values()
    # Each subset counts apart: three of the first (ready ones first), both of the second.
    assert ips(list(group.endpoints.values())) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.2.1", "10.0.2.2"]
    assert desired.over_limit == 2


def test_a_listed_address_is_mirrored_once() -> None:
    desired = desired_slices(endpoints(subset("10.0.0.1", "10.0.0.1")))
    (group,) = desired.groups.values()
    assert ips(list(group.endpoints.values())) == ["10.0.0.1"]


def test_slices_carry_the_endpoints_labels_and_annotations_but_two() -> None:
    ep = endpoints(
        labels={"team": "a", SERVICE_NAME_LABEL: "spoofed", MANAGED_BY_LABEL: "someone"},
        annotations={"note": "x", TRIGGER_TIME_ANNOTATION: "t", LAST_APPLIED_ANNOTATION: "{}"},
    )
    assert slice_labels(ep) == {"team": "a", **LABELS}
    assert slice_annotations(ep) == {"note": "x"}


# -- planning --------------------------------------------------------------------------------------


def test_new_endpoints_are_created_in_slices_of_at_most_the_maximum() -> None:
    desired = desired_slices(endpoints(subset(*(f"10.0.0.{i}" for i in range(1, 6)))))
    plan = plan_slices(desired, [], LABELS, {}, max_per_slice=2)
    assert [ips(w.endpoints) for w in plan.create] == [
        ["10.0.0.1", "10.0.0.2"],
        ["10.0.0.3", "10.0.0.4"],
        ["10.0.0.5"],
    ]
    assert all(w.address_type == "IPv4" and w.ports == HTTP and w.current is None for w in plan.create)
    assert not plan.update and not plan.delete


def test_a_slice_already_mirroring_is_left_alone() -> None:
    desired = desired_slices(endpoints(subset("10.0.0.1")))
    assert plan_slices(desired, [existing("ext-a", "10.0.0.1", labels=LABELS)], LABELS, {}).empty


def test_server_written_endpoint_fields_are_not_a_change() -> None:
    desired = desired_slices(endpoints(subset("10.0.0.1")))
    current = existing("ext-a", "10.0.0.1", labels=LABELS)
    current["endpoints"][0]["zone"] = "z1"
    assert plan_slices(desired, [current], LABELS, {}).empty


def test_a_changed_address_rewrites_the_slice_in_place() -> None:
    desired = desired_slices(endpoints(subset("10.2.3.4")))
    current = existing("ext-a", "10.1.2.3", labels=LABELS)
    plan = plan_slices(desired, [current], LABELS, {})
    assert not plan.create and not plan.delete
    (write,) = plan.update
    assert write.current is current and ips(write.endpoints) == ["10.2.3.4"]


def test_changed_readiness_labels_or_annotations_rewrite_the_slice() -> None:
    desired = desired_slices(endpoints(subset(not_ready=("10.0.0.1",))))
    plan = plan_slices(desired, [existing("ext-a", "10.0.0.1", labels=LABELS)], LABELS, {})
    assert [w.endpoints[0]["conditions"] for w in plan.update] == [{"ready": False}]
    desired = desired_slices(endpoints(subset("10.0.0.1")))
    relabelled = {**LABELS, "team": "b"}
    assert (
        len(plan_slices(desired, [existing("ext-a", "10.0.0.1", labels=LABELS)], relabelled, {}).update) == 1
    )
    current = existing("ext-a", "10.0.0.1", labels=LABELS)
    assert len(plan_slices(desired, [current], LABELS, {"note": "x"}).update) == 1


def test_new_endpoints_fill_room_in_existing_slices_before_new_ones_are_made() -> None:
    desired = desired_slices(endpoints(subset("10.0.0.1", "10.0.0.2", "10.0.0.3")))
    current = existing("ext-a", "10.0.0.1", labels=LABELS)
    plan = plan_slices(desired, [current], LABELS, {}, max_per_slice=2)
    assert [(w.current is current, ips(w.endpoints)) for w in plan.update] == [
        (True, ["10.0.0.1", "10.0.0.2"])
    ]
    assert [ips(w.endpoints) for w in plan.create] == [["10.0.0.3"]]


def test_slices_of_ports_or_families_no_longer_listed_are_deleted() -> None:
    desired = desired_slices(endpoints(subset("10.0.0.1")))
    keep = existing("ext-a", "10.0.0.1", labels=LABELS)
    old_ports = existing(
        "ext-b", "10.0.0.1", labels=LABELS, ports=[{"name": "x", "port": 9, "protocol": "UDP"}]
    )
    old_family = existing("ext-c", "fd00::1", family="IPv6", labels=LABELS)
    plan = plan_slices(desired, [keep, old_ports, old_family], LABELS, {})
    assert not plan.create and not plan.update
    assert [s["metadata"]["name"] for s in plan.delete] == ["ext-b", "ext-c"]


def test_no_subsets_deletes_every_slice() -> None:
    plan = plan_slices(
        desired_slices(endpoints()), [existing("ext-a", "10.0.0.1", labels=LABELS)], LABELS, {}
    )
    assert [s["metadata"]["name"] for s in plan.delete] == ["ext-a"]
    assert not plan.create and not plan.update
    assert plan_slices(desired_slices(endpoints()), [], LABELS, {}).empty


def test_a_slice_to_be_deleted_is_reused_for_a_slice_to_be_created() -> None:
    # The port changed: the old slice's group is gone and a new one is wanted.
    desired = desired_slices(endpoints(subset("10.0.0.1", ports=[{"name": "http", "port": 8080}])))
    current = existing("ext-a", "10.0.0.1", labels=LABELS)
    plan = plan_slices(desired, [current], LABELS, {})
    assert not plan.create and not plan.delete
    (write,) = plan.update
    assert write.current is current
    assert write.ports == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert ips(write.endpoints) == ["10.0.0.1"]


def test_an_endpoint_listed_twice_across_slices_is_kept_once() -> None:
    desired = desired_slices(endpoints(subset("10.0.0.1", "10.0.0.2")))
    first = existing("ext-a", "10.0.0.1", labels=LABELS)
    second = existing("ext-b", "10.0.0.1", "10.0.0.2", labels=LABELS)
    plan = plan_slices(desired, [first, second], LABELS, {})
    assert not plan.create and not plan.delete
    assert [(w.current is second, ips(w.endpoints)) for w in plan.update] == [(True, ["10.0.0.2"])]
