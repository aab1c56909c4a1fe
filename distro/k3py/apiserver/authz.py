"""Authorization: may this user do this? (kube-apiserver's authorizer chain)

A request is described by :class:`Attributes` (user, verb, and either a resource with group,
namespace, name and subresource, or a non-resource path). The chain asks each authorizer in
turn and stops at the first that allows: members of ``system:masters`` first (they bypass
everything, as upstream's privileged-group authorizer does), then RBAC. A denial is a 403
``Status`` worded as kube-apiserver words it, which ``kubectl`` prints verbatim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from k3py.apiserver import errors
from k3py.apiserver.authn import MASTERS, User
from k3py.apiserver.request import RequestInfo


@dataclass(frozen=True)
class Attributes:
    user: User
    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @classmethod
    def of(cls, user: User, info: RequestInfo) -> Attributes:
        return cls(
            user=user,
            verb=info.verb,
            resource_request=info.resource_request,
            path=info.path,
            api_group=info.api_group,
            api_version=info.api_version,
            namespace=info.namespace,
            resource=info.resource,
            subresource=info.subresource,
            name=info.name,
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


Authorizer = Callable[[Attributes], Decision]


def privileged_groups(attrs: Attributes) -> Decision:
    return Decision(MASTERS in attrs.user.groups)


class Chain:
    """The first authorizer that allows wins; the denial carries every reason given."""

    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers = tuple(authorizers)

    def __call__(self, attrs: Attributes) -> Decision:
        reasons: list[str] = []
        for authorizer in self.authorizers:
            decision = authorizer(attrs)
            if decision.allowed:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        return Decision(False, "; ".join(reasons))


def forbidden_message(attrs: Attributes) -> str:
    """upstream's ``User "x" cannot <verb> ...`` sentence."""
    user = attrs.user.name
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'


def forbidden(attrs: Attributes, reason: str = "") -> errors.ApiError:
    """A 403 ``Status``: ``pods "x" is forbidden: User "u" cannot get resource "pods" ...``."""
    sentence = forbidden_message(attrs)
    if reason:
        sentence = f"{sentence}: {reason}"
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if not attrs.resource_request or not qualified:
        message = f"forbidden: {sentence}"
    elif attrs.name:
        message = f'{qualified} "{attrs.name}" is forbidden: {sentence}'
    else:
        message = f"{qualified} is forbidden: {sentence}"
    details: dict[str, object] = {}
    if attrs.resource_request:
        details = {"group": attrs.api_group, "kind": attrs.resource}
        if attrs.name:
            details["name"] = attrs.name
    return errors.ApiError(403, "Forbidden", message, details)
