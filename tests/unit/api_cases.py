"""What the defaulting and validation tests share: the served resources by name, default-then-validate,
the causes upstream's field errors print as, and a manifest from the Kubernetes docs."""

from __future__ import annotations

import copy
from typing import Any

from k3py.api import defaults
from k3py.api.resources import RESOURCES, Resource
from k3py.api.validation import Cause, validate

Obj = dict[str, Any]


def resource(name: str) -> Resource:
    """A served resource by kubectl's name (``pods``, ``deployments.apps``)."""
    return next(r for r in RESOURCES if r.name == name)


def check(name: str, obj: Obj, old: Obj | None = None) -> list[Cause]:
    """Default and validate ``obj`` as a create (or, given ``old``, an update) would."""
    new = copy.deepcopy(obj)
    defaults.apply(resource(name), new)
    if old is not None:
        old = copy.deepcopy(old)
        defaults.apply(resource(name), old)
    return validate(resource(name), new, old)


def invalid(field: str, shown: str, detail: str) -> Cause:
    return Cause(
        "FieldValueInvalid",
        f"Invalid value: {shown}: {detail}" if detail else f"Invalid value: {shown}",
        field,
    )


def required(field: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), field)


def forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"Forbidden: {detail}", field)


# The StatefulSet example of the Kubernetes documentation.
WEB_STATEFULSET: Obj = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "nginx"}},
        "serviceName": "nginx",
        "replicas": 3,
        "minReadySeconds": 10,
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {
                "terminationGracePeriodSeconds": 10,
                "containers": [
                    {
                        "name": "nginx",
                        "image": "registry.k8s.io/nginx-slim:0.24",
                        "ports": [{"containerPort": 80, "name": "web"}],
                        "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}],
                    }
                ],
            },
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "www"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "my-storage-class",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ],
    },
}
