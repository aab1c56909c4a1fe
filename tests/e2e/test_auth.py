"""Authentication and authorization through kubectl 1.37: whoami, can-i, RBAC with the default
roles, escalation prevention, service-account and bootstrap tokens, impersonation."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import Cluster

RBAC_DELAY = 10.0
"""Seconds within which a new binding must apply (the authorizer follows a watch)."""


def eventually(check: Callable[[], bool], timeout: float = RBAC_DELAY) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {timeout}s: {check}")
        time.sleep(0.1)


def token_kubeconfig(cluster: Cluster, token: str, path: Path) -> Path:
    """A kubeconfig that authenticates with ``token`` only (no client certificate)."""
    ca = (cluster.data_dir / "server" / "tls" / "server-ca.crt").read_bytes()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "k3py",
                "cluster": {
                    "server": cluster.url,
                    "certificate-authority-data": base64.b64encode(ca).decode(),
                },
            }
        ],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "token", "context": {"cluster": "k3py", "user": "token"}}],
        "current-context": "token",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def as_token(cluster: Cluster, token: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    config = token_kubeconfig(cluster, token, tmp_path / "token.yaml")
    done = cluster.kubectl("--kubeconfig", str(config), *args, check=False)
    return done.returncode, done.stdout, done.stderr


def can_i(cluster: Cluster, *args: str) -> bool:
    done = cluster.kubectl("auth", "can-i", *args, check=False)
    assert done.stdout.strip() in ("yes", "no"), done.stderr
    return done.stdout.strip() == "yes"


def client_csr(
    name: str, common_name: str, organizations: tuple[str, ...], usages: list[str]
) -> tuple[Any, dict[str, Any]]:
    """A private key and a CertificateSigningRequest object for the API client signer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject = x509.Name([*names, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    body = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": usages,
        },
    }
    return key, body


def test_whoami_names_the_admin_certificate(cluster: Cluster) -> None:
    info = cluster.kubectl_json("auth", "whoami")["status"]["userInfo"]
    assert info["username"] == "system:admin"
    assert set(info["groups"]) == {"system:masters", "system:authenticated"}


def test_a_role_binding_grants_exactly_its_role(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace, "--as", "alice")
    assert not can_i(cluster, "list", "pods", *n)
    cluster.kubectl(
        "create", "rolebinding", "alice-view", "--clusterrole=view", "--user=alice", "-n", namespace
    )
    eventually(lambda: can_i(cluster, "list", "pods", *n))
    assert not can_i(cluster, "create", "configmaps", *n)
    assert not can_i(cluster, "list", "pods", "-n", "default", "--as", "alice")
    assert not can_i(cluster, "list", "secrets", *n), "view does not read secrets"
    cluster.kubectl("get", "pods", *n)
    denied = cluster.kubectl("create", "configmap", "x", *n, check=False)
    assert denied.returncode != 0
    assert (
        'configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" '
        f'in the namespace "{namespace}"'
    ) in denied.stderr
    assert cluster.kubectl("get", "configmap", "x", "-n", namespace, check=False).returncode != 0
    listed = cluster.kubectl("auth", "can-i", "--list", *n).stdout
    pods = next(line for line in listed.splitlines() if line.startswith("pods "))
    assert "[get list watch]" in pods


def test_the_aggregated_default_roles_are_filled(cluster: Cluster) -> None:
    view = cluster.kubectl_json("get", "clusterrole", "view")
    assert view["aggregationRule"]["clusterRoleSelectors"]
    resources = {r for rule in view["rules"] for r in rule.get("resources", [])}
    assert {"pods", "deployments", "configmaps"} <= resources
    assert "secrets" not in resources
    edit = cluster.kubectl_json("get", "clusterrole", "edit")
    assert any("secrets" in rule.get("resources", []) for rule in edit["rules"])


