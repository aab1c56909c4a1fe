"""JSON Patch (RFC 6902): ``application/json-patch+json``.

:func:`apply` copies the document once, then runs each operation on the copy in order; the
first failure raises and nothing is returned, so a patch applies entirely or not at all.
Paths are JSON Pointers (RFC 6901): ``""`` is the whole document, ``/a/0/b`` walks object
keys and array indices, ``~1`` stands for ``/`` and ``~0`` for ``~``, and ``-`` (add only)
is the position after an array's last element.

Error messages follow evanphx/json-patch, which kube-apiserver uses, so clients see the
familiar text. Where that library is laxer than the RFC, this module follows the RFC:
``replace`` and ``test`` need the target to exist, array indices have no leading zeros and
are never negative, ``value`` must be present, and ``move`` cannot move a value into itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from k3py.api.patch.errors import InvalidPatch, PatchError
from k3py.api.patch.json_value import JSON, clone, equal, render

OPERATIONS: Final = ("add", "remove", "replace", "move", "copy", "test")
_INDEX: Final = re.compile(r"0|[1-9][0-9]*")
_MISSING: Final = object()


def apply(doc: JSON, ops: Sequence[Any]) -> JSON:
    """The document after every operation in ``ops``; ``doc`` and ``ops`` are left unchanged."""
    if not isinstance(ops, list | tuple):
        raise InvalidPatch(f"a JSON patch is a list of operations, not {render(ops)}")
    result = clone(doc)
    for op in ops:
        if not isinstance(op, dict):
            raise InvalidPatch(f"a JSON patch operation is an object, not {render(op)}")
        result = _apply_one(result, op)
    return result


def parse_pointer(pointer: str) -> list[str]:
    """The unescaped reference tokens of a JSON Pointer; ``""`` gives ``[]``."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise InvalidPatch(f'invalid JSON pointer "{pointer}": it must be empty or start with "/"')
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise InvalidPatch(f'invalid JSON pointer "{pointer}": "~" must be followed by 0 or 1')
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def format_pointer(tokens: Sequence[str]) -> str:
    """The JSON Pointer for ``tokens`` (the inverse of :func:`parse_pointer`)."""
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


def _apply_one(doc: JSON, op: dict[str, Any]) -> JSON:
    name = op.get("op")
    if name not in OPERATIONS:
        raise PatchError(f"Unexpected kind: {name if isinstance(name, str) else 'unknown'}")
    path = _string_field(op, "path", f"{name} operation failed to decode path")
    tokens = parse_pointer(path)
    if name == "add":
        return _add(doc, tokens, clone(_value(op, name)), path)
    if name == "remove":
        _remove(doc, tokens, path)
        return doc
    if name == "replace":
        return _replace(doc, tokens, clone(_value(op, name)), path)
    if name == "test":
        _test(doc, tokens, _value(op, name), path)
        return doc
    source = _string_field(op, "from", f"{name} operation failed to decode from")
    source_tokens = parse_pointer(source)
    if name == "move":
        return _move(doc, source_tokens, tokens, source, path)
    value = _get(doc, source_tokens, f"{name} operation does not apply: doc is missing from path: {source}")
    return _add(
        doc,
        tokens,
        clone(value),
        path,
        f"{name} operation does not apply: doc is missing destination path: {path}",
    )


def _add(doc: JSON, tokens: list[str], value: JSON, path: str, missing: str = "") -> JSON:
    if not tokens:
        return value
    parent = _parent(doc, tokens, missing or f'add operation does not apply: doc is missing path: "{path}"')
    key = tokens[-1]
    if isinstance(parent, dict):
        parent[key] = value
    elif key == "-":
        parent.append(value)
    else:
        parent.insert(_index(parent, key, path, "add", allow_end=True), value)
    return doc


