"""ValidatingAdmissionPolicy: refusing writes whose objects fail a policy's CEL validations.

:class:`ValidatingPolicyAdmission` is an admission step (``ObjectStore.admission``) placed
where kube-apiserver runs its ValidatingAdmissionPolicy plugin: after the mutating steps,
before the validating webhooks. For each policy some binding names, in name order, whose
``matchConstraints`` select the request, and each of its bindings whose ``matchResources``
select it too, with each parameter object the binding's ``paramRef`` finds:

1. the ``matchConditions`` are evaluated; one that is false skips the policy;
2. every ``validations`` entry is evaluated; a result other than ``true`` is a failure whose
   message is the ``messageExpression``'s (one line, at most 5 KiB), else ``message``, else
   ``failed expression: <expression>``, and whose reason is ``reason`` (default Invalid);
3. ``auditAnnotations`` are evaluated (their values go nowhere: there is no audit log), so
   that one that fails counts as a failure as upstream;
4. each failure is acted on as the binding's ``validationActions`` say: ``Deny`` refuses the
   write, ``Warn`` logs it (the handlers have no warnings channel), ``Audit`` does nothing.

An expression that does not compile or fails to evaluate, and a policy or binding that cannot
be applied, refuse the write under ``failurePolicy: Fail`` (the default) and are ignored under
``Ignore``. CONNECT requests (``pods/exec``...) are checked too (:meth:`connect`), with their
options object as ``object``. The first refusal is the answer, as upstream words it:
``deployments.apps "x" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied
request: <message>``, 422 Invalid unless the validation's ``reason`` says otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from k3py.api.cel import CelEvalError
from k3py.api.resources import Resource
from k3py.apiserver import authz, errors
from k3py.apiserver.admission_policy import Admitting, ConfigFailure, Obj, name_of
from k3py.apiserver.admission_policy_cel import (
    BOOL,
    STRING,
    Compiled,
    PolicyEnv,
    PolicyExpressions,
    compile_conditions,
    match_conditions,
)
from k3py.apiserver.admission_policy_plugin import PolicyPlugin
from k3py.apiserver.authn import User
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.apiserver.webhook_review import Call

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 5 * 1024
"""The longest message a ``messageExpression`` may give (upstream's
``MaxEvaluatedMessageExpressionSizeBytes``)."""
_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}


@dataclass(frozen=True)
class Validation:
    expression: Compiled
    message: str
    message_expression: Compiled | None
    reason: str


@dataclass(frozen=True)
class AuditAnnotation:
    key: str
    value: Compiled


@dataclass(frozen=True)
class ValidatingEvaluator(PolicyExpressions):
    """A policy's expressions, compiled once."""

    validations: tuple[Validation, ...]
    audit: tuple[AuditAnnotation, ...]
    failure_policy: str


def compile_policy(policy: Obj) -> ValidatingEvaluator:
    spec = policy.get("spec") or {}
    env = PolicyEnv(
        [v for v in spec.get("variables") or () if isinstance(v, dict)],
        has_params=isinstance(spec.get("paramKind"), dict),
    )
    validations = []
    for item in spec.get("validations") or ():
        if not isinstance(item, dict):
            continue
        message_expression = str(item.get("messageExpression") or "")
        validations.append(
            Validation(
                env.compile(str(item.get("expression") or ""), BOOL),
                str(item.get("message") or ""),
                env.compile(message_expression, STRING) if message_expression else None,
                str(item.get("reason") or ""),
            )
        )
    audit = tuple(
        AuditAnnotation(str(a.get("key") or ""), env.compile(str(a.get("valueExpression") or "")))
        for a in spec.get("auditAnnotations") or ()
        if isinstance(a, dict)
    )
    return ValidatingEvaluator(
        env,
        compile_conditions(env, spec.get("matchConditions") or ()),
        tuple(validations),
        audit,
        str(spec.get("failurePolicy") or "Fail"),
    )


# -- evaluating one policy --------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A validation that did not pass (or could not be evaluated)."""

    message: str
    reason: str = ""


