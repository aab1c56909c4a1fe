"""MutatingAdmissionPolicy: changing objects on their way in with CEL mutations.

:class:`MutatingPolicyAdmission` is an admission step placed where kube-apiserver runs its
MutatingAdmissionPolicy plugin: after the built-in mutating plugins, before the mutating
webhooks. Policies and bindings match as ValidatingAdmissionPolicy's do
(:mod:`.admission_policy`); for each (policy, binding, parameter) that applies, in policy
then binding order, once the ``matchConditions`` hold, every ``mutations`` entry is
evaluated against the object as the mutations before it left it:

- ``patchType: ApplyConfiguration``: the expression builds an ``Object{...}`` that is merged
  into the object with server-side apply's merge (:func:`k3py.api.apply.merging.merge`,
  steered by the kind's schema: list-maps and sets merge item by item, atomic values are
  replaced). As upstream, a configuration that sets an atomic list, map or struct is refused;
- ``patchType: JSONPatch``: the expression builds a list of ``JSONPatch{op, path, from,
  value}``, applied as RFC 6902 (:mod:`k3py.api.patch.json_patch`); a failed ``test``
  leaves the object as it was.

Expressions are compiled once per policy and kind: ``Object`` and its nested types
(``Object.spec``, ``Object.spec.template``...) are the kind's schema as CEL types. After each
mutation the store's defaults (a custom resource's pruning and defaulting) are applied again,
as they are after a webhook's patch. A policy with ``reinvocationPolicy: IfNeeded`` runs once
more, after the mutating webhooks (the :attr:`MutatingPolicyAdmission.reinvocation` step), when
a policy after it or a webhook changed the object.

A mutation that fails (it does not compile, fails to evaluate, or its patch does not apply),
and a policy or binding that cannot be applied, refuse the write under ``failurePolicy: Fail``
with upstream's 403 ``policy '<p>' with binding '<b>' denied request: <why>``, and are skipped
under ``Ignore``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from k3py.api.apply.merging import merge
from k3py.api.apply.shapes import Shape
from k3py.api.cel import CelEvalError, CelType, schema_type
from k3py.api.crd.model import schema_node
from k3py.api.patch import PatchError, json_patch
from k3py.api.resources import Resource
from k3py.api.schema import Node
from k3py.apiserver import authz, errors
from k3py.apiserver.admission_policy import Admitting, ConfigFailure, Invocation, Obj, name_of
from k3py.apiserver.admission_policy_cel import (
    Compiled,
    PolicyEnv,
    PolicyExpressions,
    compile_conditions,
    match_conditions,
)
from k3py.apiserver.admission_policy_plugin import PolicyPlugin
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.apiserver.webhook_review import fingerprint, redefault

log = logging.getLogger(__name__)

OBJECT = CelType("object", (), "Object")
JSONPATCH_LIST = CelType("list", (CelType("object", (), "JSONPatch"),))
MAX_PENDING = 256
"""Requests remembered between the policies and the webhooks' end, for reinvocation (a request
refused in between is forgotten when newer ones push it out)."""


class MutationError(Exception):
    """A mutation whose result cannot be applied to the object."""


# -- compiling --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    patch_type: str
    """``ApplyConfiguration`` or ``JSONPatch``."""
    compiled: Compiled


@dataclass(frozen=True)
class KindEvaluator(PolicyExpressions):
    """A policy's expressions compiled for one kind."""

    mutations: tuple[Mutation, ...]
    node: Node | None


@dataclass
class MutatingEvaluator:
    """A policy, compiled for each kind it meets (on first use)."""

    policy: Obj
    _kinds: dict[tuple[str, str, str, int], KindEvaluator] = field(default_factory=dict)

    @property
    def spec(self) -> Obj:
        return dict(self.policy.get("spec") or {})

    @property
    def reinvoked(self) -> bool:
        return self.spec.get("reinvocationPolicy") == "IfNeeded"

    def for_kind(self, res: Resource) -> KindEvaluator:
        key = (res.group, res.version, res.plural, id(res.custom))
        found = self._kinds.get(key)
        if found is None:
            found = self._kinds[key] = self._compile(schema_node(res))
        return found

    def _compile(self, node: Node | None) -> KindEvaluator:
        spec = self.spec
        object_type = schema_type(node, "Object")
        env = PolicyEnv(
            [v for v in spec.get("variables") or () if isinstance(v, dict)],
            has_params=isinstance(spec.get("paramKind"), dict),
            types={"Object": object_type} if object_type.kind == "object" else {},
        )
        mutations = []
        for item in spec.get("mutations") or ():
            if not isinstance(item, dict):
                continue
            patch_type = str(item.get("patchType") or "")
            if patch_type == "ApplyConfiguration" and isinstance(item.get("applyConfiguration"), dict):
                expression = str(item["applyConfiguration"].get("expression") or "")
                mutations.append(Mutation(patch_type, env.compile(expression, OBJECT)))
            elif patch_type == "JSONPatch" and isinstance(item.get("jsonPatch"), dict):
                expression = str(item["jsonPatch"].get("expression") or "")
                mutations.append(Mutation(patch_type, env.compile(expression, JSONPATCH_LIST)))
        return KindEvaluator(
            env, compile_conditions(env, spec.get("matchConditions") or ()), tuple(mutations), node
        )


