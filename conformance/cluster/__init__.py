"""Ephemeral clusters for conformance runs: a server and N agents, each in its own network namespace.

``with EphemeralCluster(ClusterSpec(...)) as cluster:`` creates the network
(:mod:`conformance.cluster.network`), starts ``k3py server`` in the first namespace, waits until it
is ready, starts ``k3py agent`` in each further namespace with the server's node token, and waits
until every node is Ready and every kube-system pod runs. The cluster's admin kubeconfig is
``cluster.kubeconfig``. Leaving the block (normally, on an error, or on Ctrl-C) stops every
process the harness started (SIGTERM to its process group, then SIGKILL) and deletes the
namespaces, veths and bridge; ``keep=True`` leaves it all running and says how to reach it.
Nodes run a built binary (``binary=dist/k3py-linux-amd64``) or k3py from this checkout.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson

from conformance.cluster.network import Network, NetworkError, NodeNet, leftovers

log = logging.getLogger(__name__)

DATASTORES = ("sqlite",)
PORT = 6443
STOP_GRACE = 15.0


class ClusterError(Exception):
    """The cluster could not be started; the message names the step and carries log tails."""


@dataclass(frozen=True)
class ClusterSpec:
    base_dir: Path
    agents: int = 1
    binary: Path | None = None
    datastore: str = "sqlite"
    ready_timeout: float = 180.0
    keep: bool = False
    airgap_images: tuple[Path, ...] = ()
    """Image archives every node imports at start (its ``<data-dir>/agent/images/``, as K3s)."""
    agent_args: tuple[str, ...] = ()
    """Extra flags for every ``k3py agent``."""


@dataclass
class Node:
    name: str
    role: str
    net: NodeNet
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class EphemeralCluster:
    spec: ClusterSpec
    network: Network = field(default_factory=Network)
    nodes: list[Node] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.network.run_id

    @property
    def kubeconfig(self) -> Path:
        return self.spec.base_dir / "kubeconfig.yaml"

    @property
    def server(self) -> Node:
        return self.nodes[0]

    @property
    def server_url(self) -> str:
        return f"https://{self.server.net.address}:{PORT}"

    def __enter__(self) -> Self:
        if self.spec.datastore not in DATASTORES:
            raise ClusterError(f"--datastore {self.spec.datastore}: supported: {', '.join(DATASTORES)}")
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.spec.keep:
            log.warning("Leaving cluster %s running:\n%s", self.run_id, self.how_to_reach())
            return
        self.stop()

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.spec.base_dir.mkdir(parents=True, exist_ok=True)
        self.network.create()
        # Node names carry the run's id: nodes of different runs on one host never share pod cgroups.
        server = self._node(f"server-0-{self.run_id}", "server")
        self._launch(server, self._server_command(server))
        self._wait_server()
        token = (server.data_dir / "server" / "node-token").read_text().strip()
        for index in range(1, self.spec.agents + 1):
            agent = self._node(f"agent-{index}-{self.run_id}", "agent")
            self._launch(agent, self._agent_command(agent, token))
        self._wait_nodes()

    def _node(self, name: str, role: str) -> Node:
        net = self.network.add_node()
        node = Node(name, role, net, self.spec.base_dir / name, self.spec.base_dir / f"{name}.log")
        self.nodes.append(node)
        images = node.data_dir / "agent" / "images"
        for archive in self.spec.airgap_images:
            images.mkdir(parents=True, exist_ok=True)
            try:
                os.link(archive, images / archive.name)  # the same bytes for every node, stored once
            except OSError:
                shutil.copyfile(archive, images / archive.name)
        return node

    def _k3py(self) -> list[str]:
        if self.spec.binary is not None:
            return [str(self.spec.binary.resolve())]
        return [sys.executable, "-m", "k3py.cli"]

    # Every node runs ``--embedded-registry``: the suite's images exist only as air-gap archives,
    # and a pod with ``imagePullPolicy: Always`` must still resolve them, as on a K3s node.
    def _server_command(self, node: Node) -> list[str]:
        return [
            *self._k3py(), "server",
            "--config", os.devnull,
            "--data-dir", str(node.data_dir),
            "--bind-address", str(node.net.address),
            "--node-ip", str(node.net.address),
            "--node-name", node.name,
            "--https-listen-port", str(PORT),
            "--write-kubeconfig", str(self.kubeconfig),
            "--embedded-registry",
        ]  # fmt: skip

    def _agent_command(self, node: Node, token: str) -> list[str]:
        return [
            *self._k3py(), "agent",
            "--config", os.devnull,
            "--server", self.server_url,
            "--token", token,
            "--data-dir", str(node.data_dir),
            "--node-ip", str(node.net.address),
            "--node-name", node.name,
            "--embedded-registry",
            *self.spec.agent_args,
        ]  # fmt: skip

    def _launch(self, node: Node, command: list[str]) -> None:
        with node.log_path.open("wb") as out:
            node.process = subprocess.Popen(
                [*_in_netns(node), *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as one
            )
        log.info(
            "started %s (pid %d) in %s at %s",
            node.name,
            node.process.pid,
            node.net.namespace,
            node.net.address,
        )

    def _check_alive(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is not None:
                raise ClusterError(
                    f"{node.role} {node.name} exited with {node.process.returncode}:\n{node.log_tail()}"
                )

    def _wait_server(self) -> None:
        deadline = time.monotonic() + self.spec.ready_timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self.kubeconfig.exists() and self._get("/readyz", raw=True) == b"ok":
                return
            time.sleep(0.2)
        raise ClusterError(
            f"the server was not ready within {self.spec.ready_timeout:.0f}s:\n{self.server.log_tail()}"
        )

    def _wait_nodes(self) -> None:
        """Every agent (and the server, once it runs an agent) is a Ready node; kube-system runs."""
        wanted = {n.name for n in self.nodes if n.role == "agent"}
        deadline = time.monotonic() + self.spec.ready_timeout
        while time.monotonic() < deadline:
            self._check_alive()
            ready = {n["metadata"]["name"] for n in self._items("/api/v1/nodes") if _ready(n)}
            pods = self._items("/api/v1/namespaces/kube-system/pods")
            if wanted <= ready and all(_ready(p) for p in pods):
                return
            time.sleep(0.5)
        raise ClusterError(f"nodes {sorted(wanted)} were not Ready within {self.spec.ready_timeout:.0f}s")

    # -- requests as the admin -----------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        tls = self.server.data_dir / "server" / "tls"
        context = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
        context.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
        return context

    def _get(self, path: str, *, raw: bool = False) -> Any:
        try:
            with urllib.request.urlopen(
                self.server_url + path, timeout=10, context=self._context()
            ) as answer:
                body = answer.read()
        except (OSError, urllib.error.URLError):
            return None
        return body if raw else orjson.loads(body)

    def _items(self, path: str) -> list[dict[str, Any]]:
        listed = self._get(path)
        return list(listed.get("items") or []) if isinstance(listed, dict) else []

    # -- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process (agents first), kill the pods they leave, then remove the network.

        A node's containers outlive its k3py process (as with K3s), so each node's
        ``k3py killall`` runs in its namespace before the data directory goes. Never raises.
        """
        for node in reversed(self.nodes):
            _stop(node)
            self._killall(node)
            shutil.rmtree(node.data_dir, ignore_errors=True)  # databases and keys; the logs stay
        problems = self.network.destroy()
        try:
            left = leftovers(self.run_id)
        except NetworkError as exc:
            left = [str(exc)]
        for problem in [*problems, *left]:
            log.error("teardown of cluster %s: %s", self.run_id, problem)

    def _killall(self, node: Node) -> None:
        command = [
            *_in_netns(node),
            *self._k3py(), "killall", "--data-dir", str(node.data_dir), "--node-name", node.name,
        ]  # fmt: skip
        try:
            with node.log_path.open("ab") as out:
                done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("killall of %s failed: %s", node.name, exc)
            return
        if done.returncode != 0:
            log.error("killall of %s exited %d (see %s)", node.name, done.returncode, node.log_path)

    def how_to_reach(self) -> str:
        pids = " ".join(str(n.process.pid) for n in self.nodes if n.process is not None)
        namespaces = " ".join(n.net.namespace for n in self.nodes)
        return (
            f"  export KUBECONFIG={self.kubeconfig}\n"
            f"  destroy: kill -- {' '.join('-' + p for p in pids.split())}; "
            f"for ns in {namespaces}; do ip netns delete $ns; done; ip link delete {self.network.bridge}"
        )


def _in_netns(node: Node) -> list[str]:
    """Enter only the node's network namespace: ``ip netns exec`` would also give the node a
    private mount namespace with a fresh /sys and no cgroup mounts, where runc cannot work."""
    return ["nsenter", f"--net=/run/netns/{node.net.namespace}", "--"]


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _stop(node: Node) -> None:
    process = node.process
    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop on %s", node.name, sig.name)


@contextmanager
def ephemeral_cluster(spec: ClusterSpec) -> Iterator[EphemeralCluster]:
    """The context manager as a function, for pytest fixtures: ``yield from``-friendly."""
    with EphemeralCluster(spec) as cluster:
        yield cluster
