"""Server-side apply: field ownership in ``metadata.managedFields``, merging and conflicts.

This is kube-apiserver's field manager (k8s.io/apimachinery ``util/managedfields``) and the
structured-merge-diff library under it, as pure functions on JSON-like dicts, steered by the
bundled schemas (:class:`~k3py.api.schema.Node`):

- :func:`apply` answers ``PATCH`` with ``application/apply-patch+yaml``;
- :func:`track_update` records every other write (create, update, JSON/merge/strategic patch);
- :mod:`.fieldpath` converts field sets to and from FieldsV1 and prints paths;
- :mod:`.managers` reads and writes managedFields entries.

Failures: :class:`ApplyConflict` (409, with ``causes``), :class:`ApplyError` (400).

Modules, in the order data flows: ``fieldpath`` (paths, sets, FieldsV1) and ``shapes`` (the
schema as SSA sees it) → ``fieldsets``, ``comparison``, ``merging`` (walks over values) →
``updater`` (ownership for one write) → ``fieldmanager`` (whole requests: ``managers`` for
managedFields entries, ``lastapplied`` for kubectl's annotation, ``errors``).

The API server still does what kube-apiserver does around its field manager: decoding the
YAML body, requiring ``fieldManager``, defaulting the result, and resetting what the strategy
resets (status through the main resource, server-set metadata such as creationTimestamp).
"""

from k3py.api.apply.errors import ApplyConflict, ApplyError, Conflict
from k3py.api.apply.fieldmanager import apply, default_reset_fields, track_update
from k3py.api.apply.fieldpath import (
    FieldSet,
    FieldsV1Error,
    Path,
    from_fields_v1,
    make_path,
    path_string,
    to_fields_v1,
)
from k3py.api.apply.managers import ManagedEntry, ManagedFieldsError, Manager
from k3py.api.apply.managers import decode as decode_managed_fields
from k3py.api.apply.managers import encode as encode_managed_fields

__all__ = [
    "ApplyConflict",
    "ApplyError",
    "Conflict",
    "FieldSet",
    "FieldsV1Error",
    "ManagedEntry",
    "ManagedFieldsError",
    "Manager",
    "Path",
    "apply",
    "decode_managed_fields",
    "default_reset_fields",
    "encode_managed_fields",
    "from_fields_v1",
    "make_path",
    "path_string",
    "to_fields_v1",
    "track_update",
]
