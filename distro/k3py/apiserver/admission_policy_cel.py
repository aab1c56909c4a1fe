"""The CEL side of admission policies: one policy's environment, its variables, its inputs.

Every expression of a policy is compiled in the same environment (upstream's composited
compiler): ``object``, ``oldObject``, ``request``, ``namespaceObject``, ``authorizer``,
``params`` when the policy has a ``paramKind``, and ``variables``, whose fields are the
policy's ``spec.variables`` compiled in order, each with the type its expression has (an
object type counts as ``dyn``), so a variable sees the ones before it.

At admission ``object``, ``oldObject`` and ``params`` are ``dyn`` (the values are whatever
the request carries); the type checker (:mod:`.admission_policy_typecheck`) builds the same
environment with the kinds' schemas instead. ``request`` and ``namespaceObject`` have
upstream's declared types. ``authorizer`` (and ``authorizer.requestResource``, the request's
own resource) asks the API server's authorizer chain on behalf of the requester
(:func:`cel_authorizer`) when the plugin was given the chain; without it an expression that
calls it fails at evaluation. ``variables`` is computed lazily (:class:`LazyVariables`): a
variable is evaluated when an expression first reads it, once per request.

``matchConditions`` are shared with admission webhooks: :func:`match_conditions` is
upstream's ``matchconditions.Matcher`` (any false condition skips, errors follow the failure
policy), and :func:`webhook_conditions` compiles a webhook's conditions in the webhook
environment (``object``, ``oldObject``, ``request``, ``authorizer``; no params, no
variables), each expression once.

Errors read as upstream's: ``compilation failed: ERROR: <input>:1:5: ...`` for an expression
that does not compile, ``expression '<e>' resulted in error: <why>`` for one that fails, and
``composited variable "<name>" fails to evaluate: <why>`` for a variable.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from k3py.api.cel import (
    AUTHORIZER,
    DYN,
    RESOURCE_CHECK,
    Authorizer,
    AuthzAttributes,
    CelEvalError,
    CelSyntaxError,
    CelType,
    CelTypeError,
    Decision,
    Env,
    Program,
    compile,
)
from k3py.api.cel.library_authz import ResourceCheck
from k3py.apiserver import authz
from k3py.apiserver.authn import User, service_account_user

Obj = dict[str, Any]

RUNTIME_COST_BUDGET = 10_000_000
"""Steps one expression may take (upstream's ``RuntimeCELCostBudget``)."""
MATCH_CONDITIONS_COST_BUDGET = 2_500_000
"""Steps one webhook ``matchConditions`` expression may take (upstream's
``RuntimeCELCostBudgetMatchConditions``, which it counts over all of a webhook's conditions)."""

VARIABLES_TYPE_NAME = "kubernetes.variables"


def _object(name: str, fields: Mapping[str, CelType]) -> CelType:
    return CelType("object", (), name, dict(fields).get)


def _list(element: CelType) -> CelType:
    return CelType("list", (element,))


def _map(key: CelType, value: CelType) -> CelType:
    return CelType("map", (key, value))


STRING, BOOL, INT = CelType("string"), CelType("bool"), CelType("int")
_GVK = _object("kubernetes.GroupVersionKind", {"group": STRING, "version": STRING, "kind": STRING})
_GVR = _object("kubernetes.GroupVersionResource", {"group": STRING, "version": STRING, "resource": STRING})
_USER_INFO = _object(
    "kubernetes.UserInfo",
    {
        "username": STRING,
        "uid": STRING,
        "groups": _list(STRING),
        "extra": _map(STRING, _list(STRING)),
    },
)
REQUEST_TYPE = _object(
    "kubernetes.AdmissionRequest",
    {
        "kind": _GVK,
        "resource": _GVR,
        "subResource": STRING,
        "requestKind": _GVK,
        "requestResource": _GVR,
        "requestSubResource": STRING,
        "name": STRING,
        "namespace": STRING,
        "operation": STRING,
        "userInfo": _USER_INFO,
        "dryRun": BOOL,
        "options": DYN,
    },
)
"""``request``, as upstream's ``BuildRequestType`` declares it."""

_CONDITION = _object(
    "kubernetes.NamespaceCondition",
    {"status": STRING, "type": STRING, "lastTransitionTime": DYN, "message": STRING, "reason": STRING},
)
NAMESPACE_TYPE = _object(
    "kubernetes.Namespace",
    {
        "metadata": _object(
            "kubernetes.NamespaceMetadata",
            {
                "name": STRING,
                "generateName": STRING,
                "namespace": STRING,
                "labels": _map(STRING, STRING),
                "annotations": _map(STRING, STRING),
                "uid": STRING,
                "creationTimestamp": DYN,
                "deletionGracePeriodSeconds": INT,
                "deletionTimestamp": DYN,
                "generation": INT,
                "resourceVersion": STRING,
                "finalizers": _list(STRING),
            },
        ),
        "spec": _object("kubernetes.NamespaceSpec", {"finalizers": _list(STRING)}),
        "status": _object("kubernetes.NamespaceStatus", {"conditions": _list(_CONDITION), "phase": STRING}),
    },
)
"""``namespaceObject``, as upstream's ``BuildNamespaceType`` declares it (timestamps are
``dyn``: the values are RFC 3339 text)."""


@dataclass(frozen=True)
class Compiled:
    """One expression: its program, or why it does not compile."""

    expression: str
    program: Program | None
    error: str = ""

    def evaluate(self, activation: Mapping[str, object], budget: int = RUNTIME_COST_BUDGET) -> object:
        """The expression's value; :class:`CelEvalError` with upstream's wording otherwise."""
        if self.program is None:
            raise CelEvalError(f"compilation error: {self.error}")
        try:
            return self.program.evaluate(activation, budget)
        except CelEvalError as exc:
            raise CelEvalError(f"expression '{self.expression}' resulted in error: {exc}") from None


@dataclass(frozen=True)
class Variable:
    name: str
    compiled: Compiled


class PolicyEnv:
    """The environment of one policy's expressions, with its variables compiled into it."""

    def __init__(
        self,
        variables: Sequence[Obj],
        *,
        has_params: bool,
        object_type: CelType = DYN,
        params_type: CelType = DYN,
        types: Mapping[str, CelType] | None = None,
    ) -> None:
        self._declared: dict[str, CelType] = {
            "object": object_type,
            "oldObject": object_type,
            "request": REQUEST_TYPE,
            "namespaceObject": NAMESPACE_TYPE,
            "authorizer": AUTHORIZER,
            "authorizer.requestResource": RESOURCE_CHECK,
        }
        if has_params:
            self._declared["params"] = params_type
        self._types = dict(types or {})
        self._variable_types: dict[str, CelType] = {}
        self.variables: list[Variable] = []
        for variable in variables:
            name = str(variable.get("name") or "")
            compiled = self.compile(str(variable.get("expression") or ""))
            output = compiled.program.output_type if compiled.program is not None else DYN
            self._variable_types[name] = _declared_variable_type(output)
            self.variables.append(Variable(name, compiled))

    def env(self) -> Env:
        variables_type = _object(VARIABLES_TYPE_NAME, self._variable_types)
        return Env({**self._declared, "variables": variables_type}, self._types)

    def compile(self, expression: str, *expected: CelType) -> Compiled:
        """Compile ``expression``; with ``expected``, its type must be one of them (or dyn,
        which is checked when it is evaluated)."""
        try:
            program = compile(expression, self.env())
        except (CelSyntaxError, CelTypeError) as exc:
            return Compiled(expression, None, f"compilation failed: {exc}")
        output = program.output_type
        if expected and not output.is_dyn and not any(_same_type(output, e) for e in expected):
            if len(expected) == 1:
                reason = f"must evaluate to {expected[0]} but got {output}"
            else:
                reason = f"must evaluate to one of [{' '.join(str(e) for e in expected)}] but got {output}"
            return Compiled(expression, None, reason)
        return Compiled(expression, program)

    def check(self, expression: str) -> str:
        """The type checker's report on ``expression`` ("" when it compiles)."""
        try:
            compile(expression, self.env())
        except (CelSyntaxError, CelTypeError) as exc:
            return str(exc)
        return ""

    def activation(
        self,
        *,
        obj: Obj | None,
        old: Obj | None,
        request: Obj,
        namespace: Obj | None,
        params: Obj | None,
        authorizer: Authorizer | None = None,
    ) -> dict[str, object]:
        """The inputs of one evaluation, ``variables`` computed on first use; ``authorizer``
        (and ``authorizer.requestResource``) only when one is given."""
        activation: dict[str, object] = {
            "object": obj,
            "oldObject": old,
            "request": request,
            "namespaceObject": namespace,
            "params": params,
        }
        if authorizer is not None:
            activation["authorizer"] = authorizer
            activation["authorizer.requestResource"] = request_resource(authorizer, request)
        activation["variables"] = LazyVariables(self.variables, activation)
        return activation


def _same_type(actual: CelType, expected: CelType) -> bool:
    if actual.kind != expected.kind or len(actual.params) != len(expected.params):
        return False
    if actual.kind == "object" and actual.name != expected.name:
        return False
    return all(p.is_dyn or _same_type(p, e) for p, e in zip(actual.params, expected.params, strict=True))


def _declared_variable_type(output: CelType) -> CelType:
    """A variable's type as later expressions see it: object types become ``dyn``, lists and
    maps keep their shape (upstream's ``convertCelTypeToDeclType``)."""
    if output.kind in ("list", "map"):
        return CelType(output.kind, tuple(_declared_variable_type(p) for p in output.params))
    if output.kind in ("object", "opaque", "param", "type", "optional_type", "error"):
        return DYN
    return output


class LazyVariables(Mapping[str, object]):
    """``variables`` of one activation: each evaluated when first read, then kept."""

    def __init__(self, variables: Sequence[Variable], activation: Mapping[str, object]) -> None:
        self._variables = {v.name: v for v in variables}
        self._activation = activation
        self._values: dict[str, object] = {}
        self._failures: dict[str, str] = {}

    def __getitem__(self, name: str) -> object:
        if name in self._values:
            return self._values[name]
        if name in self._failures:
            raise CelEvalError(self._failures[name])
        variable = self._variables.get(name)
        if variable is None:
            raise KeyError(name)
        compiled = variable.compiled
        try:
            if compiled.program is None:
                raise CelEvalError(f'composited variable "{name}" fails to compile: {compiled.error}')
            try:
                value = compiled.program.evaluate_raw(self._activation, RUNTIME_COST_BUDGET)
            except CelEvalError as exc:
                raise CelEvalError(f'composited variable "{name}" fails to evaluate: {exc}') from None
        except CelEvalError as exc:
            self._failures[name] = str(exc)
            raise
        self._values[name] = value
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._variables

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)


