"""Admission policies: what ValidatingAdmissionPolicy and MutatingAdmissionPolicy share.

A policy (admissionregistration.k8s.io/v1) says what to check or change in CEL; a binding
names the policy (``spec.policyName``), may narrow the requests it applies to
(``matchResources``) and may give it parameters (``paramRef``). Both kinds are followed
through :class:`~k3py.apiserver.cache.ObjectCache`, as the webhook configurations are, so a
policy applies within milliseconds of being written. This module holds the parts of
kube-apiserver's ``policy/generic`` and ``policy/matching`` that both plugins use:

- :class:`PolicySource` follows one policy kind and its bindings and compiles each policy
  once per resourceVersion (the compiling is the plugin's);
- :func:`parse_match` and :func:`resource_matched` decide whether ``matchConstraints`` (or a
  binding's ``matchResources``) select a request, in upstream's order: namespace selector,
  object selector, ``excludeResourceRules``, ``resourceRules`` (with ``resourceNames`` and
  ``matchPolicy: Equivalent``), reusing :mod:`~k3py.apiserver.webhook_rules`;
- :func:`collect_params` finds the parameter objects a binding's ``paramRef`` names;
- :class:`Admitting` is one admission request as policies see it: the webhook
  :class:`~k3py.apiserver.webhook_review.Call` and the namespace object (read once). Its
  :meth:`Admitting.invocations` is the dispatcher both plugins walk (for each policy, each
  binding that matches, each parameter object), and :meth:`Admitting.inputs` what the
  expressions of one invocation see (:mod:`.admission_policy_inputs`).

What goes wrong with a policy or binding as written (a selector that does not parse, a
parameter that cannot be found) is a :class:`PolicyConfigError`; the plugin refuses or lets
the request through according to the policy's ``failurePolicy``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from k3py.api.cel import Authorizer
from k3py.api.resources import Registry, Resource
from k3py.api.selectors import SelectorError, from_label_selector_object
from k3py.apiserver import authz, errors
from k3py.apiserver.admission_policy_cel import PolicyEnv, cel_authorizer
from k3py.apiserver.admission_policy_inputs import Inputs, namespace_object
from k3py.apiserver.authn import User
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import ListOptions, ObjectStore, WriteOptions
from k3py.apiserver.webhook_review import Call, admission_request, is_namespace
from k3py.apiserver.webhook_rules import (
    GROUP,
    GroupVersionResource,
    Hook,
    Request,
    labels_of,
    namespace_selected,
    needs_namespace,
    object_selected,
    rule_matches,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
T = TypeVar("T")


class PolicyConfigError(Exception):
    """A policy or binding that cannot be applied as written."""


# -- matchConstraints and matchResources ------------------------------------------------------


@dataclass(frozen=True)
class MatchResources:
    """``matchConstraints`` of a policy or ``matchResources`` of a binding, parsed. The rules
    and selectors sit in a :class:`Hook` so that webhook matching reads them."""

    hook: Hook
    exclude: tuple[Obj, ...] = ()


def parse_match(match: Obj | None, owner: str) -> MatchResources:
    """Selectors left out select everything (v1 defaults them to ``{}``); raise
    :class:`PolicyConfigError` for one that does not parse."""
    match = match if isinstance(match, dict) else {}
    try:
        namespace_selector = from_label_selector_object(match.get("namespaceSelector") or {})
        object_selector = from_label_selector_object(match.get("objectSelector") or {})
    except SelectorError as exc:
        raise PolicyConfigError(str(exc)) from None
    hook = Hook(
        configuration=owner,
        name=owner,
        mutating=False,
        rules=tuple(r for r in match.get("resourceRules") or () if isinstance(r, dict)),
        client_config={},
        namespace_selector=namespace_selector,
        object_selector=object_selector,
        match_policy=str(match.get("matchPolicy") or "Equivalent"),
    )
    exclude = tuple(r for r in match.get("excludeResourceRules") or () if isinstance(r, dict))
    return MatchResources(hook, exclude)


def resource_matched(
    match: MatchResources, request: Request, name: str, namespace_labels: dict[str, str] | None
) -> GroupVersionResource | None:
    """The resource ``match`` selects ``request`` through (its own, or an equivalent one's),
    or None. ``name`` is the object's name, for ``resourceNames``."""
    if not namespace_selected(match.hook, request, namespace_labels):
        return None
    if not object_selected(match.hook, request):
        return None
    policy = match.hook.match_policy
    if match.exclude and _rules_match(match.exclude, policy, request, name) is not None:
        return None
    if not match.hook.rules:
        return request.resource
    return _rules_match(match.hook.rules, policy, request, name)


def _rules_match(
    rules: Sequence[Obj], policy: str, request: Request, name: str
) -> GroupVersionResource | None:
    """``matchesResourceRules``: the request's resource first, then (Equivalent) the others."""
    for rule in rules:
        if rule_matches(rule, request, request.resource) and _named(rule, name):
            return request.resource
    if policy != "Equivalent":
        return None
    for rule in rules:
        for equivalent in request.equivalents:
            if rule_matches(rule, request, equivalent) and _named(rule, name):
                return equivalent
    return None


def _named(rule: Obj, name: str) -> bool:
    names = rule.get("resourceNames") or []
    return not names or name in names


# -- following policies and bindings ----------------------------------------------------------


@dataclass
class PolicyHook(Generic[T]):
    """One policy, the bindings that name it, and what the plugin compiled from it."""

    policy: Obj
    bindings: list[Obj]
    evaluator: T
    match: MatchResources | None
    error: str = ""
    """Why the policy's ``matchConstraints`` cannot be used ("" when they can)."""

    @property
    def name(self) -> str:
        return name_of(self.policy)

    @property
    def failure_policy(self) -> str:
        return str((self.policy.get("spec") or {}).get("failurePolicy") or "Fail")


class PolicySource(Generic[T]):
    """One policy kind and its bindings, followed; :meth:`hooks` are rebuilt after a change,
    each policy compiled (``compile``) once per resourceVersion."""

    def __init__(self, store: ObjectStore, policies: str, bindings: str, compile: Callable[[Obj], T]) -> None:
        self.store = store
        self.plurals = (policies, bindings)
        self.compile = compile
        self._caches: list[ObjectCache] = []
        self._hooks: list[PolicyHook[T]] | None = []
        self._compiled: dict[str, tuple[str, T]] = {}

    async def start(self) -> bool:
        """Follow both kinds (listed before this returns); False when they are not served."""
        resources = [self.store.registry.lookup(GROUP, "v1", plural) for plural in self.plurals]
        if any(r is None for r in resources):
            log.info("%s/v1 %s are not served: not enforced", GROUP, self.plurals[0])
            return False
        for resource in resources:
            assert resource is not None
            cache = ObjectCache(self.store, resource)
            cache.subscribe(self._forget)
            await cache.start()
            self._caches.append(cache)
        return True

    async def close(self) -> None:
        for cache in self._caches:
            await cache.stop()
        self._caches.clear()

    def _forget(self, _: Obj | None) -> None:
        self._hooks = None

    def hooks(self) -> list[PolicyHook[T]]:
        """Policies that some binding names, by name; their bindings by name too."""
        if self._hooks is None:
            self._hooks = self._build()
        return self._hooks

    def _build(self) -> list[PolicyHook[T]]:
        if len(self._caches) != 2:
            return []
        policies, bindings = (cache.objects() for cache in self._caches)
        by_policy: dict[str, list[Obj]] = {}
        for binding in sorted(bindings, key=name_of):
            policy_name = str((binding.get("spec") or {}).get("policyName") or "")
            by_policy.setdefault(policy_name, []).append(binding)
        hooks: list[PolicyHook[T]] = []
        compiled: dict[str, tuple[str, T]] = {}
        for policy in sorted(policies, key=name_of):
            name, spec = name_of(policy), policy.get("spec") or {}
            if name not in by_policy or not isinstance(spec.get("matchConstraints"), dict):
                continue  # unbound; or without the constraints the API requires: matches nothing
            version = str((policy.get("metadata") or {}).get("resourceVersion") or "")
            cached = self._compiled.get(name)
            evaluator = cached[1] if cached and cached[0] == version else self.compile(policy)
            compiled[name] = (version, evaluator)
            try:
                match: MatchResources | None = parse_match(spec["matchConstraints"], name)
                error = ""
            except PolicyConfigError as exc:
                match, error = None, str(exc)
            hooks.append(PolicyHook(policy, by_policy[name], evaluator, match, error))
        self._compiled = compiled
        return hooks


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


# -- one admission request -------------------------------------------------------------------


@dataclass
class Invocation(Generic[T]):
    """A policy and one of its bindings that apply to a request, with one parameter object
    (None without ``paramKind``/``paramRef``) and the resource the policy matched through."""

    hook: PolicyHook[T]
    binding: Obj
    resource: GroupVersionResource
    kind: str
    param: Obj | None


@dataclass
class ConfigFailure(Generic[T]):
    """A policy (and binding) that could not be applied to a request, and why."""

    hook: PolicyHook[T]
    binding: Obj | None
    message: str


@dataclass
class Admitting:
    """One admission request as policies see it."""

    store: ObjectStore
    call: Call
    authorize: authz.Authorizer | None = None
    """The API server's authorizer chain, for the ``authorizer`` variable (None: not given)."""
    _namespace: Obj | None = field(default=None, init=False)
    _namespace_read: bool = field(default=False, init=False)

    @classmethod
    def of(
        cls,
        store: ObjectStore,
        res: Resource,
        namespace: str,
        obj: Obj,
        old: Obj | None,
        opts: WriteOptions,
        authorize: authz.Authorizer | None = None,
    ) -> Admitting:
        call = Call.of_write(res, namespace, obj, old, opts, equivalents(store, res))
        return cls(store, call, authorize)

    @classmethod
    def connecting(
        cls,
        store: ObjectStore,
        res: Resource,
        namespace: str,
        name: str,
        subresource: str,
        options: Obj,
        user: User,
        authorize: authz.Authorizer | None = None,
    ) -> Admitting:
        """A CONNECT (``pods/exec``...): ``object`` is its options object, as for webhooks."""
        call = Call(res, namespace, name, "CONNECT", subresource, options, None, user, False, options)
        call.equivalents = equivalents(store, res)
        return cls(store, call, authorize)

    @property
    def namespace_name(self) -> str:
        """The namespace the object is in ("" for cluster-scoped objects, Namespaces included)."""
        return "" if is_namespace(self.call.res) else self.call.namespace

    async def namespace(self) -> Obj | None:
        """The request's Namespace object, read once (None for cluster-scoped objects)."""
        if not self._namespace_read:
            self._namespace_read = True
            name = self.namespace_name
            namespaces = self.store.registry.lookup("", "v1", "namespaces")
            if name and namespaces is not None:
                self._namespace = await self.store.find(namespaces, "", name)
        return self._namespace

    async def namespace_labels(self, match: MatchResources) -> dict[str, str] | None:
        if not needs_namespace(match.hook, self.call.matching()):
            return None
        return labels_of(await self.namespace())

    def authorizer(self) -> Authorizer | None:
        """The ``authorizer`` variable: checks as the requester (None without a chain)."""
        return cel_authorizer(self.authorize, self.call.user) if self.authorize is not None else None

    async def inputs(self, found: Invocation[Any], env: PolicyEnv) -> Inputs:
        """What the expressions of ``found``, compiled in ``env``, see (but ``object``)."""
        return Inputs(
            env,
            self.call.old,
            admission_request(self.call, found.resource, found.kind),
            namespace_object(await self.namespace()),
            found.param,
            self.authorizer(),
        )

    def kind_of(self, resource: GroupVersionResource) -> str:
        found = self.store.registry.lookup(resource.group, resource.version, resource.resource)
        return found.kind if found is not None else self.call.res.kind

    async def invocations(self, hooks: Sequence[PolicyHook[T]]) -> list[Invocation[T] | ConfigFailure[T]]:
        """The generic policy dispatcher: every (policy, binding, param) that applies, and every
        policy or binding that could not be applied, in policy then binding order."""
        request = self.call.matching()
        found: list[Invocation[T] | ConfigFailure[T]] = []
        for hook in hooks:
            if hook.match is None:
                found.append(ConfigFailure(hook, None, f"failed to configure policy: {hook.error}"))
                continue
            labels = await self.namespace_labels(hook.match)
            resource = resource_matched(hook.match, request, self.call.name, labels)
            if resource is None:
                continue
            for binding in hook.bindings:
                try:
                    if not await self._binding_matches(binding, request):
                        continue
                    params = await collect_params(
                        self.store,
                        (hook.policy.get("spec") or {}).get("paramKind"),
                        (binding.get("spec") or {}).get("paramRef"),
                        self.call.namespace,
                    )
                except PolicyConfigError as exc:
                    found.append(ConfigFailure(hook, binding, f"failed to configure binding: {exc}"))
                    continue
                kind = self.kind_of(resource)
                found.extend(Invocation(hook, binding, resource, kind, param) for param in params)
        return found

    async def _binding_matches(self, binding: Obj, request: Request) -> bool:
        spec = binding.get("spec") or {}
        if not isinstance(spec.get("matchResources"), dict):
            return True
        match = parse_match(spec["matchResources"], name_of(binding))
        labels = await self.namespace_labels(match)
        return resource_matched(match, request, self.call.name, labels) is not None


def equivalents(store: ObjectStore, res: Resource) -> tuple[GroupVersionResource, ...]:
    """The same objects served in other versions, for ``matchPolicy: Equivalent`` (as webhook
    admission finds them)."""
    found = []
    for other in store.registry:
        if (other.group, other.version, other.plural) == (res.group, res.version, res.plural):
            continue
        same = other.group == res.group and other.plural == res.plural
        shared = bool(res.stored_as) and other.stored_as == res.stored_as
        if same or shared:
            found.append(GroupVersionResource(other.group, other.version, other.plural))
    return tuple(found)


# -- parameters -------------------------------------------------------------------------------


async def collect_params(
    store: ObjectStore, param_kind: Any, param_ref: Any, namespace: str
) -> list[Obj | None]:
    """The parameter objects of a binding (upstream's ``CollectParams``): ``[None]`` without
    ``paramKind`` or ``paramRef``; none found is an error only with
    ``parameterNotFoundAction: Deny``."""
    if not isinstance(param_kind, dict) or not isinstance(param_ref, dict):
        return [None]
    res = param_resource(store.registry, param_kind)
    if res is None:
        kind = f"{param_kind.get('apiVersion', '')}, Kind={param_kind.get('kind', '')}"
        raise PolicyConfigError(f"paramKind kind `{kind}` not known")
    where = ""
    if res.namespaced:
        where = str(param_ref.get("namespace") or namespace)
        if not where:
            raise PolicyConfigError(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
            )
    elif param_ref.get("namespace"):
        raise PolicyConfigError("paramRef.namespace must not be provided for a cluster-scoped `paramKind`")
    name, selector = param_ref.get("name"), param_ref.get("selector")
    params: list[Obj | None]
    if name:
        if selector is not None:
            raise PolicyConfigError("paramRef.name and paramRef.selector are mutually exclusive")
        found = await store.find(res, where, str(name))
        params = [found] if found is not None else []
    elif isinstance(selector, dict):
        try:
            chosen = from_label_selector_object(selector)
        except SelectorError as exc:
            raise PolicyConfigError(str(exc)) from None
        try:
            listed = await store.list(res, where, ListOptions())
        except errors.ApiError as exc:
            raise PolicyConfigError(str(exc)) from None
        params = [obj for obj in listed["items"] if chosen.matches(labels_of(obj))]
    else:
        raise PolicyConfigError("one of name or selector must be provided")
    if not params and param_ref.get("parameterNotFoundAction") == "Deny":
        raise PolicyConfigError("no params found for policy binding with `Deny` parameterNotFoundAction")
    return params


def param_resource(registry: Registry, param_kind: Obj) -> Resource | None:
    """The resource serving ``paramKind`` (``apiVersion`` and ``kind``)."""
    api_version = str(param_kind.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return registry.by_kind(group, version, str(param_kind.get("kind") or ""))