# -- applying one mutation --------------------------------------------------------------------


def mutated(obj: Obj, mutation: Mutation, activation: Mapping[str, object], node: Node | None) -> Obj:
    """The object ``mutation`` makes of ``obj`` (a new dict); :class:`CelEvalError` or
    :class:`MutationError` when it cannot."""
    value = mutation.compiled.evaluate(activation)
    if mutation.patch_type == "ApplyConfiguration":
        if not isinstance(value, dict):
            raise MutationError(
                f"unsupported return type from ApplyConfiguration expression: {_cel_type(value)}"
            )
        return apply_configuration(obj, value, node)
    return apply_json_patch(obj, value)


def apply_configuration(obj: Obj, configuration: Obj, node: Node | None) -> Obj:
    """``configuration`` merged into ``obj`` as server-side apply merges (upstream's
    ``ApplyStructuredMergeDiff``); it may not set atomic lists, maps or structs."""
    shape = Shape.root(node)
    atomic = atomic_paths(configuration, shape, "")
    if atomic:
        raise MutationError(
            "error applying patch: invalid ApplyConfiguration: "
            f"may not mutate atomic arrays, maps or structs: {', '.join(atomic)}"
        )
    configuration = {**configuration, "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind")}
    merged = merge(obj, configuration, shape)
    if not isinstance(merged, dict):
        raise MutationError("error applying patch: the result is not an object")
    return merged


def atomic_paths(value: Any, shape: Shape, path: str) -> list[str]:
    """The places ``value`` sets that its schema says are atomic (upstream's ``findAtomics``:
    declared fields are followed, other map keys are not)."""
    found: list[str] = []
    expected = shape.expected()
    if isinstance(value, dict) and expected == "map":
        if shape.map_atomic:
            found.append(path)
        for key, item in value.items():
            child = shape.field(key)
            if child is not None:
                found += atomic_paths(item, child, f"{path}.{key}")
    elif isinstance(value, list) and expected == "list":
        if shape.list_type == "atomic":
            found.append(path)
        items = shape.items()
        for index, item in enumerate(value):
            found += atomic_paths(item, items, f"{path}[{index}]")
    return found


def apply_json_patch(obj: Obj, value: object) -> Obj:
    if not isinstance(value, list):
        raise MutationError("type mismatch: JSONPatchType.expression should evaluate to array")
    ops: list[Obj] = []
    for item in value:
        if not isinstance(item, dict):
            raise MutationError(
                "type mismatch: JSONPatchType.expression should evaluate to array of JSONPatch"
            )
        op: Obj = {"op": str(item.get("op") or ""), "path": str(item.get("path") or "")}
        if item.get("from"):
            op["from"] = str(item["from"])
        if "value" in item:
            op["value"] = item["value"]
        ops.append(op)
    try:
        patched = json_patch.apply(obj, ops)
    except PatchError as exc:
        if str(exc).endswith("test failed"):
            return obj  # a failed test leaves the object as it was
        raise MutationError(f"JSON Patch: {exc}") from None
    if not isinstance(patched, dict):
        raise MutationError("JSON Patch: the result is not an object")
    return patched


def _cel_type(value: object) -> str:
    names = {str: "string", bool: "bool", int: "int", float: "double", list: "list", type(None): "null_type"}
    return names.get(type(value), type(value).__name__)


# -- the admission step -----------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyFailure:
    """A policy (and binding) whose mutation failed, for the refusal."""

    policy: str
    binding: str
    message: str
    reason: str = ""

    def __str__(self) -> str:
        if self.binding:
            return f"policy '{self.policy}' with binding '{self.binding}' denied request: {self.message}"
        return f'policy "{self.policy}" denied request: {self.message}'