def validate(evaluator: ValidatingEvaluator, activation: Mapping[str, object]) -> list[Failure]:
    """The failures of one policy for one activation (upstream's ``validator.Validate``);
    errors count as failures only under ``failurePolicy: Fail``."""
    matched = match_conditions(evaluator.conditions, activation, evaluator.failure_policy)
    if not matched.matches:
        return [Failure(matched.error)] if matched.error else []
    failures: list[Failure] = []
    for validation in evaluator.validations:
        result = _evaluated(validation.expression, activation, evaluator, failures)
        if result is not _FAILED and result is not True:
            failures.append(Failure(_message(validation, activation), validation.reason or "Invalid"))
    for annotation in evaluator.audit:
        value = _evaluated(annotation.value, activation, evaluator, failures)
        if value is not _FAILED and value is not None and not isinstance(value, str):
            failures.append(
                Failure(
                    f"valueExpression '{annotation.value.expression}' resulted in unsupported return type: "
                    f"{type(value).__name__}. Return type must be either string or null."
                )
            )
    return failures


_FAILED = object()
"""What :func:`_evaluated` gives for an expression that failed."""


def _evaluated(
    compiled: Compiled,
    activation: Mapping[str, object],
    evaluator: ValidatingEvaluator,
    failures: list[Failure],
) -> object:
    """The value of ``compiled``, or ``_FAILED`` with the error added to ``failures`` (under
    ``failurePolicy: Fail`` only)."""
    try:
        return compiled.evaluate(activation)
    except CelEvalError as exc:
        if evaluator.failure_policy != "Ignore":
            failures.append(Failure(str(exc)))
        return _FAILED


def _message(validation: Validation, activation: Mapping[str, object]) -> str:
    message = ""
    if validation.message_expression is not None:
        try:
            value = validation.message_expression.evaluate(activation)
        except CelEvalError as exc:
            log.debug("messageExpression failed: %s", exc)
            value = None
        if isinstance(value, str):
            message = value.strip()
            if len(message.encode()) > MAX_MESSAGE_BYTES or "\n" in message:
                message = ""
    if not message and validation.message:
        message = validation.message.strip()
    return message or f"failed expression: {validation.expression.expression.strip()}"


# -- the admission step -----------------------------------------------------------------------


class ValidatingPolicyAdmission(PolicyPlugin[ValidatingEvaluator]):
    """The ValidatingAdmissionPolicy plugin, as an admission step."""

    def __init__(self, store: ObjectStore, authorize: authz.Authorizer | None = None) -> None:
        super().__init__(
            store,
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
            compile_policy,
            authorize,
        )

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        admitting = self.admitting(res, namespace, obj, old, opts)
        if admitting is not None:
            await self._admit(admitting)

    async def connect(
        self,
        res: Resource,
        namespace: str,
        name: str,
        subresource: str,
        query: Iterable[tuple[str, str]],
        user: User,
    ) -> None:
        """Admission of a CONNECT (``pods/exec``, ``attach``, ``portforward``)."""
        admitting = self.connecting(res, namespace, name, subresource, query, user)
        if admitting is not None:
            await self._admit(admitting)

    async def _admit(self, admitting: Admitting) -> None:
        call = admitting.call
        for found in await admitting.invocations(self.source.hooks()):
            if isinstance(found, ConfigFailure):
                if found.hook.failure_policy != "Ignore":
                    raise refusal(call, found.hook.name, _binding_name(found.binding), Failure(found.message))
                continue
            evaluator = found.hook.evaluator
            activation = (await admitting.inputs(found, evaluator.env)).activation(call.obj)
            binding = name_of(found.binding)
            actions = (found.binding.get("spec") or {}).get("validationActions") or ()
            for failure in validate(evaluator, activation):
                if "Warn" in actions:
                    log.warning(
                        "Validation failed for ValidatingAdmissionPolicy '%s' with binding '%s': %s",
                        found.hook.name,
                        binding,
                        failure.message,
                    )
                if "Deny" in actions:
                    raise refusal(call, found.hook.name, binding, failure)


def _binding_name(binding: Obj | None) -> str:
    return name_of(binding) if binding is not None else ""


def refusal(call: Call, policy: str, binding: str, failure: Failure) -> errors.ApiError:
    """Upstream's refusal: a Forbidden naming the object, with the failure's reason."""
    who = f"ValidatingAdmissionPolicy '{policy}'" + (f" with binding '{binding}'" if binding else "")
    message = f"{who} denied request: {failure.message}"
    reason = failure.reason or "Invalid"
    name = call.name or _generate_name(call) or "Unknown"
    details: dict[str, Any] = {"name": name, "kind": call.res.plural, "causes": [{"message": message}]}
    if call.res.group:
        details["group"] = call.res.group
    return errors.ApiError(
        _CODES.get(reason, 422), reason, f'{call.res.name} "{name}" is forbidden: {message}', details
    )


def _generate_name(call: Call) -> str:
    source = call.obj if call.obj is not None else call.old or {}
    return str((source.get("metadata") or {}).get("generateName") or "")
