"""Reading the objects controllers work on: metadata, owner references, pod state, timestamps.

Objects arrive as decoded JSON from the API server's informers and may be partial (a field the
server omitted because it is empty), so every reader here takes what is missing as empty and
never raises. The pod predicates carry upstream's names in their docstrings
(``podutil.IsPodReady``, ``controller.IsPodActive``) where they follow a function there.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


# -- metadata --------------------------------------------------------------------------------------


def meta_of(obj: Obj) -> Obj:
    found = obj.get("metadata")
    return found if isinstance(found, dict) else {}


def spec_of(obj: Obj) -> Obj:
    found = obj.get("spec")
    return found if isinstance(found, dict) else {}


def labels_of(obj: Obj) -> dict[str, str]:
    return dict(meta_of(obj).get("labels") or {})


def uid_of(obj: Obj) -> str:
    return str(meta_of(obj).get("uid") or "")


def deleting(obj: Obj) -> bool:
    """Being deleted: it has a ``deletionTimestamp`` (a terminating pod, for pods)."""
    return bool(meta_of(obj).get("deletionTimestamp"))


# -- owner references ------------------------------------------------------------------------------


def controller_ref(obj: Obj) -> Obj | None:
    """The owner reference with ``controller: true``, if any."""
    for ref in meta_of(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controller_uid(obj: Obj) -> str:
    """The uid of the object's controller, ``""`` when it has none."""
    ref = controller_ref(obj)
    return str(ref.get("uid") or "") if ref is not None else ""


def controller_of(obj: Obj, kind: str) -> str:
    """The name of the object's controller when that is a ``kind``, else ``""``."""
    ref = controller_ref(obj)
    return str(ref.get("name") or "") if ref is not None and ref.get("kind") == kind else ""


def owner_reference(owner: Obj, api_version: str, kind: str) -> Obj:
    """The controller reference a controller puts on what it creates or adopts."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta_of(owner).get("name", ""),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


# -- pods ------------------------------------------------------------------------------------------


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def pod_failed(pod: Obj) -> bool:
    return phase(pod) == "Failed"


def pod_succeeded(pod: Obj) -> bool:
    return phase(pod) == "Succeeded"


def pod_finished(pod: Obj) -> bool:
    """Succeeded or Failed: its containers will not run again."""
    return phase(pod) in ("Succeeded", "Failed")


def pod_active(pod: Obj) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    return not pod_finished(pod) and not deleting(pod)


def ready_condition(pod: Obj) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition
    return None


def pod_ready(pod: Obj) -> bool:
    """``podutil.IsPodReady``: its Ready condition is True."""
    condition = ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and pod_ready(pod)


def pod_ready_time(pod: Obj) -> float | None:
    """When a ready pod became ready (None for a pod that is not ready)."""
    condition = ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return parse_time(condition.get("lastTransitionTime"))


def pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """``podutil.IsPodAvailable``: ready for at least ``min_ready_seconds``."""
    if not pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + min_ready_seconds <= now


# -- time ------------------------------------------------------------------------------------------


def rfc3339(seconds: float | None = None) -> str:
    """A timestamp as the API writes them (whole seconds, UTC); now when ``seconds`` is None."""
    moment = datetime.fromtimestamp(time.time() if seconds is None else seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