def _remove(doc: JSON, tokens: list[str], path: str) -> JSON:
    if not tokens:
        raise PatchError("remove operation does not apply: the document root cannot be removed")
    parent = _parent(doc, tokens, f'remove operation does not apply: doc is missing path: "{path}"')
    key = tokens[-1]
    if isinstance(parent, dict):
        if key not in parent:
            raise PatchError(
                f"error in remove for path: '{path}': Unable to remove nonexistent key: {key}: missing value"
            )
        return parent.pop(key)
    return parent.pop(_index(parent, key, path, "remove"))


def _replace(doc: JSON, tokens: list[str], value: JSON, path: str) -> JSON:
    if not tokens:
        return value
    parent = _parent(doc, tokens, f"replace operation does not apply: doc is missing path: {path}")
    key = tokens[-1]
    missing = f"replace operation does not apply: doc is missing key: {path}: missing value"
    if isinstance(parent, dict):
        if key not in parent:
            raise PatchError(missing)
        parent[key] = value
    else:
        if not _INDEX.fullmatch(key) or int(key) >= len(parent):
            raise PatchError(missing)
        parent[int(key)] = value
    return doc


def _move(doc: JSON, source: list[str], target: list[str], source_path: str, path: str) -> JSON:
    if source == target:
        _get(doc, source, f"move operation does not apply: doc is missing from path: {source_path}")
        return doc
    if target[: len(source)] == source:
        raise PatchError(
            f"move operation does not apply: {source_path} cannot be moved into its own child {path}"
        )
    parent = _parent(doc, source, f"move operation does not apply: doc is missing from path: {source_path}")
    key = source[-1]
    if isinstance(parent, dict):
        if key not in parent:
            raise PatchError(
                f"error in move for path: '{source_path}': "
                f"Unable to remove nonexistent key: {key}: missing value"
            )
        value = parent.pop(key)
    else:
        value = parent.pop(_index(parent, key, source_path, "move"))
    return _add(
        doc, target, value, path, f"move operation does not apply: doc is missing destination path: {path}"
    )


def _test(doc: JSON, tokens: list[str], expected: JSON, path: str) -> None:
    failed = f"testing value {path} failed: test failed"
    if tokens:
        parent = _parent(doc, tokens, f"test operation does not apply: is missing path: {path}")
        actual = _child(parent, tokens[-1])
        if actual is _MISSING:
            raise PatchError(failed)
    else:
        actual = doc
    if not equal(actual, expected):
        raise PatchError(failed)


def _parent(doc: JSON, tokens: list[str], missing: str) -> Any:
    """The object or array holding the last token; ``missing`` (+ ": missing value") if none."""
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token)
        if node is _MISSING:
            break
    if not isinstance(node, dict | list):
        raise PatchError(f"{missing}: missing value")
    return node


def _get(doc: JSON, tokens: list[str], missing: str) -> JSON:
    if not tokens:
        return doc
    value = _child(_parent(doc, tokens, missing), tokens[-1])
    if value is _MISSING:
        raise PatchError(f"{missing}: missing value")
    return value


def _child(node: JSON, token: str) -> Any:
    if isinstance(node, dict):
        return node.get(token, _MISSING)
    if isinstance(node, list) and _INDEX.fullmatch(token) and int(token) < len(node):
        return node[int(token)]
    return _MISSING


def _index(array: list[JSON], token: str, path: str, verb: str, *, allow_end: bool = False) -> int:
    if not _INDEX.fullmatch(token):
        raise PatchError(f"error in {verb} for path: '{path}': value was not a proper array index: '{token}'")
    index = int(token)
    if index > len(array) or (index == len(array) and not allow_end):
        raise PatchError(
            f"error in {verb} for path: '{path}': "
            f"Unable to access invalid index: {index}: invalid index referenced"
        )
    return index


def _string_field(op: dict[str, Any], field: str, missing: str) -> str:
    value = op.get(field)
    if not isinstance(value, str):
        raise PatchError(f"{missing}: missing value")
    return value


def _value(op: dict[str, Any], name: str) -> JSON:
    if "value" not in op:
        raise PatchError(f'{name} operation does not apply: the operation has no "value": missing value')
    return op["value"]
