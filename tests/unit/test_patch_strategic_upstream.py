"""Strategic merge patch against upstream's own fixtures.

The cases are apimachinery's (``pkg/util/strategicpatch/patch_test.go``), applied to the same
test type, ``MergeItem``, rewritten as an OpenAPI definition. Where upstream computes a patch
from three documents, the case here is the live object, that patch, and upstream's result;
results are compared in order, as upstream does for these cases.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from k3py.api.patch import PatchError, strategic
from k3py.api.schema import Node, Schemas


def _merging_list(strategy: str = "merge") -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"$ref": "#/$defs/mergeItem"},
        "x-kubernetes-patch-strategy": strategy,
        "x-kubernetes-patch-merge-key": "name",
    }


SCHEMAS = Schemas(
    {
        "mergeItem": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "value": {"type": "string"},
                "other": {"type": "string"},
                "mergingList": _merging_list(),
                "nonMergingList": {"type": "array", "items": {"$ref": "#/$defs/mergeItem"}},
                "mergingIntList": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "x-kubernetes-patch-strategy": "merge",
                },
                "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
                "mergeItemPtr": _merging_list(),
                "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "replacingItem": {"x-kubernetes-patch-strategy": "replace"},
                "retainKeysMap": {
                    "$ref": "#/$defs/retainKeysMergeItem",
                    "x-kubernetes-patch-strategy": "retainKeys",
                },
                "retainKeysMergingList": _merging_list("merge,retainKeys"),
            },
        },
        "retainKeysMergeItem": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "value": {"type": "string"},
                "other": {"type": "string"},
                "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "mergingIntList": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "x-kubernetes-patch-strategy": "merge",
                },
                "mergingList": _merging_list(),
                "nonMergingList": {"type": "array", "items": {"$ref": "#/$defs/mergeItem"}},
            },
        },
    }
)
MERGE_ITEM: Node = SCHEMAS.node("mergeItem")

CASES = yaml.safe_load(
    """
- case: unique scalars when merging lists
  original: {mergingIntList: [1, 2]}
  patch: {mergingIntList: [2, 3]}
  result: {mergingIntList: [1, 2, 3]}
- case: delete map from nested map
  original: {simpleMap: {key1: 1, key2: 1}}
  patch: {simpleMap: {$patch: delete}}
  result: {simpleMap: {}}
- case: delete all items from merging list
  original: {mergingList: [{name: 1}, {name: 2}]}
  patch: {mergingList: [{$patch: replace}]}
  result: {mergingList: []}
- case: merge empty merging lists
  original: {mergingList: []}
  patch: {mergingList: []}
  result: {mergingList: []}
- case: delete all keys from map
  original: {name: 1, value: 1}
  patch: {$patch: replace}
  result: {}
- case: add key and delete all keys from map
  original: {name: 1, value: 1}
  patch: {other: a, $patch: replace}
  result: {other: a}
- case: delete all duplicate entries in a merging list
  original: {mergingList: [{name: 1}, {name: 1}, {name: 2, value: a}, {name: 3}, {name: 3}]}
  patch: {mergingList: [{name: 1, $patch: delete}, {name: 3, $patch: delete}]}
  result: {mergingList: [{name: 2, value: a}]}
- case: retainKeys map can add a field when no retainKeys directive present
  original: {retainKeysMap: {name: foo}}
  patch: {retainKeysMap: {value: bar}}
  result: {retainKeysMap: {name: foo, value: bar}}
- case: retainKeys map can delete a field when no retainKeys directive present
  original: {retainKeysMap: {name: foo, value: a}}
  patch: {retainKeysMap: {value: null}}
  result: {retainKeysMap: {name: foo}}
- case: retainKeys list can change a field when no retainKeys directive present
  original: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
  patch: {retainKeysMergingList: [{name: foo, value: b}]}
  result: {retainKeysMergingList: [{name: bar}, {name: foo, value: b}]}
- case: preserve the order from the patch in a merging list
  original: {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  patch: {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, other: x}]}
  result: {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, value: b, other: x}]}
- case: preserve the order from the patch in a merging list 2
  original: {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  patch: {mergingList: [{name: 3, value: c}, {name: 1, value: a}]}
  result: {mergingList: [{name: 2, value: b}, {name: 3, value: c}, {name: 1, value: a}]}
- case: preserve the order from the patch in a merging int list
  original: {mergingIntList: [1, 2, 3]}
  patch: {mergingIntList: [3, 1, 2]}
  result: {mergingIntList: [3, 1, 2]}
- case: preserve the order from the patch in a merging int list 2
  original: {mergingIntList: [1, 2, 3]}
  patch: {mergingIntList: [3, 1]}
  result: {mergingIntList: [2, 3, 1]}
- case: $setElementOrder contains item that is not present in the list to be merged
  original: {mergingList: [{name: 1}, {name: 3}]}
  patch:
    $setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}]
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]
  result: {mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}
