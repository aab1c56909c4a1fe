"""What a policy's expressions see for one invocation: the ``namespaceObject`` variable as
upstream builds it (``request`` is the webhooks' AdmissionRequest,
:func:`~k3py.apiserver.webhook_review.admission_request`), and :class:`Inputs`, which makes the
activation.

``object`` is not fixed in :class:`Inputs`: a MutatingAdmissionPolicy changes the object between
its expressions, so each activation is made afresh from the object as it stands (and with
fresh ``variables``, which depend on it). The ``authorizer`` is there when the plugin was given
the API server's authorizer chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k3py.api.cel import Authorizer
from k3py.apiserver.admission_policy_cel import PolicyEnv

Obj = dict[str, Any]


@dataclass(frozen=True)
class Inputs:
    """The variables of one (policy, binding, param) invocation but ``object``."""

    env: PolicyEnv
    old: Obj | None
    request: Obj
    namespace: Obj | None
    params: Obj | None
    authorizer: Authorizer | None = None

    def activation(self, obj: Obj | None) -> dict[str, object]:
        return self.env.activation(
            obj=obj,
            old=self.old,
            request=self.request,
            namespace=self.namespace,
            params=self.params,
            authorizer=self.authorizer,
        )


_NAMESPACE_META = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "finalizers",
)


def namespace_object(namespace: Obj | None) -> Obj | None:
    """The ``namespaceObject`` variable: the Namespace without managedFields and owners
    (upstream's ``CreateNamespaceObject``)."""
    if namespace is None:
        return None
    meta = namespace.get("metadata") or {}
    trimmed: Obj = {"metadata": {k: meta[k] for k in _NAMESPACE_META if k in meta}}
    for part in ("spec", "status"):
        if part in namespace:
            trimmed[part] = namespace[part]
    return trimmed
