"""The controllers the server runs (kube-controller-manager's, inside k3py), each as its own identity.

Each entry is a :class:`~k3py.controllers.base.Controller` class with an ``identity``: the
kube-system service account upstream's controller runs as (``--use-service-account-credentials``),
whose ``system:controller:<identity>`` role the default RBAC policy grants.
"""

from __future__ import annotations

from k3py.controllers.base import Controller
from k3py.controllers.cronjob import CronJobController
from k3py.controllers.daemonset import DaemonSetController
from k3py.controllers.deployment import DeploymentController
from k3py.controllers.disruption import DisruptionController
from k3py.controllers.endpoints import EndpointsController
from k3py.controllers.endpointslice import EndpointSliceController
from k3py.controllers.endpointslicemirroring import EndpointSliceMirroringController
from k3py.controllers.garbagecollector import GarbageCollector
from k3py.controllers.job import JobController
from k3py.controllers.namespace import NamespaceController
from k3py.controllers.nodelifecycle import NodeLifecycleController
from k3py.controllers.podgc import PodGarbageCollector
from k3py.controllers.replicaset import ReplicaSetController, ReplicationManager
from k3py.controllers.resourcequota import ResourceQuotaController
from k3py.controllers.statefulset import StatefulSetController
from k3py.controllers.ttl import TTLAfterFinishedController

CONTROLLERS: tuple[type[Controller], ...] = (
    NamespaceController,
    GarbageCollector,
    PodGarbageCollector,
    ReplicaSetController,
    ReplicationManager,
    DeploymentController,
    JobController,
    CronJobController,
    TTLAfterFinishedController,
    StatefulSetController,
    DaemonSetController,
    EndpointsController,
    EndpointSliceController,
    EndpointSliceMirroringController,
    NodeLifecycleController,
    ResourceQuotaController,
    DisruptionController,
)


def identity_user(identity: str) -> tuple[str, tuple[str, ...]]:
    """The user (name and groups) a controller acts as: its kube-system service account."""
    return (
        f"system:serviceaccount:kube-system:{identity}",
        ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
    )
