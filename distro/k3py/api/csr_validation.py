"""Upstream's validation of CertificateSigningRequests (pkg/apis/certificates/validation), with
upstream's messages, for create and for updates through the resource, ``/status`` and
``/approval``.

The request is a PEM ``CERTIFICATE REQUEST`` whose signature verifies; usages are known and
unique; the signer name is a qualified ``domain/path``; ``expirationSeconds`` is at least 600;
Approved and Denied appear at most once and never together; Approved, Denied and Failed may
only be True and are never removed; only ``/approval`` adds or changes Approved and Denied,
only ``/status`` sets the certificate, and a certificate once issued stays. Problems already
stored (an object written before a rule existed) are tolerated, as upstream.

These run on every write, not only when the body changes as ``k3py.api.validation``'s kind
rules do, because the status and approval writes that matter here leave the spec alone.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from k3py.api.certificates import (
    APPROVED,
    DENIED,
    FAILED,
    LEGACY_UNKNOWN_SIGNER,
    MIN_EXPIRATION_SECONDS,
    VALID_USAGES,
    Obj,
    certificate_pem,
    conditions,
    decode_bytes,
    of_type,
    spec,
    status,
    usages,
)
from k3py.api.validation import (
    Cause,
    Shown,
    dns_label_errors,
    dns_subdomain_errors,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
)

_TRUE_ONLY = (APPROVED, DENIED, FAILED)
_STATUS_VALUES = ("False", "True", "Unknown")


@dataclass(frozen=True, slots=True)
class _Options:
    """upstream's ``certificateValidationOptions``: what this write may do, and which stored
    problems it is allowed to carry on."""

    setting_approval: bool = False
    setting_certificate: bool = False
    both_approved_and_denied: bool = False
    legacy_signer: bool = False
    duplicate_condition_types: bool = False
    empty_condition_type: bool = False
    arbitrary_certificate: bool = False
    unknown_usages: bool = False
    duplicate_usages: bool = False

    @classmethod
    def of(cls, new: Obj, old: Obj | None, subresource: str) -> _Options:
        if old is None:
            return cls()
        types = [c.get("type") for c in conditions(old)]
        old_usages = usages(old)
        old_certificate = status(old).get("certificate")
        return cls(
            setting_approval=subresource == "approval",
            setting_certificate=subresource == "status",
            both_approved_and_denied=APPROVED in types and DENIED in types,
            legacy_signer=spec(old).get("signerName") == LEGACY_UNKNOWN_SIGNER,
            duplicate_condition_types=len(set(types)) != len(types),
            empty_condition_type=any(not t for t in types),
            arbitrary_certificate=status(new).get("certificate") == old_certificate
            or certificate_error(old_certificate) is not None,
            unknown_usages=any(u not in VALID_USAGES for u in old_usages),
            duplicate_usages=len(set(old_usages)) != len(old_usages),
        )


def validate(obj: Obj, old: Obj | None, subresource: str = "") -> list[Cause]:
    """The CSR-specific causes of a create (``old`` None) or an update through ``subresource``
    ("" for the resource, "status" or "approval"); metadata is ``k3py.api.validation``'s."""
    opts = _Options.of(obj, old, subresource)
    causes = _spec_causes(obj, opts)
    causes += _condition_causes(obj, opts)
    if not opts.arbitrary_certificate:
        problem = certificate_error(status(obj).get("certificate"))
        if problem:
            causes.append(invalid("status.certificate", "<certificate data>", problem))
    if old is not None:
        causes += _update_causes(obj, old, opts)
    return causes