@dataclass(frozen=True)
class Condition:
    """One ``matchConditions`` entry, compiled."""

    name: str
    compiled: Compiled


@dataclass(frozen=True)
class PolicyExpressions:
    """What every policy compiles, whatever else it holds: its environment (with its
    variables) and its ``matchConditions``."""

    env: PolicyEnv
    conditions: tuple[Condition, ...]


def compile_conditions(env: PolicyEnv, conditions: Sequence[Any]) -> tuple[Condition, ...]:
    return tuple(
        Condition(str(c.get("name") or ""), env.compile(str(c.get("expression") or ""), BOOL))
        for c in conditions
        if isinstance(c, dict)
    )


@dataclass(frozen=True)
class MatchResult:
    """What a list of ``matchConditions`` says of one request (upstream's ``MatchResult``)."""

    matches: bool
    error: str = ""
    """Why the conditions could not be decided, under ``failurePolicy: Fail`` ("" otherwise)."""
    failed_condition: str = ""
    """The name of the condition that was false."""


def match_conditions(
    conditions: Sequence[Condition],
    activation: Mapping[str, object],
    failure_policy: str,
    budget: int = RUNTIME_COST_BUDGET,
) -> MatchResult:
    """Upstream's ``matcher.Match``: a condition that is false decides (no match), whatever
    failed before it; otherwise a failure (several read as upstream's aggregate, ``[a, b]``)
    is an error under ``failurePolicy: Fail`` and no match under ``Ignore``."""
    failures: list[str] = []
    for condition in conditions:
        try:
            value = condition.compiled.evaluate(activation, budget)
        except CelEvalError as exc:
            failures.append(str(exc))
            continue
        if value is False:
            return MatchResult(False, failed_condition=condition.name)
    if not failures:
        return MatchResult(True)
    if failure_policy == "Ignore":
        return MatchResult(False)
    return MatchResult(False, failures[0] if len(failures) == 1 else f"[{', '.join(failures)}]")


