"""Upstream's validation of PodCertificateRequests (``pkg/apis/certificates/validation``) and of
the ``podCertificate`` projected volume source a pod asks for one with.

- create: the signer name, the pod, service account and node names and UIDs, the user
  annotations, ``maxExpirationSeconds`` in [1 h, 91 days] (a day for ``kubernetes.io`` signers)
  and a stub PKCS#10 request of a supported key type whose signature verifies (the proof that
  the kubelet holds the private key);
- update of the resource: the spec is immutable (metadata is ``k3py.api.validation``'s);
- ``/status``: at most one of the Issued, Denied and Failed conditions, True; once one is set
  the status is frozen; Denied and Failed carry nothing but conditions; Issued carries a PEM
  chain of certificates whose leaf holds the requested public key, with ``notBefore`` and
  ``notAfter`` equal to the leaf's (``notBefore`` within five minutes of now), a lifetime of at
  least an hour and at most ``maxExpirationSeconds``, and ``beginRefreshAt`` ten minutes
  inside both ends. Any other status change is refused.

The messages are upstream's, so clients (and conformance tests) see the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from k3py.api import podcertificates as pcrs
from k3py.api.csr_validation import signer_name_causes
from k3py.api.podcertificates import Obj
from k3py.api.selectors import label_key_errors
from k3py.api.validation import (
    MAX_ANNOTATIONS_SIZE,
    Cause,
    Shown,
    dns_subdomain_errors,
    duplicate,
    invalid,
    not_supported,
    required,
    too_long,
)

PKCS10_PATH = "spec.stubPKCS10Request"
CHAIN_PATH = "status.certificateChain"
_OMITTED = Shown("<value omitted>")
_REASON = re.compile(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?")
_REASON_MESSAGE = (
    "a condition reason must start with alphabetic character, optionally followed by a string of "
    "alphanumeric characters or '_,:', and must end with an alphanumeric character or '_' (e.g. "
    "'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex "
    "used for validation is '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')"
)
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def validate(obj: Obj, old: Obj | None, subresource: str = "", now: datetime | None = None) -> list[Cause]:
    """The request-specific causes of a create (``old`` None), an update of the resource, or
    an update through ``/status``."""
    if old is None:
        return _create_causes(obj)
    if subresource == "status":
        return status_causes(obj, old, now or datetime.now(UTC))
    if pcrs.spec(obj) != pcrs.spec(old):
        return [invalid("spec", _OMITTED, "field is immutable")]
    return []


# -- create --------------------------------------------------------------------------------------


def _create_causes(obj: Obj) -> list[Cause]:
    body = pcrs.spec(obj)
    signer = str(body.get("signerName") or "")
    causes = signer_name_causes("spec.signerName", signer)
    annotations = body.get("unverifiedUserAnnotations")
    if annotations is not None:
        causes += user_annotation_causes(annotations, "spec.unverifiedUserAnnotations")
    for name in ("podName", "serviceAccountName", "nodeName"):
        value = str(body.get(name) or "")
        causes += [invalid(f"spec.{name}", value, msg) for msg in dns_subdomain_errors(value)]
    for name in ("podUID", "serviceAccountUID", "nodeUID"):
        value = str(body.get(name) or "")
        if not value:
            causes.append(invalid(f"spec.{name}", value, "must not be empty"))
        elif len(value) > 128:
            causes.append(too_long(f"spec.{name}", 128))
    seconds = body.get("maxExpirationSeconds")
    if seconds is None:
        return [*causes, required("spec.maxExpirationSeconds", "must be set")]
    limit = pcrs.max_expiration_limit(signer)
    if not isinstance(seconds, int) or not pcrs.MIN_MAX_EXPIRATION_SECONDS <= seconds <= limit:
        causes.append(
            invalid(
                "spec.maxExpirationSeconds",
                seconds,
                f"must be in the range [{pcrs.MIN_MAX_EXPIRATION_SECONDS}, {limit}]",
            )
        )
    has_stub = bool(body.get("stubPKCS10Request"))
    if not has_stub or body.get("pkixPublicKey") or body.get("proofOfPossession"):
        message = "exactly one of (stubPKCS10Request) or (pkixPublicKey, proofOfPossession) must be set"
        return [*causes, invalid("spec", _OMITTED, message)]
    return causes + stub_request_causes(body.get("stubPKCS10Request"))


def user_annotation_causes(annotations: object, field: str) -> list[Cause]:
    """``ValidateUserAnnotations``: domain-prefixed keys (case aside), 256 KiB in all."""
    if not isinstance(annotations, Mapping):
        return [invalid(field, _OMITTED, "must be a map of strings")]
    causes: list[Cause] = []
    size = 0
    for key in sorted(annotations):
        lowered = str(key).lower()
        problems = label_key_errors(lowered) if lowered else []
        if not lowered:
            causes.append(required(field))
        elif problems:
            causes += [invalid(field, lowered, msg) for msg in problems]
        elif lowered.count("/") != 1:
            causes.append(invalid(field, lowered, 'must be a domain-prefixed key (such as "acme.io/foo")'))
        size += len(str(key).encode()) + len(str(annotations[key] or "").encode())
    if size > MAX_ANNOTATIONS_SIZE:
        causes.append(too_long(field, MAX_ANNOTATIONS_SIZE))
    return causes


def stub_request_causes(raw: object) -> list[Cause]:
    """``validateStubPKCS10Request``: a DER PKCS#10 request of a supported key, self-signed."""
    data = pcrs.decode_bytes(raw)
    if data is not None and len(data) > pcrs.MAX_STUB_PKCS10_REQUEST_SIZE:
        return [too_long(PKCS10_PATH, pcrs.MAX_STUB_PKCS10_REQUEST_SIZE)]
    request = parse_stub_request(data)
    if request is None:
        return [invalid(PKCS10_PATH, _OMITTED, "must be a valid PKCS#10 CSR")]
    try:
        key = request.public_key()
    except (ValueError, UnsupportedAlgorithm):
        key = None
    problem = key_problem(key)
    if problem is not None:
        return [invalid(PKCS10_PATH, problem[0], problem[1])]
    try:
        signed = request.is_signature_valid
    except (ValueError, UnsupportedAlgorithm, InvalidSignature):
        signed = False
    return [] if signed else [invalid(PKCS10_PATH, _OMITTED, "invalid signature")]


