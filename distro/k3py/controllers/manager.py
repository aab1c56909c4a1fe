"""The controllers the server runs (kube-controller-manager's, inside k3py), each as its own identity.

Each entry is a :class:`~k3py.controllers.base.Controller` class with an ``identity``: the
kube-system service account upstream's controller runs as (``--use-service-account-credentials``),
whose ``system:controller:<identity>`` role the default RBAC policy grants.
"""

from __future__ import annotations

from k3py.controllers.base import Controller

CONTROLLERS: tuple[type[Controller], ...] = ()


def identity_user(identity: str) -> tuple[str, tuple[str, ...]]:
    """The user (name and groups) a controller acts as: its kube-system service account."""
    return (
        f"system:serviceaccount:kube-system:{identity}",
        ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
    )
