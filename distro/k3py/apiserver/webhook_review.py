"""The AdmissionReview of one admission request, and what its answer means.

:class:`Call` is the request as webhooks see it; :func:`review_of` renders it as the
``admission.k8s.io`` AdmissionReview sent to one webhook (in the first version the webhook
accepts of v1 and v1beta1), :func:`response_of` checks the review answered, and
:func:`denied` turns a refusal into the API error upstream returns. The options object sent
is built from the write (:func:`write_options`) or from a CONNECT's query
(:func:`connect_options`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from k3py.api import defaults
from k3py.api.crd import custom
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.authn import User
from k3py.apiserver.generic import Obj, WriteOptions
from k3py.apiserver.webhook_client import CallError
from k3py.apiserver.webhook_rules import GroupVersionResource, Hook, Match, Request

REVIEW_VERSIONS = ("v1", "v1beta1")
"""AdmissionReview versions this server sends, preferred first."""


@dataclass
class Call:
    """One admission request as the webhooks see it (``request`` of the AdmissionReview)."""

    res: Resource
    namespace: str
    name: str
    operation: str
    subresource: str
    obj: Obj | None
    old: Obj | None
    user: User
    dry_run: bool
    options: Obj | None
    equivalents: tuple[GroupVersionResource, ...] = ()
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @classmethod
    def of_write(
        cls,
        res: Resource,
        namespace: str,
        obj: Obj,
        old: Obj | None,
        opts: WriteOptions,
        equivalents: tuple[GroupVersionResource, ...],
    ) -> Call:
        """The call for a write the store admits: DELETE (``opts.deleting``), CREATE (no old
        object) or UPDATE; ``equivalents`` are the same objects served in other versions."""
        assert opts.user is not None
        if opts.deleting:
            operation, new, previous = "DELETE", None, old
        elif old is None:
            operation, new, previous = "CREATE", obj, None
        else:
            operation, new, previous = "UPDATE", obj, old
        name = str((obj.get("metadata") or {}).get("name") or "")
        return cls(
            res,
            namespace,
            name,
            operation,
            opts.subresource,
            new,
            previous,
            opts.user,
            opts.dry_run,
            write_options(operation, opts),
            equivalents,
        )

    @property
    def resource(self) -> GroupVersionResource:
        return GroupVersionResource(self.res.group, self.res.version, self.res.plural)

    def matching(self) -> Request:
        return Request(
            self.resource,
            self.subresource,
            self.operation,
            "" if is_namespace(self.res) else self.namespace,
            self.obj,
            self.old,
            self.equivalents,
        )


# -- the AdmissionReview ------------------------------------------------------------------------


def admission_request(call: Call, resource: GroupVersionResource, kind: str) -> Obj:
    """The AdmissionRequest of ``call`` for the ``resource`` (of ``kind``) a hook or policy
    matched, without uid and objects (upstream's ``CreateAdmissionRequest``); empty optional
    fields are left out as its JSON leaves them."""
    res = call.res
    request: Obj = {
        "kind": {"group": resource.group, "version": resource.version, "kind": kind},
        "resource": {"group": resource.group, "version": resource.version, "resource": resource.resource},
        "requestKind": {"group": res.group, "version": res.version, "kind": res.kind},
        "requestResource": {"group": res.group, "version": res.version, "resource": res.plural},
        "name": call.name,
        "operation": call.operation,
        "userInfo": call.user.user_info(),
        "dryRun": call.dry_run,
    }
    if call.subresource:
        request["subResource"] = call.subresource
        request["requestSubResource"] = call.subresource
    if call.namespace and not is_namespace(res):
        request["namespace"] = call.namespace
    if call.options:
        request["options"] = call.options
    return request


def review_of(call: Call, match: Match, version: str) -> Obj:
    """The AdmissionReview sent for ``call`` to the hook of ``match``."""
    request = admission_request(call, match.resource, call.res.kind)
    request.update(uid=call.uid, object=call.obj, oldObject=call.old)
    return {"apiVersion": f"admission.k8s.io/{version}", "kind": "AdmissionReview", "request": request}


def redefault(res: Resource, obj: Obj) -> None:
    """What the store defaults, again, over what a mutation added (upstream decodes a mutated
    object through defaulting, and a custom resource through pruning and defaulting)."""
    if res.custom is not None:
        custom.normalize(res.custom, obj)
    else:
        defaults.apply(res, obj)


def fingerprint(obj: Obj) -> str:
    """The object's content, to tell whether a mutation changed it."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


def review_version(hook: Hook) -> str:
    for version in hook.review_versions:
        if version in REVIEW_VERSIONS:
            return version
    raise CallError(
        f"webhook does not accept known AdmissionReview versions: accepted {list(hook.review_versions)}, "
        f"supported {list(REVIEW_VERSIONS)}"
    )


def response_of(review: Obj, uid: str, version: str) -> Obj:
    if review.get("apiVersion") != f"admission.k8s.io/{version}" or review.get("kind") != "AdmissionReview":
        raise CallError(
            f"received invalid webhook response: expected admission.k8s.io/{version} AdmissionReview, "
            f"got {review.get('apiVersion')}/{review.get('kind')}"
        )
    response = review.get("response")
    if not isinstance(response, dict):
        raise CallError("received invalid webhook response: response is missing")
    if str(response.get("uid", "")) != uid:
        raise CallError(f"expected response.uid={uid!r}, got {str(response.get('uid', ''))!r}")
    if version == "v1" and response.get("patch") and not response.get("patchType"):
        raise CallError("webhook returned response.patch but not response.patchType")
    return response


def denied(webhook: str, status: Any) -> errors.ApiError:
    """Upstream's ``ToStatusErr``: the webhook's status, with a message saying who refused."""
    status = status if isinstance(status, dict) else {}
    prefix = f'admission webhook "{webhook}" denied the request'
    code = status.get("code")
    code = code if isinstance(code, int) and code >= 400 else 400
    reason, message = str(status.get("reason") or ""), str(status.get("message") or "")
    if message:
        text = f"{prefix}: {message}"
    elif reason:
        text = f"{prefix}: {reason}"
    else:
        text = f"{prefix} without explanation"
    details = status.get("details") if isinstance(status.get("details"), dict) else {}
    return errors.ApiError(code, reason, text, dict(details or {}))


_CONNECT_KINDS = {
    "exec": "PodExecOptions",
    "attach": "PodAttachOptions",
    "portforward": "PodPortForwardOptions",
}
_STREAM_FLAGS = ("stdin", "stdout", "stderr", "tty")


def connect_options(subresource: str, query: Iterable[tuple[str, str]]) -> Obj:
    """The options object of a CONNECT, from its query (as upstream decodes it for admission)."""
    pairs = list(query)
    kind = _CONNECT_KINDS.get(subresource, "")
    options: Obj = {"kind": kind, "apiVersion": "v1"} if kind else {}
    if subresource == "portforward":
        ports = [int(v) for k, v in pairs if k == "ports" and v.isdigit()]
        if ports:
            options["ports"] = ports
        return options
    values = dict(pairs)
    for flag in _STREAM_FLAGS:
        if values.get(flag) in ("true", "1"):
            options[flag] = True
    if values.get("container"):
        options["container"] = values["container"]
    if subresource == "exec":
        options["command"] = [v for k, v in pairs if k == "command"]
    return options


def write_options(operation: str, opts: WriteOptions) -> Obj:
    kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}[operation]
    options: Obj = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    if opts.dry_run:
        options["dryRun"] = ["All"]
    if opts.field_manager and operation != "DELETE":
        options["fieldManager"] = opts.field_manager
    return options


def is_namespace(res: Resource) -> bool:
    return res.group == "" and res.plural == "namespaces"
