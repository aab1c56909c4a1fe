"""Strategic merge patch directives: the ``$``-keys a patch may carry, and how to strip them.

- ``$patch``: ``replace`` or ``delete`` in a map; ``delete`` or ``replace`` in a list element;
- ``$retainKeys``: the keys a map keeps;
- ``$setElementOrder/<field>``: the order of a merged list;
- ``$deleteFromPrimitiveList/<field>``: values to remove from a merged list of scalars.
"""

from __future__ import annotations

from typing import Final

from k3py.api.patch.errors import InvalidPatch
from k3py.api.patch.json_value import JSON

DIRECTIVE: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
SET_ELEMENT_ORDER: Final = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList"

_PREFIXED: Final = (SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)
_FORMAT_ERRORS: Final = {
    SET_ELEMENT_ORDER: "invalid patch format of setElementOrder list",
    DELETE_FROM_PRIMITIVE_LIST: "invalid patch format of primitive list",
}


def directive_target(key: str, prefix: str) -> str:
    """The field a prefixed directive key names: ``$setElementOrder/containers`` → ``containers``."""
    head, slash, field = key.partition("/")
    if head != prefix or not slash:
        raise InvalidPatch(f"{_FORMAT_ERRORS[prefix]}: {key!r} is not {prefix}/<field>")
    return field


def has_directive(value: JSON) -> bool:
    """Whether ``value`` is an object carrying ``$patch``."""
    return isinstance(value, dict) and DIRECTIVE in value


def is_directive_key(key: str) -> bool:
    return key in (DIRECTIVE, RETAIN_KEYS) or key.startswith(_PREFIXED)


def clean(value: JSON) -> JSON:
    """A copy of a patch value fit to store: objects lose their null and directive keys, and
    objects carrying ``$patch`` are dropped from the objects and arrays that hold them.
    Nulls inside arrays stay, as upstream keeps them."""
    if isinstance(value, dict):
        return {
            key: clean(item)
            for key, item in value.items()
            if item is not None and not is_directive_key(key) and not has_directive(item)
        }
    if isinstance(value, list):
        return [clean(item) for item in value if not has_directive(item)]
    return value