# -- webhooks' matchConditions ----------------------------------------------------------------

_WEBHOOK_ENV = PolicyEnv((), has_params=False)
"""The environment of webhook ``matchConditions`` (upstream compiles them with
``HasParams: false, HasAuthorizer: true``)."""


def webhook_conditions(conditions: Sequence[Any]) -> tuple[Condition, ...]:
    """A webhook's ``matchConditions``, compiled; each expression is compiled once and kept,
    so a configuration read again after a change costs no compiling for what it already had."""
    return tuple(
        _webhook_condition(str(c.get("name") or ""), str(c.get("expression") or ""))
        for c in conditions
        if isinstance(c, dict)
    )


@functools.lru_cache(maxsize=4096)
def _webhook_condition(name: str, expression: str) -> Condition:
    return Condition(name, _WEBHOOK_ENV.compile(expression, BOOL))


def webhook_activation(
    *, obj: Obj | None, old: Obj | None, request: Obj, authorizer: Authorizer | None
) -> dict[str, object]:
    """The inputs of a webhook's ``matchConditions``: no ``namespaceObject``, no params."""
    return _WEBHOOK_ENV.activation(
        obj=obj, old=old, request=request, namespace=None, params=None, authorizer=authorizer
    )


# -- the authorizer -----------------------------------------------------------------------------


