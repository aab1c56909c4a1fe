"""This host's addresses."""

from __future__ import annotations

import ipaddress
import socket


def node_ip(given: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """``--node-ip``, else the address this host would use for outbound traffic (no packet is sent)."""
    if given is not None:
        return str(given)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
            address: str = probe.getsockname()[0]
            return address
        except OSError:
            return "127.0.0.1"
