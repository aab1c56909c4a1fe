"""InterPodAffinity: place a pod near (affinity) or away from (anti-affinity) other pods.

A term selects pods (``labelSelector`` in ``namespaces`` or namespaces whose labels match
``namespaceSelector``; neither means the owner's own namespace) and names a ``topologyKey``:
nodes that share that label's value form one domain. ``matchLabelKeys`` and
``mismatchLabelKeys`` add ``key in (owner's value)`` / ``key notin (owner's value)`` to the
selector, as the API server merges them.

The filter follows upstream's PreFilter/Filter split: :func:`prefilter` counts, once per
cycle, how many existing pods match the incoming pod's required terms in each topology
domain (and which domains existing pods' required anti-affinity closes to it); :func:`filter`
then checks one node against those counts. Scores (:func:`scores`) add the weights of the
preferred terms (the incoming pod's and the existing pods'; existing pods' required
affinity counts with weight 1, upstream's ``hardPodAffinityWeight``) per domain, then scale
min..max to 0..100. Existing pods' terms are read only from the pods that have some
(``NodeInfo.with_affinity``, upstream's ``PodsWithAffinity``): most pods have none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from k3py.api.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    from_label_selector_object,
)
from k3py.scheduler.plugins import MAX_NODE_SCORE, Status
from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]
NamespaceLabels = Mapping[str, Mapping[str, str]]
"""Each namespace's labels, by name."""
Domain = tuple[str, str]
"""(topology key, value)."""

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1
NOTHING = LabelSelector(nothing=True)


