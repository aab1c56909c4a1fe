"""The Common Expression Language (CEL) as Kubernetes uses it: parser, type checker, evaluator.

:func:`parse` turns an expression into a tree of :mod:`.nodes` or raises
:class:`CelSyntaxError` worded as cel-go words it, which is what kube-apiserver shows when a
webhook ``matchConditions`` expression or a CRD ``x-kubernetes-validations`` rule does not
compile. :func:`compile` also type-checks it against an :class:`Env` (the variables and object
types an expression may use; :func:`schema_type` makes an object type from an OpenAPI schema)
and returns a :class:`Program` to evaluate against JSON-like values, as ValidatingAdmissionPolicy,
MutatingAdmissionPolicy, webhook match conditions and CRD validation rules do. Type errors are
:class:`CelTypeError`, runtime errors :class:`CelEvalError`, both worded as cel-go's.

Besides the standard definitions, the Kubernetes libraries are there: strings and lists
extensions, sets, regex (``find``, ``findAll``), ``url()``, ``ip()``/``cidr()``, ``quantity()``,
optionals, two-variable comprehensions, and the authorizer library (the caller supplies an
:class:`Authorizer` whose ``check`` answers); ``Program.evaluate`` takes a ``cost_limit``.
"""

from __future__ import annotations

from k3py.api.cel.errors import CelEvalError, CelSyntaxError, CelTypeError
from k3py.api.cel.library_authz import (
    AUTHORIZER,
    RESOURCE_CHECK,
    Authorizer,
    AuthzAttributes,
    Decision,
)
from k3py.api.cel.parser import MAX_LENGTH, MAX_NESTING, check, parse
from k3py.api.cel.program import Env, Program, compile
from k3py.api.cel.types import DYN, CelType, schema_type

__all__ = [
    "AUTHORIZER",
    "DYN",
    "MAX_LENGTH",
    "MAX_NESTING",
    "RESOURCE_CHECK",
    "Authorizer",
    "AuthzAttributes",
    "CelEvalError",
    "CelSyntaxError",
    "CelType",
    "CelTypeError",
    "Decision",
    "Env",
    "Program",
    "check",
    "compile",
    "parse",
    "schema_type",
]
