"""CertificateSigningRequests at work: who asked, who approves, who signs.

- :class:`CsrAdmission` (kube-apiserver's CSR strategy reads the request's user): on create,
  ``spec.username``, ``uid``, ``groups`` and ``extra`` become the authenticated requester's,
  whatever the client sent (the strategy has already cleared them, so a write the API server
  makes itself records nobody); a ``kubernetes.io/kube-apiserver-client`` request for a
  ``system:masters`` subject is refused (upstream's CertificateSubjectRestriction).
- :class:`CsrApprover` (kube-controller-manager's csrapproving): a pending request for
  ``kubernetes.io/kube-apiserver-client-kubelet`` whose subject is a node (``system:node:<n>``
  in exactly ``system:nodes``, no SANs, client usages) is approved when the authorizer lets
  its requester ``create`` ``certificatesigningrequests/selfnodeclient`` (the requester is that
  node, renewing) or ``certificatesigningrequests/nodeclient`` (a bootstrap identity, joining).
  A ``kubernetes.io/kubelet-serving`` request is approved when its requester is the node its
  subject names (k3py's choice: K3s signs node serving certificates itself, without asking).
  Anything else waits for a person (``kubectl certificate approve``).
- :class:`CsrSigner` (csrsigning): approved, not failed, not yet issued requests for
  ``kubernetes.io/kube-apiserver-client`` and ``kubernetes.io/kube-apiserver-client-kubelet``
  get a certificate from the client CA, ``kubernetes.io/kubelet-serving`` from the server CA
  (as K3s configures kube-controller-manager); other signers, ``legacy-unknown`` included, are
  left to whoever runs them. A request the signer's rules refuse gets a Failed condition
  (``SignerValidationFailure``) instead. A certificate lives ``spec.expirationSeconds`` or
  :data:`MAX_DURATION` (K3s's one year), whichever is shorter, and never past its CA.

Approver and signer follow CSRs through :class:`~k3py.apiserver.cache.ObjectCache` and write
through the ``approval`` and ``status`` subresources, as the controllers do through the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509

from k3py.api import certificates as csrs
from k3py.api.resources import Resource
from k3py.apiserver import errors, podcertificates
from k3py.apiserver.authn import MASTERS, User
from k3py.apiserver.authz import Attributes, Authorizer
from k3py.apiserver.cache import ObjectCache, each_change
from k3py.apiserver.generic import Obj, ObjectStore, WriteOptions
from k3py.pki import CertKey, Pki, PkiError, signing

log = logging.getLogger(__name__)

MANAGER = "kube-controller-manager"
"""The field manager of the approver's and the signer's writes, as upstream records them."""
MAX_DURATION = timedelta(days=365)
"""The longest certificate the signer issues (kube-controller-manager's --cluster-signing-duration)."""
MIN_DURATION = timedelta(minutes=10)

AUTO_APPROVED = "AutoApproved"
SIGNER_VALIDATION_FAILURE = "SignerValidationFailure"
NODE_CLIENT_MESSAGE = "Auto approving kubelet client certificate after SubjectAccessReview."
SELF_NODE_CLIENT_MESSAGE = "Auto approving self kubelet client certificate after SubjectAccessReview."
NODE_SERVING_MESSAGE = "Auto approving kubelet serving certificate for its own node."

Outcome = Literal["issued", "failed", ""]
"""What the signer did with a request: issued a certificate, added Failed, or nothing."""


def csr_resource(store: ObjectStore) -> Resource | None:
    return store.registry.lookup(csrs.GROUP, csrs.VERSION, csrs.PLURAL)


def _is_csr(res: Resource) -> bool:
    return res.group == csrs.GROUP and res.plural == csrs.PLURAL


def requester(csr: Obj) -> User:
    """The user who created the request, as the API server recorded it."""
    return User.from_user_info(csrs.spec(csr))


# -- admission -----------------------------------------------------------------------------------


class CsrAdmission:
    """Records the requester of a new CSR (see the module docstring) and refuses, as upstream's
    CertificateSubjectRestriction plugin, a ``kube-apiserver-client`` request in
    ``system:masters``; as CertificateApproval and CertificateSigning, approving (``/approval``)
    needs the ``approve`` verb and issuing (a certificate written through ``/status``) the
    ``sign`` verb on ``signers`` named by the signer (or its ``<domain>/*``); an ``Admission``.
    A PodCertificateRequest's status write needs ``sign`` too (``k3py.apiserver.podcertificates``)."""

    def __init__(self, authorize: Authorizer | None = None) -> None:
        self.authorize = authorize

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        if podcertificates.is_request(res):
            podcertificates.check_signer(self.authorize, res, obj, old, opts)
            return
        if not _is_csr(res):
            return
        if old is not None:
            self._check_signer_verb(obj, old, opts)
            return
        csrs.set_requester(obj, opts.user.user_info() if opts.user is not None else {})
        if csrs.spec(obj).get("signerName") != signing.KUBE_APISERVER_CLIENT:
            return
        try:
            request = signing.parse_request(csrs.request_pem(obj))
        except signing.SigningError:
            return  # validation reports it
        if MASTERS in signing.organizations(request.subject):
            name = str(obj["metadata"].get("name") or "")
            raise errors.ApiError(
                403,
                "Forbidden",
                f'{csrs.RESOURCE} "{name}" is forbidden: use of {signing.KUBE_APISERVER_CLIENT} signer '
                f"with {MASTERS} group is not allowed",
                {"name": name, "group": csrs.GROUP, "kind": csrs.PLURAL},
            )

    def _check_signer_verb(self, obj: Obj, old: Obj, opts: WriteOptions) -> None:
        if self.authorize is None or opts.user is None or opts.deleting:
            return
        if opts.subresource == "approval":
            verb = "approve"
        elif opts.subresource == "status" and any(
            csrs.status(obj).get(key) != csrs.status(old).get(key) for key in ("certificate", "conditions")
        ):
            verb = "sign"
        else:
            return
        signer = str(csrs.spec(old).get("signerName") or "")
        for name in (signer, f"{signer.split('/', 1)[0]}/*"):
            attrs = Attributes(opts.user, verb, True, api_group=csrs.GROUP, resource="signers", name=name)
            if self.authorize(attrs).allowed:
                return
        csr_name = str(obj["metadata"].get("name") or "")
        raise errors.ApiError(
            403,
            "Forbidden",
            f'{csrs.RESOURCE} "{csr_name}" is forbidden: user not permitted to {verb} requests with '
            f'signerName "{signer}"',
            {"name": csr_name, "group": csrs.GROUP, "kind": csrs.PLURAL},
        )


def _parsed(csr: Obj) -> x509.CertificateSigningRequest | None:
    try:
        return signing.parse_request(csrs.request_pem(csr))
    except signing.SigningError as exc:
        log.warning("CSR %s: %s", csr["metadata"]["name"], exc)
        return None


# -- approving -----------------------------------------------------------------------------------


class CsrApprover:
    """Approves the node requests it recognizes (see the module docstring)."""

    def __init__(self, store: ObjectStore, authorize: Authorizer, reserved: Iterable[str] = ()) -> None:
        self.store = store
        self.authorize = authorize
        self.reserved = frozenset(reserved)
        """Names and addresses of the API server itself: no node serving certificate carries
        them (the server CA signs both, so such a certificate could impersonate the server)."""

    async def run(self) -> None:
        """Until cancelled (a supervised task)."""
        resource = csr_resource(self.store)
        if resource is None:
            log.info("%s/%s is not served: no CSR approver", csrs.GROUP, csrs.VERSION)
            return
        await each_change(ObjectCache(self.store, resource), self.handle, "csr-approver")

    async def handle(self, csr: Obj) -> bool:
        """Approve ``csr`` if it is pending and recognized; True when this wrote an approval."""
        if csrs.is_decided(csr) or csrs.certificate_pem(csr):
            return False
        message = self.approval_message(csr)
        if message is None:
            return False
        resource = csr_resource(self.store)
        assert resource is not None
        name = csr["metadata"]["name"]
        wrote = False

        def change(current: Obj) -> Obj:
            nonlocal wrote
            if csrs.is_decided(current) or csrs.certificate_pem(current):
                return current  # someone decided meanwhile
            wrote = True
            condition = csrs.new_condition(csrs.APPROVED, AUTO_APPROVED, message)
            return {
                **current,
                "status": {**csrs.status(current), "conditions": [*csrs.conditions(current), condition]},
            }

        await self.store.guaranteed_update(
            resource, "", name, change, WriteOptions(field_manager=MANAGER), subresource="approval"
        )
        if wrote:
            log.info("CSR %s approved: %s", name, message)
        return wrote

    def approval_message(self, csr: Obj) -> str | None:
        """The Approved condition's message if ``csr`` is to be approved, else None."""
        signer = csrs.spec(csr).get("signerName")
        if signer not in (signing.KUBELET_CLIENT, signing.KUBELET_SERVING):
            return None
        request = _parsed(csr)
        if request is None:
            return None
        usages = csrs.usages(csr)
        user = requester(csr)
        subject = signing.common_name(request.subject)
        if signer == signing.KUBELET_SERVING:
            fine = signing.kubelet_serving_problem(request, usages) is None and _is_node(user, subject)
            return NODE_SERVING_MESSAGE if fine and self._own_names_only(request, subject) else None
        if signing.kubelet_client_problem(request, usages) is not None:
            return None
        checks = [("nodeclient", NODE_CLIENT_MESSAGE)]
        if user.name == subject:
            checks.insert(0, ("selfnodeclient", SELF_NODE_CLIENT_MESSAGE))
        for subresource, message in checks:
            attrs = Attributes(
                user=user,
                verb="create",
                resource_request=True,
                api_group=csrs.GROUP,
                resource=csrs.PLURAL,
                subresource=subresource,
            )
            if self.authorize(attrs).allowed:
                return message
        log.info(
            "CSR %s recognized as %s but the SubjectAccessReview was not approved for %s",
            csr["metadata"]["name"],
            [subresource for subresource, _ in checks],
            user.name,
        )
        return None

    def _own_names_only(self, request: x509.CertificateSigningRequest, common_name: str) -> bool:
        """A serving certificate names only its node (DNS) and addresses that are not the server's."""
        node = common_name.removeprefix("system:node:")
        try:
            sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        names = sans.get_values_for_type(x509.DNSName)
        addresses = [str(a) for a in sans.get_values_for_type(x509.IPAddress)]
        if any(name != node for name in names) or any(a in self.reserved for a in addresses):
            log.info(
                "CSR for %s names more than its node: %s %s (not approved)", common_name, names, addresses
            )
            return False
        return True


def _is_node(user: User, common_name: str) -> bool:
    return user.name == common_name and signing.NODES_GROUP in user.groups


# -- signing -------------------------------------------------------------------------------------


class CsrSigner:
    """Issues certificates for approved requests to k3py's built-in signers (module docstring)."""

    def __init__(
        self,
        store: ObjectStore,
        pki: Pki,
        *,
        max_duration: timedelta = MAX_DURATION,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.authorities: dict[str, CertKey] = {
            signing.KUBE_APISERVER_CLIENT: pki.client_ca,
            signing.KUBELET_CLIENT: pki.client_ca,
            signing.KUBELET_SERVING: pki.server_ca,
        }
        self.max_duration = max_duration
        self.clock = clock

    async def run(self) -> None:
        """Until cancelled (a supervised task)."""
        resource = csr_resource(self.store)
        if resource is None:
            log.info("%s/%s is not served: no CSR signer", csrs.GROUP, csrs.VERSION)
            return
        await each_change(ObjectCache(self.store, resource), self.handle, "csr-signer")

    def duration(self, csr: Obj) -> timedelta:
        """``spec.expirationSeconds`` within [10 minutes, ``max_duration``]; ``max_duration`` without it."""
        seconds = csrs.spec(csr).get("expirationSeconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            return self.max_duration
        seconds = min(seconds, int(self.max_duration.total_seconds()))  # no timedelta overflow
        return max(MIN_DURATION, timedelta(seconds=seconds))

    async def handle(self, csr: Obj) -> Outcome:
        """Sign or fail ``csr`` if it is for a signer here and ready; returns what was done."""
        signer = str(csrs.spec(csr).get("signerName") or "")
        authority = self.authorities.get(signer)
        if authority is None or not _ready(csr):
            return ""
        usages = csrs.usages(csr)
        name = csr["metadata"]["name"]
        certificate: bytes | None = None
        problem: str | None = None
        try:
            request = signing.parse_request(csrs.request_pem(csr))
            problem = signing.signer_problem(signer, request, usages)
            if problem is None:
                certificate = signing.sign(
                    csrs.request_pem(csr),
                    authority,
                    usages=usages,
                    duration=self.duration(csr),
                    now=self.clock(),
                )
        except signing.SigningError as exc:
            problem = str(exc)
        except PkiError as exc:
            log.error("CSR %s: cannot sign for %s: %s", name, signer, exc)
            return ""
        if certificate is not None:
            written = await self._write(
                name, lambda status: {**status, "certificate": csrs.encode_bytes(certificate)}
            )
            if written:
                log.info("CSR %s: issued a certificate (%s)", name, signer)
            return "issued" if written else ""
        assert problem is not None
        failed = csrs.new_condition(csrs.FAILED, SIGNER_VALIDATION_FAILURE, problem)
        written = await self._write(
            name, lambda status: {**status, "conditions": [*(status.get("conditions") or []), failed]}
        )
        if written:
            log.warning("CSR %s: %s refused it: %s", name, signer, problem)
        return "failed" if written else ""

    async def _write(self, name: str, update: Callable[[Obj], Obj]) -> bool:
        """Apply ``update`` to the status through ``/status`` while the request is still ready."""
        resource = csr_resource(self.store)
        assert resource is not None
        wrote = False

        def change(current: Obj) -> Obj:
            nonlocal wrote
            if not _ready(current):
                return current
            wrote = True
            return {**current, "status": update(csrs.status(current))}

        await self.store.guaranteed_update(
            resource, "", name, change, WriteOptions(field_manager=MANAGER), subresource="status"
        )
        return wrote


def _ready(csr: Obj) -> bool:
    """Approved, neither failed nor issued yet."""
    return csrs.is_approved(csr) and not csrs.is_failed(csr) and not csrs.certificate_pem(csr)
