"""Type checking of ValidatingAdmissionPolicies: ``status.typeChecking`` as upstream writes it.

At admission a policy's ``object`` is ``dyn``: a mistake such as comparing an integer with a
string shows only when a request reaches it. kube-controller-manager's
``validatingadmissionpolicy-status`` controller therefore type-checks every policy against
the schemas of the kinds its ``matchConstraints.resourceRules`` name, and reports what does
not check in ``status.typeChecking.expressionWarnings`` (``fieldRef`` such as
``spec.validations[0].expression``, and the checker's report for each kind, prefixed by
``apps/v1, Kind=Deployment:``). :class:`PolicyTypeChecker` is that controller, run by the
server as one of its own: it follows the policies and, for each whose ``metadata.generation``
is newer than ``status.observedGeneration``, writes the warnings (``typeChecking: {}`` when
there are none) and the generation it checked through the status subresource.

Which kinds (:func:`kinds_to_check`): those of rules without wildcards in their groups and
versions, resources without ``*`` or a subresource, at most ten, as upstream. A kind that is not
served (yet: a CRD created later) is left out; the policy is checked again when it changes.
"""

from __future__ import annotations

import logging

from k3py.api.cel import DYN, schema_type
from k3py.api.crd.model import schema_node
from k3py.api.resources import Registry, Resource
from k3py.api.schema import GroupVersionKind
from k3py.apiserver.admission_policy import Obj, name_of, param_resource
from k3py.apiserver.admission_policy_cel import PolicyEnv
from k3py.apiserver.cache import ObjectCache, each_change
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.apiserver.webhook_rules import GROUP

log = logging.getLogger(__name__)

FIELD_MANAGER = "validatingadmissionpolicy-status"
MAX_TYPES_TO_CHECK = 10


def kinds_to_check(registry: Registry, policy: Obj) -> list[Resource]:
    """The served resources ``policy``'s resource rules name (upstream's ``typesToCheck``)."""
    constraints = (policy.get("spec") or {}).get("matchConstraints") or {}
    found: dict[tuple[str, str, str], Resource] = {}
    for rule in constraints.get("resourceRules") or ():
        groups = [str(g) for g in rule.get("apiGroups") or ()]
        versions = [str(v) for v in rule.get("apiVersions") or ()]
        if any("*" in g for g in groups) or any("*" in v for v in versions):
            continue
        plurals = [str(r) for r in rule.get("resources") or () if "*" not in str(r) and "/" not in str(r)]
        for group in sorted(groups):
            for version in sorted(versions):
                for plural in sorted(plurals):
                    res = registry.lookup(group, version, plural)
                    if res is None:
                        continue
                    found[(res.group, res.version, res.kind)] = res
                    if len(found) == MAX_TYPES_TO_CHECK:
                        return [found[k] for k in sorted(found)]
    return [found[k] for k in sorted(found)]


def check_policy(registry: Registry, policy: Obj) -> list[Obj]:
    """The ``expressionWarnings`` of ``policy``: validations' expressions and message
    expressions that do not type-check against some kind."""
    spec = policy.get("spec") or {}
    variables = [v for v in spec.get("variables") or () if isinstance(v, dict)]
    param_kind = spec.get("paramKind")
    has_params = isinstance(param_kind, dict)
    params_type = DYN
    if isinstance(param_kind, dict) and (params := param_resource(registry, param_kind)) is not None:
        params_type = schema_type(schema_node(params), f"{params.kind}Params")
    envs: list[tuple[str, PolicyEnv]] = []
    for res in kinds_to_check(registry, policy):
        node = schema_node(res)
        if node is None:
            continue
        gvk = str(GroupVersionKind(res.group, res.version, res.kind))
        object_type = schema_type(node, res.kind)
        envs.append(
            (
                gvk,
                PolicyEnv(variables, has_params=has_params, object_type=object_type, params_type=params_type),
            )
        )
    warnings: list[Obj] = []
    for index, validation in enumerate(spec.get("validations") or ()):
        if not isinstance(validation, dict):
            continue
        for part in ("expression", "messageExpression"):
            expression = str(validation.get(part) or "")
            if not expression:
                continue
            reports = [f"{gvk}: {report}\n" for gvk, env in envs if (report := env.check(expression))]
            if reports:
                warnings.append(
                    {"fieldRef": f"spec.validations[{index}].{part}", "warning": "\n".join(reports)}
                )
    return warnings


class PolicyTypeChecker:
    """The ``validatingadmissionpolicy-status`` controller."""

    name = FIELD_MANAGER

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def run(self) -> None:
        """Check policies as they change, until cancelled."""
        resource = self.store.registry.lookup(GROUP, "v1", "validatingadmissionpolicies")
        if resource is None:
            log.info("%s/v1 validatingadmissionpolicies are not served: no type checking", GROUP)
            return
        await each_change(ObjectCache(self.store, resource), self.reconcile, FIELD_MANAGER)

    async def reconcile(self, policy: Obj) -> None:
        meta = policy.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        observed = int((policy.get("status") or {}).get("observedGeneration") or 0)
        if generation <= observed:
            return
        warnings = check_policy(self.store.registry, policy)
        resource = self.store.registry.lookup(GROUP, "v1", "validatingadmissionpolicies")
        assert resource is not None

        def change(current: Obj) -> Obj:
            status = dict(current.get("status") or {})
            status["observedGeneration"] = generation
            status["typeChecking"] = {"expressionWarnings": warnings} if warnings else {}
            current["status"] = status
            return current

        opts = WriteOptions(field_manager=FIELD_MANAGER)
        await self.store.guaranteed_update(resource, "", name_of(policy), change, opts, "status")
        log.debug("Type-checked ValidatingAdmissionPolicy %s: %d warnings", name_of(policy), len(warnings))
