"""Pods on a real node: a `k3py server` with its embedded agent, containerd and kubectl 1.37.

The server runs in its own network namespace (the conformance harness's ephemeral cluster with
no extra agents); its pods are real containers started by containerd from a busybox image the
test builds from Debian's busybox-static and hands to the node as an air-gap archive.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.cluster import ClusterSpec, EphemeralCluster
from k3py.images.busybox import write_busybox
from tests.e2e.cluster import kubectl_binary

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("node")]

IMAGE = "docker.io/k3py/busybox:e2e"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EphemeralCluster]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, containerd)")
    base = tmp_path_factory.mktemp("node")
    archive = base / "busybox.tar"
    write_busybox(archive, IMAGE)
    spec = ClusterSpec(base_dir=base / "cluster", agents=0, airgap_images=(archive,), ready_timeout=120)
    with EphemeralCluster(spec) as cluster:
        node = f"node/{cluster.server.name}"
        eventually(lambda: kubectl(cluster, "get", node, check=False).returncode == 0, 60, "the node")
        kubectl(cluster, "wait", "--for=condition=Ready", node, "--timeout=120s")
        yield cluster


def kubectl(
    cluster: EphemeralCluster, *args: str, input: str | None = None, check: bool = True, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def get(cluster: EphemeralCluster, *args: str) -> Any:
    return json.loads(kubectl(cluster, "get", "-o", "json", *args).stdout)


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")


@pytest.fixture
def ns(node: EphemeralCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    # A valid name of its own (parameters and lingering namespaces of earlier tests apart).
    name = (
        "p-"
        + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
        + "-"
        + secrets.token_hex(2)
    )
    kubectl(node, "create", "namespace", name)
    eventually(lambda: kubectl(node, "get", "sa/default", "-n", name, check=False).returncode == 0)
    yield name
    kubectl(node, "delete", "namespace", name, "--wait=false", check=False)


def apply(cluster: EphemeralCluster, ns: str, manifest: dict[str, Any]) -> None:
    kubectl(cluster, "apply", "-n", ns, "-f", "-", input=json.dumps(manifest))


def pod_manifest(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    for c in containers:
        c.setdefault("image", IMAGE)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": list(containers), "terminationGracePeriodSeconds": 2, **spec},
    }


def phase(cluster: EphemeralCluster, ns: str, name: str) -> str:
    return str(get(cluster, "pod", name, "-n", ns).get("status", {}).get("phase"))


def container_status(cluster: EphemeralCluster, ns: str, name: str, index: int = 0) -> dict[str, Any]:
    statuses = get(cluster, "pod", name, "-n", ns).get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[index])


def events(cluster: EphemeralCluster, ns: str, name: str) -> list[dict[str, Any]]:
    listed = get(cluster, "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")
    return list(listed["items"])


def test_run_logs_exec_and_describe_node(node: EphemeralCluster, ns: str) -> None:
    kubectl(
        node,
        "run",
        "bb",
        "-n",
        ns,
        f"--image={IMAGE}",
        "--image-pull-policy=IfNotPresent",
        "--",
        "sh",
        "-c",
        "echo hello from $(hostname); exec sleep 3600",
    )
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/bb", "--timeout=60s")
    pod = get(node, "pod", "bb", "-n", ns)
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"].startswith("10.42.")
    assert pod["status"]["qosClass"] == "BestEffort"
    eventually(lambda: "hello from bb" in kubectl(node, "logs", "-n", ns, "bb").stdout)
    assert kubectl(node, "exec", "-n", ns, "bb", "--", "cat", "/etc/hostname").stdout.strip() == "bb"
    piped = kubectl(node, "exec", "-i", "-n", ns, "bb", "--", "sh", "-c", "tr a-z A-Z", input="shout\n")
    assert piped.stdout == "SHOUT\n"
    described = kubectl(node, "describe", "node", node.server.name).stdout
    for expected in (
        "Capacity:",
        "pods:",
        "Ready",
        "KubeletReady",
        "MemoryPressure",
        "Container Runtime Version:",
    ):
        assert expected in described
    metrics = kubectl(node, "get", "--raw", f"/api/v1/nodes/{node.server.name}:10250/proxy/metrics").stdout
    assert "kubelet_running_pods" in metrics
    node_obj = get(node, "node", node.server.name)
    assert any(IMAGE in name for image in node_obj["status"]["images"] for name in image["names"])
    reasons = [e["reason"] for e in events(node, ns, "bb")]
    assert {"Scheduled", "Pulled", "Created", "Started"} <= set(reasons)


def test_cp_both_ways(node: EphemeralCluster, ns: str, tmp_path: Path) -> None:
    apply(node, ns, pod_manifest("cp", {"name": "main", "command": ["sleep", "3600"]}))
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/cp", "--timeout=60s")
    source = tmp_path / "in.txt"
    source.write_text("copied in\n")
    kubectl(node, "cp", "-n", ns, str(source), "cp:/tmp/in.txt")
    assert kubectl(node, "exec", "-n", ns, "cp", "--", "cat", "/tmp/in.txt").stdout == "copied in\n"
    kubectl(node, "cp", "-n", ns, "cp:/tmp/in.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "copied in\n"


def test_port_forward_to_httpd(node: EphemeralCluster, ns: str) -> None:
    apply(
        node,
        ns,
        pod_manifest(
            "web",
            {
                "name": "httpd",
                "command": [
                    "sh",
                    "-c",
                    "mkdir -p /www && echo it-works > /www/index.html && exec httpd -f -p 8080 -h /www",
                ],
                "ports": [{"containerPort": 8080}],
            },
        ),
    )
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/web", "--timeout=60s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    forward = subprocess.Popen(
        [
            kubectl_binary(),
            "--kubeconfig",
            str(node.kubeconfig),
            "port-forward",
            "-n",
            ns,
            "pod/web",
            f"{port}:8080",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def fetch() -> str:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    data = b""
                    while chunk := conn.recv(4096):
                        data += chunk
                    return data.decode()
            except OSError:
                return ""

        assert "it-works" in eventually(fetch, 30, "port-forward")
    finally:
        forward.terminate()
        forward.wait(10)


def test_crash_loop_back_off(node: EphemeralCluster, ns: str) -> None:
    apply(node, ns, pod_manifest("crash", {"name": "c", "command": ["sh", "-c", "echo bye; exit 3"]}))

    def backing_off() -> bool:
        status = container_status(node, ns, "crash")
        waiting = status.get("state", {}).get("waiting", {})
        return bool(waiting.get("reason") == "CrashLoopBackOff" and status.get("restartCount", 0) >= 1)

    eventually(backing_off, 60, "CrashLoopBackOff")
    status = container_status(node, ns, "crash")
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["lastState"]["terminated"]["reason"] == "Error"

    def message() -> str:
        return str(container_status(node, ns, "crash").get("state", {}).get("waiting", {}).get("message", ""))

    # The back-off grows: 10 s after the second exit, then 20 s.
    eventually(lambda: "back-off 10s" in message(), 30, "a 10 s back-off")
    eventually(lambda: "back-off 20s" in message(), 60, "a 20 s back-off")
    assert container_status(node, ns, "crash")["restartCount"] >= 2
    assert kubectl(node, "logs", "-n", ns, "crash", "--previous").stdout == "bye\n"
    assert any(e["reason"] == "BackOff" for e in events(node, ns, "crash"))


def test_oom_killed(node: EphemeralCluster, ns: str) -> None:
    apply(
        node,
        ns,
        pod_manifest(
            "oom",
            {
                "name": "hog",
                "command": [
                    "sh",
                    "-c",
                    "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
                ],
                "resources": {"limits": {"memory": "20Mi"}},
            },
            restartPolicy="Never",
        ),
    )

    def terminated() -> dict[str, Any]:
        return dict(container_status(node, ns, "oom").get("state", {}).get("terminated") or {})

    assert eventually(terminated, 60, "OOM")["reason"] == "OOMKilled"
    assert phase(node, ns, "oom") == "Failed"


def test_config_map_volume_updates_and_downward_api(node: EphemeralCluster, ns: str) -> None:
    kubectl(node, "create", "configmap", "cfg", "-n", ns, "--from-literal=color=blue")
    manifest = pod_manifest(
        "vol",
        {
            "name": "main",
            "command": ["sleep", "3600"],
            "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}, {"name": "info", "mountPath": "/info"}],
            "env": [
                {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            ],
        },
        volumes=[
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    ]
                },
            },
        ],
    )
    manifest["metadata"]["labels"] = {"tier": "front"}
    apply(node, ns, manifest)
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/vol", "--timeout=60s")

    def read(path: str) -> str:
        return kubectl(node, "exec", "-n", ns, "vol", "--", "cat", path, check=False).stdout

    assert read("/cfg/color") == "blue"
    assert read("/info/name") == "vol"
    assert read("/info/labels") == 'tier="front"'
    env = kubectl(node, "exec", "-n", ns, "vol", "--", "env").stdout
    pod = get(node, "pod", "vol", "-n", ns)
    assert f"MY_NODE={node.server.name}" in env and f"MY_IP={pod['status']['podIP']}" in env
    assert "KUBERNETES_SERVICE_HOST=" in env
    kubectl(node, "patch", "configmap", "cfg", "-n", ns, "-p", '{"data":{"color":"green"}}')
    eventually(lambda: read("/cfg/color") == "green", 60, "config map update in the volume")


def test_liveness_probe_restarts_and_readiness_flips(node: EphemeralCluster, ns: str) -> None:
    apply(
        node,
        ns,
        pod_manifest(
            "probed",
            {
                "name": "main",
                "command": ["sh", "-c", "touch /tmp/ready; exec sleep 3600"],
                "livenessProbe": {
                    "exec": {"command": ["test", "!", "-e", "/tmp/dead"]},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                },
                "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]}, "periodSeconds": 1},
            },
        ),
    )
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/probed", "--timeout=60s")
    kubectl(node, "exec", "-n", ns, "probed", "--", "rm", "/tmp/ready")
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready=false", "pod/probed", "--timeout=30s")
    kubectl(node, "exec", "-n", ns, "probed", "--", "touch", "/tmp/dead")
    eventually(
        lambda: container_status(node, ns, "probed").get("restartCount", 0) >= 1, 60, "liveness restart"
    )
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/probed", "--timeout=60s")
    messages = [e["message"] for e in events(node, ns, "probed")]
    assert any("Liveness probe failed" in m for m in messages)


def test_deletion_honours_grace_period(node: EphemeralCluster, ns: str) -> None:
    apply(
        node,
        ns,
        pod_manifest(
            "graceful",
            {
                "name": "main",
                "command": [
                    "sh",
                    "-c",
                    "trap 'echo term; sleep 2; exit 0' TERM; while true; do sleep 1; done",
                ],
            },
            terminationGracePeriodSeconds=10,
        ),
    )
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/graceful", "--timeout=60s")
    started = time.monotonic()
    kubectl(node, "delete", "pod", "graceful", "-n", ns, "--wait=true", "--timeout=60s")
    took = time.monotonic() - started
    assert 2 <= took < 10, took


def test_pods_reach_each_other_and_host_port(node: EphemeralCluster, ns: str) -> None:
    server = pod_manifest(
        "srv",
        {
            "name": "httpd",
            "command": [
                "sh",
                "-c",
                "mkdir -p /www && echo pod-to-pod > /www/index.html && exec httpd -f -p 80 -h /www",
            ],
            "ports": [{"containerPort": 80, "hostPort": 18080}],
        },
    )
    apply(node, ns, server)
    apply(node, ns, pod_manifest("cli", {"name": "main", "command": ["sleep", "3600"]}))
    for name in ("srv", "cli"):
        kubectl(node, "wait", "-n", ns, "--for=condition=Ready", f"pod/{name}", "--timeout=60s")
    ip = get(node, "pod", "srv", "-n", ns)["status"]["podIP"]
    assert http_get(node, ns, "cli", ip, 80).endswith("pod-to-pod\n")
    assert http_get(node, ns, "cli", str(node.server.net.address), 18080).endswith("pod-to-pod\n")


def http_get(cluster: EphemeralCluster, ns: str, pod: str, host: str, port: int) -> str:
    """A page fetched from inside ``pod`` with busybox nc (Debian's static wget crashes in containers)."""
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}"
    return kubectl(cluster, "exec", "-n", ns, pod, "--", "sh", "-c", request).stdout


