"""RBAC: does a role bound to the user allow the request? (kube-apiserver's RBAC authorizer)

Rules, bindings and subjects mean what they mean upstream: a rule allows a resource request
when its verbs, API groups, resources (``*``, ``pods``, ``pods/log``, ``*/scale``) and resource
names (none listed = all) all match, and a non-resource request when its verbs and URLs
(exact, ``*``, or a ``prefix*``) match. Cluster role bindings apply everywhere; role bindings
in their namespace, to a Role there or a ClusterRole. A ServiceAccount subject without a
namespace means the binding's. Roles and bindings come from :class:`ObjectCache` copies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.authn import MASTERS, User
from k3py.apiserver.authz import Attributes, Authorizer, Decision
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import ObjectStore, WriteOptions

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and (wanted in values or "*" in values)


def _list_of(rule: Obj, key: str) -> list[str]:
    values = rule.get(key)
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def resource_matches(rule: Obj, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for listed in _list_of(rule, "resources"):
        if listed in ("*", combined):
            return True
        if subresource and listed == f"*/{subresource}":
            return True
    return False


def url_matches(rule: Obj, path: str) -> bool:
    for listed in _list_of(rule, "nonResourceURLs"):
        if listed in ("*", path):
            return True
        if listed.endswith("*") and path.startswith(listed.rstrip("*")):
            return True
    return False


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return url_matches(rule, attrs.path)
    names = rule.get("resourceNames")
    if names is not None and not isinstance(names, list):
        return False  # validation refuses such a rule; never read one as "any name"
    return (
        _has(rule.get("apiGroups"), attrs.api_group)
        and resource_matches(rule, attrs.resource, attrs.subresource)
        and (not names or attrs.name in names)
    )


def breakdown(rule: Obj) -> list[Obj]:
    """Upstream's ``BreakdownRule``: one rule per (group, resource, verb[, name]) and (URL, verb)."""
    subs: list[Obj] = []
    verbs = _list_of(rule, "verbs")
    names = _list_of(rule, "resourceNames")
    for group in _list_of(rule, "apiGroups"):
        for res in _list_of(rule, "resources"):
            for verb in verbs:
                sub = {"apiGroups": [group], "resources": [res], "verbs": [verb]}
                subs += [sub | {"resourceNames": [name]} for name in names] if names else [sub]
    for url in _list_of(rule, "nonResourceURLs"):
        subs += [{"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs]
    return subs


def covers(owner: Obj, sub: Obj) -> bool:
    """Upstream's ``ruleCovers``: whether ``owner`` grants everything the broken-down ``sub`` does."""

    def has_all(key: str, wildcard: str | None) -> bool:
        have = set(owner.get(key) or [])
        return (wildcard is not None and wildcard in have) or have >= set(sub.get(key) or [])

    def resource_covered(res: str) -> bool:
        have = owner.get("resources") or []
        return "*" in have or res in have or ("/" in res and "*/" + res.split("/", 1)[1] in have)

    def url_covered(url: str) -> bool:
        have = owner.get("nonResourceURLs") or []
        return any(o == url or (o.endswith("*") and url.startswith(o.rstrip("*"))) for o in have)

    names = sub.get("resourceNames") or []
    return (
        has_all("verbs", "*")
        and has_all("apiGroups", "*")
        and all(resource_covered(r) for r in sub.get("resources") or [])
        and all(url_covered(u) for u in sub.get("nonResourceURLs") or [])
        and (not owner.get("resourceNames") or (bool(names) and has_all("resourceNames", None)))
    )


def uncovered(owned: list[Obj], wanted: list[Obj]) -> list[Obj]:
    """The broken-down rules of ``wanted`` that no rule of ``owned`` covers (upstream's ``Covers``)."""
    return [sub for rule in wanted for sub in breakdown(rule) if not any(covers(o, sub) for o in owned)]


def subject_applies(subject: Obj, user: User, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name) and name == user.name
    if kind == "Group":
        return bool(name) and name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace and name) and user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


def describe_subject(subject: Obj, binding_namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        return f'ServiceAccount "{subject.get("name")}/{subject.get("namespace") or binding_namespace}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


@dataclass(frozen=True)
class Grant:
    """A rule that applies to a user, and the binding that brought it (for reasons)."""

    rule: Obj
    source: str


class Rbac:
    """The RBAC authorizer over cached roles and bindings."""

    def __init__(
        self,
        roles: ObjectCache,
        cluster_roles: ObjectCache,
        role_bindings: ObjectCache,
        cluster_role_bindings: ObjectCache,
    ) -> None:
        self.roles = roles
        self.cluster_roles = cluster_roles
        self.role_bindings = role_bindings
        self.cluster_role_bindings = cluster_role_bindings

    async def close(self) -> None:
        for cache in (self.roles, self.cluster_roles, self.role_bindings, self.cluster_role_bindings):
            await cache.stop()

    def authorize(self, attrs: Attributes) -> Decision:
        problems: list[str] = []
        for grant in self.grants(attrs.user, attrs.namespace, problems):
            if rule_allows(grant.rule, attrs):
                return Decision(True, f"RBAC: allowed by {grant.source}")
        reason = f"RBAC: [{', '.join(problems)}]" if problems else ""
        return Decision(False, reason)

    def grants(self, user: User, namespace: str, problems: list[str] | None = None) -> Iterator[Grant]:
        """Every rule that applies to ``user`` in ``namespace`` ("" = cluster-wide only)."""
        for binding in self.cluster_role_bindings.objects():
            yield from self._bound(binding, user, "", problems)
        if namespace:
            for binding in self.role_bindings.objects(namespace):
                yield from self._bound(binding, user, namespace, problems)

    def _bound(self, binding: Obj, user: User, namespace: str, problems: list[str] | None) -> Iterator[Grant]:
        subjects = binding.get("subjects") or []
        subject = next((s for s in subjects if subject_applies(s, user, namespace)), None)
        if subject is None:
            return
        ref = binding.get("roleRef") or {}
        kind, role_name = ref.get("kind"), str(ref.get("name") or "")
        role = (
            self.cluster_roles.get("", role_name)
            if kind == "ClusterRole"
            else self.roles.get(namespace, role_name)
            if kind == "Role" and namespace
            else None
        )
        if role is None:
            if problems is not None:
                plural = "clusterrole" if kind == "ClusterRole" else "role"
                problems.append(f'{plural}.{GROUP} "{role_name}" not found')
            return
        binding_name = binding["metadata"]["name"]
        what = "RoleBinding" if namespace else "ClusterRoleBinding"
        shown = f"{binding_name}/{namespace}" if namespace else binding_name
        source = f'{what} "{shown}" of {kind} "{role_name}" to {describe_subject(subject, namespace)}'
        for rule in role.get("rules") or []:
            if isinstance(rule, dict):
                yield Grant(rule, source)


RBAC_RESOURCES = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")


async def follow(store: ObjectStore) -> Rbac:
    """An authorizer over caches of ``store``'s roles and bindings, complete when this returns."""
    caches: list[ObjectCache] = []
    try:
        for plural in RBAC_RESOURCES:
            resource = store.registry.lookup(GROUP, "v1", plural)
            if resource is None:
                raise LookupError(f"{GROUP}/v1 {plural} is not served: RBAC cannot work without it")
            cache = ObjectCache(store, resource)
            await cache.start()
            caches.append(cache)
    except BaseException:
        for cache in caches:
            await cache.stop()
        raise
    return Rbac(*caches)


class EscalationCheck:
    """Admission for RBAC writes: nobody grants what they do not hold (upstream's
    ``ConfirmNoEscalation``), unless the authorizer lets them ``escalate`` on the role or
    ``bind`` the role a binding refers to. ``system:masters`` and the API server itself
    (no user) pass. Setting an ``aggregationRule`` needs full authority, as upstream."""

    def __init__(self, rbac: Rbac, authorize: Authorizer, store: ObjectStore) -> None:
        self.rbac = rbac
        self.authorize = authorize
        self.store = store

    async def _role(self, plural: str, namespace: str, name: str) -> Obj | None:
        """The referenced role: from the cache, else from the store (created a moment ago)."""
        cache = self.rbac.cluster_roles if plural == "clusterroles" else self.rbac.roles
        found = cache.get("" if plural == "clusterroles" else namespace, name)
        if found is not None or not name:
            return found
        resource = self.store.registry.lookup(GROUP, "v1", plural)
        assert resource is not None
        return await self.store.find(resource, namespace if plural == "roles" else "", name)

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        user = opts.user
        if res.group != GROUP or user is None or MASTERS in user.groups or opts.deleting:
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        if res.plural in ("roles", "clusterroles"):
            verb, target, target_name = "escalate", res.plural, name
            wanted = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
            if obj.get("aggregationRule"):
                wanted = [FULL_AUTHORITY, FULL_URL_AUTHORITY]
        elif res.plural in ("rolebindings", "clusterrolebindings"):
            ref = obj.get("roleRef") or {}
            target = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
            verb, target_name = "bind", str(ref.get("name") or "")
            role = await self._role(target, namespace, target_name)
            wanted = [r for r in (role or {}).get("rules") or [] if isinstance(r, dict)]
            if role is None:
                wanted = [FULL_AUTHORITY]  # an unknown role could grant anything later
        else:
            return
        permit = Attributes(
            user, verb, True, api_group=GROUP, namespace=namespace, resource=target, name=target_name
        )
        if self.authorize(permit).allowed:
            return
        held = [grant.rule for grant in self.rbac.grants(user, namespace)]
        missing = uncovered(held, wanted)
        if not missing:
            return
        groups = " ".join(f'"{g}"' for g in user.groups)
        held_not = "\n".join(describe_rule(r) for r in missing)
        message = (
            f'{res.plural}.{GROUP} "{name}" is forbidden: user "{user.name}" (groups=[{groups}]) '
            f"is attempting to grant RBAC permissions not currently held:\n{held_not}"
        )
        raise errors.ApiError(403, "Forbidden", message, {"name": name, "group": GROUP, "kind": res.plural})


FULL_AUTHORITY: Obj = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
FULL_URL_AUTHORITY: Obj = {"verbs": ["*"], "nonResourceURLs": ["*"]}


def describe_rule(rule: Obj) -> str:
    """A rule as upstream's ``CompactString`` prints it: ``{APIGroups:["apps"], Verbs:["get"]}``."""
    fields = (
        ("APIGroups", "apiGroups"),
        ("Resources", "resources"),
        ("ResourceNames", "resourceNames"),
        ("NonResourceURLs", "nonResourceURLs"),
        ("Verbs", "verbs"),
    )
    shown = [
        f"{label}:[{', '.join(json.dumps(str(v)) for v in rule[key])}]"
        for label, key in fields
        if rule.get(key)
    ]
    return "{" + ", ".join(shown) + "}"
