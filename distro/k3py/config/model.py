"""The settings of a k3py process: frozen, keyword-only, built once by ``config.build``.

Field names are the flag names with dashes turned into underscores, so a flag, its config
file key and its field can always be found from one another. Defaults are not repeated
here: they live with the flags (``config.flags``), the single place a setting is declared.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_CONFIG_FILE = Path("/etc/k3py/config.yaml")
RUN_DIR = Path("/run/k3py")
"""Runtime state that goes away at reboot: sockets (whose paths must stay short), containerd's
state directories."""
DISABLEABLE = ("coredns", "servicelb", "traefik", "local-storage", "metrics-server")
"""Packaged components that ``--disable`` may name (K3s's list, minus what k3py lacks)."""


def local_socket(data_dir: Path) -> Path:
    """The API server's local socket for ``data_dir``: one per data directory, however it is
    spelt, under ``RUN_DIR`` (a Unix socket's path must stay short). A server not run by root
    puts it in its session's runtime directory (``$XDG_RUNTIME_DIR``), else in its data
    directory."""
    data_dir = data_dir.resolve()
    tag = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    if os.geteuid() == 0:
        return RUN_DIR / f"server-{tag}" / "api.sock"
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime) / "k3py" / f"server-{tag}" / "api.sock"
    return data_dir / "server" / "run" / "api.sock"


@dataclass(frozen=True, slots=True)
class SQLiteEndpoint:
    """Where the SQLite datastore lives (``sqlite://PATH``)."""

    path: Path

    def __str__(self) -> str:
        return f"sqlite://{self.path}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Everything ``k3py server`` needs, validated; see ``docs/cli.md`` for each flag."""

    config: Path | None
    """The config file that was read, or None if there was none."""
    debug: bool
    data_dir: Path
    https_listen_port: int
    bind_address: IPAddress
    advertise_address: IPAddress | None
    tls_san: tuple[str, ...]
    token: str | None = field(repr=False)
    datastore_endpoint: SQLiteEndpoint
    datastore_compact_interval: float
    """Seconds between compactions; 0 turns compaction off."""
    datastore_compact_retain: int
    datastore_compact_min_age: float
    """Seconds of history compaction always keeps."""
    cluster_cidr: IPNetwork
    service_cidr: IPNetwork
    cluster_dns: IPAddress
    write_kubeconfig: Path
    write_kubeconfig_mode: int
    disable: frozenset[str]
    runtime_config: tuple[tuple[str, bool], ...]
    """``--runtime-config`` entries in order: (``group/version[/resource]`` or ``api/…``, enabled)."""
    disable_agent: bool
    disable_scheduler: bool
    disable_controller_manager: bool
    node_name: str
    node_ip: IPAddress | None
    node_label: tuple[tuple[str, str], ...] = ()
    container_runtime_endpoint: Path | None = None
    disable_kube_proxy: bool = False
    private_registry: Path | None = None
    embedded_registry: bool = False

    @property
    def agent_dir(self) -> Path:
        """``<data-dir>/agent``: the embedded agent's state (images, pod volumes, credentials)."""
        return self.data_dir / "agent"

    @property
    def server_dir(self) -> Path:
        """``<data-dir>/server``: the control plane's state (database, credentials)."""
        return self.data_dir / "server"

    @property
    def local_socket(self) -> Path:
        """The API server's socket for the components inside the server process."""
        return local_socket(self.data_dir)

    @property
    def listen_url(self) -> str:
        """The URL the server listens on."""
        host = self.bind_address
        shown = f"[{host}]" if host.version == 6 else str(host)
        return f"https://{shown}:{self.https_listen_port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """Everything ``k3py agent`` needs to join a server."""

    config: Path | None
    debug: bool
    server: str
    """The server's https URL, e.g. ``https://10.0.0.1:6443``."""
    token: str = field(repr=False)
    data_dir: Path
    node_name: str
    node_ip: IPAddress | None
    node_label: tuple[tuple[str, str], ...] = ()
    container_runtime_endpoint: Path | None = None
    disable_kube_proxy: bool = False
    private_registry: Path | None = None
    embedded_registry: bool = False

    @property
    def agent_dir(self) -> Path:
        """``<data-dir>/agent``: the node's state (images, pod volumes, credentials)."""
        return self.data_dir / "agent"