def test_bad_pods_get_upstream_reasons(node: EphemeralCluster, ns: str) -> None:
    # A registry on the node's loopback that nothing listens on: the pull fails with its error.
    apply(node, ns, pod_manifest("nopull", {"name": "c", "image": "127.0.0.1:1/k3py/absent:1"}))
    apply(
        node,
        ns,
        pod_manifest("noimage", {"name": "c", "image": "k3py/not-there:1", "imagePullPolicy": "Never"}),
    )
    apply(
        node,
        ns,
        pod_manifest(
            "nokey",
            {
                "name": "c",
                "command": ["sleep", "3600"],
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}],
            },
        ),
    )
    apply(node, ns, pod_manifest("nocmd", {"name": "c", "command": ["/no/such/binary"]}))

    def waiting(name: str) -> str:
        return str(container_status(node, ns, name).get("state", {}).get("waiting", {}).get("reason", ""))

    eventually(lambda: waiting("noimage") == "ErrImageNeverPull", 60, "ErrImageNeverPull")
    eventually(lambda: waiting("nopull") in ("ErrImagePull", "ImagePullBackOff"), 60, "ErrImagePull")
    pull_errors = [e["message"] for e in events(node, ns, "nopull") if e["reason"] == "Failed"]
    assert any("127.0.0.1:1" in m and "connection refused" in m for m in pull_errors), pull_errors
    eventually(lambda: waiting("nokey") == "CreateContainerConfigError", 60, "CreateContainerConfigError")

    def start_failed() -> bool:
        status = container_status(node, ns, "nocmd")
        terminated = (status.get("lastState") or {}).get("terminated") or status.get("state", {}).get(
            "terminated"
        )
        return bool(terminated) or waiting("nocmd") in ("RunContainerError", "CrashLoopBackOff")

    eventually(start_failed, 60, "a failed start")
    assert any(e["reason"] == "Failed" for e in events(node, ns, "nocmd"))
    # The node is still healthy.
    kubectl(node, "wait", "--for=condition=Ready", f"node/{node.server.name}", "--timeout=10s")