def test_an_edit_user_cannot_grant_itself_more(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob", "-n", namespace)
    eventually(lambda: can_i(cluster, "create", "deployments", "-n", namespace, "--as", "bob"))
    denied = cluster.kubectl(
        "create",
        "clusterrolebinding",
        "bob-root",
        "--clusterrole=cluster-admin",
        "--user=bob",
        "--as",
        "bob",
        check=False,
    )
    assert denied.returncode != 0
    assert (
        'cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io"'
        in denied.stderr
    )
    assert cluster.kubectl("get", "clusterrolebinding", "bob-root", check=False).returncode != 0


def test_an_admin_cannot_bind_what_it_does_not_hold(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "create", "rolebinding", "carol-admin", "--clusterrole=admin", "--user=carol", "-n", namespace
    )
    n = ("-n", namespace, "--as", "carol")
    eventually(lambda: can_i(cluster, "create", "rolebindings", *n))
    cluster.kubectl("create", "rolebinding", "dave-edit", "--clusterrole=edit", "--user=dave", *n)
    denied = cluster.kubectl(
        "create", "rolebinding", "dave-root", "--clusterrole=cluster-admin", "--user=dave", *n, check=False
    )
    assert denied.returncode != 0
    assert 'user "carol"' in denied.stderr
    assert "is attempting to grant RBAC permissions not currently held" in denied.stderr
    assert cluster.kubectl("get", "rolebinding", "dave-root", "-n", namespace, check=False).returncode != 0


def test_impersonation_needs_the_impersonate_verb(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "serviceaccount", "actor", "-n", namespace)
    token = cluster.kubectl("create", "token", "actor", "-n", namespace).stdout.strip()
    code, _, err = as_token(cluster, token, tmp_path, "get", "pods", "--as", "grace")
    assert code != 0
    assert (
        f'users "grace" is forbidden: User "system:serviceaccount:{namespace}:actor" cannot impersonate '
        'resource "users" in API group "" at the cluster scope'
    ) in err
    role = f"{namespace}-as-grace"
    cluster.kubectl(
        "create", "clusterrole", role, "--verb=impersonate", "--resource=users", "--resource-name=grace"
    )
    cluster.kubectl(
        "create", "clusterrolebinding", role, f"--clusterrole={role}", f"--serviceaccount={namespace}:actor"
    )

    def acts_as_grace() -> bool:
        code, out, _ = as_token(cluster, token, tmp_path, "auth", "whoami", "--as", "grace", "-o", "json")
        return code == 0 and json.loads(out)["status"]["userInfo"]["username"] == "grace"

    eventually(acts_as_grace)
    code, _, err = as_token(cluster, token, tmp_path, "get", "pods", "--as", "heidi")
    assert code != 0 and "cannot impersonate" in err, "the role names grace only"
    code, _, err = as_token(
        cluster, token, tmp_path, "get", "pods", "--as", "grace", "--as-group", "system:masters"
    )
    assert code != 0 and 'groups "system:masters" is forbidden' in err


def test_service_account_tokens_live_and_die_with_their_account(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("create", "serviceaccount", "robot", "-n", namespace)
    token = cluster.kubectl("create", "token", "robot", "-n", namespace).stdout.strip()
    code, out, err = as_token(cluster, token, tmp_path, "auth", "whoami", "-o", "json")
    assert code == 0, err
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{namespace}:robot"
    assert set(info["groups"]) == {
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    }
    assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    code, _, err = as_token(cluster, token, tmp_path, "get", "pods", "-n", namespace)
    assert code != 0 and "forbidden" in err, "a new service account holds no role"

    other = cluster.kubectl("create", "token", "robot", "-n", namespace, "--audience", "vault").stdout.strip()
    code, _, err = as_token(cluster, other, tmp_path, "auth", "whoami")
    assert code != 0 and "Unauthorized" in err, "a token for another audience"
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    code, _, err = as_token(cluster, f"{head}.{payload}.{flipped}", tmp_path, "auth", "whoami")
    assert code != 0 and "Unauthorized" in err, "a tampered token"

    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }
    answer = json.loads(cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)
    assert answer["status"]["authenticated"] is True
    assert answer["status"]["user"]["username"] == f"system:serviceaccount:{namespace}:robot"

    for_vault = {**review, "spec": {"token": other, "audiences": ["vault", "other"]}}
    answer = json.loads(
        cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(for_vault)).stdout
    )
    assert answer["status"]["authenticated"] is True and answer["status"]["audiences"] == ["vault"]

    cluster.kubectl("delete", "serviceaccount", "robot", "-n", namespace)
    code, _, err = as_token(cluster, token, tmp_path, "auth", "whoami")
    assert code != 0 and "Unauthorized" in err, "the account is gone"
    answer = json.loads(cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)
    assert answer["status"]["authenticated"] is False