- case: $setElementOrder contains item that is not present in the int list to be merged
  original: {mergingIntList: [1, 3]}
  patch: {$setElementOrder/mergingIntList: [3, 2, 1]}
  result: {mergingIntList: [3, 1]}
- case: should check if order in $setElementOrder and patch list match
  original: {mergingList: [{name: 1}, {name: 3}, {name: 2}]}
  patch:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]
  error: doesn't match
- case: should check if order in $setElementOrder and patch int list match
  original: {mergingIntList: [1, 3, 2]}
  patch: {$setElementOrder/mergingIntList: [1, 2, 3], mergingIntList: [3, 1]}
  error: doesn't match
- case: missing merge key should error out
  original: {mergingList: [{name: 1, value: a}]}
  patch: {mergingList: [{value: b}]}
  error: does not contain declared merge key
- case: $deleteFromPrimitiveList of nonexistent item in primitive list should not add the item
  original: {mergingIntList: [1, 2]}
  patch: {$deleteFromPrimitiveList/mergingIntList: [3]}
  result: {mergingIntList: [1, 2]}
- case: $deleteFromPrimitiveList on empty primitive list should not add the item to the list
  original: {mergingIntList: null}
  patch: {$deleteFromPrimitiveList/mergingIntList: [3]}
  result: {mergingIntList: null}
- case: $deleteFromPrimitiveList on nonexistent primitive list should not add the primitive list
  original: {foo: [bar]}
  patch: {$deleteFromPrimitiveList/mergingIntList: [3]}
  result: {foo: [bar]}
- case: $deleteFromPrimitiveList should delete item from a list with merge patch strategy
  original: {mergingIntList: [1, 2, 3]}
  patch: {$deleteFromPrimitiveList/mergingIntList: [2]}
  result: {mergingIntList: [1, 3]}
- case: $deleteFromPrimitiveList should delete item from a list without merge patch strategy
  original: {nonMergingIntList: [1, 2, 3]}
  patch: {$deleteFromPrimitiveList/nonMergingIntList: [2]}
  result: {nonMergingIntList: [1, 3]}
- case: nested patch merge with empty list
  original: {name: hi, mergingList: [{name: hello2}]}
  patch:
    $setElementOrder/mergingList: [{name: hello}, {name: doesntexist}]
    mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]
  result: {name: hi, mergingList: [{name: hello}, {name: hello2}]}
- case: nested patch merge with empty list (two-way)
  original: {name: hi}
  patch: {mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]}
  result: {name: hi, mergingList: [{name: hello}]}
- case: delete items in lists of scalars
  original: {mergingIntList: [1, 2, 3, 4]}
  patch: {$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}
  result: {mergingIntList: [1, 2, 4]}
- case: delete all duplicate items in lists of scalars
  original: {mergingIntList: [1, 2, 3, 3, 4]}
  patch: {$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}
  result: {mergingIntList: [1, 2, 4]}
- case: add and delete items in lists of scalars
  original: {mergingIntList: [1, 2, 3]}
  patch:
    $setElementOrder/mergingIntList: [1, 2, 4]
    $deleteFromPrimitiveList/mergingIntList: [3]
    mergingIntList: [4]
  result: {mergingIntList: [1, 2, 4]}
- case: merge lists of maps
  original: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}
  patch:
    $setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]
  result:
    mergingList:
    - {name: 4, value: 4}
    - {name: 1, other: a}
    - {name: 2, value: 2, other: b}
    - {name: 3, value: 3}
- case: add field to map in merging list with conflict
  original: {mergingList: [{name: 1, other: a}, {name: 3, value: 2, other: b}]}
  patch:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]
  result: {mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 2}, {name: 3, value: 2, other: b}]}
- case: delete missing map from merging list with conflict
  original: {mergingList: [{name: 3, other: a}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}]
    mergingList: [{name: 2}, {name: 1, $patch: delete}]
  result: {mergingList: [{name: 2}, {name: 3, other: a}]}
- case: add map and delete map from merging list
  original: {mergingList: [{name: 1}, {name: 2, other: b}, {name: 4, other: c}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 3}, {name: 1, $patch: delete}]
  result: {mergingList: [{name: 2, other: b}, {name: 4, other: c}, {name: 3}]}
- case: add map and delete map from merging list with conflict
  original: {mergingList: [{name: 1, other: a}, {name: 4, other: c}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 2}, {name: 3}, {name: 1, $patch: delete}]
  result: {mergingList: [{name: 4, other: c}, {name: 2}, {name: 3}]}
