"""What a pod makes its node able to read (the Node authorizer's graph, per pod)."""

from __future__ import annotations

from k3py.apiserver.authn import User
from k3py.apiserver.node_authz import node_name, references


def test_every_kind_of_reference_is_found() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "serviceAccountName": "runner",
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "vol-secret"}},
                {"name": "b", "configMap": {"name": "vol-cm"}},
                {"name": "c", "persistentVolumeClaim": {"claimName": "claim"}},
                {"name": "d", "ephemeral": {"volumeClaimTemplate": {}}},
                {
                    "name": "e",
                    "projected": {
                        "sources": [{"secret": {"name": "proj-s"}}, {"configMap": {"name": "proj-c"}}]
                    },
                },
                {"name": "f", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-s"}}},
            ],
            "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "init-cm"}}]}],
            "containers": [
                {
                    "name": "c",
                    "envFrom": [{"secretRef": {"name": "from-s"}}],
                    "env": [
                        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "key-s", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "key-c", "key": "k"}}},
                        {"name": "C", "value": "plain"},
                    ],
                }
            ],
        },
    }
    assert set(references(pod)) == {
        ("serviceaccount", "runner"),
        ("secret", "pull"),
        ("secret", "vol-secret"),
        ("configmap", "vol-cm"),
        ("pvc", "claim"),
        ("pvc", "p-d"),
        ("secret", "proj-s"),
        ("configmap", "proj-c"),
        ("secret", "csi-s"),
        ("configmap", "init-cm"),
        ("secret", "from-s"),
        ("secret", "key-s"),
        ("configmap", "key-c"),
    }


def test_only_node_users_in_the_nodes_group_are_nodes() -> None:
    assert node_name(User("system:node:pi", ("system:nodes",))) == "pi"
    assert node_name(User("system:node:pi", ())) is None
    assert node_name(User("pi", ("system:nodes",))) is None
