"""The cluster PKI: CAs, the API server's serving certificate, client certificates, kubeconfigs.

``k3py server`` calls :func:`ensure_pki` once at start with its TLS directory
(``<data-dir>/server/tls``) and the serving SANs; it creates the CAs on the first run and
afterwards reuses them, reissuing leaf certificates only when needed (``bundle``). The
server then listens with :func:`ssl_server_context` and maps a verified client certificate
to a user with :func:`client_identity` (``tls``), and writes the admin kubeconfig with
:func:`kubeconfig` / :func:`write_kubeconfig` (``kubeconfig``). Key and certificate
operations live in ``certs``, file handling in ``files``. Every failure is a
:class:`PkiError` naming the file.
"""

from k3py.pki.bundle import CertKey, Pki, ensure_pki
from k3py.pki.errors import PkiError
from k3py.pki.kubeconfig import kubeconfig, write_kubeconfig
from k3py.pki.tls import client_identity, ssl_server_context

__all__ = [
    "CertKey",
    "Pki",
    "PkiError",
    "client_identity",
    "ensure_pki",
    "kubeconfig",
    "ssl_server_context",
    "write_kubeconfig",
]
