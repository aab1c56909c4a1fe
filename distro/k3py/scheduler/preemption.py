"""DefaultPreemption: when no node fits a pod, find pods of lower priority to evict for it.

Pure, like the cycle: for every node where eviction could help (its filter failure is
resolvable), remove all pods of lower priority and check the pod fits; if it does, give back
("reprieve") as many of them as still let it fit, highest priority first, those whose
eviction would violate a PodDisruptionBudget before the others. Among the nodes that work,
upstream's order picks one: fewest PDB violations, then the lowest highest-victim priority,
the lowest sum of priorities, the fewest victims, and the latest start of the most important
victims.

``Outcome.message`` is the ``preemption: ...`` part of the ``FailedScheduling`` message ("" when
a candidate was found, as upstream's successful PostFilter says nothing). Acting on the
candidate (nominating the node, evicting the victims) is ``run``'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from k3py.scheduler.affinity import labels_of, namespace_of, selector_of
from k3py.scheduler.plugins import NO_VICTIMS, NOT_HELPFUL, Status, fit_error_message, priority
from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."
PREEMPTION_REASON = "PreemptionByScheduler"
_NOT_STARTED = "~"
"""Sorts after every RFC 3339 time: a pod that has not started counts as started now."""


class Checker(Protocol):
    def check(self, nodes: Sequence[NodeInfo], index: int) -> Status | None:
        """Run every filter for the pod on ``nodes[index]``, the cluster being ``nodes``."""


@dataclass(frozen=True)
class Candidate:
    node: str
    victims: tuple[Obj, ...]
    """Most important first."""
    pdb_violations: int = 0


@dataclass(frozen=True)
class Outcome:
    candidate: Candidate | None
    message: str
    clear_nomination: bool = False
    """No node can be made to fit: the pod's nominated node, if any, is to be cleared."""


def nominated_node(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("nominatedNodeName") or "")


def terminating_by_preemption(pod: Obj) -> bool:
    if not (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "DisruptionTarget":
            return bool(condition.get("status") == "True" and condition.get("reason") == PREEMPTION_REASON)
    return False


def _importance(pod: Obj) -> tuple[int, str]:
    """``MoreImportantPod`` as a sort key: higher priority, then earlier start."""
    started = (pod.get("status") or {}).get("startTime") or _NOT_STARTED
    return -priority(pod), str(started)


def eligibility(pod: Obj, nodes: Sequence[NodeInfo], statuses: dict[str, Status]) -> str:
    """``PodEligibleToPreemptOthers``: "" or why the pod may not preempt."""
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return NEVER
    nominated = nominated_node(pod)
    status = statuses.get(nominated)
    if not nominated or (status is not None and not status.resolvable):
        return ""
    mine = priority(pod)
    for info in nodes:
        if info.name == nominated and any(
            priority(p) < mine and terminating_by_preemption(p) for p in info.pods
        ):
            return TERMINATING
    return ""


def split_by_pdb(pods: Sequence[Obj], pdbs: Sequence[Obj]) -> tuple[list[Obj], list[Obj]]:
    """``filterPodsWithPDBViolation``: (evicting these would exceed a budget, the others),
    counting each budget's ``disruptionsAllowed`` down along ``pods``."""
    allowed = [int((pdb.get("status") or {}).get("disruptionsAllowed") or 0) for pdb in pdbs]
    violating: list[Obj] = []
    fine: list[Obj] = []
    for pod in pods:
        violated = False
        labels = labels_of(pod)
        for index, pdb in enumerate(pdbs):
            if not labels or namespace_of(pdb) != namespace_of(pod):
                continue
            selector = selector_of((pdb.get("spec") or {}).get("selector"))
            if selector.empty or not selector.matches(labels):
                continue
            disrupted = (pdb.get("status") or {}).get("disruptedPods") or {}
            if (pod.get("metadata") or {}).get("name") in disrupted:
                continue  # already counted by the API server
            allowed[index] -= 1
            if allowed[index] < 0:
                violated = True
        (violating if violated else fine).append(pod)
    return violating, fine


def select_victims(
    pod: Obj, nodes: Sequence[NodeInfo], index: int, checker: Checker, pdbs: Sequence[Obj]
) -> Candidate | Status:
    """``SelectVictimsOnNode``: the fewest lower-priority pods of ``nodes[index]`` to evict."""
    info = nodes[index]
    mine = priority(pod)
    potential = sorted((p for p in info.pods if priority(p) < mine), key=_importance)
    if not potential:
        return Status("DefaultPreemption", (NO_VICTIMS,))
    kept = [p for p in info.pods if priority(p) >= mine]

    def fits(pods: list[Obj]) -> bool:
        trial = [*nodes[:index], NodeInfo.of(info.node, pods), *nodes[index + 1 :]]
        return checker.check(trial, index) is None

    trial = [*nodes[:index], NodeInfo.of(info.node, kept), *nodes[index + 1 :]]
    if (status := checker.check(trial, index)) is not None:
        return status
    violating, fine = split_by_pdb(potential, pdbs)
    victims: list[Obj] = []
    violations = 0
    for group, counts in ((violating, True), (fine, False)):
        for victim in group:
            if fits([*kept, victim]):
                kept.append(victim)  # reprieved
            else:
                victims.append(victim)
                violations += counts
    if violating and fine:
        victims.sort(key=_importance)
    return Candidate(info.name, tuple(victims), violations)


def pick(candidates: Sequence[Candidate]) -> Candidate:
    """``pickOneNodeForPreemption``."""
    for candidate in candidates:
        if not candidate.victims:
            return candidate
    best = list(candidates)
    criteria = (
        lambda c: -c.pdb_violations,
        lambda c: -priority(c.victims[0]),
        lambda c: -sum(priority(v) + 2**31 for v in c.victims),
        lambda c: -len(c.victims),
        _latest_start,
    )
    for score in criteria:
        top = max(score(c) for c in best)
        best = [c for c in best if score(c) == top]
        if len(best) == 1:
            break
    return best[0]


def _latest_start(candidate: Candidate) -> str:
    """The earliest start among the node's highest-priority victims (later wins)."""
    highest = priority(candidate.victims[0])
    return min(_importance(v)[1] for v in candidate.victims if priority(v) == highest)


def preempt(
    pod: Obj, nodes: Sequence[NodeInfo], statuses: dict[str, Status], checker: Checker, pdbs: Sequence[Obj]
) -> Outcome:
    """``Evaluator.Preempt`` without acting: the best candidate, or why there is none."""
    if why := eligibility(pod, nodes, statuses):
        return Outcome(None, "preemption: " + why)
    outcome: dict[str, Status] = {}
    candidates: list[Candidate] = []
    for index, info in enumerate(nodes):
        status = statuses.get(info.name)
        if status is None or not status.resolvable:
            outcome[info.name] = Status("DefaultPreemption", (NOT_HELPFUL,))
            continue
        found = select_victims(pod, nodes, index, checker, pdbs)
        if isinstance(found, Status):
            outcome[info.name] = found
        else:
            candidates.append(found)
    if not candidates:
        message = "preemption: " + fit_error_message(len(nodes), outcome)
        return Outcome(None, message, clear_nomination=True)
    return Outcome(pick(candidates), "")