def parse_stub_request(data: bytes | None) -> x509.CertificateSigningRequest | None:
    if not data:
        return None
    try:
        return x509.load_der_x509_csr(data)
    except (ValueError, UnsupportedAlgorithm):
        return None


def key_problem(key: object) -> tuple[object, str] | None:
    """Why a public key is not one a pod certificate may hold (the shown value and the reason)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1):
            return None
        return f"curve {key.curve.name}", "elliptic public keys must use curve P256, P384, or P521"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size in (3072, 4096):
            return None
        return f"{key.key_size}-bit modulus", "RSA keys must have modulus size 3072 or 4096"
    return _OMITTED, "unknown public key type; supported types are Ed25519, ECDSA, and RSA"


# -- /status -------------------------------------------------------------------------------------


def status_causes(new: Obj, old: Obj, now: datetime) -> list[Cause]:
    """``ValidatePodCertificateRequestStatusUpdate`` (the spec is the stored one)."""
    causes = _condition_causes(pcrs.conditions(new))
    if causes:
        return causes
    new_status, old_status = _semantic(pcrs.status(new)), _semantic(pcrs.status(old))
    if pcrs.terminal_condition(old) is not None:
        if new_status != old_status:
            return [
                invalid(
                    "status", _OMITTED, "immutable after PodCertificateRequest is issued, denied, or failed"
                )
            ]
        return []
    decided = pcrs.terminal_condition(new)
    if decided is None:
        if new_status != old_status:
            message = 'status is immutable unless transitioning to "Issued", "Denied", or "Failed"'
            return [invalid("status", _OMITTED, message)]
        return []
    if decided.get("type") != pcrs.ISSUED:
        if set(new_status) - {"conditions"}:
            message = (
                "non-condition status fields must be empty when denying or failing the PodCertificateRequest"
            )
            return [invalid("status", _OMITTED, message)]
        return []
    return issued_causes(pcrs.spec(old), pcrs.status(new), now)


def _condition_causes(found: list[Obj]) -> list[Cause]:
    causes: list[Cause] = []
    known = 0
    for i, condition in enumerate(found):
        path = f"status.conditions[{i}]"
        kind = condition.get("type")
        if kind in pcrs.TERMINAL:
            known += 1
            if known > 1:
                message = 'There may be at most one condition with type "Issued", "Denied", or "Failed"'
                causes.append(invalid(f"{path}.type", kind, message))
            if condition.get("status") != "True":
                causes.append(not_supported(f"{path}.status", condition.get("status") or "", ["True"]))
        else:
            causes.append(not_supported(f"{path}.type", kind or "", pcrs.TERMINAL))
    seen: set[str] = set()
    for i, condition in enumerate(found):
        causes += _metav1_condition(condition, f"status.conditions[{i}]", seen)
    return causes


def _metav1_condition(condition: Obj, path: str, seen: set[str]) -> list[Cause]:
    """``metav1validation.ValidateCondition`` and the duplicate-type check of its list."""
    causes: list[Cause] = []
    kind = str(condition.get("type") or "")
    if kind in seen:
        causes.append(duplicate(path, kind))
    seen.add(kind)
    if not kind:
        causes.append(required(f"{path}.type", "is required"))
    else:
        causes += [invalid(f"{path}.type", kind, msg) for msg in label_key_errors(kind)]
    value = condition.get("status")
    if not value:
        causes.append(required(f"{path}.status"))
    elif value not in ("False", "True", "Unknown"):
        causes.append(not_supported(f"{path}.status", value, ("False", "True", "Unknown")))
    generation = condition.get("observedGeneration")
    if isinstance(generation, int) and generation < 0:
        causes.append(
            invalid(f"{path}.observedGeneration", generation, "must be greater than or equal to zero")
        )
    if pcrs.parse_time(condition.get("lastTransitionTime")) is None:
        causes.append(required(f"{path}.lastTransitionTime"))
    reason = str(condition.get("reason") or "")
    if not reason:
        causes.append(required(f"{path}.reason"))
    else:
        if not _REASON.fullmatch(reason):
            causes.append(invalid(f"{path}.reason", reason, _REASON_MESSAGE))
        if len(reason) > 1024:
            causes.append(too_long(f"{path}.reason", 1024))
    if len(str(condition.get("message") or "")) > 32 * 1024:
        causes.append(too_long(f"{path}.message", 32 * 1024))
    return causes


def _semantic(value: Obj) -> Obj:
    """The status as Go compares it: unset and empty fields alike, times by their instant."""
    result: Obj = {}
    for key, item in value.items():
        if item in (None, "", [], {}):
            continue
        if key in ("notBefore", "notAfter", "beginRefreshAt"):
            result[key] = pcrs.parse_time(item) or item
        elif key == "conditions" and isinstance(item, list):
            result[key] = [_semantic(c) if isinstance(c, dict) else c for c in item]
        elif key == "lastTransitionTime":
            result[key] = pcrs.parse_time(item) or item
        else:
            result[key] = item
    return result


def issued_causes(spec: Obj, status: Obj, now: datetime) -> list[Cause]:
    """What an Issued status must hold (see the module docstring)."""
    chain = str(status.get("certificateChain") or "")
    if len(chain) > pcrs.MAX_CERTIFICATE_CHAIN_SIZE:
        return [too_long(CHAIN_PATH, pcrs.MAX_CERTIFICATE_CHAIN_SIZE)]
    blocks = [(m.group(1).decode(), m.group(0)) for m in _PEM.finditer(chain.encode())]
    if not blocks:
        return [invalid(CHAIN_PATH, chain, "issued certificate chain must contain at least one certificate")]
    if blocks[0][0] != "CERTIFICATE":
        return [
            invalid(
                CHAIN_PATH, chain, "issued certificate chain must consist entirely of CERTIFICATE PEM blocks"
            )
        ]
    try:
        leaf = x509.load_pem_x509_certificate(blocks[0][1])
    except ValueError:
        return [invalid(CHAIN_PATH, chain, "leaf certificate does not parse as valid X.509")]
    causes = _leaf_name_causes(leaf)
    request = parse_stub_request(pcrs.decode_bytes(spec.get("stubPKCS10Request")))
    if request is None:
        return [*causes, invalid(PKCS10_PATH, _OMITTED, "must be a valid PKCS#10 CSR")]
    if not _same_key(request.public_key(), leaf.public_key()):
        return [
            *causes,
            invalid(CHAIN_PATH, chain, "leaf certificate was not issued to the requested public key"),
        ]
    timing = _time_causes(spec, status, leaf, now)
    if timing:
        return causes + timing
    return causes + _intermediate_causes(chain, blocks[1:])


def _leaf_name_causes(leaf: x509.Certificate) -> list[Cause]:
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    causes: list[Cause] = []
    for name in names.get_values_for_type(x509.DNSName):
        if name == "":
            causes.append(invalid(CHAIN_PATH, name, "leaf certificate should not contain empty DNSName"))
        if ".." in name:
            causes.append(invalid(CHAIN_PATH, name, "leaf certificate's DNSName should not contain '..'"))
        if name.startswith(".") or name.endswith("."):
            causes.append(
                invalid(CHAIN_PATH, name, "leaf certificate's DNSName should not start or end with '.'")
            )
    for address in names.get_values_for_type(x509.RFC822Name):
        if "@" not in parseaddr(address)[1]:
            causes.append(
                invalid(CHAIN_PATH, address, "leaf certificate should not contain invalid EmailAddress")
            )
    return causes


def _same_key(wanted: object, got: object) -> bool:
    """Keys of different types never compare equal (cryptography answers NotImplemented)."""
    return isinstance(wanted, PublicKey) and bool(wanted == got)


def _time_causes(spec: Obj, status: Obj, leaf: x509.Certificate, now: datetime) -> list[Cause]:
    not_before = pcrs.parse_time(status.get("notBefore"))
    not_after = pcrs.parse_time(status.get("notAfter"))
    refresh = pcrs.parse_time(status.get("beginRefreshAt"))
    causes: list[Cause] = []
    if not_before is None:
        causes.append(
            required("status.notBefore", "must be present and consistent with the issued certificate")
        )
    if not_after is None:
        causes.append(
            required("status.notAfter", "must be present and consistent with the issued certificate")
        )
    if refresh is None:
        causes.append(
            required(
                "status.beginRefreshAt", "must be present and in the range [notbefore+10min, notafter-10min]"
            )
        )
    if not_before is None or not_after is None or refresh is None:
        return causes
    leaf_before, leaf_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not_before != leaf_before:
        shown = _go_time(not_before)
        return [
            invalid(
                "status.notBefore", shown, "must be set to the NotBefore time encoded in the leaf certificate"
            )
        ]
    if abs(not_before - now) > timedelta(minutes=5):
        shown = _go_time(not_before)
        return [
            invalid(
                "status.notBefore", shown, "must be set to within 5 minutes of kube-apiserver's current time"
            )
        ]
    if not_after != leaf_after:
        shown = _go_time(not_after)
        return [
            invalid(
                "status.notAfter", shown, "must be set to the NotAfter time encoded in the leaf certificate"
            )
        ]
    lifetime = leaf_after - leaf_before
    if lifetime < timedelta(hours=1):
        return [invalid(CHAIN_PATH, _go_duration(lifetime), "leaf certificate lifetime must be >= 1 hour")]
    seconds = int(spec.get("maxExpirationSeconds") or pcrs.DEFAULT_MAX_EXPIRATION_SECONDS)
    if lifetime > timedelta(seconds=seconds):
        message = f"leaf certificate lifetime must be <= spec.maxExpirationSeconds ({seconds})"
        return [invalid(CHAIN_PATH, _go_duration(lifetime), message)]
    if refresh < not_before + timedelta(minutes=10):
        return [
            invalid(
                "status.beginRefreshAt",
                _go_time(refresh),
                "must be at least 10 minutes after status.notBefore",
            )
        ]
    if refresh > not_after - timedelta(minutes=10):
        return [
            invalid(
                "status.beginRefreshAt",
                _go_time(refresh),
                "must be at least 10 minutes before status.notAfter",
            )
        ]
    return []


def _intermediate_causes(chain: str, rest: list[tuple[str, bytes]]) -> list[Cause]:
    for kind, block in rest:
        if kind != "CERTIFICATE":
            # upstream's spelling, typo included
            return [
                invalid(
                    CHAIN_PATH,
                    chain,
                    "issued certificate chain must consist entirely of CERTFICATE PEM blocks",
                )
            ]
        try:
            x509.load_pem_x509_certificate(block)
        except ValueError:
            return [invalid(CHAIN_PATH, chain, "intermediate certificate does not parse as valid X.509")]
    return []


def _go_time(moment: datetime) -> Shown:
    """A ``time.Time`` as a field error prints it."""
    return Shown(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC"))


def _go_duration(span: timedelta) -> Shown:
    """A ``time.Duration`` as Go's String prints whole seconds (``1h0m0s``)."""
    total = int(span.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return Shown(f"{hours}h{minutes}m{seconds}s")
    return Shown(f"{minutes}m{seconds}s" if minutes else f"{seconds}s")


# -- the podCertificate projected volume source --------------------------------------------------


def projection_causes(source: Obj, field: str, volume_field: str, paths: set[str]) -> list[Cause]:
    """A ``podCertificate`` source of a projected volume at ``field`` (``paths``: the file paths
    the volume's sources already use; this adds its own)."""
    signer = str(source.get("signerName") or "")
    causes = signer_name_causes(f"{field}.signerName", signer)
    if source.get("userAnnotations") is not None:
        causes += user_annotation_causes(source.get("userAnnotations"), f"{field}.userAnnotations")
    user = source.get("user")
    if isinstance(user, int) and not 0 <= user <= 2147483647:
        causes.append(invalid(f"{field}.user", user, "must be between 0 and 2147483647, inclusive"))
    key_type = source.get("keyType") or ""
    if key_type not in pcrs.KEY_TYPES:
        causes.append(not_supported(f"{field}.keyType", key_type, pcrs.KEY_TYPES))
    seconds = source.get("maxExpirationSeconds")
    if isinstance(seconds, int):
        if seconds < pcrs.MIN_MAX_EXPIRATION_SECONDS:
            message = f"if provided, maxExpirationSeconds must be >= {pcrs.MIN_MAX_EXPIRATION_SECONDS}"
            causes.append(invalid(f"{field}.maxExpirationSeconds", seconds, message))
        limit = pcrs.max_expiration_limit(signer)
        if seconds > limit:
            message = f"if provided, maxExpirationSeconds must be <= {limit}"
            causes.append(invalid(f"{field}.maxExpirationSeconds", seconds, message))
    named = 0
    for key in ("credentialBundlePath", "keyPath", "certificateChainPath"):
        target = source.get(key)
        if not isinstance(target, str) or not target:
            continue
        named += 1
        causes += _local_non_reserved_path(target, f"{field}.{key}")
        if target in paths:
            causes.append(invalid(volume_field, target, "conflicting duplicate paths"))
        paths.add(target)
    if not named:
        causes.append(
            required(field, "specify at least one of credentialBundlePath, keyPath, and certificateChainPath")
        )
    return causes


def _local_non_reserved_path(target: str, field: str) -> list[Cause]:
    """``ValidateLocalNonReservedPath``."""
    causes: list[Cause] = []
    if target.startswith("/"):
        causes.append(invalid(field, target, "must be a relative path"))
    if ".." in target.replace("\\", "/").split("/"):
        causes.append(invalid(field, target, "must not contain '..'"))
    elif target.startswith(".."):
        causes.append(invalid(field, target, "must not start with '..'"))
    return causes
