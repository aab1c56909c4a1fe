"""core/v1 Events as upstream's recorders write them, for the agent and the controllers alike."""

from __future__ import annotations

import asyncio
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


class EventRecorder:
    """Events about the objects a component manages, as ``component`` (``job-controller``).

    ``kind`` and ``api_version`` name the objects when they do not say themselves (an informer's
    items may lack them). :meth:`record` writes before it returns; :meth:`post` writes in the
    background, for code that must not wait. Neither ever raises: events are best effort.
    """

    def __init__(self, api: RestClient, component: str, *, kind: str = "", api_version: str = "") -> None:
        self.api = api
        self.component = component
        self.kind = kind
        self.api_version = api_version
        self._pending: set[asyncio.Task[Obj | None]] = set()

    def body(self, obj: Obj, kind: str, reason: str, message: str) -> Obj:
        ref = reference(obj, kind=self.kind, api_version=self.api_version)
        body = event_body(ref, kind, reason, message, self.component)
        body["reportingInstance"] = self.component
        return body

    async def record(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        """Write one ``kind`` (Normal or Warning) event about ``obj``."""
        await write_event(self.api, self.body(obj, kind, reason, message))

    def post(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        """:meth:`record` without waiting for the write."""
        task = asyncio.get_running_loop().create_task(
            write_event(self.api, self.body(obj, kind, reason, message))
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
