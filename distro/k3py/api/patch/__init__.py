"""The three PATCH formats of the Kubernetes API, as pure functions on JSON-like values.

- ``json_patch.apply(doc, ops)``: RFC 6902, ``application/json-patch+json``;
- ``merge_patch.apply(doc, patch)``: RFC 7386, ``application/merge-patch+json``;
- ``strategic.apply(doc, patch, node)``: strategic merge patch,
  ``application/strategic-merge-patch+json``, steered by a :class:`k3py.api.schema.Node`.

None of them modifies its arguments or returns a value sharing containers with them. They
raise :class:`InvalidPatch` (a malformed patch: HTTP 400) or :class:`PatchError` (a patch
that does not apply: HTTP 422).
"""

from k3py.api.patch import json_patch, merge_patch, strategic
from k3py.api.patch.errors import InvalidPatch, PatchError

__all__ = ["InvalidPatch", "PatchError", "json_patch", "merge_patch", "strategic"]
