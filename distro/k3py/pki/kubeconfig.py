"""Kubeconfig files with embedded credentials, like K3s's /etc/rancher/k3s/k3s.yaml.

One cluster, one user and one context named "default" (the current context); the CA,
client certificate and key are embedded as base64 ``*-data`` fields, so the file stands on
its own. :func:`write_kubeconfig` writes it atomically with the mode the operator chose
(``--write-kubeconfig-mode``), creating the parent directories.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from k3py.pki.files import ensure_dir, write_atomic

CONTEXT = "default"


def kubeconfig(
    server_url: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    *,
    cluster: str = "default",
    user: str = "default",
) -> str:
    """The YAML text of a kubeconfig for ``server_url`` authenticating with a client certificate."""
    if not server_url.startswith("https://"):
        raise ValueError(f"server URL must start with https://, got {server_url!r}")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server_url, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": cluster, "user": user}}],
        "current-context": CONTEXT,
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)},
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=1 << 20)


def write_kubeconfig(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` atomically with exactly ``mode``, creating parent directories."""
    ensure_dir(path.parent)
    write_atomic(path, text.encode(), mode)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
