"""The declaration of every setting: flag name, help, parser, default, environment variable.

This table is the single source of truth. The CLI builds its argparse options from it,
``config.build`` merges and parses values with it, and docs/cli.md documents it (a test
keeps the two in step). A flag's name is also its config file key and, with dashes turned
into underscores, its field in ``ServerConfig``/``AgentConfig``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from k3py.config import values
from k3py.config.model import DEFAULT_CONFIG_FILE, DISABLEABLE


class Kind(enum.Enum):
    VALUE = "value"
    """Takes one value; the last source wins."""
    LIST = "list"
    """Repeatable and comma-separated; the highest source replaces the whole list (as K3s)."""
    SWITCH = "switch"
    """A boolean: present on the command line means true."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    name: str
    help: str
    parse: Callable[[object], Any]
    default: Any = None
    default_help: str | None = None
    """How ``--help`` shows the default when ``default`` is computed or not shown as is."""
    kind: Kind = Kind.VALUE
    short: str | None = None
    env: str | None = None
    metavar: str | None = None
    required: bool = False

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def option_strings(self) -> tuple[str, ...]:
        return (f"-{self.short}", f"--{self.name}") if self.short else (f"--{self.name}",)

    @property
    def full_help(self) -> str:
        """The help text with its default and environment variable, as ``--help`` shows it."""
        shown = self.default_help if self.default_help is not None else self._shown_default()
        parts = [self.help]
        if shown:
            parts.append(f"(default: {shown})")
        if self.env:
            parts.append(f"[${self.env}]")
        return " ".join(parts)

    def _shown_default(self) -> str:
        if self.default is None or self.kind is Kind.SWITCH:
            return ""
        if isinstance(self.default, tuple | frozenset):
            return ", ".join(str(item) for item in self.default)
        return str(self.default)


CONFIG = Flag(
    name="config",
    short="c",
    env="K3PY_CONFIG_FILE",
    metavar="FILE",
    parse=values.path,
    default=DEFAULT_CONFIG_FILE,
    default_help=f"{DEFAULT_CONFIG_FILE}, if it exists",
    help="Load settings from this YAML file; its keys are flag names without dashes.",
)
DEBUG = Flag(name="debug", kind=Kind.SWITCH, parse=values.switch, default=False, help="Log at DEBUG level.")
DATA_DIR = Flag(
    name="data-dir",
    short="d",
    env="K3PY_DATA_DIR",
    metavar="DIR",
    parse=values.path,
    default="/var/lib/k3py",
    help="Directory that holds all state (database, credentials, images).",
)
TOKEN = Flag(
    name="token",
    short="t",
    env="K3PY_TOKEN",
    parse=values.text,
    help="Shared secret that nodes use to join the cluster.",
)
NODE_NAME = Flag(
    name="node-name",
    env="K3PY_NODE_NAME",
    parse=values.node_name,
    default_help="the hostname, lowercased",
    help="This node's name in the cluster.",
)
NODE_IP = Flag(
    name="node-ip",
    metavar="IP",
    parse=values.ip_address,
    help="IP address that this node advertises to the cluster.",
)
NODE_LABEL = Flag(
    name="node-label",
    kind=Kind.LIST,
    metavar="KEY=VALUE",
    parse=values.list_of(values.node_label),
    default=(),
    help="Label to register this node with (repeatable, or comma-separated).",
)
CONTAINER_RUNTIME_ENDPOINT = Flag(
    name="container-runtime-endpoint",
    metavar="SOCKET",
    parse=values.path,
    help="Use the CRI runtime at this unix socket instead of starting containerd.",
)
DISABLE_KUBE_PROXY = Flag(
    name="disable-kube-proxy",
    kind=Kind.SWITCH,
    parse=values.switch,
    default=False,
    help="Do not run the service proxy (Service cluster IPs and NodePorts need another one).",
)
EMBEDDED_REGISTRY = Flag(
    name="embedded-registry",
    kind=Kind.SWITCH,
    parse=values.switch,
    default=False,
    help=(
        "Serve this node's air-gap images as a registry mirror on loopback and have containerd try it "
        "first, for the registries of those images and those under mirrors: in --private-registry."
    ),
)
PRIVATE_REGISTRY = Flag(
    name="private-registry",
    metavar="FILE",
    parse=values.path,
    default="/etc/k3py/registries.yaml",
    default_help="/etc/k3py/registries.yaml, if it exists",
    help="Registry mirrors, in K3s's registries.yaml format (its mirrors: part).",
)

