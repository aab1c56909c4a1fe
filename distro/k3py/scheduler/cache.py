"""The scheduler's cache: one :class:`NodeInfo` per node, kept current as pods and nodes change.

Building every node's NodeInfo from all the pods for each scheduling cycle costs time in
proportion to the pods in the cluster; like upstream's scheduler cache, this one is updated
by the informer handlers instead (``run``): a pod is counted on its node from the moment it
is bound, or assumed there by the scheduler until the informer shows the binding, until it
finishes or goes away. Pods on a node the cache has not seen (yet) are counted all the
same, and show up when the node does.

:meth:`NodeCache.snapshot` hands a cycle the live NodeInfos of the known nodes, sorted by
name. A cycle runs without awaiting, so nothing changes them under it, and it must not
change them itself (preemption and nominated pods work on copies).
"""

from __future__ import annotations

from typing import Any

from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name) of a pod."""


class NodeCache:
    def __init__(self) -> None:
        self._infos: dict[str, NodeInfo] = {}
        """By node name, for known nodes and for nodes only pods have named so far."""
        self._known: set[str] = set()
        self._placed: dict[Key, tuple[str, Obj]] = {}
        """Each counted pod's node and the object that was counted."""
        self._snapshot: list[NodeInfo] | None = None

    # -- nodes ------------------------------------------------------------------------------

    def set_node(self, node: Obj) -> None:
        name = _name(node)
        info = self._info(name)
        info.node = node
        if name not in self._known:
            self._known.add(name)
            self._snapshot = None

    def remove_node(self, name: str) -> None:
        """The node is gone; its pods stay counted until they go too."""
        if name in self._known:
            self._known.discard(name)
            self._snapshot = None
            info = self._infos[name]
            if not info.pods:
                del self._infos[name]
            else:
                info.node = {"metadata": {"name": name}}

    # -- pods -------------------------------------------------------------------------------

    def place(self, key: Key, node: str, pod: Obj) -> None:
        """Count the pod on ``node`` (its latest object), moving it if it was counted elsewhere."""
        placed = self._placed.get(key)
        if placed is not None:
            if placed[1] is pod:
                return
            self._uncount(*placed)
        self._info(node).add(pod)
        self._placed[key] = (node, pod)

    def forget(self, key: Key) -> None:
        """The pod no longer takes room: gone, finished, or its binding never happened."""
        placed = self._placed.pop(key, None)
        if placed is not None:
            self._uncount(*placed)

    def node_of(self, key: Key) -> str | None:
        placed = self._placed.get(key)
        return placed[0] if placed is not None else None

    # -- what a cycle reads -----------------------------------------------------------------

    def snapshot(self) -> list[NodeInfo]:
        """The known nodes with their pods, sorted by name (live: read, do not change)."""
        if self._snapshot is None:
            self._snapshot = [self._infos[name] for name in sorted(self._known)]
        return list(self._snapshot)

    def _info(self, name: str) -> NodeInfo:
        info = self._infos.get(name)
        if info is None:
            info = self._infos[name] = NodeInfo({"metadata": {"name": name}})
        return info

    def _uncount(self, node: str, pod: Obj) -> None:
        info = self._infos[node]
        info.remove(pod)
        if not info.pods and node not in self._known:
            del self._infos[node]


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")
