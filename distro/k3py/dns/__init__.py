"""Cluster DNS: the names of Services and pods under the cluster domain, and forwarding of the rest.

``wire`` is the message format, ``zone`` the cluster's records, ``forward`` the upstream
nameservers, ``resolver`` one query to one answer, ``transport`` the UDP and TCP servers,
``endpoints`` the Endpoints/EndpointSlices a server writes for itself, and ``cluster`` the
runner the k3py server starts.
"""

from k3py.dns.cluster import ClusterDns, DnsError, DnsSettings

__all__ = ["ClusterDns", "DnsError", "DnsSettings"]
