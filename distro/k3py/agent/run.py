"""The ``k3py agent`` flow: join a server, then run this node's workloads (not yet built).

Joining works (``k3py.agent.join``): the server's CA is checked against the token, and the
node obtains its ``system:node:<name>`` client certificate and its kubelet serving
certificate through CertificateSigningRequests. Running pods (containerd, the kubelet, the
network and the service proxy as supervised tasks) does not exist yet, so after joining
``run_agent`` raises :class:`AgentNotImplemented` instead of pretending.
"""

from __future__ import annotations

import asyncio

from k3py.agent.join import JoinError, join, node_user
from k3py.config import AgentConfig

__all__ = ["AgentNotImplemented", "JoinError", "run_agent"]


class AgentNotImplemented(Exception):
    """The agent cannot run pods: this version of k3py has no kubelet yet."""


def run_agent(config: AgentConfig) -> None:
    """Join ``config.server`` as ``config.node_name``, then stop: raises after a successful join."""
    identity = asyncio.run(join(config))
    raise AgentNotImplemented(
        f"joined {config.server} as {node_user(identity.name)} (credentials in {config.agent_dir}), "
        "but the node agent that runs pods is not implemented yet"
    )