def _spec_causes(obj: Obj, opts: _Options) -> list[Cause]:
    body = spec(obj)
    causes: list[Cause] = []
    raw = body.get("request")
    problem = request_error(raw)
    if problem:
        causes.append(invalid("spec.request", _shown_request(raw), problem))
    listed = body.get("usages")
    wanted = [str(u) for u in listed] if isinstance(listed, list) else []
    if not wanted:
        causes.append(required("spec.usages"))
    if not opts.unknown_usages:
        causes += [
            not_supported(f"spec.usages[{i}]", u, VALID_USAGES)
            for i, u in enumerate(wanted)
            if u not in VALID_USAGES
        ]
    if not opts.duplicate_usages:
        causes += [duplicate(f"spec.usages[{i}]", u) for i, u in enumerate(wanted) if u in wanted[:i]]
    signer = body.get("signerName")
    signer = signer if isinstance(signer, str) else ""
    if not opts.legacy_signer and signer == LEGACY_UNKNOWN_SIGNER:
        causes.append(
            invalid("spec.signerName", signer, "the legacy signerName is not allowed via this API version")
        )
    else:
        causes += signer_name_causes("spec.signerName", signer)
    seconds = body.get("expirationSeconds")
    if seconds is not None and (
        not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 <= seconds < 2**31
    ):
        causes.append(invalid("spec.expirationSeconds", seconds, "must be a 32-bit integer"))
    elif isinstance(seconds, int) and seconds < MIN_EXPIRATION_SECONDS:
        causes.append(
            invalid(
                "spec.expirationSeconds",
                seconds,
                "may not specify a duration less than 600 seconds (10 minutes)",
            )
        )
    return causes


def _condition_causes(obj: Obj, opts: _Options) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    approved = denied = False
    for i, condition in enumerate(conditions(obj)):
        path = f"status.conditions[{i}]"
        kind = str(condition.get("type") or "")
        if not kind and not opts.empty_condition_type:
            causes.append(required(f"{path}.type"))
        allowed = ("True",) if kind in _TRUE_ONLY else _STATUS_VALUES
        value = condition.get("status")
        if not value:
            causes.append(required(f"{path}.status"))
        elif value not in allowed:
            causes.append(not_supported(f"{path}.status", value, allowed))
        if not opts.both_approved_and_denied:
            if kind == APPROVED:
                approved = True
                if denied:
                    causes.append(
                        invalid(f"{path}.type", kind, "Approved and Denied conditions are mutually exclusive")
                    )
            elif kind == DENIED:
                denied = True
                if approved:
                    causes.append(
                        invalid(f"{path}.type", kind, "Approved and Denied conditions are mutually exclusive")
                    )
        if not opts.duplicate_condition_types:
            if kind in seen:
                causes.append(duplicate(f"{path}.type", kind))
            seen.add(kind)
    return causes


def _update_causes(new: Obj, old: Obj, opts: _Options) -> list[Cause]:
    causes: list[Cause] = []
    for kind in (APPROVED, DENIED, FAILED):
        if len(of_type(new, kind)) < len(of_type(old, kind)):
            causes.append(
                forbidden("status.conditions", f'updates may not remove a condition of type "{kind}"')
            )
    if not opts.setting_approval:
        for kind in (APPROVED, DENIED):
            before, after = of_type(old, kind), of_type(new, kind)
            if len(after) > len(before):
                causes.append(
                    forbidden("status.conditions", f'updates may not add a condition of type "{kind}"')
                )
            elif len(after) == len(before) and after != before:
                causes.append(
                    forbidden("status.conditions", f'updates may not modify a condition of type "{kind}"')
                )
    new_certificate, old_certificate = certificate_pem(new), certificate_pem(old)
    if (
        status(new).get("certificate") != status(old).get("certificate")
        and new_certificate != old_certificate
    ):
        if not opts.setting_certificate:
            causes.append(forbidden("status.certificate", "updates may not set certificate content"))
        elif old_certificate:
            causes.append(
                forbidden("status.certificate", "updates may not modify existing certificate content")
            )
    return causes


