"""Which admission webhooks a request goes to: upstream's matching, as plain functions.

A webhook of a Mutating- or ValidatingWebhookConfiguration (admissionregistration.k8s.io/v1)
is called for a request when all of these hold, in this order (kube-apiserver's
``ShouldCallHook``):

1. a rule matches: operation, API group, version, resource (``*``, ``*/*``, ``pods/status``,
   ``*/scale``...) and scope. With ``matchPolicy: Equivalent`` (the default) a rule naming
   another version of the same group and resource matches too (:class:`Match` says which);
2. the ``namespaceSelector`` selects the namespace's labels (the object's own labels for a
   Namespace; cluster-scoped objects always pass);
3. the ``objectSelector`` selects the new or the old object's labels;
4. the ``matchConditions`` hold (:func:`conditions_hold`). They are CEL over ``object``,
   ``oldObject`` (null when the request has none: ``object`` on DELETE), ``request`` (the
   AdmissionRequest) and ``authorizer``, compiled when a configuration is read (each
   expression once, :func:`~k3py.apiserver.admission_policy_cel.webhook_conditions`) and
   evaluated in order: one that is false skips the webhook; one that fails refuses the
   request with a 403 under ``failurePolicy: Fail`` and skips the webhook under ``Ignore``.

Webhook configurations (and the admission policies) are never sent to webhooks, so that a
broken webhook cannot stop its own removal (:func:`exempt`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from k3py.api.cel import Authorizer
from k3py.api.selectors import LabelSelector, SelectorError, from_label_selector_object
from k3py.apiserver import errors
from k3py.apiserver.admission_policy_cel import (
    MATCH_CONDITIONS_COST_BUDGET,
    Condition,
    match_conditions,
    webhook_activation,
    webhook_conditions,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GROUP = "admissionregistration.k8s.io"
EXEMPT_RESOURCES = frozenset(
    {
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "mutatingadmissionpolicies",
        "mutatingadmissionpolicybindings",
    }
)
DEFAULT_TIMEOUT = 10
"""Seconds a call may take when ``timeoutSeconds`` is not set (v1's default)."""


@dataclass(frozen=True)
class GroupVersionResource:
    group: str
    version: str
    resource: str


@dataclass(frozen=True)
class Request:
    """What matching needs to know about one admission request."""

    resource: GroupVersionResource
    subresource: str
    operation: str
    """CREATE, UPDATE, DELETE or CONNECT."""
    namespace: str
    """"" for cluster-scoped objects, Namespaces included."""
    obj: Obj | None
    old: Obj | None
    equivalents: tuple[GroupVersionResource, ...] = ()
    """The same group and resource in the other versions served, for ``matchPolicy: Equivalent``."""

    @property
    def is_namespace(self) -> bool:
        return self.resource.group == "" and self.resource.resource == "namespaces"


@dataclass(frozen=True)
class Hook:
    """One webhook of a configuration, with v1's defaults applied."""

    configuration: str
    name: str
    mutating: bool
    rules: tuple[Obj, ...]
    client_config: Obj
    namespace_selector: LabelSelector
    object_selector: LabelSelector
    match_policy: str = "Equivalent"
    failure_policy: str = "Fail"
    side_effects: str = ""
    timeout: int = DEFAULT_TIMEOUT
    reinvocation: str = "Never"
    review_versions: tuple[str, ...] = ("v1",)
    match_conditions: tuple[Obj, ...] = field(default=())
    conditions: tuple[Condition, ...] = field(default=())
    """``match_conditions`` compiled."""

    @property
    def ignores_failures(self) -> bool:
        return self.failure_policy == "Ignore"


@dataclass(frozen=True)
class Match:
    """A hook that matched, and the resource version its rule named (the request's own
    unless it matched through an equivalent one)."""

    hook: Hook
    resource: GroupVersionResource


def exempt(resource: GroupVersionResource) -> bool:
    """Webhook configurations and admission policies never go to webhooks."""
    return resource.group == GROUP and resource.resource in EXEMPT_RESOURCES


# -- reading configurations ---------------------------------------------------------------------


def hooks_of(configurations: Iterable[Obj], *, mutating: bool) -> list[Hook]:
    """The webhooks of ``configurations``, in the order they are called: by configuration
    name, then as listed. A webhook whose selectors do not parse is left out."""
    hooks: list[Hook] = []
    for config in sorted(configurations, key=lambda c: str(c.get("metadata", {}).get("name", ""))):
        name = str(config.get("metadata", {}).get("name", ""))
        for webhook in config.get("webhooks") or []:
            hook = parse_hook(name, webhook, mutating=mutating)
            if hook is not None:
                hooks.append(hook)
    return hooks


def parse_hook(configuration: str, webhook: Obj, *, mutating: bool) -> Hook | None:
    try:
        namespace_selector = from_label_selector_object(webhook.get("namespaceSelector") or {})
        object_selector = from_label_selector_object(webhook.get("objectSelector") or {})
    except SelectorError:
        return None
    timeout = webhook.get("timeoutSeconds")
    return Hook(
        configuration=configuration,
        name=str(webhook.get("name", "")),
        mutating=mutating,
        rules=tuple(webhook.get("rules") or ()),
        client_config=dict(webhook.get("clientConfig") or {}),
        namespace_selector=namespace_selector,
        object_selector=object_selector,
        match_policy=str(webhook.get("matchPolicy") or "Equivalent"),
        failure_policy=str(webhook.get("failurePolicy") or "Fail"),
        side_effects=str(webhook.get("sideEffects") or ""),
        timeout=int(timeout) if isinstance(timeout, int) and timeout > 0 else DEFAULT_TIMEOUT,
        reinvocation=str(webhook.get("reinvocationPolicy") or "Never"),
        review_versions=tuple(str(v) for v in webhook.get("admissionReviewVersions") or ("v1",)),
        match_conditions=tuple(webhook.get("matchConditions") or ()),
        conditions=webhook_conditions(webhook.get("matchConditions") or ()),
    )


# -- rules ----------------------------------------------------------------------------------------


def rule_matches(rule: Mapping[str, Any], request: Request, resource: GroupVersionResource) -> bool:
    """``rules.Matcher.Matches`` for ``resource`` (the request's, or an equivalent one)."""
    operations = rule.get("operations") or []
    if "*" not in operations and request.operation not in operations:
        return False
    if not _listed(rule.get("apiGroups"), resource.group):
        return False
    if not _listed(rule.get("apiVersions"), resource.version):
        return False
    if not _resource_listed(rule.get("resources") or [], resource.resource, request.subresource):
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster":
        return request.namespace == ""
    if scope == "Namespaced":
        return request.namespace != ""
    return True


def _listed(values: Sequence[str] | None, value: str) -> bool:
    return any(v == "*" or v == value for v in values or [])


def _resource_listed(resources: Sequence[str], resource: str, subresource: str) -> bool:
    for entry in resources:
        name, _, sub = entry.partition("/")
        if (name == "*" or name == resource) and (sub == "*" or sub == subresource):
            return True
    return False


def matched_resource(hook: Hook, request: Request) -> GroupVersionResource | None:
    """The resource a rule of ``hook`` matched: the request's, else (Equivalent) another
    version's; None when no rule matches."""
    if any(rule_matches(rule, request, request.resource) for rule in hook.rules):
        return request.resource
    if hook.match_policy != "Equivalent":
        return None
    for equivalent in request.equivalents:
        if any(rule_matches(rule, request, equivalent) for rule in hook.rules):
            return equivalent
    return None


# -- selectors ------------------------------------------------------------------------------------


def namespace_selected(hook: Hook, request: Request, namespace_labels: Mapping[str, str] | None) -> bool:
    """``namespaceSelector``: ``namespace_labels`` are the labels of the request's namespace
    (None when there is none to read: a cluster-scoped object)."""
    if hook.namespace_selector.empty:
        return True
    if request.is_namespace:
        source = request.obj if request.obj is not None else request.old
        return hook.namespace_selector.matches(labels_of(source))
    if request.namespace == "":
        return True  # cluster-scoped objects are not in a namespace to select
    return hook.namespace_selector.matches(namespace_labels or {})


def object_selected(hook: Hook, request: Request) -> bool:
    if hook.object_selector.empty:
        return True
    return any(
        obj is not None and hook.object_selector.matches(labels_of(obj)) for obj in (request.obj, request.old)
    )


def labels_of(obj: Obj | None) -> dict[str, str]:
    if not isinstance(obj, dict):
        return {}
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def needs_namespace(hook: Hook, request: Request) -> bool:
    """Whether deciding on ``hook`` needs the namespace's labels read."""
    return not hook.namespace_selector.empty and not request.is_namespace and request.namespace != ""


# -- match conditions -----------------------------------------------------------------------------


def conditions_hold(
    hook: Hook, request: Request, admission: Obj | None = None, authorizer: Authorizer | None = None
) -> bool:
    """Whether the ``matchConditions`` of ``hook`` let it be called for ``request``
    (upstream's ``ShouldCallHook``, last step). ``admission`` is the ``request`` variable, the
    AdmissionRequest for the resource the hook matched (without it, what ``request`` alone
    tells: :func:`admission_request_of`); ``authorizer`` answers ``authorizer`` checks as the
    requester. A condition that fails raises the refusal (403) under ``failurePolicy: Fail``."""
    if not hook.conditions:
        return True
    admission = admission if admission is not None else admission_request_of(request)
    activation = webhook_activation(
        obj=request.obj, old=request.old, request=admission, authorizer=authorizer
    )
    result = match_conditions(hook.conditions, activation, hook.failure_policy, MATCH_CONDITIONS_COST_BUDGET)
    if result.error:
        log.warning("Failed evaluating match conditions, failing closed %s: %s", hook.name, result.error)
        raise conditions_failed(request, str(admission.get("name") or ""), result.error)
    return result.matches


def admission_request_of(request: Request) -> Obj:
    """The AdmissionRequest as far as ``request`` tells it: resource, subresource, operation,
    namespace and name, without the kinds and the user."""
    resource = request.resource
    gvr = {"group": resource.group, "version": resource.version, "resource": resource.resource}
    source = request.obj if request.obj is not None else request.old
    admission: Obj = {
        "resource": gvr,
        "requestResource": dict(gvr),
        "name": str(((source or {}).get("metadata") or {}).get("name") or ""),
        "operation": request.operation,
    }
    if request.subresource:
        admission["subResource"] = admission["requestSubResource"] = request.subresource
    if request.namespace:
        admission["namespace"] = request.namespace
    return admission


def conditions_failed(request: Request, name: str, error: str) -> errors.ApiError:
    """Upstream's refusal when conditions fail under ``Fail``: ``NewForbidden`` of the
    request's resource and name, with the evaluation error."""
    resource = request.resource
    qualified = f"{resource.resource}.{resource.group}" if resource.group else resource.resource
    who = f'{qualified} "{name}"' if name else qualified
    details: dict[str, Any] = {"name": name, "kind": resource.resource}
    if resource.group:
        details["group"] = resource.group
    return errors.ApiError(403, "Forbidden", f"{who} is forbidden: {error}", details)
