"""The cluster PKI: CAs, the API server's serving certificate, client certificates, kubeconfigs.

``k3py server`` calls :func:`ensure_pki` once at start with its TLS directory
(``<data-dir>/server/tls``) and the serving SANs; it creates the CAs on the first run and
afterwards reuses them, reissuing leaf certificates only when needed (``bundle``). The
server then listens with :func:`ssl_server_context` and maps a verified client certificate
to a user with :func:`client_identity` (``tls``); it calls kubelets as ``system:apiserver``
with :attr:`Pki.kubelet_client`. It writes the admin kubeconfig with
:func:`kubeconfig` / :func:`write_kubeconfig` (``kubeconfig``). Key and certificate
operations live in ``certs``, file handling in ``files``. Every failure is a
:class:`PkiError` naming the file.

Service-account tokens (``serviceaccount``): :func:`ensure_service_account_key` keeps the
signing key in ``service.key``; a :class:`TokenIssuer` issues and verifies the tokens
(raising :class:`TokenError`) and renders the OIDC discovery documents.
"""

from k3py.pki.bundle import CertKey, Pki, ensure_pki
from k3py.pki.errors import PkiError
from k3py.pki.jws import TokenError, TokenErrorReason
from k3py.pki.kubeconfig import kubeconfig, write_kubeconfig
from k3py.pki.serviceaccount import (
    BoundObject,
    NodeRef,
    ServiceAccountClaims,
    ServiceAccountKey,
    TokenIssuer,
    ensure_service_account_key,
    openid_configuration,
)
from k3py.pki.tls import client_identity, ssl_server_context

__all__ = [
    "BoundObject",
    "CertKey",
    "NodeRef",
    "Pki",
    "PkiError",
    "ServiceAccountClaims",
    "ServiceAccountKey",
    "TokenError",
    "TokenErrorReason",
    "TokenIssuer",
    "client_identity",
    "ensure_pki",
    "ensure_service_account_key",
    "kubeconfig",
    "openid_configuration",
    "ssl_server_context",
    "write_kubeconfig",
]
