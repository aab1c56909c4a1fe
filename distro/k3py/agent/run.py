"""The ``k3py agent`` flow: join a server and run this node's workloads (not yet built).

The flow will be: fetch the cluster CA from ``--server`` and check it against
``--token``, start containerd, register the node through the same client a remote agent
uses, then run the kubelet, the network and the service proxy as supervised tasks. Until
that exists, ``run_agent`` raises :class:`AgentNotImplemented` instead of pretending.
"""

from __future__ import annotations

from k3py.config import AgentConfig


class AgentNotImplemented(Exception):
    """The agent cannot run: this version of k3py has no node agent yet."""


def run_agent(config: AgentConfig) -> None:
    """Join ``config.server`` and run until stopped (not implemented yet: always raises)."""
    raise AgentNotImplemented(
        f"the node agent is not implemented yet: cannot join {config.server} as {config.node_name}; "
        "run `k3py server` for a control plane without workloads"
    )
