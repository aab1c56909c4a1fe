"""TLS for the API server: the listening socket's context and who a client certificate names.

The server asks every client for a certificate but does not require one
(``CERT_OPTIONAL``): a certificate that is presented must chain to the client CA or the
handshake fails, while a client without one still connects, so the API server can answer
it with 401 or authenticate it by a bearer token. :func:`client_identity` turns the
verified peer certificate into a user name (CN) and groups (every O), as kube-apiserver's
x509 authenticator does.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path

from k3py.pki.bundle import Pki
from k3py.pki.errors import PkiError


def ssl_server_context(pki: Pki) -> ssl.SSLContext:
    """A server context for aiohttp: TLS 1.2+, the serving chain, client certificates optional."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(pki.serving.cert_path, pki.serving.key_path)
    except (OSError, ssl.SSLError) as exc:
        raise PkiError(pki.serving.cert_path, f"cannot load the serving certificate and key: {exc}") from exc
    context.load_verify_locations(cadata=pki.client_ca.cert_pem.decode("ascii"))
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])  # aiohttp speaks HTTP/1.1; kubectl then does too
    return context


def client_identity(peercert: Mapping[str, object] | None) -> tuple[str, list[str]] | None:
    """(user, groups) from ``SSLObject.getpeercert()``; None without a verified certificate.

    The user is the subject's common name (the last one if there are several, as Go reads
    it), the groups are its organization values in order. A certificate without a CN names
    nobody, so it yields None too.
    """
    if not peercert:
        return None  # no certificate, or {} for one that was not verified
    subject = peercert.get("subject")
    if not isinstance(subject, tuple):
        return None
    common_name: str | None = None
    organizations: list[str] = []
    for rdn in subject:
        if not isinstance(rdn, tuple):
            continue
        for attribute in rdn:
            if not (isinstance(attribute, tuple) and len(attribute) == 2):
                continue
            name, value = attribute
            if not isinstance(value, str):
                continue
            if name == "commonName":
                common_name = value
            elif name == "organizationName":
                organizations.append(value)
    if not common_name:
        return None
    return common_name, organizations


def load_pem_pair(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """``context.load_cert_chain`` from bytes: it reads files only, so it gets a private copy."""
    with tempfile.TemporaryDirectory(prefix="k3py-tls-") as tmp:
        path = Path(tmp) / "pair.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(cert_pem + b"\n" + key_pem)
        context.load_cert_chain(path)
