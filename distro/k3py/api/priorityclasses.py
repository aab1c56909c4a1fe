"""PriorityClasses: the system classes every cluster has, and what a class may be.

``system-node-critical`` and ``system-cluster-critical`` are the only names allowed with the
``system-`` prefix, each with its own value and not the global default. Other classes stay at
or below :data:`HIGHEST_USER_DEFINABLE`. A class's value and preemption policy never change
(upstream's ``ValidatePriorityClass`` and ``ValidatePriorityClassUpdate``).
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_PREFIX = "system-"
HIGHEST_USER_DEFINABLE = 1_000_000_000
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")


@dataclass(frozen=True)
class SystemClass:
    name: str
    value: int
    description: str


SYSTEM_CLASSES = (
    SystemClass(
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    SystemClass(
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node "
        "if necessary.",
    ),
)


def system_class_error(name: str, value: object, global_default: bool) -> str | None:
    """Why a class named with the system prefix is not one of the system classes (upstream's
    ``IsKnownSystemPriorityClass`` error), or None when it is."""
    for known in SYSTEM_CLASSES:
        if known.name == name:
            if value != known.value:
                return f"value of {known.name} PriorityClass must be {known.value}"
            if global_default:
                return f"globalDefault of {known.name} PriorityClass must be false"
            return None
    return f"{name} is not a known system priority class"
