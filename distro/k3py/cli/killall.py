"""``k3py killall``: stop one node's pods and clean up after them, like ``k3s-killall.sh``.

The handler resolves the data directory and node name (flag, else environment, else the
defaults ``k3py server``/``agent`` use), then :func:`k3py.agent.killall.killall` does the work
and this prints one line per thing done. Run it as root, after stopping the node's k3py, in the
node's network namespace when nodes share a host (``nsenter --net=/run/netns/NAME``; not ``ip netns
exec``, whose private mount namespace would keep the node's mounts on the host).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from k3py.agent.killall import killall, targets_for
from k3py.cli.errors import CLIError, UsageError
from k3py.config import ConfigError
from k3py.config import values as config_values
from k3py.config.flags import SERVER_FLAGS

DATA_DIR_ENV = "K3PY_DATA_DIR"
NODE_NAME_ENV = "K3PY_NODE_NAME"


class KillallError(CLIError):
    """killall cannot run here (not root) (exit 1)."""


def _default(flag_name: str) -> str:
    for flag in SERVER_FLAGS:
        if flag.name == flag_name and flag.default is not None:
            return str(flag.default)
    raise LookupError(flag_name)


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """``k3py killall`` and its flags."""
    parser = commands.add_parser(
        "killall",
        help="Kill a node's containers and remove its mounts, pod network and pod cgroups.",
        description="Kill the containerd shims of the node's containerd (and the containers under "
        "them), unmount what is mounted below the data directory and containerd's state directory "
        "and the pods' network namespaces, delete the cni0 bridge, its veths, k3py's iptables "
        "chains and routes, and remove the node's pod cgroups. The data directory itself is kept. "
        "Needs root; stop k3py first.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "-d",
        "--data-dir",
        metavar="DIR",
        help=f"The node's data directory (default: ${DATA_DIR_ENV}, else {_default('data-dir')}).",
    )
    parser.add_argument(
        "--node-name",
        metavar="NAME",
        help=f"The node whose pod cgroups (/k3py/NAME/) are removed "
        f"(default: ${NODE_NAME_ENV}, else the hostname, lowercased).",
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    data_dir = Path(args.data_dir or os.environ.get(DATA_DIR_ENV) or _default("data-dir"))
    raw_name = args.node_name or os.environ.get(NODE_NAME_ENV) or os.uname().nodename.lower()
    try:
        node_name = config_values.node_name(raw_name)
    except (ValueError, ConfigError) as exc:
        raise UsageError(f"--node-name: {exc}") from None
    if os.geteuid() != 0:
        raise KillallError("killall needs root (it kills containers, unmounts and changes the network)")
    data_dir = data_dir.resolve()
    if data_dir == Path("/"):
        raise UsageError("--data-dir: refusing to clean up below /")
    print(f"k3py killall: node {node_name}, data dir {data_dir}", file=out)
    done = killall(targets_for(data_dir, node_name), report=lambda line: print(f"  {line}", file=out))
    if not done:
        print("  nothing to do", file=out)
    return 0
