"""Where a proxied request goes and what it carries: no I/O here.

:func:`pick_endpoint` is upstream's ``ResolveEndpoint`` (endpoint routing): the Service port
whose number the APIService names, then a ready address, picked at random, of an EndpointSlice
port with that port's name (the Service's first IP family's slices first). The aggregator dials
that pod address directly, so it needs no cluster-IP routing on the server's host.

:func:`forwarded_headers` is what the request carries to the backend: the client's headers
minus hop-by-hop ones, its credentials (``Authorization``: the client authenticated to this
server, not to the backend) and any ``X-Remote-*`` or ``Impersonate-*`` it sent, plus the user
this server authenticated, in the request-header form kube-aggregator's
``SetAuthProxyHeaders`` writes: ``X-Remote-User``, ``X-Remote-Uid``, one ``X-Remote-Group``
per group and one ``X-Remote-Extra-<key>`` per extra value (the key percent-encoded). The
backend believes them because the proxy's client certificate chains to the request-header CA.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from k3py.apiserver.authn import User
from k3py.apiserver.kubelet_proxy.upgrade import HOP_BY_HOP

Obj = dict[str, Any]

USER_HEADER = "X-Remote-User"
UID_HEADER = "X-Remote-Uid"
GROUP_HEADER = "X-Remote-Group"
EXTRA_PREFIX = "X-Remote-Extra-"

ROUTABLE_TYPES = ("ClusterIP", "LoadBalancer", "NodePort")

_PRIVATE = frozenset(h.lower() for h in ("Authorization", USER_HEADER, UID_HEADER, GROUP_HEADER))
_PRIVATE_PREFIXES = (EXTRA_PREFIX.lower(), "impersonate-")


class Unroutable(Exception):
    """No address to send the request to; the message says why (upstream's wording)."""


def pick_endpoint(
    service: Obj, slices: Sequence[Obj], port: int, rng: random.Random | None = None
) -> tuple[str, int]:
    """``(address, port)`` of a ready endpoint behind ``service``'s port ``port``."""
    rng = rng or random.Random()
    name = str((service.get("metadata") or {}).get("name") or "")
    spec = service.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    if kind not in ROUTABLE_TYPES:
        raise Unroutable(f'unsupported service type "{kind}"')
    service_port = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
    if service_port is None:
        raise Unroutable(f'no service port {port} found for service "{name}"')
    port_name = str(service_port.get("name") or "")
    families = spec.get("ipFamilies") or []
    preferred = str(families[0]) if families else ""
    order = list(slices)
    rng.shuffle(order)
    order.sort(key=lambda s: s.get("addressType") != preferred)
    for endpoint_slice in order:
        endpoints = list(endpoint_slice.get("endpoints") or [])
        for slice_port in endpoint_slice.get("ports") or []:
            if str(slice_port.get("name") or "") != port_name or not isinstance(slice_port.get("port"), int):
                continue
            if not endpoints:
                continue
            offset = rng.randrange(len(endpoints))
            for i in range(len(endpoints)):
                endpoint = endpoints[(i + offset) % len(endpoints)]
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                addresses = endpoint.get("addresses") or []
                if addresses:
                    return str(addresses[0]), int(slice_port["port"])
    raise Unroutable(f'no endpoints available for service "{name}"')


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def identity_headers(user: User) -> list[tuple[str, str]]:
    """The user as request headers (``SetAuthProxyHeaders``)."""
    headers = [(USER_HEADER, user.name)]
    if user.uid:
        headers.append((UID_HEADER, user.uid))
    headers += [(GROUP_HEADER, group) for group in user.groups]
    for key, values in user.extra:
        headers += [(EXTRA_PREFIX + quote(key, safe=""), value) for value in values]
    return headers


def forwarded_headers(incoming: Iterable[tuple[str, str]], user: User) -> list[tuple[str, str]]:
    """The headers a proxied request carries to the backend (module docstring)."""
    kept = [
        (name, value)
        for name, value in incoming
        if (lower := name.lower()) not in HOP_BY_HOP
        and lower not in _PRIVATE
        and not lower.startswith(_PRIVATE_PREFIXES)
    ]
    return kept + identity_headers(user)


def response_headers(answer: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The backend's response headers relayed to the client (hop-by-hop ones dropped)."""
    dropped = HOP_BY_HOP | {"date", "server"}
    return [(name, value) for name, value in answer if name.lower() not in dropped]
