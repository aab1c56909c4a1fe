"""What a write through the status subresource may change, per upstream's status strategies."""

from __future__ import annotations

import copy
from typing import Any

from k3py.apiserver.strategy import strategy_for
from tests.unit.api_cases import resource

Obj = dict[str, Any]

OLD: Obj = {
    "metadata": {
        "name": "x",
        "uid": "u1",
        "labels": {"a": "1"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "n1"}],
    },
    "spec": {"parallelism": 1},
    "status": {},
}


def status_write(name: str, change: Obj) -> Obj:
    new = copy.deepcopy(OLD)
    new["metadata"].update(change.get("metadata", {}))
    new["spec"] = {"parallelism": 9}
    new["status"] = {"active": 1}
    new["metadata"]["uid"] = "forged"
    strategy_for(resource(name)).prepare_status_update(new, copy.deepcopy(OLD))
    return new


def test_status_writes_keep_the_spec_and_let_user_metadata_through() -> None:
    change = {"metadata": {"annotations": {"patched": "true"}, "labels": {"b": "2"}}}
    done = status_write("jobs.batch", change)
    assert done["status"] == {"active": 1} and done["spec"] == {"parallelism": 1}
    assert done["metadata"]["annotations"] == {"patched": "true"}
    assert done["metadata"]["labels"] == {"b": "2"}
    assert done["metadata"]["uid"] == "u1"


def test_resources_whose_status_strategy_keeps_some_metadata() -> None:
    pod = status_write("pods", {"metadata": {"ownerReferences": [], "annotations": {"k": "v"}}})
    assert pod["metadata"]["ownerReferences"] == OLD["metadata"]["ownerReferences"]
    assert pod["metadata"]["annotations"] == {"k": "v"}
    deployment = status_write("deployments.apps", {"metadata": {"labels": {"b": "2"}}})
    assert deployment["metadata"]["labels"] == {"a": "1"}
