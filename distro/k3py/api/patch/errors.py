"""The two ways a patch can fail, so the API server can answer as kube-apiserver does.

:class:`InvalidPatch` means the patch document itself is malformed (not a list of operations,
a bad directive): kube-apiserver answers 400 Bad Request. Any other :class:`PatchError` means
a well-formed patch does not apply to this object (a missing path, a failed ``test``, a list
element without its merge key): 422 Unprocessable Entity. Messages follow upstream's wording
(evanphx/json-patch, apimachinery's strategicpatch) because clients print them as they are.
"""

from __future__ import annotations


class PatchError(ValueError):
    """The patch does not apply to the document (HTTP 422)."""


class InvalidPatch(PatchError):
    """The patch document is malformed (HTTP 400)."""
