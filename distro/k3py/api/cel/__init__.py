"""The Common Expression Language (CEL), as far as k3py understands it: syntax only.

:func:`parse` turns an expression into a tree of :mod:`.nodes` or raises
:class:`CelSyntaxError` worded as cel-go words it, which is what kube-apiserver shows when a
webhook ``matchConditions`` expression or a CRD ``x-kubernetes-validations`` rule does not
compile. Expressions are neither type-checked nor evaluated here.
"""

from __future__ import annotations

from k3py.api.cel.errors import CelSyntaxError
from k3py.api.cel.parser import MAX_LENGTH, MAX_NESTING, check, parse

__all__ = ["MAX_LENGTH", "MAX_NESTING", "CelSyntaxError", "check", "parse"]