def test_a_pod_bound_token_dies_with_its_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "serviceaccount", "worker", "-n", namespace)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "holder", "namespace": namespace},
        "spec": {"serviceAccountName": "worker", "containers": [{"name": "c", "image": "busybox"}]},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    token = cluster.kubectl(
        "create", "token", "worker", "-n", namespace, "--bound-object-kind=Pod", "--bound-object-name=holder"
    ).stdout.strip()
    code, out, err = as_token(cluster, token, tmp_path, "auth", "whoami", "-o", "json")
    assert code == 0, err
    extra = json.loads(out)["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["holder"]
    cluster.kubectl("delete", "pod", "holder", "-n", namespace, "--grace-period=0", "--force")
    code, _, err = as_token(cluster, token, tmp_path, "auth", "whoami")
    assert code != 0 and "Unauthorized" in err
    short = cluster.kubectl("create", "token", "worker", "-n", namespace, "--duration=5m", check=False)
    assert short.returncode != 0 and "may not specify a duration less than 10 minutes" in short.stderr


def test_a_bootstrap_token_works_until_it_expires(cluster: Cluster, tmp_path: Path) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=4)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "token-id": "abcdef",
            "token-secret": "0123456789abcdef",
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage-bootstrap-authentication": "true",
            "auth-extra-groups": "system:bootstrappers:k3py:default-node-token",
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(secret))
    try:
        code, out, err = as_token(
            cluster, "abcdef.0123456789abcdef", tmp_path, "auth", "whoami", "-o", "json"
        )
        assert code == 0, err
        info = json.loads(out)["status"]["userInfo"]
        assert info["username"] == "system:bootstrap:abcdef"
        assert "system:bootstrappers:k3py:default-node-token" in info["groups"]
        code, _, err = as_token(cluster, "abcdef.0123456789abcdeX", tmp_path, "auth", "whoami")
        assert code != 0 and "Unauthorized" in err, "a wrong secret"
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
        code, _, err = as_token(cluster, "abcdef.0123456789abcdef", tmp_path, "auth", "whoami")
        assert code != 0 and "Unauthorized" in err, "an expired token"
    finally:
        cluster.kubectl("delete", "secret", "bootstrap-token-abcdef", "-n", "kube-system", check=False)


def test_subject_access_review_answers_for_others(cluster: Cluster) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": "nobody", "resourceAttributes": {"verb": "get", "resource": "nodes"}},
    }
    answer = json.loads(cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)
    assert answer["status"]["allowed"] is False
    review["spec"] = {
        "groups": ["system:masters"],
        "resourceAttributes": {"verb": "delete", "resource": "nodes"},
    }
    answer = json.loads(cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)
    assert answer["status"]["allowed"] is True
    review["spec"] = {"user": "x"}
    bad = cluster.kubectl("create", "-f", "-", input=json.dumps(review), check=False)
    assert bad.returncode != 0 and "exactly one of nonResourceAttributes or resourceAttributes" in bad.stderr


