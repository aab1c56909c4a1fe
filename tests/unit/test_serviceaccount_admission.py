"""The projected token volume the ServiceAccount admission step adds to pods."""

from __future__ import annotations

from typing import Any

from k3py.apiserver.serviceaccounts import TOKEN_PATH, mount_token


def test_every_container_gets_the_mount_unless_it_has_something_there() -> None:
    spec: dict[str, Any] = {
        "initContainers": [{"name": "init"}],
        "containers": [
            {"name": "app"},
            {"name": "own", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_PATH}]},
        ],
        "volumes": [{"name": "mine", "emptyDir": {}}],
    }
    mount_token(spec)
    added = spec["volumes"][-1]
    assert added["name"].startswith("kube-api-access-") and len(added["name"]) == len("kube-api-access-") + 5
    assert [s for source in added["projected"]["sources"] for s in source] == [
        "serviceAccountToken",
        "configMap",
        "downwardAPI",
    ]
    assert spec["initContainers"][0]["volumeMounts"] == [
        {"name": added["name"], "readOnly": True, "mountPath": TOKEN_PATH}
    ]
    assert spec["containers"][0]["volumeMounts"][0]["name"] == added["name"]
    assert spec["containers"][1]["volumeMounts"] == [{"name": "mine", "mountPath": TOKEN_PATH}]


def test_a_pod_that_has_the_volume_is_left_alone() -> None:
    spec: dict[str, Any] = {"containers": [{"name": "c"}], "volumes": [{"name": "kube-api-access-abcde"}]}
    mount_token(spec)
    assert spec == {"containers": [{"name": "c"}], "volumes": [{"name": "kube-api-access-abcde"}]}
