"""core/v1 Events as upstream's recorders write them, for the agent and the controllers alike."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from k3py.client.rest import RestClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def reference(obj: Obj, *, kind: str = "", api_version: str = "") -> Obj:
    """An ObjectReference to ``obj`` (``kind``/``api_version`` when the object does not say)."""
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion") or api_version,
        "kind": obj.get("kind") or kind,
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }


def event_body(ref: Obj, kind: str, reason: str, message: str, component: str, host: str = "") -> Obj:
    """A new Event about ``ref``: ``kind`` Normal or Warning, seen once now."""
    namespace = ref.get("namespace") or "default"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    source = {"component": component, **({"host": host} if host else {})}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{ref.get('name', '')}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": kind,
        "source": source,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": host,
    }


async def write_event(api: RestClient, body: Obj) -> Obj | None:
    """Create the Event; one that cannot be written is logged, never raised (events are best effort)."""
    namespace = body["metadata"]["namespace"]
    try:
        return await api.create(f"/api/v1/namespaces/{namespace}/events", body)
    except Exception as exc:
        log.info("cannot record event %s %r: %s", body.get("reason"), body.get("message"), exc)
        return None