def test_a_review_has_no_table_form(cluster: Cluster) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}},
    }
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    as_table = {"Content-Type": "application/json", "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    status, _, body = cluster.request("POST", path, json.dumps(review).encode(), as_table)
    assert status == 406, body
    assert json.loads(body)["reason"] == "NotAcceptable"
    plain = {"Content-Type": "application/json"}
    status, _, body = cluster.request("POST", path, json.dumps(review).encode(), plain)
    assert status == 201 and json.loads(body)["status"]["allowed"] is True, body


def test_oidc_discovery_is_for_service_accounts(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    status, _, _ = cluster.request("GET", "/.well-known/openid-configuration", authenticated=False)
    assert status == 403
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = cluster.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    code, out, err = as_token(cluster, token, tmp_path, "get", "--raw", "/.well-known/openid-configuration")
    assert code == 0, err
    document = json.loads(out)
    assert document["issuer"] == "https://kubernetes.default.svc.cluster.local"
    code, out, err = as_token(cluster, token, tmp_path, "get", "--raw", "/openid/v1/jwks")
    assert code == 0, err
    assert json.loads(out)["keys"][0]["alg"] == "RS256"


def test_health_details_need_more_than_anonymous(cluster: Cluster) -> None:
    assert cluster.request("GET", "/livez/etcd", authenticated=False)[0] == 403
    assert cluster.request("GET", "/livez/etcd")[:1] == (200,)


def test_every_namespace_has_its_account_and_ca_and_gets_them_back(cluster: Cluster, namespace: str) -> None:
    ca = (cluster.data_dir / "server" / "tls" / "server-ca.crt").read_text()
    configmap = cluster.kubectl_json("get", "configmap", "kube-root-ca.crt", "-n", namespace)
    assert configmap["data"] == {"ca.crt": ca}
    first = cluster.kubectl_json("get", "serviceaccount", "default", "-n", namespace)["metadata"]["uid"]
    cluster.kubectl("delete", "serviceaccount", "default", "-n", namespace)
    cluster.kubectl(
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"data":{"ca.crt":"forged"}}',
    )

    def restored() -> bool:
        account = cluster.kubectl(
            "get", "serviceaccount", "default", "-n", namespace, "-o", "json", check=False
        )
        data = cluster.kubectl_json("get", "configmap", "kube-root-ca.crt", "-n", namespace)["data"]
        return (
            account.returncode == 0
            and json.loads(account.stdout)["metadata"]["uid"] != first
            and data == {"ca.crt": ca}
        )

    eventually(restored)


def test_pods_get_their_account_and_its_token_volume(cluster: Cluster, namespace: str) -> None:
    def pod(name: str, **spec: Any) -> str:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
        }
        return json.dumps(body)

    cluster.kubectl("create", "-n", namespace, "-f", "-", input=pod("plain"))
    spec = cluster.kubectl_json("get", "pod", "plain", "-n", namespace)["spec"]
    assert spec["serviceAccountName"] == "default"
    volume = next(v for v in spec["volumes"] if v["name"].startswith("kube-api-access-"))
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"] == {"expirationSeconds": 3607, "path": "token"}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    mount = spec["containers"][0]["volumeMounts"][0]
    assert mount == {
        "name": volume["name"],
        "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    }

    cluster.kubectl(
        "create", "-n", namespace, "-f", "-", input=pod("opted-out", automountServiceAccountToken=False)
    )
    spec = cluster.kubectl_json("get", "pod", "opted-out", "-n", namespace)["spec"]
    assert not spec.get("volumes") and not spec["containers"][0].get("volumeMounts")

    refused = cluster.kubectl(
        "create", "-n", namespace, "-f", "-", input=pod("orphan", serviceAccountName="ghost"), check=False
    )
    assert refused.returncode != 0
    assert (
        f'pods "orphan" is forbidden: error looking up service account {namespace}/ghost: '
        'serviceaccount "ghost" not found'
    ) in refused.stderr
    assert cluster.kubectl("get", "pod", "orphan", "-n", namespace, check=False).returncode != 0


def test_a_legacy_token_secret_is_filled_when_asked_for(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("create", "serviceaccount", "legacy", "-n", namespace)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "legacy-token", "annotations": {"kubernetes.io/service-account.name": "legacy"}},
        "type": "kubernetes.io/service-account-token",
    }
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(secret))
    eventually(
        lambda: (
            "token"
            in (cluster.kubectl_json("get", "secret", "legacy-token", "-n", namespace).get("data") or {})
        )
    )
    data = cluster.kubectl_json("get", "secret", "legacy-token", "-n", namespace)["data"]
    assert base64.b64decode(data["namespace"]).decode() == namespace
    token = base64.b64decode(data["token"]).decode()
    code, out, err = as_token(cluster, token, tmp_path, "auth", "whoami", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:legacy"
    cluster.kubectl("delete", "secret", "legacy-token", "-n", namespace)
    code, _, err = as_token(cluster, token, tmp_path, "auth", "whoami")
    assert code != 0 and "Unauthorized" in err, "the token dies with its secret"
    assert cluster.kubectl("get", "secrets", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_a_node_reads_only_what_its_own_pods_use(cluster: Cluster, namespace: str) -> None:
    for node in ("n1", "n2"):
        cluster.kubectl("create", "secret", "generic", f"for-{node}", "--from-literal=k=v", "-n", namespace)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"on-{node}"},
            "spec": {
                "nodeName": node,
                "containers": [
                    {"name": "c", "image": "busybox", "envFrom": [{"secretRef": {"name": f"for-{node}"}}]}
                ],
            },
        }
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    as_n1 = ("--as", "system:node:n1", "--as-group", "system:nodes", "-n", namespace)
    eventually(lambda: cluster.kubectl("get", "secret", "for-n1", *as_n1, check=False).returncode == 0)
    denied = cluster.kubectl("get", "secret", "for-n2", *as_n1, check=False)
    assert denied.returncode != 0
    assert (
        'secrets "for-n2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" '
        f"in the namespace \"{namespace}\": no relationship found between node 'n1' and this object"
    ) in denied.stderr
    assert cluster.kubectl("get", "secrets", *as_n1, check=False).returncode != 0, "no listing every secret"
    assert cluster.kubectl("get", "pods", *as_n1).returncode == 0, "system:node's static rules"
    mirror = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "not-a-mirror"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]},
    }
    refused = cluster.kubectl("create", "-f", "-", *as_n1, input=json.dumps(mirror), check=False)
    assert refused.returncode != 0 and 'node "n1" can only create mirror pods' in refused.stderr
    for node in ("n1", "n2"):
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    try:
        cluster.kubectl("label", "node", "n1", f"seen-{namespace[-20:]}=yes", *as_n1[:4])
        other = cluster.kubectl("label", "node", "n2", "x=y", *as_n1[:4], check=False)
        assert other.returncode != 0 and 'node "n1" is not allowed to modify node "n2"' in other.stderr
    finally:
        cluster.kubectl("delete", "node", "n1", "n2", check=False)


