"""What a scheduling cycle reads besides the nodes and the pods bound to them.

Namespace labels (affinity terms' ``namespaceSelector``), Services and workload controllers
(PodTopologySpread's default selector), PodDisruptionBudgets (which victims preemption
prefers) and the pods nominated to nodes by an earlier preemption. ``run`` fills it from
its informers; tests build it by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
ControllerKey = tuple[str, str, str]
"""(kind, namespace, name) of a ReplicationController, ReplicaSet or StatefulSet."""


@dataclass(frozen=True)
class Cluster:
    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Each namespace's labels."""
    services: Sequence[Obj] = ()
    controllers: Mapping[ControllerKey, Obj] = field(default_factory=dict)
    pdbs: Sequence[Obj] = ()
    """policy/v1 PodDisruptionBudgets."""
    nominated: Sequence[Obj] = ()
    """Unbound pods with ``status.nominatedNodeName``."""
