"""The Priority admission plugin over a real SQLite store: pods get their class's priority and
preemption policy, the global default class, or priority 0; unknown classes and hand-set
priorities are refused as upstream refuses them."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.apiserver.priority import PriorityAdmission, ensure_system_classes
from k3py.storage.model import Backend

Obj = dict[str, Any]
NS = "default"


@pytest.fixture
async def store(backend: Backend) -> ObjectStore:
    objects = ObjectStore(backend, Registry(from_manifest(selection())))
    objects.admission.append(PriorityAdmission(objects))
    await objects.create(lookup(objects, "", "namespaces"), "", {"metadata": {"name": NS}}, WriteOptions())
    await ensure_system_classes(objects)
    await ensure_system_classes(objects)  # a restart finds them there
    return objects


def lookup(store: ObjectStore, group: str, plural: str) -> Resource:
    found = store.registry.lookup(group, "v1", plural)
    assert found is not None
    return found


async def pod(store: ObjectStore, name: str, **spec: Any) -> Obj:
    body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}], **spec}}
    created = await store.create(lookup(store, "", "pods"), NS, body, WriteOptions())
    return dict(created["spec"])


async def priority_class(store: ObjectStore, name: str, value: int, **extra: Any) -> None:
    body = {"metadata": {"name": name}, "value": value, **extra}
    await store.create(lookup(store, "scheduling.k8s.io", "priorityclasses"), "", body, WriteOptions())


async def refused(call: Any) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        await call
    return caught.value


async def test_pods_get_their_class_priority_or_the_default(store: ObjectStore) -> None:
    plain = await pod(store, "plain")
    assert (plain["priority"], plain["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    critical = await pod(store, "critical", priorityClassName="system-node-critical")
    assert (critical["priority"], critical["preemptionPolicy"]) == (2000001000, "PreemptLowerPriority")
    await priority_class(store, "high", 1000, preemptionPolicy="Never")
    high = await pod(store, "high", priorityClassName="high")
    assert (high["priority"], high["preemptionPolicy"]) == (1000, "Never")
    await priority_class(store, "everyday", 10, globalDefault=True)
    defaulted = await pod(store, "defaulted")
    assert (defaulted["priorityClassName"], defaulted["priority"]) == ("everyday", 10)


async def test_unknown_classes_hand_set_priorities_and_second_defaults_are_refused(
    store: ObjectStore,
) -> None:
    unknown = await refused(pod(store, "x", priorityClassName="nope"))
    assert (unknown.code, unknown.reason) == (403, "Forbidden")
    assert unknown.message == 'pods "x" is forbidden: no PriorityClass with name nope was found'
    await priority_class(store, "high", 1000)
    mismatch = await refused(pod(store, "y", priorityClassName="high", priority=5))
    assert mismatch.code == 403 and "must not be provided in pod spec" in mismatch.message
    assert (await pod(store, "z", priorityClassName="high", priority=1000))["priority"] == 1000
    await priority_class(store, "first", 1, globalDefault=True)
    second = await refused(priority_class(store, "second", 2, globalDefault=True))
    assert second.code == 403 and "PriorityClass first is already marked as default" in second.message


async def test_class_values_and_policies_are_fixed_and_system_names_reserved(store: ObjectStore) -> None:
    classes = lookup(store, "scheduling.k8s.io", "priorityclasses")
    await priority_class(store, "batch", 100, preemptionPolicy="Never", description="old")
    stored = await store.get(classes, "", "batch")
    for change, field, detail in (
        ({"value": 1000}, "value", "Forbidden: may not be changed in an update."),
        ({"preemptionPolicy": "PreemptLowerPriority"}, "preemptionPolicy", "field is immutable"),
    ):
        invalid = await refused(store.update(classes, "", "batch", {**stored, **change}, WriteOptions()))
        assert (invalid.code, invalid.reason) == (422, "Invalid"), invalid.message
        assert field in invalid.message and detail in invalid.message, invalid.message
    described = await store.update(classes, "", "batch", {**stored, "description": "new"}, WriteOptions())
    assert (described["description"], described["value"]) == ("new", 100)

    reserved = await refused(priority_class(store, "system-mine", 5))
    assert (
        reserved.code == 422
        and (
            "priority class names with 'system-' prefix are reserved for system use only. "
            "error: system-mine is not a known system priority class"
        )
        in reserved.message
    ), reserved.message
    too_high = await refused(priority_class(store, "vip", 1_000_000_001))
    assert "maximum allowed value of a user defined priority is 1000000000" in too_high.message
    policy = await refused(priority_class(store, "odd", 1, preemptionPolicy="Sometimes"))
    assert 'Unsupported value: "Sometimes"' in policy.message, policy.message
