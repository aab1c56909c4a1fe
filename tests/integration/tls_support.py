"""HTTPS servers for tests that stand in for a pod or a webhook: a certificate from a CA of the
test's own, and an aiohttp site on loopback serving with it."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from k3py.pki.certs import SERVER_AUTH, LeafSpec, certs_to_pem, issue, key_to_pem, new_ca, new_key

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServingTls:
    """A serving certificate for 127.0.0.1 and ``dns_names``: the CA that signed it (what a
    client must trust) and a server-side context holding it."""

    ca_pem: bytes
    context: ssl.SSLContext


def serving_tls(directory: Path, ca_name: str, *dns_names: str) -> ServingTls:
    now = datetime.now(UTC)
    ca_key, key = new_key(), new_key()
    ca = new_ca(ca_name, ca_key, now)
    spec = LeafSpec(
        common_name=dns_names[0] if dns_names else "localhost",
        usage=SERVER_AUTH,
        dns_names=dns_names,
        ip_addresses=(ipaddress.ip_address(LOOPBACK),),
    )
    cert, pem_key = directory / f"{ca_name}.crt", directory / f"{ca_name}.key"
    cert.write_bytes(certs_to_pem(issue(spec, key, ca, ca_key, now)))
    pem_key.write_bytes(key_to_pem(key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, pem_key)
    return ServingTls(certs_to_pem(ca), context)


@asynccontextmanager
async def serving(app: web.Application, context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """``app`` on 127.0.0.1 (over TLS with ``context``) until the block ends; yields its port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, LOOPBACK, 0, ssl_context=context).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