class MutatingPolicyAdmission(PolicyPlugin[MutatingEvaluator]):
    """The MutatingAdmissionPolicy plugin, as an admission step."""

    def __init__(self, store: ObjectStore, authorize: authz.Authorizer | None = None) -> None:
        super().__init__(
            store,
            "mutatingadmissionpolicies",
            "mutatingadmissionpolicybindings",
            MutatingEvaluator,
            authorize,
        )
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self.reinvocation = _Reinvocation(self)

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        if opts.deleting:
            return  # a deletion has no object to change
        admitting = self.admitting(res, namespace, obj, old, opts)
        if admitting is None:
            return
        failures: list[PolicyFailure] = []
        ran: list[tuple[Invocation[MutatingEvaluator], str]] = []  # each with the object it left
        for found in await admitting.invocations(self.source.hooks()):
            if isinstance(found, ConfigFailure):
                if found.hook.failure_policy != "Ignore":
                    binding = name_of(found.binding) if found.binding is not None else ""
                    failures.append(PolicyFailure(found.hook.name, binding, found.message))
                continue
            await self._invoke(admitting, found, obj, failures)
            ran.append((found, fingerprint(obj)))
        if failures:
            raise refusal(failures)
        reinvocable = [found for found, _ in ran if found.hook.evaluator.reinvoked]
        if reinvocable:
            final = fingerprint(obj)
            due = [found for found, after in ran if found.hook.evaluator.reinvoked and after != final]
            self._remember(_Pending(obj, final, admitting, reinvocable, due))

    def _remember(self, pending: _Pending) -> None:
        self._pending[id(pending.obj)] = pending
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)

    async def reinvoke(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        """After the mutating webhooks, upstream's second round of the mutating plugins: the
        ``IfNeeded`` policies once more, all when a webhook changed the object, else those a
        later policy changed it after."""
        pending = self._pending.pop(id(obj), None)
        if pending is None or pending.obj is not obj:
            return
        changed = fingerprint(obj) != pending.fingerprint
        failures: list[PolicyFailure] = []
        for found in pending.invocations if changed else pending.due:
            await self._invoke(pending.admitting, found, obj, failures)
        if failures:
            raise refusal(failures)

    async def _invoke(
        self,
        admitting: Admitting,
        found: Invocation[MutatingEvaluator],
        obj: Obj,
        failures: list[PolicyFailure],
    ) -> None:
        call = admitting.call
        evaluator = found.hook.evaluator.for_kind(call.res)
        inputs = await admitting.inputs(found, evaluator.env)
        fails = found.hook.failure_policy != "Ignore"
        binding = name_of(found.binding)
        matched = match_conditions(evaluator.conditions, inputs.activation(obj), found.hook.failure_policy)
        if not matched.matches:
            if matched.error:
                failures.append(PolicyFailure(found.hook.name, binding, matched.error, "Invalid"))
            return
        for mutation in evaluator.mutations:
            try:
                patched = mutated(obj, mutation, inputs.activation(obj), evaluator.node)
            except (CelEvalError, MutationError) as exc:
                if fails:
                    failures.append(PolicyFailure(found.hook.name, binding, str(exc), "Invalid"))
                continue
            redefault(call.res, patched)
            obj.clear()
            obj.update(patched)


@dataclass
class _Pending:
    """A request whose ``IfNeeded`` policies ran, as the policies left its object. The object
    itself is held so that no other request's object can take its ``id`` meanwhile."""

    obj: Obj
    fingerprint: str
    admitting: Admitting
    invocations: list[Invocation[MutatingEvaluator]]
    """The ``IfNeeded`` ones: all run again when a webhook changed the object."""
    due: list[Invocation[MutatingEvaluator]]
    """Those a later policy changed the object after: run again in any case."""


class _Reinvocation:
    """The step placed after the mutating webhooks (``MutatingPolicyAdmission.reinvocation``)."""

    def __init__(self, owner: MutatingPolicyAdmission) -> None:
        self.owner = owner

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        await self.owner.reinvoke(res, namespace, obj, old, opts)


def refusal(failures: Sequence[PolicyFailure]) -> errors.ApiError:
    """Upstream's refusal: 403, the first failure's message (and reason), every one a cause."""
    first = failures[0]
    details = {"causes": [{"message": str(f)} for f in failures]}
    return errors.ApiError(403, first.reason or "Forbidden", str(first), details)
