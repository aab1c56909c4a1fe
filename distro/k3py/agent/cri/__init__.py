"""The container runtime interface: k3py's client for containerd's CRI and content services.

- :mod:`~k3py.agent.cri.wire`: the proto3 codec (layouts as data, messages as dicts);
- :mod:`~k3py.agent.cri.messages`: the ``runtime.v1`` and containerd layouts and enums;
- :mod:`~k3py.agent.cri.grpc`: a minimal gRPC client on ``h2`` over a unix socket;
- :mod:`~k3py.agent.cri.runtime`: :class:`Runtime`, the calls the kubelet makes.
"""

from k3py.agent.cri.grpc import (
    ALREADY_EXISTS,
    CANCELLED,
    DEADLINE_EXCEEDED,
    FAILED_PRECONDITION,
    INTERNAL,
    INVALID_ARGUMENT,
    NOT_FOUND,
    UNAVAILABLE,
    UNIMPLEMENTED,
    UNKNOWN,
    CriError,
)
from k3py.agent.cri.messages import (
    CRI,
    ContainerState,
    MountPropagation,
    NamespaceMode,
    PodSandboxState,
    ProfileType,
    Protocol,
)
from k3py.agent.cri.runtime import Runtime

__all__ = [
    "ALREADY_EXISTS",
    "CANCELLED",
    "CRI",
    "DEADLINE_EXCEEDED",
    "FAILED_PRECONDITION",
    "INTERNAL",
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "UNAVAILABLE",
    "UNIMPLEMENTED",
    "UNKNOWN",
    "ContainerState",
    "CriError",
    "MountPropagation",
    "NamespaceMode",
    "PodSandboxState",
    "ProfileType",
    "Protocol",
    "Runtime",
]
