"""kubectl's ``last-applied-configuration`` annotation and server-side apply, as kube-apiserver ties them.

Objects that ``kubectl apply`` (client-side) manages carry their last applied configuration in
an annotation, and their fields belong to ``kubectl-client-side-apply``. When the manager
``kubectl`` then applies server-side (apimachinery ``lastappliedmanager.go`` and
``lastappliedupdater.go``):

- :func:`allowed_conflicts`: conflicts on fields that the annotation holds with the live
  value are no conflicts: the applier is the same person, so the apply is forced;
- :func:`with_last_applied`: after an apply by ``kubectl``, an annotation that exists is
  rewritten to the new configuration, so a later client-side apply still works.

Any other manager name opts out of both, as upstream.
"""

from __future__ import annotations

import json
from typing import Any, Final

from k3py.api.apply.comparison import compare
from k3py.api.apply.fieldpath import FieldSet, go_json
from k3py.api.apply.fieldsets import field_set, problems
from k3py.api.apply.shapes import Shape

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL: Final = "kubectl"
ANNOTATIONS_SIZE_LIMIT: Final = 256 * 1024  # apimachinery TotalAnnotationSizeLimitB


def allowed_conflicts(live: dict[str, Any], shape: Shape, api_version: str) -> FieldSet | None:
    """The fields of ``live`` that its last-applied annotation sets to their current value.

    None when there is no usable annotation (absent, not JSON, another version, invalid).
    """
    text = _annotations(live).get(LAST_APPLIED)
    if not isinstance(text, str) or not text:
        return None
    try:
        last = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version or problems(last, shape):
        return None
    changes = compare(last, live, shape)
    return field_set(last, shape) - changes.modified - changes.added - changes.removed


def with_last_applied(result: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``result`` with its last-applied annotation (if it has one) set to ``config``."""
    annotations = _annotations(result)
    if not annotations.get(LAST_APPLIED):
        return result
    applied = json.loads(json.dumps(config))
    metadata = applied.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict):
        metadata["annotations"].pop(LAST_APPLIED, None)
    annotations[LAST_APPLIED] = go_json(applied, sort_keys=True) + "\n"
    size = sum(len(key.encode()) + len(str(value).encode()) for key, value in annotations.items())
    if size > ANNOTATIONS_SIZE_LIMIT:
        del annotations[LAST_APPLIED]
    return result


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return annotations if isinstance(annotations, dict) else {}