def test_a_user_certificate_signed_through_a_csr_gets_what_its_binding_grants(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    name = f"jane-{namespace}"[:60]
    key, csr = client_csr(name, "jane", ("devs",), ["digital signature", "client auth"])
    csr["spec"]["expirationSeconds"] = 3600
    cluster.kubectl("create", "-f", "-", input=json.dumps(csr))
    table = cluster.kubectl("get", "csr", name).stdout
    assert "Pending" in table
    cluster.kubectl("certificate", "approve", name)

    def issued() -> bool:
        return bool(cluster.kubectl_json("get", "csr", name).get("status", {}).get("certificate"))

    eventually(issued)
    cert = base64.b64decode(cluster.kubectl_json("get", "csr", name)["status"]["certificate"])
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key_pem).decode(),
    }
    jane = tmp_path / "jane.yaml"
    jane.write_text(yaml.safe_dump(config))
    as_jane = ("--kubeconfig", str(jane), "-n", namespace)
    info = json.loads(cluster.kubectl(*as_jane, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert info["username"] == "jane" and "devs" in info["groups"]
    assert cluster.kubectl(*as_jane, "get", "pods", check=False).returncode != 0
    cluster.kubectl(
        "create", "rolebinding", "devs-view", "--clusterrole=view", "--group=devs", "-n", namespace
    )
    eventually(lambda: cluster.kubectl(*as_jane, "get", "pods", check=False).returncode == 0)
    denied = cluster.kubectl(*as_jane, "create", "configmap", "nope", check=False)
    assert (
        'configmaps is forbidden: User "jane" cannot create resource "configmaps" in API group "" '
        f'in the namespace "{namespace}"'
    ) in denied.stderr
    elsewhere = cluster.kubectl("--kubeconfig", str(jane), "get", "pods", "-n", "default", check=False)
    assert elsewhere.returncode != 0 and 'in the namespace "default"' in elsewhere.stderr


def test_an_empty_path_segment_is_authorized_as_what_it_serves(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "create", "clusterrolebinding", f"{namespace}-viewer", "--clusterrole=view", "--user=olga"
    )
    eventually(lambda: can_i(cluster, "list", "namespaces", "--as", "olga"))
    as_olga = {"Impersonate-User": "olga"}
    for path in ("/api/v1/namespaces//secrets", "/api/v1/namespaces//secrets?watch=true", "/api/v1/secrets"):
        status, _, body = cluster.request("GET", path, headers=as_olga)
        assert status == 403, (path, body)
        assert b'cannot list resource \\"secrets\\"' in body or b"cannot watch resource" in body
    status, _, _ = cluster.request("GET", "/api/v1/namespaces//configmaps")
    assert status == 404, "the router serves no empty namespace either"


def test_rbac_objects_are_validated_before_they_can_grant(cluster: Cluster, namespace: str) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "sly", "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": "x"}],
    }
    refused = cluster.kubectl("create", "-f", "-", input=json.dumps(role), check=False)
    assert refused.returncode != 0
    cluster.kubectl("create", "rolebinding", "fixed", "--clusterrole=view", "--user=u", "-n", namespace)
    changed = cluster.kubectl(
        "create",
        "rolebinding",
        "fixed",
        "--clusterrole=edit",
        "--user=u",
        "-n",
        namespace,
        "--dry-run=client",
        "-o",
        "json",
    ).stdout
    replaced = cluster.kubectl("replace", "-f", "-", input=changed, check=False)
    assert replaced.returncode != 0 and "cannot change roleRef" in replaced.stderr