def test_logs_follow_and_attach(node: EphemeralCluster, ns: str) -> None:
    apply(
        node,
        ns,
        pod_manifest(
            "ticker",
            {
                "name": "main",
                "command": ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"],
            },
        ),
    )
    apply(
        node,
        ns,
        pod_manifest(
            "echo",
            {
                "name": "main",
                "command": ["sh", "-c", "while read line; do echo got $line; done"],
                "stdin": True,
                "stdinOnce": True,
            },
            restartPolicy="Never",
        ),
    )
    for name in ("ticker", "echo"):
        kubectl(node, "wait", "-n", ns, "--for=condition=Ready", f"pod/{name}", "--timeout=60s")
    with subprocess.Popen(
        [kubectl_binary(), "--kubeconfig", str(node.kubeconfig), "logs", "-f", "-n", ns, "ticker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as follow:
        assert follow.stdout is not None
        lines = [follow.stdout.readline() for _ in range(10)]
        follow.terminate()
    assert lines[0].startswith("tick ") and lines[9].startswith("tick ")
    assert int(lines[9].split()[1]) == int(lines[0].split()[1]) + 9
    attached = kubectl(node, "attach", "-i", "-n", ns, "echo", input="hello\n", check=False, timeout=30)
    assert "got hello" in attached.stdout, attached


def test_pods_survive_containerd_and_agent_restarts(node: EphemeralCluster, ns: str) -> None:
    apply(node, ns, pod_manifest("durable", {"name": "main", "command": ["sleep", "3600"]}))
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/durable", "--timeout=60s")
    before = container_status(node, ns, "durable")
    config = f"--config {node.server.data_dir}/agent/etc/containerd/config.toml"
    containerd = [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and config in _cmdline(int(p.name))
    ]
    assert containerd, "the node's containerd runs"
    for pid in containerd:
        os.kill(pid, 9)
    time.sleep(3)
    apply(node, ns, pod_manifest("after", {"name": "main", "command": ["sleep", "3600"]}))
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/after", "--timeout=60s")
    assert container_status(node, ns, "durable")["containerID"] == before["containerID"]
    # The server (and its agent) killed and started again: the pod's container is adopted.
    assert node.server.process is not None
    os.killpg(node.server.process.pid, 9)
    node.server.process.wait(10)
    node._launch(node.server, node._server_command(node.server))
    node._wait_server()
    time.sleep(5)
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/durable", "--timeout=60s")
    after = container_status(node, ns, "durable")
    assert after["containerID"] == before["containerID"] and after["restartCount"] == 0
    assert kubectl(node, "exec", "-n", ns, "durable", "--", "cat", "/proc/1/cmdline").stdout.startswith(
        "sleep"
    )


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