- case: replace non merging list nested in merging list
  original:
    mergingList: [{name: 1, other: a, nonMergingList: [{name: 1}, {name: 2, value: 2}]}, {name: 2, other: b}]
  patch:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}]
  result:
    mergingList: [{name: 1, other: a, nonMergingList: [{name: 1, value: 1}]}, {name: 2, other: b}]
- case: add field to map in merging list nested in merging list with deletion conflict
  original:
    mergingList: [{name: 1, other: a, mergingList: [{name: 2, value: 2, other: d}]}, {name: 2, other: b}]
  patch:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList:
    - $setElementOrder/mergingList: [{name: 2}, {name: 1}]
      name: 1
      mergingList: [{name: 1, value: 1}]
  result:
    mergingList:
    - {name: 1, other: a, mergingList: [{name: 2, value: 2, other: d}, {name: 1, value: 1}]}
    - {name: 2, other: b}
- case: add map to merging list by pointer
  original: {mergeItemPtr: [{name: 1, other: a}, {name: 3}]}
  patch: {$setElementOrder/mergeItemPtr: [{name: 1}, {name: 2}], mergeItemPtr: [{name: 2}]}
  result: {mergeItemPtr: [{name: 1, other: a}, {name: 2}, {name: 3}]}
- case: merge lists of scalars
  original: {mergingIntList: [1, 2, 4]}
  patch: {$setElementOrder/mergingIntList: [1, 2, 3], mergingIntList: [3]}
  result: {mergingIntList: [1, 2, 3, 4]}
- case: add an item in a list of primitives and preserve order
  original: {mergingIntList: [1, 4, 2]}
  patch: {$setElementOrder/mergingIntList: [3, 1, 2], mergingIntList: [3]}
  result: {mergingIntList: [3, 1, 4, 2]}
- case: delete an item in a list of primitives and preserve order
  original: {mergingIntList: [1, 2, 3]}
  patch: {$setElementOrder/mergingIntList: [2, 1], $deleteFromPrimitiveList/mergingIntList: [3]}
  result: {mergingIntList: [2, 1]}
- case: add and delete an item in a int list and preserve order
  original: {mergingIntList: [1, 2, 3]}
  patch:
    $setElementOrder/mergingIntList: [4, 2, 1]
    mergingIntList: [4]
    $deleteFromPrimitiveList/mergingIntList: [3]
  result: {mergingIntList: [4, 2, 1]}
- case: delete an item in a list and preserve order
  original: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}, {name: 1}]
    mergingList: [{name: 3, $patch: delete}]
  result: {mergingList: [{name: 2, value: 2, other: b}, {name: 1, other: a}]}
- case: set elements order in a list with server-only items
  original:
    mergingList:
    - {name: 1, other: a}
    - {name: 3, value: 3}
    - {name: 4, value: 4}
    - {name: 2, value: 2}
    - {name: 9}
  patch: {$setElementOrder/mergingList: [{name: 4}, {name: 2}, {name: 3}, {name: 1}]}
  result:
    mergingList:
    - {name: 4, value: 4}
    - {name: 2, value: 2}
    - {name: 3, value: 3}
    - {name: 1, other: a}
    - {name: 9}
- case: set elements order in a list with server-only items 2
  original:
    mergingList:
    - {name: 1, other: a}
    - {name: 2, value: 2}
    - {name: 9}
    - {name: 3, value: 3}
    - {name: 4, value: 4}
  patch: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]}
  result:
    mergingList:
    - {name: 2, value: 2}
    - {name: 1, other: a}
    - {name: 9}
    - {name: 4, value: 4}
    - {name: 3, value: 3}
- case: set elements order in a list with server-only items 3
  original:
    mergingList:
    - {name: 1, other: a}
    - {name: 2, value: 2}
    - {name: 7}
    - {name: 9}
    - {name: 8}
    - {name: 3, value: 3}
    - {name: 4, value: 4}
  patch: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]}
  result:
    mergingList:
    - {name: 2, value: 2}
    - {name: 1, other: a}
    - {name: 7}
    - {name: 9}
    - {name: 8}
    - {name: 4, value: 4}
    - {name: 3, value: 3}
- case: set elements order in a int list with server-only items 2
  original: {mergingIntList: [1, 2, 9, 3, 4]}
  patch: {$setElementOrder/mergingIntList: [2, 1, 4, 3]}
  result: {mergingIntList: [2, 1, 9, 4, 3]}
- case: set elements order in a int list with server-only items 3
  original: {mergingIntList: [1, 2, 7, 9, 8, 3, 4]}
  patch: {$setElementOrder/mergingIntList: [2, 1, 4, 3]}
  result: {mergingIntList: [2, 1, 7, 9, 8, 4, 3]}
- case: behavior of set element order for a merging list with duplicate
  original: {mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]}
  patch: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]}
  result: {mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]}
