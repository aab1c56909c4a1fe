"""PodCertificateRequests at work in the API server: who may answer one, and what a node may ask.

- :func:`check_signer`: a status write that changes anything needs the ``sign`` verb on
  ``signers`` (group ``certificates.k8s.io``) named by the request's signer, or by its
  ``<domain>/*`` (upstream's ``IsAuthorizedForSignerName``, which the PodCertificateRequest
  status strategy calls); without it the write is Invalid, as upstream refuses it.
  :class:`~k3py.apiserver.certificates.CsrAdmission` runs it for every request write.
- :func:`admit_node_request` (upstream's NodeRestriction for these requests): a node creates
  requests only, for itself (name and UID), for a pod bound to it that is not a mirror pod
  (name and UID), as the pod's service account (name and UID), and for a signer one of the
  pod's ``podCertificate`` sources names (or one the node may
  ``request-serviceaccounts-podcertificate-signer`` for). A UID that does not match (a stale
  cache upstream) is a 500 the kubelet retries; everything else is Forbidden.
"""

from __future__ import annotations

from k3py.api import podcertificates as pcrs
from k3py.api.resources import Resource
from k3py.api.validation import forbidden
from k3py.apiserver import errors
from k3py.apiserver.authn import User
from k3py.apiserver.authz import Attributes, Authorizer
from k3py.apiserver.generic import Obj, ObjectStore, WriteOptions

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
REQUEST_SIGNER_VERB = "request-serviceaccounts-podcertificate-signer"


def is_request(res: Resource) -> bool:
    """Whether ``res`` is PodCertificateRequests, in any served version."""
    return res.group == pcrs.GROUP and res.plural == pcrs.PLURAL


def may_sign(authorize: Authorizer, user: User, signer: str) -> bool:
    """``IsAuthorizedForSignerName``: ``sign`` on the signer's name, else on ``<domain>/*``."""
    for name in (signer, f"{signer.split('/', 1)[0]}/*"):
        attrs = Attributes(user, "sign", True, api_group=pcrs.GROUP, resource="signers", name=name)
        if authorize(attrs).allowed:
            return True
    return False


def check_signer(
    authorize: Authorizer | None, res: Resource, obj: Obj, old: Obj | None, opts: WriteOptions
) -> None:
    """Refuse a status change by a user who may not sign for the request's signer."""
    if authorize is None or opts.user is None or opts.deleting or old is None or opts.subresource != "status":
        return
    if pcrs.status(obj) == pcrs.status(old):
        return
    signer = str(pcrs.spec(old).get("signerName") or "")
    if may_sign(authorize, opts.user, signer):
        return
    detail = f'User "{opts.user.name}" is not permitted to "sign" for signer "{signer}"'
    name = str((obj.get("metadata") or {}).get("name") or "")
    raise errors.invalid(pcrs.KIND, pcrs.GROUP, name, [forbidden("spec.signerName", detail)])


async def admit_node_request(
    store: ObjectStore | None,
    authorize: Authorizer | None,
    res: Resource,
    node: str,
    namespace: str,
    obj: Obj,
    old: Obj | None,
    opts: WriteOptions,
) -> None:
    """NodeRestriction for a node's write of a request (see the module docstring); with no
    ``store`` only what the request itself shows is checked."""
    name = str((obj.get("metadata") or {}).get("name") or "")
    if old is not None or opts.deleting:
        operation = "DELETE" if opts.deleting else "UPDATE"
        raise _forbidden(res, name, f"unexpected operation {operation}")
    if opts.subresource:
        raise _forbidden(res, name, f"unexpected subresource {opts.subresource}")
    body = pcrs.spec(obj)
    if body.get("nodeName") != node:
        raise _forbidden(
            res,
            name,
            f'PodCertificateRequest.Spec.NodeName="{body.get("nodeName") or ""}", '
            f'which is not the requesting node "{node}"',
        )
    if store is None:
        return
    pod_name = str(body.get("podName") or "")
    who = f"{namespace}/{pod_name}"
    found = await _find(store, "nodes", "", node)
    if found is None:
        raise errors.internal(f'while retrieving node "{node}" named in the PodCertificateRequest: not found')
    if found["metadata"].get("uid") != body.get("nodeUID"):
        raise errors.internal(
            f'PodCertificateRequest for pod "{who}" names node UID "{body.get("nodeUID") or ""}", '
            f'inconsistent with the running node ("{found["metadata"].get("uid")}")'
        )
    pod = await _find(store, "pods", namespace, pod_name)
    if pod is None:
        raise errors.internal(f'while retrieving pod "{who}" named in the PodCertificateRequest: not found')
    if pod["metadata"].get("uid") != body.get("podUID"):
        raise errors.internal(
            f'PodCertificateRequest for pod "{who}" contains pod UID ("{body.get("podUID") or ""}") '
            f'which differs from running pod "{pod["metadata"].get("uid")}"'
        )
    pod_spec = pod.get("spec") or {}
    if pod_spec.get("nodeName") != node:
        raise _forbidden(
            res, name, f'pod "{who}" is not running on node "{node}" named in the PodCertificateRequest'
        )
    if MIRROR_ANNOTATION in (pod["metadata"].get("annotations") or {}):
        raise _forbidden(res, name, f'pod "{who}" is a mirror pod')
    account = str(body.get("serviceAccountName") or "")
    if account != pod_spec.get("serviceAccountName"):
        raise _forbidden(
            res,
            name,
            f'PodCertificateRequest for pod "{who}" contains serviceAccountName ("{account}") '
            f'that differs from running pod ("{pod_spec.get("serviceAccountName") or ""}")',
        )
    found_account = await _find(store, "serviceaccounts", namespace, account)
    if found_account is None:
        raise errors.internal(
            f'while retrieving service account "{namespace}/{account}" named in the '
            "PodCertificateRequest: not found"
        )
    if found_account["metadata"].get("uid") != body.get("serviceAccountUID"):
        raise errors.internal(
            f'PodCertificateRequest for pod "{who}" names service account UID '
            f'"{body.get("serviceAccountUID") or ""}", which differs from the running service account '
            f'("{found_account["metadata"].get("uid")}")'
        )
    signer = str(body.get("signerName") or "")
    if signer in signers_of(pod):
        return
    if authorize is not None and opts.user is not None:
        attrs = Attributes(
            opts.user,
            REQUEST_SIGNER_VERB,
            True,
            api_group=res.group,
            api_version=res.version,
            namespace=namespace,
            resource=signer.replace("/", ":"),
            name=account,
        )
        if authorize(attrs).allowed:
            return
    raise _forbidden(
        res, name, f'pod "{who}" does not mount a podCertificate projected volume for signer "{signer}"'
    )


def signers_of(pod: Obj) -> set[str]:
    """The signers a pod's ``podCertificate`` projected sources name."""
    found = set()
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        for source in ((volume or {}).get("projected") or {}).get("sources") or []:
            part = (source or {}).get("podCertificate")
            if isinstance(part, dict) and part.get("signerName"):
                found.add(str(part["signerName"]))
    return found


async def _find(store: ObjectStore, plural: str, namespace: str, name: str) -> Obj | None:
    res = store.registry.lookup("", "v1", plural)
    if res is None or not name:
        return None
    return await store.find(res, namespace, name)


def _forbidden(res: Resource, name: str, why: str) -> errors.ApiError:
    return errors.ApiError(
        403,
        "Forbidden",
        f'{res.plural}.{res.group} "{name}" is forbidden: {why}',
        {"name": name, "group": res.group, "kind": res.plural},
    )
