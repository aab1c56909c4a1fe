"""PATCH bodies applied to the current object: JSON patch, merge patch, strategic merge patch.

Strategic merge patch needs the kind's schema (merge keys, strategies); kinds without one
fall back to merge-patch semantics, as upstream does for custom resources.
"""

from __future__ import annotations

from typing import Any

from k3py.api.patch import InvalidPatch, PatchError, json_patch, merge_patch, strategic
from k3py.api.resources import Resource
from k3py.api.schema import Schemas
from k3py.apiserver import errors


def apply_patch(content_type: str, current: Any, patch: Any, resource: Resource | None) -> Any:
    try:
        if content_type == "application/json-patch+json":
            if not isinstance(patch, list):
                raise errors.bad_request(
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
                )
            return json_patch.apply(current, patch)
        if content_type == "application/merge-patch+json":
            return merge_patch.apply(current, patch)
        if content_type == "application/strategic-merge-patch+json":
            if resource is None:
                return merge_patch.apply(current, patch)
            node = Schemas.get().kind(resource.group, resource.version, resource.kind)
            return strategic.apply(current, patch, node)
    except InvalidPatch as exc:
        raise errors.bad_request(str(exc)) from None
    except PatchError as exc:
        raise errors.ApiError(422, "Invalid", str(exc)) from None
    raise errors.unsupported_media_type(content_type)