- case: behavior of set element order for a merging int list with duplicate
  original: {mergingIntList: [1, 2, 3, 2, 4]}
  patch: {$setElementOrder/mergingIntList: [2, 1, 4, 3, 2]}
  result: {mergingIntList: [2, 2, 1, 4, 3]}
- case: retainKeys map should clear defaulted field with conflict (discriminated union)
  original: {retainKeysMap: {name: type1, value: foo}}
  patch: {retainKeysMap: {$retainKeys: [name, other], name: type2, other: bar}}
  result: {retainKeysMap: {name: type2, other: bar}}
- case: retainKeys map deletes a field and clears a field
  original: {retainKeysMap: {name: foo, value: bar, other: a}}
  patch: {retainKeysMap: {$retainKeys: [name], value: null}}
  result: {retainKeysMap: {name: foo}}
- case: retainKeys map adds an item and deletes an item in nested merging int list
  original: {retainKeysMap: {name: foo, mergingIntList: [1, 2, 3, 4]}}
  patch:
    retainKeysMap:
      $retainKeys: [mergingIntList, name]
      mergingIntList: [5]
      $deleteFromPrimitiveList/mergingIntList: [2]
      $setElementOrder/mergingIntList: [1, 3, 5]
  result: {retainKeysMap: {name: foo, mergingIntList: [1, 3, 5, 4]}}
- case: retainKeys map adds an item in nested merging list
  original: {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}, {name: x}]}}
  patch:
    retainKeysMap:
      $retainKeys: [mergingList, name]
      $setElementOrder/mergingList: [{name: a}, {name: b}, {name: c}]
      mergingList: [{name: c}]
  result: {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}, {name: c}, {name: x}]}}
- case: retainKeys list of maps clears a field
  original: {retainKeysMergingList: [{name: bar}, {name: foo, value: a, other: x}]}
  patch:
    $setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}]
    retainKeysMergingList: [{$retainKeys: [name, value], name: foo}]
  result: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
- case: retainKeys map with a key outside the list is refused
  original: {retainKeysMap: {name: foo}}
  patch: {retainKeysMap: {$retainKeys: [name], value: bar}}
  error: invalid patch format of retainKeys
- case: delete and reorder in one list, reorder in another
  original:
    mergingList: [{name: a, value: a}, {name: b, value: b}]
    mergeItemPtr: [{name: c, value: c}, {name: d, value: d}]
  patch:
    $setElementOrder/mergingList: [{name: b}]
    $setElementOrder/mergeItemPtr: [{name: d}, {name: c}]
    mergingList: [{$patch: delete, name: a}]
  result:
    mergingList: [{name: b, value: b}]
    mergeItemPtr: [{name: d, value: d}, {name: c, value: c}]
- case: replace RawExtension field and merge list
  original:
    name: my-object
    mergingList: [{name: 1}, {name: 3}]
    replacingItem: {Some: Generic, Yaml: Inside, The: RawExtension, Field: Period}
  patch:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 2}]
    replacingItem: {Newly: Modified, Yaml: Inside, The: RawExtension}
  result:
    name: my-object
    mergingList: [{name: 1}, {name: 2}, {name: 3}]
    replacingItem: {Newly: Modified, Yaml: Inside, The: RawExtension}
- case: defined null values should propagate removing original fields
  original: {name: original-name, value: original-value, other: current-other}
  patch: {name: modified-name, value: null}
  result: {name: modified-name, other: current-other}
- case: unknown field, discard nulls in nested and add not nulls
  original: {name: foo}
  patch: {complex_nullable: {key: {keynotnull: value, keynull: null}}}
  result: {name: foo, complex_nullable: {key: {keynotnull: value}}}
- case: unknown field, filter nulls from nested slices
  original: {}
  patch: {complex_nullable: [{inner_one: {key_one: foo, key_two: null}}]}
  result: {complex_nullable: [{inner_one: {key_one: foo}}]}
- case: unknown field, do not filter nulls from a list of scalars
  original: {}
  patch: {complex_nullable: [key1, null, key2]}
  result: {complex_nullable: [key1, null, key2]}
- case: unknown field, null values in original are preserved
  original: {complex: {key: null}, thing: null}
  patch: {nested: {value: 5}}
  result: {complex: {key: null}, thing: null, nested: {value: 5}}
"""
)


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_upstream_case(case: dict[str, Any]) -> None:
    original, patch = case["original"], case["patch"]
    before = copy.deepcopy((original, patch))
    if "error" in case:
        with pytest.raises(PatchError, match=case["error"]):
            strategic.apply(original, patch, MERGE_ITEM)
    else:
        assert strategic.apply(original, patch, MERGE_ITEM) == case["result"]
    assert (original, patch) == before