def signer_name_causes(field: str, name: str) -> list[Cause]:
    """``ValidateSignerName``: ``<domain with a dot>/<path of subdomains>``, 571 bytes at most."""
    if not name:
        return [required(field)]
    segments = name.split("/")
    if len(segments) != 2:
        return [
            invalid(
                field, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'"
            )
        ]
    domain, path = segments
    causes: list[Cause] = []
    if len(domain.encode()) > 253:
        causes.append(too_long(field, 253))
    labels = domain.split(".")
    for label in labels:
        problems = dns_label_errors(label)
        if problems:
            causes += [invalid(field, domain, f'validating label "{label}": {p}') for p in problems]
            break
    if len(labels) < 2:
        causes.append(
            invalid(field, domain, "should be a domain with at least two segments separated by dots")
        )
    for label in path.split("."):
        problems = dns_subdomain_errors(label)
        if problems:
            causes += [invalid(field, path, f'validating label "{label}": {p}') for p in problems]
            break
    if len(name.encode()) > 253 + 253 + 63 + 1 + 1:
        causes.append(too_long(field, 571))
    return causes


def _shown_request(raw: object) -> Shown:
    """The request as Go's ``%#v`` prints a ``[]byte``."""
    if raw is None:
        return Shown("[]byte(nil)")
    data = decode_bytes(raw)
    if data is None:
        return Shown(str(raw))
    return Shown("[]byte{" + ", ".join(f"0x{b:x}" for b in data) + "}")


def request_error(raw: object) -> str | None:
    """Why ``spec.request`` (base64 of PEM) is not a signed PKCS#10 request; None when it is."""
    data = decode_bytes(raw)
    if data is None:
        return "illegal base64 data"
    block = _first_block(data)
    if block is None or block.kind != "CERTIFICATE REQUEST":
        return "PEM block type must be CERTIFICATE REQUEST"
    try:
        request = x509.load_der_x509_csr(block.der)
    except ValueError:
        return "x509: malformed certificate request"
    try:
        valid = request.is_signature_valid
    except UnsupportedAlgorithm:
        return "x509: cannot verify signature: algorithm unimplemented"
    if not valid:
        return "x509: signature of the certificate request does not verify"
    try:  # what the approver and the signer read later must read now (Go's parser checks it too)
        request.subject.rfc4514_string()
        list(request.extensions)
    except (ValueError, x509.DuplicateExtension, UnicodeError) as exc:
        return f"x509: malformed certificate request: {exc}"
    return None


def certificate_error(raw: object) -> str | None:
    """Why ``status.certificate`` is not a list of PEM certificates (None: it is, or is empty)."""
    data = decode_bytes(raw)
    if data is None:
        return "illegal base64 data"
    if not data:
        return None
    blocks = 0
    for block in _blocks(data):
        if block.kind != "CERTIFICATE":
            return f'only CERTIFICATE PEM blocks are allowed, found "{block.kind}"'
        if block.headers:
            return "no PEM block headers are permitted"
        blocks += 1
        try:
            x509.load_der_x509_certificate(block.der)
        except ValueError:
            return "x509: malformed certificate"
    if not blocks:
        return "must contain at least one CERTIFICATE PEM block"
    return None


# -- PEM, as Go's encoding/pem reads it ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Block:
    kind: str
    headers: bool
    der: bytes


_BEGIN = b"-----BEGIN "
_DASHES = b"-----"


def _blocks(data: bytes) -> Sequence[_Block]:
    """The PEM blocks in ``data`` up to the first that does not decode (where Go stops).

    A linear scan, as Go's ``pem.Decode``: find a BEGIN line, then its END line once.
    """
    found: list[_Block] = []
    at = 0
    while (begin := data.find(_BEGIN, at)) >= 0:
        line_end = data.find(b"\n", begin)
        label_end = data.find(_DASHES, begin + len(_BEGIN))
        if line_end < 0 or label_end < 0 or label_end > line_end:
            at = begin + len(_BEGIN)
            continue
        kind = data[begin + len(_BEGIN) : label_end]
        end_marker = b"-----END " + kind + _DASHES
        end = data.find(end_marker, line_end + 1)
        if end < 0:
            break
        body = data[line_end + 1 : end]
        at = end + len(end_marker)
        headers = False
        head, sep, rest = body.partition(b"\n\n")
        if sep and b":" in head.split(b"\n", 1)[0]:
            headers, body = True, rest
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            break
        found.append(_Block(kind.decode(errors="replace"), headers, der))
    return found


def _first_block(data: bytes) -> _Block | None:
    blocks = _blocks(data)
    return blocks[0] if blocks else None
