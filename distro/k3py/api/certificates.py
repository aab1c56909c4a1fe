"""CertificateSigningRequests (certificates.k8s.io/v1) in the API model: what each write may
change, and the helpers the approver and the signer read the object with.

kube-apiserver serves a CSR through three strategies, and so does k3py
(``k3py.apiserver.strategy`` calls these):

- the resource itself: create clears the requester fields (``spec.username``, ``uid``,
  ``groups``, ``extra``: admission fills them from the authenticated user) and the status;
  an update changes metadata only (spec and status are kept);
- ``/status``: the status, except the Approved and Denied conditions (kept as they were, so
  adding or removing one there is a validation error); this is where a signer puts
  ``status.certificate`` or a Failed condition;
- ``/approval``: ``status.conditions`` only (``kubectl certificate approve|deny``).

Conditions without ``lastUpdateTime`` get the time of the write, and without
``lastTransitionTime`` the time of an existing condition of the same type and status, else
the time of the write. Upstream's validation rules are in ``k3py.api.csr_validation``.
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from k3py.api import objects

Obj = dict[str, Any]

GROUP, VERSION, PLURAL = "certificates.k8s.io", "v1", "certificatesigningrequests"
RESOURCE = f"{PLURAL}.{GROUP}"
"""The resource's name in ``k3py.api.resources`` (``plural.group``)."""

APPROVED, DENIED, FAILED = "Approved", "Denied", "Failed"
LEGACY_UNKNOWN_SIGNER = "kubernetes.io/legacy-unknown"
MIN_EXPIRATION_SECONDS = 600

VALID_USAGES = (  # allValidUsages.List(): sorted
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
)
_REQUESTER_FIELDS = ("username", "uid", "groups", "extra")


# -- reading the object ------------------------------------------------------------------------


def _dict(value: object) -> Obj:
    return value if isinstance(value, dict) else {}


def spec(obj: Obj) -> Obj:
    return _dict(obj.get("spec"))


def status(obj: Obj) -> Obj:
    return _dict(obj.get("status"))


def conditions(obj: Obj) -> list[Obj]:
    found = status(obj).get("conditions")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def of_type(obj: Obj, kind: str) -> list[Obj]:
    return [c for c in conditions(obj) if c.get("type") == kind]


def is_approved(obj: Obj) -> bool:
    """Approved and not Denied (upstream's ``IsCertificateRequestApproved``)."""
    return bool(of_type(obj, APPROVED)) and not of_type(obj, DENIED)


def is_decided(obj: Obj) -> bool:
    """Approved or Denied already: nothing left for an approver to do."""
    return bool(of_type(obj, APPROVED) or of_type(obj, DENIED))


def is_failed(obj: Obj) -> bool:
    return any(c.get("status") == "True" for c in of_type(obj, FAILED))


def usages(obj: Obj) -> list[str]:
    found = spec(obj).get("usages")
    return [str(u) for u in found] if isinstance(found, list) else []


def decode_bytes(value: object) -> bytes | None:
    """A ``[]byte`` field's bytes (base64 in JSON); None when it does not decode."""
    if value is None:
        return b""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def request_pem(obj: Obj) -> bytes:
    """``spec.request`` decoded (empty when missing or not base64)."""
    return decode_bytes(spec(obj).get("request")) or b""


def certificate_pem(obj: Obj) -> bytes:
    """``status.certificate`` decoded (empty until a signer issued one)."""
    return decode_bytes(status(obj).get("certificate")) or b""


def encode_bytes(data: bytes) -> str:
    """A ``[]byte`` field's JSON form."""
    return base64.b64encode(data).decode()


def new_condition(kind: str, reason: str, message: str, now: str | None = None) -> Obj:
    """A True condition written now (an approver's or a signer's)."""
    moment = now or objects.now()
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastUpdateTime": moment,
        "lastTransitionTime": moment,
    }


# -- what each write may change ------------------------------------------------------------------


def prepare_create(obj: Obj) -> None:
    """No requester but the authenticated one (admission sets it), no pre-approved requests."""
    body = obj.get("spec")
    if isinstance(body, dict):
        for name in _REQUESTER_FIELDS:
            body.pop(name, None)
    obj["status"] = {}


def set_requester(obj: Obj, user_info: Obj) -> None:
    """Record who asked: ``user_info`` is an authentication.k8s.io ``UserInfo`` (empty fields omitted)."""
    body = obj.get("spec")
    if not isinstance(body, dict):
        body = obj["spec"] = {}
    for name in _REQUESTER_FIELDS:
        body.pop(name, None)
    for name in _REQUESTER_FIELDS:
        value = user_info.get(name)
        if value:
            body[name] = copy.deepcopy(value)


def prepare_update(new: Obj, old: Obj) -> None:
    """The resource itself changes metadata only: a request is immutable once made."""
    _keep(new, old, "spec")
    _keep(new, old, "status")


def prepare_status_update(new: Obj, old: Obj) -> None:
    """``/status`` keeps the spec and the Approved and Denied conditions as they were."""
    _keep(new, old, "spec")
    for kind in (APPROVED, DENIED):
        _preserve_instances(new, old, kind)
    _stamp_conditions(new, old)


def prepare_approval_update(new: Obj, old: Obj) -> None:
    """``/approval`` changes ``status.conditions`` only (the caller kept the rest)."""
    _keep(new, old, "spec")
    _stamp_conditions(new, old)


def _keep(new: Obj, old: Obj, key: str) -> None:
    if key in old:
        new[key] = copy.deepcopy(old[key])
    else:
        new.pop(key, None)


def _preserve_instances(new: Obj, old: Obj, kind: str) -> None:
    """Put back the old conditions of ``kind``, unless some were added or removed (which
    validation then refuses)."""
    new_list = status(new).get("conditions")
    if not isinstance(new_list, list):
        return
    new_at = [i for i, c in enumerate(new_list) if isinstance(c, dict) and c.get("type") == kind]
    old_ones = of_type(old, kind)
    if len(new_at) != len(old_ones):
        return
    for index, condition in zip(new_at, old_ones, strict=True):
        new_list[index] = copy.deepcopy(condition)


def _stamp_conditions(new: Obj, old: Obj) -> None:
    now = objects.now()
    old_conditions = conditions(old)
    for condition in conditions(new):
        if not condition.get("lastUpdateTime"):
            condition["lastUpdateTime"] = now
        if not condition.get("lastTransitionTime"):
            condition["lastTransitionTime"] = next(
                (
                    c["lastTransitionTime"]
                    for c in old_conditions
                    if c.get("type") == condition.get("type")
                    and c.get("status") == condition.get("status")
                    and c.get("lastTransitionTime")
                ),
                now,
            )