def test_a_node_cannot_reach_beyond_itself(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    as_n1 = ("--as", "system:node:n1", "--as-group", "system:nodes", *n)
    cluster.kubectl("create", "secret", "generic", "crown", "--from-literal=k=v", *n)
    mirror = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sneaky", "annotations": {"kubernetes.io/config.mirror": "x"}},
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "s", "secret": {"secretName": "crown"}}],
        },
    }
    refused = cluster.kubectl("create", "-f", "-", *as_n1, input=json.dumps(mirror), check=False)
    assert (
        refused.returncode != 0 and 'node "n1" can not create pods that reference secrets' in refused.stderr
    )
    assert cluster.kubectl("get", "secret", "crown", *as_n1, check=False).returncode != 0
    cluster.kubectl("create", "serviceaccount", "powerful", *n)
    status, _, body = cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/powerful/token",
        json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}).encode(),
        {
            "Content-Type": "application/json",
            "Impersonate-User": "system:node:n1",
            "Impersonate-Group": "system:nodes",
        },
    )
    assert status == 403 and b"no relationship found between node 'n1' and this object" in body
    other = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "elsewhere"},
        "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "busybox"}]},
    }
    cluster.kubectl("create", "-f", "-", *n, input=json.dumps(other))
    deleted = cluster.kubectl("delete", "pod", "elsewhere", *as_n1, check=False)
    assert (
        deleted.returncode != 0 and "can only delete pods with spec.nodeName set to itself" in deleted.stderr
    )
    status, _, body = cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/elsewhere/status",
        b'{"status":{"podIP":"10.9.9.9"}}',
        {
            "Content-Type": "application/merge-patch+json",
            "Impersonate-User": "system:node:n1",
            "Impersonate-Group": "system:nodes",
        },
    )
    assert status == 403 and b"for pods with spec.nodeName set to itself" in body


def test_approving_a_request_needs_approve_on_its_signer(cluster: Cluster, namespace: str) -> None:
    name = f"m-{namespace}"[:60]
    _, csr = client_csr(name, "mallory", (), ["client auth"])
    cluster.kubectl("create", "-f", "-", input=json.dumps(csr))
    role = f"{namespace}-csr-approval"
    cluster.kubectl(
        "create",
        "clusterrole",
        role,
        "--verb=get,list,update,patch",
        "--resource=certificatesigningrequests,certificatesigningrequests/approval",
    )
    cluster.kubectl("create", "clusterrolebinding", role, f"--clusterrole={role}", "--user=carl")
    eventually(lambda: can_i(cluster, "update", "certificatesigningrequests/approval", "--as", "carl"))
    denied = cluster.kubectl("certificate", "approve", name, "--as", "carl", check=False)
    assert denied.returncode != 0
    assert (
        'user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"'
        in denied.stderr
    )
    conditions = cluster.kubectl_json("get", "csr", name).get("status", {}).get("conditions") or []
    assert not conditions, "nothing was approved"
