"""Events the agent records about pods and its node, as the upstream kubelet's recorder does.

A repeat of the same (object, type, reason, message) within ten minutes bumps the existing
event's ``count`` and ``lastTimestamp`` instead of creating another. Recording never fails the
caller: an event that cannot be written is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from k3py.agent.podstatus import rfc3339
from k3py.client.rest import ApiStatusError, RestClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
REPEAT_WINDOW = 600.0
MAX_KEYS = 4096


class Recorder:
    def __init__(self, api: RestClient, node_name: str, component: str = "kubelet") -> None:
        self.api = api
        self.node_name = node_name
        self.component = component
        self._seen: dict[tuple[str, ...], tuple[str, str, int, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def pod(self, pod: Obj, kind: str, reason: str, message: str, field_path: str = "") -> None:
        meta = pod.get("metadata") or {}
        ref = {
            "kind": "Pod",
            "apiVersion": "v1",
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if field_path:
            ref["fieldPath"] = field_path
        self.emit(ref, kind, reason, message)

    def node(self, kind: str, reason: str, message: str) -> None:
        ref = {"kind": "Node", "apiVersion": "v1", "name": self.node_name, "uid": self.node_name}
        self.emit(ref, kind, reason, message)

    def emit(self, ref: Obj, kind: str, reason: str, message: str) -> None:
        log.debug("event %s %s/%s %s: %s", kind, ref.get("namespace"), ref.get("name"), reason, message)
        task = asyncio.get_running_loop().create_task(self._write(ref, kind, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, ref: Obj, kind: str, reason: str, message: str) -> None:
        namespace = ref.get("namespace") or "default"
        key = (
            namespace,
            ref.get("name", ""),
            ref.get("uid", ""),
            ref.get("fieldPath", ""),
            kind,
            reason,
            message,
        )
        now = time.time()
        try:
            seen = self._seen.get(key)
            if seen is not None and now - seen[3] < REPEAT_WINDOW:
                name, _, count, _ = seen
                await self.api.patch(
                    f"/api/v1/namespaces/{namespace}/events/{name}",
                    {"count": count + 1, "lastTimestamp": rfc3339(now)},
                )
                self._seen[key] = (name, namespace, count + 1, now)
                return
            stamp = rfc3339(now)
            name = f"{ref.get('name', '')}.{uuid.uuid4().hex[:16]}"
            await self.api.create(
                f"/api/v1/namespaces/{namespace}/events",
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": ref,
                    "reason": reason,
                    "message": message,
                    "type": kind,
                    "source": {"component": self.component, "host": self.node_name},
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                    "reportingComponent": self.component,
                    "reportingInstance": self.node_name,
                },
            )
            if len(self._seen) > MAX_KEYS:
                self._seen.clear()
            self._seen[key] = (name, namespace, 1, now)
        except ApiStatusError as exc:
            log.info("cannot record event %s %s: %s", reason, message, exc)
        except Exception:
            log.exception("cannot record event %s %s", reason, message)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