SERVER_FLAGS: tuple[Flag, ...] = (
    CONFIG,
    DEBUG,
    DATA_DIR,
    Flag(
        name="https-listen-port",
        metavar="PORT",
        parse=values.port,
        default=6443,
        help="Port the server listens on.",
    ),
    Flag(
        name="bind-address",
        metavar="IP",
        parse=values.ip_address,
        default="0.0.0.0",
        help="Address the server listens on.",
    ),
    Flag(
        name="advertise-address",
        metavar="IP",
        parse=values.ip_address,
        help="Address that the server advertises to the cluster members.",
    ),
    Flag(
        name="tls-san",
        kind=Kind.LIST,
        metavar="NAME",
        parse=values.list_of(values.subject_alt_name),
        default=(),
        help="Extra hostname or IP for the serving certificate (repeatable, or comma-separated).",
    ),
    TOKEN,
    Flag(
        name="datastore-endpoint",
        metavar="URL",
        parse=values.datastore_endpoint,
        default_help="sqlite://<data-dir>/server/db/state.db",
        help="Where cluster state is kept: sqlite://PATH or a file path (only SQLite for now).",
    ),
    Flag(
        name="datastore-compact-interval",
        metavar="SECONDS",
        parse=values.seconds,
        default="60",
        help="Seconds between compactions of the datastore history; 0 turns compaction off.",
    ),
    Flag(
        name="datastore-compact-retain",
        metavar="REVISIONS",
        parse=values.whole_number,
        default=0,
        help=(
            "Revisions of history that compaction keeps behind the newest one, however old they are "
            "(0: history is kept by age alone, as kube-apiserver compacts etcd)."
        ),
    ),
    Flag(
        name="datastore-compact-min-age",
        metavar="SECONDS",
        parse=values.seconds,
        default="300",
        help=(
            "Seconds of history compaction always keeps, so that watches can resume from that far "
            "back under any write rate (as kube-apiserver compacts etcd every 5 minutes)."
        ),
    ),
    Flag(
        name="cluster-cidr",
        metavar="CIDR",
        parse=values.cidr,
        default="10.42.0.0/16",
        help="Network for pod IPs.",
    ),
    Flag(
        name="service-cidr",
        metavar="CIDR",
        parse=values.cidr,
        default="10.43.0.0/16",
        help="Network for service IPs.",
    ),
    Flag(
        name="cluster-dns",
        metavar="IP",
        parse=values.ip_address,
        default="10.43.0.10",
        help="Cluster DNS service IP; must lie inside --service-cidr.",
    ),
    Flag(
        name="write-kubeconfig",
        short="o",
        metavar="FILE",
        parse=values.path,
        default="/etc/k3py/k3py.yaml",
        help="Where to write the admin kubeconfig.",
    ),
    Flag(
        name="write-kubeconfig-mode",
        metavar="MODE",
        parse=values.file_mode,
        default="0600",
        help="Octal file mode of the written kubeconfig, e.g. 0644.",
    ),
    Flag(
        name="disable",
        kind=Kind.LIST,
        metavar="COMPONENT",
        parse=values.list_of(values.disable_item),
        default=(),
        default_help="",
        help=f"Do not deploy this packaged component (repeatable; one of: {', '.join(DISABLEABLE)}).",
    ),
    Flag(
        name="runtime-config",
        kind=Kind.LIST,
        metavar="KEY=BOOL",
        parse=values.list_of(values.runtime_config_item, unique=False),
        default=(),
        default_help="",
        help=(
            "Turn API group-versions or single resources on or off, as kube-apiserver's flag: "
            "GROUP/VERSION=false, v1/RESOURCE=false, api/alpha=true (repeatable, or comma-separated). "
            "Only what this build's API manifest holds can be turned on (see docs/api-surface.md)."
        ),
    ),
    Flag(
        name="disable-agent",
        kind=Kind.SWITCH,
        parse=values.switch,
        default=False,
        help="Run only the control plane, without the embedded node agent.",
    ),
    Flag(
        name="disable-scheduler",
        kind=Kind.SWITCH,
        parse=values.switch,
        default=False,
        help="Do not run the scheduler (pods stay unbound unless something else binds them).",
    ),
    Flag(
        name="disable-controller-manager",
        kind=Kind.SWITCH,
        parse=values.switch,
        default=False,
        help="Do not run the workload, endpoint, node and garbage-collection controllers.",
    ),
    NODE_NAME,
    NODE_IP,
    NODE_LABEL,
    CONTAINER_RUNTIME_ENDPOINT,
    DISABLE_KUBE_PROXY,
    PRIVATE_REGISTRY,
    EMBEDDED_REGISTRY,
)

AGENT_FLAGS: tuple[Flag, ...] = (
    CONFIG,
    DEBUG,
    Flag(
        name="server",
        short="s",
        env="K3PY_URL",
        metavar="URL",
        parse=values.https_url,
        required=True,
        help="URL of the server to join, e.g. https://10.0.0.1:6443 (required).",
    ),
    dataclasses.replace(TOKEN, required=True, help="Shared secret to join the cluster with (required)."),
    DATA_DIR,
    NODE_NAME,
    NODE_IP,
    NODE_LABEL,
    CONTAINER_RUNTIME_ENDPOINT,
    DISABLE_KUBE_PROXY,
    PRIVATE_REGISTRY,
    EMBEDDED_REGISTRY,
)


def by_name(flags: Sequence[Flag]) -> dict[str, Flag]:
    return {flag.name: flag for flag in flags}


ALL_NAMES = frozenset(flag.name for flag in (*SERVER_FLAGS, *AGENT_FLAGS))
"""Every flag of every subcommand: a config file key outside this set is a mistake."""