def cel_authorizer(authorize: authz.Authorizer, user: User) -> Authorizer:
    """The ``authorizer`` variable for a request by ``user``: its checks go to ``authorize``
    (the API server's chain) as ``user``, or as the service account an expression names
    (``authorizer.serviceAccount(ns, name)``)."""

    def check(asked: AuthzAttributes) -> Decision:
        who = user if asked.service_account is None else service_account_user(*asked.service_account)
        decision = authorize(
            authz.Attributes(
                user=who,
                verb=asked.verb,
                resource_request=not asked.path,
                path=asked.path,
                api_group=asked.group,
                api_version="*",
                namespace=asked.namespace,
                resource=asked.resource,
                subresource=asked.subresource,
                name=asked.name,
            )
        )
        # Upstream's RBAC has no opinion on what it does not allow; it never denies.
        return Decision("allow" if decision.allowed else "noopinion", decision.reason)

    return Authorizer(check)


def request_resource(authorizer: Authorizer, request: Mapping[str, Any]) -> ResourceCheck:
    """``authorizer.requestResource``: a check of the request's own resource, subresource,
    namespace and name (upstream's ``NewResourceAuthorizerVal``)."""
    resource = request.get("resource") or {}
    attributes = AuthzAttributes(
        "",
        group=str(resource.get("group") or ""),
        resource=str(resource.get("resource") or ""),
        subresource=str(request.get("subResource") or ""),
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
    )
    return ResourceCheck(authorizer, attributes)
