"""JSON Merge Patch (RFC 7386): ``application/merge-patch+json``.

A patch object is merged key by key: ``null`` removes a key, an object merges recursively,
anything else (arrays included) replaces. A patch that is not an object replaces the whole
document. :func:`create` is the inverse for clients and controllers: the smallest merge patch
that turns one document into another.
"""

from __future__ import annotations

from k3py.api.patch.json_value import JSON, clone, equal


def apply(doc: JSON, patch: JSON) -> JSON:
    """``doc`` with ``patch`` merged in; neither argument is modified, nothing is shared."""
    if not isinstance(patch, dict):
        return clone(patch)
    base = doc if isinstance(doc, dict) else {}
    result: dict[str, JSON] = {}
    for key, value in base.items():
        if key not in patch:
            result[key] = clone(value)
        elif patch[key] is not None:
            result[key] = apply(value, patch[key])
    for key, value in patch.items():
        if key not in base and value is not None:
            result[key] = apply(None, value)
    return result


def create(original: JSON, modified: JSON) -> JSON:
    """A merge patch taking ``original`` to ``modified``.

    Merge patches cannot set a key to ``null`` (``null`` means "remove"), so when ``modified``
    holds a null inside an object the patch removes that key instead.
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return clone(modified)
    patch: dict[str, JSON] = {key: None for key in original if key not in modified}
    for key, value in modified.items():
        if key not in original:
            patch[key] = clone(value)
        elif not equal(original[key], value):
            before = original[key]
            patch[key] = (
                create(before, value)
                if isinstance(before, dict) and isinstance(value, dict)
                else clone(value)
            )
    return patch
