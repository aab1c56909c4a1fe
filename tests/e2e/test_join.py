"""Join tokens and agent identity: ``k3py token``, the server token, and ``k3py agent`` joining."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.cluster import Cluster


def k3py(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k3py.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def ca_hash(cluster: Cluster) -> str:
    return hashlib.sha256((cluster.data_dir / "server" / "tls" / "server-ca.crt").read_bytes()).hexdigest()


def agent(cluster: Cluster, token: str, data_dir: Path, name: str = "pi") -> subprocess.CompletedProcess[str]:
    return k3py(
        "agent", "--config", "/dev/null", "--server", cluster.url, "--token", token,
        "--data-dir", str(data_dir), "--node-name", name, "--node-ip", "127.0.0.2",
        # No runtime answers there: the agent joins, then stops with a clear error (no pods here).
        "--container-runtime-endpoint", str(data_dir / "no-runtime.sock"),
    )  # fmt: skip


def csr_count(cluster: Cluster) -> int:
    return len(cluster.kubectl_json("get", "certificatesigningrequests")["items"])


def test_the_server_token_is_written_in_k3s_format(cluster: Cluster) -> None:
    token = (cluster.data_dir / "server" / "token").read_text().strip()
    assert token == (cluster.data_dir / "server" / "node-token").read_text().strip()
    prefix, _, credential = token.partition("::")
    assert prefix == f"K10{ca_hash(cluster)}"
    assert credential.startswith("server:") and len(credential) > len("server:") + 16
    assert (cluster.data_dir / "server" / "token").stat().st_mode & 0o077 == 0


def test_token_create_list_delete(cluster: Cluster, tmp_path: Path) -> None:
    kc = ("--kubeconfig", str(cluster.kubeconfig))
    created = k3py("token", *kc, "create", "--ttl", "1h", "--description", "for the pi")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    prefix, _, credential = token.partition("::")
    assert prefix == f"K10{ca_hash(cluster)}"
    token_id = credential.split(".")[0]
    listed = k3py("token", *kc, "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(credential))
    assert (
        "signing,authentication" in row
        and "for the pi" in row
        and "system:bootstrappers:k3py:default-node-token" in row
    )
    secret = cluster.kubectl_json("get", "secret", f"bootstrap-token-{token_id}", "-n", "kube-system")
    assert secret["type"] == "bootstrap.kubernetes.io/token"

    chosen = k3py("token", *kc, "create", "abcdef.0123456789abcdef", "--ttl", "0")
    assert chosen.returncode == 0 and chosen.stdout.strip().endswith("::abcdef.0123456789abcdef")
    assert k3py("token", *kc, "create", "abcdef.0123456789abcdef").returncode == 1, "already exists"
    bad = k3py("token", *kc, "create", "not-a-token")
    assert bad.returncode == 2 and "TOKEN must be" in bad.stderr

    deleted = k3py("token", *kc, "delete", token, "abcdef")
    assert deleted.returncode == 0, deleted.stderr
    assert token_id not in k3py("token", *kc, "list").stdout
    missing = k3py("token", *kc, "delete", "zzzzzz")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_an_agent_refuses_a_server_whose_ca_is_not_the_tokens(cluster: Cluster, tmp_path: Path) -> None:
    before = csr_count(cluster)
    server_token = (cluster.data_dir / "server" / "token").read_text().strip()
    forged = "K10" + "0" * 64 + "::" + server_token.partition("::")[2]
    joined = agent(cluster, forged, tmp_path / "agent-data")
    assert joined.returncode == 1
    assert "does not match the token's CA hash" in joined.stderr and "refusing to join" in joined.stderr
    assert csr_count(cluster) == before
    assert not (tmp_path / "agent-data" / "agent").exists()


def test_an_agent_with_a_wrong_token_is_refused_and_creates_nothing(cluster: Cluster, tmp_path: Path) -> None:
    before = csr_count(cluster)
    wrong = f"K10{ca_hash(cluster)}::server:{'f' * 32}"
    joined = agent(cluster, wrong, tmp_path / "agent-data")
    assert joined.returncode == 1
    assert "refused the token (401 Unauthorized)" in joined.stderr
    assert csr_count(cluster) == before
    assert not (tmp_path / "agent-data" / "agent").exists()
    unknown = agent(cluster, f"K10{ca_hash(cluster)}::qqqqqq.0123456789abcdef", tmp_path / "agent-data")
    assert unknown.returncode == 1 and "401" in unknown.stderr


def test_cacerts_is_the_ca_the_token_hashes(cluster: Cluster) -> None:
    status, _, body = cluster.request("GET", "/cacerts", authenticated=False)
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == ca_hash(cluster)
    assert json.loads(cluster.request("GET", "/api", authenticated=False)[2])["code"] == 403


def test_an_agent_joins_with_a_bootstrap_token_and_gets_its_node_identity(
    cluster: Cluster, tmp_path: Path
) -> None:
    kc = ("--kubeconfig", str(cluster.kubeconfig))
    token = k3py("token", *kc, "create", "--ttl", "10m").stdout.strip()
    data_dir = tmp_path / "agent-data"
    joined = agent(cluster, token, data_dir, name="pi")
    assert joined.returncode == 1, joined.stderr  # joined; then no container runtime answered
    assert "joined " in joined.stderr and "as system:node:pi" in joined.stderr
    assert "container runtime at" in joined.stderr and "is not answering" in joined.stderr
    agent_dir = data_dir / "agent"
    assert (agent_dir / "client-kubelet.key").stat().st_mode & 0o077 == 0
    whoami = cluster.kubectl(
        "--kubeconfig", str(agent_dir / "kubelet.kubeconfig"), "auth", "whoami", "-o", "json"
    )
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info["username"] == "system:node:pi"
    assert set(info["groups"]) == {"system:nodes", "system:authenticated"}
    csrs = cluster.kubectl_json("get", "certificatesigningrequests")["items"]
    mine = [
        c
        for c in csrs
        if c["spec"]["username"].startswith("system:bootstrap:") or c["spec"]["username"] == "system:node:pi"
    ]
    assert {c["spec"]["signerName"] for c in mine} >= {
        "kubernetes.io/kube-apiserver-client-kubelet",
        "kubernetes.io/kubelet-serving",
    }
    assert all(any(cond["type"] == "Approved" for cond in c["status"]["conditions"]) for c in mine)
    again = agent(cluster, "K10" + "0" * 64 + "::x", data_dir, name="pi")
    assert "does not match the token's CA hash" in again.stderr, "the CA is checked before anything is reused"


def test_a_bootstrap_token_is_good_for_the_api_audience_only(cluster: Cluster) -> None:
    kc = ("--kubeconfig", str(cluster.kubeconfig))
    token = k3py("token", *kc, "create", "--ttl", "10m").stdout.strip()
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    done = cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    answer = json.loads(done.stdout)["status"]
    assert answer["authenticated"] is True
    assert answer["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    review["spec"]["audiences"] = ["vault"]  # type: ignore[index]
    done = cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    assert json.loads(done.stdout)["status"]["authenticated"] is False
