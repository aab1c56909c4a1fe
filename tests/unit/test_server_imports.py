"""A server started with ``--disable-agent`` does not load the node agent's modules: the CLI
and the server import them only when a node runs (every module costs memory for the life of
the process, and the idle server's memory has a floor)."""

from __future__ import annotations

import subprocess
import sys

NODE_MODULES = ("k3py.agent.run", "k3py.agent.kubelet", "k3py.agent.cri", "k3py.agent.containerd")


def test_the_cli_and_the_server_load_no_node_modules() -> None:
    probe = "import sys, k3py.cli.main, k3py.server.run; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "k3py.server.run" in loaded
    assert not loaded.intersection(NODE_MODULES), sorted(loaded.intersection(NODE_MODULES))
