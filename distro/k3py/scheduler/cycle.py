"""One scheduling cycle over a snapshot: filter every node, score the feasible ones, pick.

Pure: the pod and the nodes (with their pods) go in, a :class:`Placement` or an
:class:`Unschedulable` with upstream's ``FailedScheduling`` message comes out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from k3py.scheduler import plugins
from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]


@dataclass(frozen=True)
class Placement:
    node: str
    scores: dict[str, int]
    """The feasible nodes' total scores."""


@dataclass(frozen=True)
class Unschedulable:
    message: str
    statuses: dict[str, plugins.Status]
    """Why each node was refused."""


def find_node(pod: Obj, nodes: Sequence[NodeInfo], rng: random.Random) -> Placement | Unschedulable:
    if not nodes:
        return Unschedulable(plugins.NO_NODES, {})
    statuses: dict[str, plugins.Status] = {}
    feasible: list[NodeInfo] = []
    for info in nodes:
        status = plugins.run_filters(pod, info)
        if status is None:
            feasible.append(info)
        else:
            statuses[info.name] = status
    if not feasible:
        post_filter = plugins.preemption_message(pod, nodes, statuses)
        return Unschedulable(plugins.fit_error_message(len(nodes), statuses, post_filter), statuses)
    scores = plugins.total_scores(pod, feasible, nodes)
    best = max(scores.values())
    return Placement(rng.choice(sorted(name for name, score in scores.items() if score == best)), scores)
