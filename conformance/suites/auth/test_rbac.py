"""auth: who am I, what may I do, and what a role binding grants."""

from __future__ import annotations

import json

from conformance.suites.kube import Kube, eventually


def test_whoami_and_can_i(kube: Kube) -> None:
    info = kube.json("auth", "whoami")["status"]["userInfo"]
    assert info["username"] and "system:authenticated" in info["groups"]


def test_a_role_binding_grants_its_role_in_its_namespace_only(kube: Kube, namespace: str) -> None:
    def can(*args: str) -> bool:
        return kube.run("auth", "can-i", *args, check=False).stdout.strip() == "yes"

    user = f"native-user-{namespace[-6:]}"
    assert not can("get", "configmaps", "-n", namespace, "--as", user)
    kube.run("create", "role", "reader", "--verb=get,list", "--resource=configmaps", "-n", namespace)
    kube.run("create", "rolebinding", "reader", "--role=reader", f"--user={user}", "-n", namespace)
    eventually(lambda: can("get", "configmaps", "-n", namespace, "--as", user))
    assert not can("delete", "configmaps", "-n", namespace, "--as", user)
    assert not can("get", "configmaps", "-n", "default", "--as", user)
    denied = kube.run("delete", "configmap", "kube-root-ca.crt", "-n", namespace, "--as", user, check=False)
    assert f'User "{user}" cannot delete resource "configmaps"' in denied.stderr


def test_a_service_account_token_authenticates_as_the_account(kube: Kube, namespace: str) -> None:
    kube.run("create", "serviceaccount", "bot", "-n", namespace)
    token = kube.run("create", "token", "bot", "-n", namespace).stdout.strip()
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    answer = json.loads(kube.run("create", "-o", "json", "-f", "-", input=json.dumps(review)).stdout)
    assert answer["status"]["authenticated"] is True
    assert answer["status"]["user"]["username"] == f"system:serviceaccount:{namespace}:bot"
