"""What every custom resource goes through when it is written or read.

- :func:`normalize` is upstream's decoding step (``unstructuredSchemaCoercer`` then the
  defaulter): unknown fields pruned, nulls the schema neither allows nor defaults dropped,
  ``default`` values filled in. It runs on every write and on every read from storage, so a
  schema change shows in objects stored before it.
- :func:`validate` is ``customResourceStrategy.Validate``: ObjectMeta, the schema (ratcheted on
  update), the scale subresource's replica fields, embedded resources, set and map lists.
"""

from __future__ import annotations

from typing import Any

from k3py.api import validation
from k3py.api.crd import defaulting, invariants, pruning, values
from k3py.api.crd.model import CustomResource
from k3py.api.resources import Resource
from k3py.api.validation import Cause

Obj = dict[str, Any]


def normalize(custom: CustomResource, obj: Obj) -> list[str]:
    """Prune, then default, ``obj`` in place; return the paths pruning removed."""
    schema = custom.schema
    if schema is None:
        return []
    removed = pruning.prune(obj, schema)
    pruning.prune_nulls(obj, schema)
    defaulting.apply(obj, schema)
    return removed


def validate(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    custom = resource.custom
    assert custom is not None
    causes = validation.validate(resource, obj, old)  # ObjectMeta: no kind validator is registered for CRs
    schema = custom.schema
    if schema is not None:
        causes += values.validate(schema, obj, old)
    if custom.scale is not None:
        causes += invariants.scale_replicas(obj, custom.scale.spec_replicas)
        causes += invariants.scale_replicas(obj, custom.scale.status_replicas)
        if custom.scale.label_selector:
            causes += invariants.scale_selector(obj, custom.scale.label_selector)
    if schema is not None:
        causes += invariants.embedded_resources(obj, schema)
        causes += invariants.list_duplicates(obj, schema)
    return list(dict.fromkeys(causes))
