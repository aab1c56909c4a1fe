"""PersistentVolumeClaim updates: the spec is immutable but for binding and, once bound, resizing."""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.api_cases import check, forbidden

IMMUTABLE = forbidden(
    "spec",
    "spec is immutable after creation except resources.requests "
    "and volumeAttributesClassName for bound claims",
)


def claim(**spec: Any) -> dict[str, Any]:
    base = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "c", "namespace": "n"},
        "spec": base,
    }


def changed(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["spec"].update(spec)
    return new


def test_access_modes_cannot_change() -> None:
    old = claim()
    assert IMMUTABLE in check("persistentvolumeclaims", changed(old, accessModes=["ReadOnlyMany"]), old)


def test_binding_may_set_the_volume_and_class_once() -> None:
    old = claim()
    assert (
        check("persistentvolumeclaims", changed(old, volumeName="pv-1", storageClassName="local"), old) == []
    )
    bound = changed(old, volumeName="pv-1")
    assert IMMUTABLE in check("persistentvolumeclaims", changed(bound, volumeName="pv-2"), bound)


def test_a_bound_claim_may_grow_but_not_shrink() -> None:
    old = claim()
    old["status"] = {"phase": "Bound"}
    grown = changed(old, resources={"requests": {"storage": "2Gi"}})
    assert check("persistentvolumeclaims", grown, old) == []
    shrunk = changed(grown, resources={"requests": {"storage": "512Mi"}})
    assert check("persistentvolumeclaims", shrunk, grown) == [
        forbidden("spec.resources.requests.storage", "field can not be less than previous value")
    ]
    pending = claim()
    assert IMMUTABLE in check(
        "persistentvolumeclaims", changed(pending, resources={"requests": {"storage": "2Gi"}}), pending
    )
