"""PodCertificateRequests (certificates.k8s.io/v1) in the API model: what each write may
change, the key types both ends agree on, and the helpers the kubelet and a signer read the
object with.

A kubelet asks for a certificate for one ``podCertificate`` projected volume source by
creating a request that names the pod, its service account and its node (with their UIDs)
and carries a stub PKCS#10 request signed by the new private key. A signer answers through
``/status``, once: an Issued condition with the chain and its times, or Denied, or Failed.

kube-apiserver serves a request through two strategies, and so does k3py
(``k3py.apiserver.strategy`` calls these):

- the resource itself: create starts from an empty status and defaults
  ``spec.maxExpirationSeconds`` (the v1 type's ``+default=86400``); an update changes metadata
  only (the status is kept; the spec is immutable, which validation checks);
- ``/status``: the status only (the spec and the metadata stay as stored, as
  ``ResetObjectMetaForStatus`` keeps them).

Upstream's validation rules are in ``k3py.api.pcr_validation``.
"""

from __future__ import annotations

import base64
import binascii
import copy
from datetime import UTC, datetime
from typing import Any

# A request is read as a CSR is read; callers take these from here.
from k3py.api.certificates import conditions as conditions
from k3py.api.certificates import spec as spec
from k3py.api.certificates import status as status

Obj = dict[str, Any]

GROUP, VERSION, PLURAL, KIND = "certificates.k8s.io", "v1", "podcertificaterequests", "PodCertificateRequest"
RESOURCE = f"{PLURAL}.{GROUP}"
"""The resource's name in ``k3py.api.resources`` (``plural.group``), for every served version."""

ISSUED, DENIED, FAILED = "Issued", "Denied", "Failed"
TERMINAL = (ISSUED, DENIED, FAILED)
"""The condition types a signer may set, each only with status True, at most one of them."""
UNSUPPORTED_KEY_TYPE = "UnsupportedKeyType"
INVALID_USER_ANNOTATIONS = "InvalidUnverifiedUserAnnotations"

DEFAULT_MAX_EXPIRATION_SECONDS = 86400
MIN_MAX_EXPIRATION_SECONDS = 3600
MAX_MAX_EXPIRATION_SECONDS = 7862400  # 91 days
KUBERNETES_MAX_MAX_EXPIRATION_SECONDS = 86400
"""Signers named ``kubernetes.io/...`` issue for a day at most."""
MAX_STUB_PKCS10_REQUEST_SIZE = 10 * 1024
MAX_CERTIFICATE_CHAIN_SIZE = 100 * 1024

KEY_TYPES = ("RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519")
"""``podCertificate.keyType`` values, in upstream's order (its NotSupported message lists them so)."""


# -- reading the object ------------------------------------------------------------------------


def terminal_condition(obj: Obj) -> Obj | None:
    """The Issued, Denied or Failed condition (status True) of a request, if a signer set one."""
    for condition in conditions(obj):
        if condition.get("type") in TERMINAL and condition.get("status") == "True":
            return condition
    return None


def is_kubernetes_signer(name: str) -> bool:
    """``IsKubernetesSignerName``: the ``kubernetes.io`` domain or one of its subdomains."""
    domain = name.split("/", 1)[0]
    return domain == "kubernetes.io" or domain.endswith(".kubernetes.io")


def max_expiration_limit(signer: str) -> int:
    """The longest ``maxExpirationSeconds`` a request (or a projection) may ask ``signer`` for."""
    return (
        KUBERNETES_MAX_MAX_EXPIRATION_SECONDS if is_kubernetes_signer(signer) else MAX_MAX_EXPIRATION_SECONDS
    )


def decode_bytes(value: object) -> bytes | None:
    """A ``[]byte`` field's bytes (base64 in JSON); None when missing or not base64."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def encode_bytes(data: bytes) -> str:
    """A ``[]byte`` field's JSON form."""
    return base64.b64encode(data).decode()


def parse_time(value: object) -> datetime | None:
    """A ``metav1.Time`` (RFC 3339, seconds) as an aware datetime; None when unset or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """A ``metav1.Time``'s JSON form: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- what each write may change ------------------------------------------------------------------


def prepare_create(obj: Obj) -> None:
    """A new request has no answer yet, and asks for a day unless it says otherwise."""
    obj["status"] = {}
    default(obj)


def default(obj: Obj) -> None:
    """``spec.maxExpirationSeconds`` defaults to a day, on every write (as decoding defaults it)."""
    body = obj.get("spec")
    if isinstance(body, dict) and body.get("maxExpirationSeconds") is None:
        body["maxExpirationSeconds"] = DEFAULT_MAX_EXPIRATION_SECONDS


def prepare_update(new: Obj, old: Obj) -> None:
    """The resource itself never writes the status (``/status`` does)."""
    if "status" in old:
        new["status"] = copy.deepcopy(old["status"])
    else:
        new.pop("status", None)
    default(new)


def prepare_status_update(new: Obj, old: Obj) -> None:
    """``/status`` writes the status only: spec and metadata (but managed fields) stay as stored."""
    wanted = new.get("status")
    meta = new.get("metadata")
    managed = meta.get("managedFields") if isinstance(meta, dict) else None
    new.clear()
    new.update(copy.deepcopy(old))
    if wanted is None:
        new.pop("status", None)
    else:
        new["status"] = wanted
    if managed is not None:
        new["metadata"]["managedFields"] = managed