def labels_of(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def namespace_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def selector_of(raw: Obj | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` (None selects nothing); an invalid one selects nothing."""
    try:
        return from_label_selector_object(raw)
    except SelectorError:
        return NOTHING


def with_label_keys(
    selector: LabelSelector, labels: Mapping[str, str], match: Sequence[str], mismatch: Sequence[str] = ()
) -> LabelSelector:
    """The selector narrowed to pods sharing (``match``) or not sharing (``mismatch``) the
    owner's values of those label keys; keys the owner lacks are ignored."""
    if selector.nothing:
        return selector
    extra = [Requirement(k, Operator.IN, (labels[k],)) for k in match if k in labels]
    extra += [Requirement(k, Operator.NOT_IN, (labels[k],)) for k in mismatch if k in labels]
    if not extra:
        return selector
    return LabelSelector(tuple(sorted((*selector.requirements, *extra), key=lambda r: r.key)))


@dataclass(frozen=True)
class Term:
    """A PodAffinityTerm resolved against the pod that declares it."""

    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector
    topology_key: str
    weight: int = 0

    def matches(self, pod: Obj, namespaces: NamespaceLabels) -> bool:
        namespace = namespace_of(pod)
        if namespace not in self.namespaces and not self.namespace_selector.matches(
            namespaces.get(namespace, {})
        ):
            return False
        return self.selector.matches(labels_of(pod))


def _term(owner: Obj, raw: Obj, weight: int = 0) -> Term:
    selector = with_label_keys(
        selector_of(raw.get("labelSelector")),
        labels_of(owner),
        [str(k) for k in raw.get("matchLabelKeys") or []],
        [str(k) for k in raw.get("mismatchLabelKeys") or []],
    )
    listed = frozenset(str(n) for n in raw.get("namespaces") or [])
    namespace_selector = raw.get("namespaceSelector")
    if not listed and namespace_selector is None:
        listed = frozenset({namespace_of(owner)})
    return Term(selector, listed, selector_of(namespace_selector), str(raw.get("topologyKey") or ""), weight)


def _affinity(pod: Obj, kind: str) -> Obj:
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get(kind)
    return affinity if isinstance(affinity, dict) else {}


def required_terms(pod: Obj, kind: str) -> list[Term]:
    """``kind``: "podAffinity" or "podAntiAffinity"."""
    raw = _affinity(pod, kind).get("requiredDuringSchedulingIgnoredDuringExecution") or []
    return [_term(pod, t) for t in raw if isinstance(t, dict)]


def preferred_terms(pod: Obj, kind: str) -> list[Term]:
    raw = _affinity(pod, kind).get("preferredDuringSchedulingIgnoredDuringExecution") or []
    return [
        _term(pod, w.get("podAffinityTerm") or {}, int(w.get("weight") or 0))
        for w in raw
        if isinstance(w, dict)
    ]


def _count(counts: Counter[Domain], node: Obj, key: str, by: int = 1) -> None:
    value = labels_of(node).get(key)
    if value is not None:
        counts[(key, value)] += by


# -- filter ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterState:
    affinity: list[Term]
    anti_affinity: list[Term]
    affinity_counts: Counter[Domain]
    """Domains holding pods that match all the incoming pod's required affinity terms."""
    anti_affinity_counts: Counter[Domain]
    """Domains holding pods that match one of the incoming pod's required anti-affinity terms."""
    existing_anti_affinity_counts: Counter[Domain]
    """Domains whose pods' required anti-affinity excludes the incoming pod."""
    matches_itself: bool
    """The incoming pod matches all its own affinity terms (it may start a group)."""


def prefilter(pod: Obj, nodes: Sequence[NodeInfo], namespaces: NamespaceLabels) -> FilterState | None:
    """The counts :func:`filter` needs; None when the plugin has nothing to check."""
    affinity = required_terms(pod, "podAffinity")
    anti_affinity = required_terms(pod, "podAntiAffinity")
    existing: Counter[Domain] = Counter()
    matched: Counter[Domain] = Counter()
    anti_matched: Counter[Domain] = Counter()
    for info in nodes:
        for other in info.with_required_anti_affinity:
            for term in required_terms(other, "podAntiAffinity"):
                if term.matches(pod, namespaces):
                    _count(existing, info.node, term.topology_key)
        if not affinity and not anti_affinity:
            continue
        for other in info.pods:
            if affinity and all(t.matches(other, namespaces) for t in affinity):
                for term in affinity:
                    _count(matched, info.node, term.topology_key)
            for term in anti_affinity:
                if term.matches(other, namespaces):
                    _count(anti_matched, info.node, term.topology_key)
    if not affinity and not anti_affinity and not existing:
        return None
    matches_itself = all(t.matches(pod, namespaces) for t in affinity)
    return FilterState(affinity, anti_affinity, +matched, +anti_matched, +existing, matches_itself)


def filter(state: FilterState | None, pod: Obj, info: NodeInfo) -> Status | None:
    """Upstream's order: the pod's affinity, its anti-affinity, then existing pods' anti-affinity."""
    if state is None:
        return None
    labels = labels_of(info.node)
    if not _satisfies_affinity(state, labels):
        return Status("InterPodAffinity", (ERR_AFFINITY,))
    for term in state.anti_affinity:
        value = labels.get(term.topology_key)
        if value is not None and state.anti_affinity_counts[(term.topology_key, value)] > 0:
            return Status("InterPodAffinity", (ERR_ANTI_AFFINITY,), resolvable=True)
    if any(state.existing_anti_affinity_counts[(key, value)] > 0 for key, value in labels.items()):
        return Status("InterPodAffinity", (ERR_EXISTING_ANTI_AFFINITY,), resolvable=True)
    return None


def _satisfies_affinity(state: FilterState, labels: Mapping[str, str]) -> bool:
    pods_exist = True
    for term in state.affinity:
        value = labels.get(term.topology_key)
        if value is None:
            return False  # every topology key must be on the node
        if state.affinity_counts[(term.topology_key, value)] <= 0:
            pods_exist = False
    if pods_exist:
        return True
    # The first pod of a group with affinity to itself: allowed when no pod matches yet.
    return not state.affinity_counts and state.matches_itself


# -- score ----------------------------------------------------------------------------------------


def _add_terms(
    scores: Counter[Domain],
    terms: Sequence[Term],
    pod: Obj,
    node: Obj,
    namespaces: NamespaceLabels,
    sign: int = 1,
    weight: int | None = None,
) -> None:
    for term in terms:
        if term.matches(pod, namespaces):
            _count(scores, node, term.topology_key, sign * (term.weight if weight is None else weight))


def raw_scores(
    pod: Obj, feasible: Sequence[NodeInfo], all_nodes: Sequence[NodeInfo], namespaces: NamespaceLabels
) -> dict[str, int]:
    """Each feasible node's summed weights, before normalizing."""
    preferred = preferred_terms(pod, "podAffinity")
    preferred_anti = preferred_terms(pod, "podAntiAffinity")
    domains: Counter[Domain] = Counter()
    for info in all_nodes:
        if not labels_of(info.node):
            continue
        if preferred or preferred_anti:
            for other in info.pods:
                _add_terms(domains, preferred, other, info.node, namespaces)
                _add_terms(domains, preferred_anti, other, info.node, namespaces, -1)
        for other in info.with_affinity:  # only their terms can count
            required = required_terms(other, "podAffinity")
            _add_terms(domains, required, pod, info.node, namespaces, weight=HARD_POD_AFFINITY_WEIGHT)
            _add_terms(domains, preferred_terms(other, "podAffinity"), pod, info.node, namespaces)
            anti = preferred_terms(other, "podAntiAffinity")
            _add_terms(domains, anti, pod, info.node, namespaces, -1)
    if not domains:
        return {info.name: 0 for info in feasible}
    return {
        info.name: sum(domains.get((key, value), 0) for key, value in labels_of(info.node).items())
        for info in feasible
    }


def scores(
    pod: Obj, feasible: Sequence[NodeInfo], all_nodes: Sequence[NodeInfo], namespaces: NamespaceLabels
) -> dict[str, int]:
    """0..100: the lowest raw score becomes 0, the highest 100."""
    raw = raw_scores(pod, feasible, all_nodes, namespaces)
    if not raw:
        return {}
    low, high = min(raw.values()), max(raw.values())
    if high == low:
        return {name: 0 for name in raw}
    return {name: int(MAX_NODE_SCORE * (score - low) / (high - low)) for name, score in raw.items()}
