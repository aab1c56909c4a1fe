"""Kubernetes' authorizer library: ``authorizer.group('apps').resource('deployments').check('get')``.

An expression builds a request step by step (``path``, ``group``, ``resource``,
``subresource``, ``namespace``, ``name``, ``fieldSelector``, ``labelSelector``,
``serviceAccount``) and ``check(verb)`` asks the authorizer, giving a decision with
``allowed()``, ``reason()``, ``errored()`` and ``error()``. The asking is not done here: the
caller puts an :class:`Authorizer` in the activation whose ``check`` function receives the
:class:`AuthzAttributes` and returns a :class:`Decision`, so the API server's own authorizer
chain answers. Declare the variable with type :data:`AUTHORIZER` (and ``authorizer.requestResource``
with :data:`RESOURCE_CHECK`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import define
from k3py.api.cel.types import BOOL, STRING, opaque

AUTHORIZER: Final = opaque("kubernetes.authorization.Authorizer")
PATH_CHECK: Final = opaque("kubernetes.authorization.PathCheck")
GROUP_CHECK: Final = opaque("kubernetes.authorization.GroupCheck")
RESOURCE_CHECK: Final = opaque("kubernetes.authorization.ResourceCheck")
DECISION: Final = opaque("kubernetes.authorization.Decision")


@dataclass(frozen=True, slots=True)
class AuthzAttributes:
    """What is asked: a non-resource ``path``, or a resource request; ``service_account`` is
    ``(namespace, name)`` when the expression asks on behalf of one instead of the requester."""

    verb: str
    path: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    field_selector: str = ""
    label_selector: str = ""
    service_account: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """``decision`` is ``allow``, ``deny`` or ``noopinion``; ``error`` is set when it errored."""

    decision: str
    reason: str = ""
    error: str = ""
    cel_type = "kubernetes.authorization.Decision"


@dataclass(frozen=True, slots=True)
class Authorizer:
    check: Callable[[AuthzAttributes], Decision]
    service_account: tuple[str, str] | None = None
    cel_type = "kubernetes.authorization.Authorizer"


@dataclass(frozen=True, slots=True)
class PathCheck:
    authorizer: Authorizer
    path: str
    cel_type = "kubernetes.authorization.PathCheck"


@dataclass(frozen=True, slots=True)
class GroupCheck:
    authorizer: Authorizer
    group: str
    cel_type = "kubernetes.authorization.GroupCheck"


@dataclass(frozen=True, slots=True)
class ResourceCheck:
    authorizer: Authorizer
    attributes: AuthzAttributes
    cel_type = "kubernetes.authorization.ResourceCheck"


def _path(authorizer: Authorizer, path: str) -> PathCheck:
    if not path:
        raise CelEvalError("path must not be empty")
    return PathCheck(authorizer, path)


def _service_account(authorizer: Authorizer, namespace: str, name: str) -> Authorizer:
    if not name:
        raise CelEvalError("Invalid service account name")
    if not namespace:
        raise CelEvalError("Invalid service account namespace")
    return replace(authorizer, service_account=(namespace, name))


def _resource(check: GroupCheck, resource: str) -> ResourceCheck:
    if not resource:
        raise CelEvalError("resource must not be empty")
    attributes = AuthzAttributes("", group=check.group, resource=resource)
    return ResourceCheck(check.authorizer, attributes)


def _with(check: ResourceCheck, attribute: str, value: str) -> ResourceCheck:
    return ResourceCheck(check.authorizer, replace(check.attributes, **{attribute: value}))  # type: ignore[arg-type]


def _check_path(check: PathCheck, verb: str) -> Decision:
    authorizer = check.authorizer
    return authorizer.check(
        AuthzAttributes(verb, path=check.path, service_account=authorizer.service_account)
    )


def _check_resource(check: ResourceCheck, verb: str) -> Decision:
    authorizer = check.authorizer
    attributes = replace(check.attributes, verb=verb, service_account=authorizer.service_account)
    return authorizer.check(attributes)


def _define() -> None:
    define("path", (AUTHORIZER, STRING), PATH_CHECK, _path, member=True)
    define("group", (AUTHORIZER, STRING), GROUP_CHECK, lambda a, g: GroupCheck(a, g), member=True)
    define("serviceAccount", (AUTHORIZER, STRING, STRING), AUTHORIZER, _service_account, member=True)
    define("resource", (GROUP_CHECK, STRING), RESOURCE_CHECK, _resource, member=True)
    for function, attribute in (
        ("subresource", "subresource"),
        ("namespace", "namespace"),
        ("name", "name"),
        ("fieldSelector", "field_selector"),
        ("labelSelector", "label_selector"),
    ):
        define(
            function,
            (RESOURCE_CHECK, STRING),
            RESOURCE_CHECK,
            lambda c, v, a=attribute: _with(c, a, v),
            member=True,
        )
    define("check", (PATH_CHECK, STRING), DECISION, _check_path, member=True)
    define("check", (RESOURCE_CHECK, STRING), DECISION, _check_resource, member=True)
    define("allowed", (DECISION,), BOOL, lambda d: d.decision == "allow", member=True)
    define("reason", (DECISION,), STRING, lambda d: d.reason, member=True)
    define("errored", (DECISION,), BOOL, lambda d: bool(d.error), member=True)
    define("error", (DECISION,), STRING, lambda d: d.error, member=True)


_define()
