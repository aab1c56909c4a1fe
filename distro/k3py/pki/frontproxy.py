"""The front-proxy PKI: the request-header CA and the client certificate the API server proxies with.

When the API server forwards a request to an aggregated API server (an APIService backed by a
Service), it presents ``client-auth-proxy.crt`` (CN ``system:auth-proxy``) and names the user
in ``X-Remote-*`` headers. The backend believes those headers only from a client whose
certificate chains to the request-header CA and whose CN is an allowed name; it learns both
from the ``kube-system/extension-apiserver-authentication`` ConfigMap. The files keep K3s's
names, next to the cluster's other certificates::

    request-header-ca.crt, request-header-ca.key     the CA (its own: never the client CA, or
                                                     every client certificate could set headers)
    client-auth-proxy.crt, client-auth-proxy.key     system:auth-proxy, then the CA

:func:`ensure_front_proxy` follows :func:`k3py.pki.ensure_pki`'s rules, applied on their own so
a TLS directory made before aggregation existed gains the pair at its next start: the CA is
created when neither of its files exists, a half-present CA is an error, and the client
certificate is reissued (with its key) when missing, foreign, mis-named or near expiry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from k3py.pki import certs
from k3py.pki.bundle import CertKey, _Found, _leaf, _load_ca, _new_ca, _Plan
from k3py.pki.certs import LeafSpec
from k3py.pki.errors import PkiError
from k3py.pki.files import ensure_dir, write_atomic

log = logging.getLogger(__name__)

REQUEST_HEADER_CA = "request-header-ca"
AUTH_PROXY = "client-auth-proxy"
AUTH_PROXY_USER = "system:auth-proxy"

AUTH_PROXY_SPEC = LeafSpec(common_name=AUTH_PROXY_USER, usage=certs.CLIENT_AUTH)


@dataclass(frozen=True, slots=True, kw_only=True)
class FrontProxy:
    """The request-header CA and the proxy's client pair, as written."""

    request_header_ca: CertKey
    client: CertKey
    written: tuple[Path, ...] = ()


def ensure_front_proxy(tls_dir: Path, *, now: datetime | None = None) -> FrontProxy:
    """Create or reuse the front-proxy CA and client certificate in ``tls_dir``."""
    now = datetime.now(UTC) if now is None else now
    ensure_dir(tls_dir, mode=0o700)
    ca_found = _Found.read(tls_dir, REQUEST_HEADER_CA)
    client_found = _Found.read(tls_dir, AUTH_PROXY)
    plan = _Plan()
    if not ca_found.present():
        log.info("creating the request-header CA in %s", tls_dir)
        issuer = _new_ca(ca_found, REQUEST_HEADER_CA, now, plan)
    elif missing := ca_found.missing():
        raise PkiError(
            missing[0],
            f"missing, but {ca_found.present()[0].name} exists: restore the pair from a backup, or "
            "delete both files to make a new request-header CA (aggregated API servers then "
            "re-read it from the extension-apiserver-authentication ConfigMap)",
        )
    else:
        issuer = _load_ca(ca_found, now)
    client = _leaf(client_found, AUTH_PROXY_SPEC, issuer, now, plan)
    for path, data, mode in plan.writes:
        write_atomic(path, data, mode)
    return FrontProxy(
        request_header_ca=issuer.files,
        client=client,
        written=tuple(path for path, _, _ in plan.writes),
    )
