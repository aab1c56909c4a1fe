"""The review resources: create-only questions the API server answers and never stores.

``authentication.k8s.io/v1``: TokenReview (is this token valid, and whose is it?) and
SelfSubjectReview (who am I? ``kubectl auth whoami``). ``authorization.k8s.io/v1``:
SubjectAccessReview and LocalSubjectAccessReview (may this user do this?),
SelfSubjectAccessReview (may I? ``kubectl auth can-i``) and SelfSubjectRulesReview (what may
I do here? ``kubectl auth can-i --list``). Each answers with the posted object plus its
``status``, as kube-apiserver does, through the same authenticators and authorizer that
guard every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from k3py.api.validation import Cause
from k3py.apiserver import errors
from k3py.apiserver.authn import TokenAuthenticator, User, authenticate_token, authenticated
from k3py.apiserver.authz import Attributes, Authorizer
from k3py.apiserver.rbac import Rbac

Obj = dict[str, Any]
Review = Callable[[User, str, Obj], Awaitable[Obj]]
"""(requesting user, URL namespace, posted object) -> the object with its status."""


def _required(cause_field: str, detail: str) -> Cause:
    return Cause("FieldValueRequired", f"Required value: {detail}", cause_field)


def _invalid(cause_field: str, value: object, detail: str) -> Cause:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", cause_field)


def _answer(body: Obj, status: Obj) -> Obj:
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    return {
        "kind": body.get("kind"),
        "apiVersion": body.get("apiVersion"),
        "metadata": {k: v for k, v in (meta or {}).items() if k in ("name", "namespace", "labels")},
        "spec": body.get("spec") or {},
        "status": status,
    }


def _attributes(user: User, spec: Obj, kind: str, *, namespace: str | None = None) -> Attributes:
    """Attributes from a SubjectAccessReview-style spec (resource or non-resource), validated."""
    resource: Obj = spec.get("resourceAttributes") or {}
    non_resource: Obj = spec.get("nonResourceAttributes") or {}
    if bool(resource) == bool(non_resource):
        raise errors.invalid(
            kind,
            "authorization.k8s.io",
            "",
            [
                _invalid(
                    "spec.resourceAttributes",
                    "",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            ],
        )
    if non_resource:
        return Attributes(
            user, str(non_resource.get("verb") or ""), False, path=str(non_resource.get("path") or "")
        )
    found_namespace = str(resource.get("namespace") or "")
    if namespace is not None and found_namespace != namespace:
        raise errors.invalid(
            kind,
            "authorization.k8s.io",
            "",
            [_invalid("spec.resourceAttributes.namespace", found_namespace, "must match metadata.namespace")],
        )
    return Attributes(
        user,
        str(resource.get("verb") or ""),
        True,
        api_group=str(resource.get("group") or ""),
        api_version=str(resource.get("version") or ""),
        namespace=found_namespace,
        resource=str(resource.get("resource") or ""),
        subresource=str(resource.get("subresource") or ""),
        name=str(resource.get("name") or ""),
    )


def _subject(spec: Obj) -> User:
    return User.from_user_info(
        {
            "username": spec.get("user"),
            "groups": spec.get("groups"),
            "uid": spec.get("uid"),
            "extra": spec.get("extra"),
        }
    )


def _access_status(authorize: Authorizer, attrs: Attributes) -> Obj:
    decision = authorize(attrs)
    status: Obj = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


class Reviews:
    """The handlers, keyed by (group, plural)."""

    def __init__(
        self,
        authorize: Authorizer,
        rbac: Rbac | None,
        tokens: Sequence[TokenAuthenticator],
        api_audiences: Sequence[str],
    ) -> None:
        self.authorize = authorize
        self.rbac = rbac
        self.tokens = tuple(tokens)
        self.api_audiences = tuple(api_audiences)

    def handlers(self) -> dict[tuple[str, str], Review]:
        return {
            ("authentication.k8s.io", "tokenreviews"): self.token_review,
            ("authentication.k8s.io", "selfsubjectreviews"): self.self_subject_review,
            ("authorization.k8s.io", "subjectaccessreviews"): self.subject_access_review,
            ("authorization.k8s.io", "localsubjectaccessreviews"): self.local_subject_access_review,
            ("authorization.k8s.io", "selfsubjectaccessreviews"): self.self_subject_access_review,
            ("authorization.k8s.io", "selfsubjectrulesreviews"): self.self_subject_rules_review,
        }

    async def token_review(self, requester: User, namespace: str, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise errors.invalid("TokenReview", "authentication.k8s.io", "", [_required("spec.token", "")])
        audiences = spec.get("audiences") or []
        if not isinstance(audiences, list):
            audiences = []
        requested = tuple(str(a) for a in audiences) or self.api_audiences
        found = await authenticate_token(token, self.tokens, requested, self.api_audiences)
        if found is None:
            return _answer(body, {"authenticated": False, "user": {}, "error": "invalid bearer token"})
        status: Obj = {
            "authenticated": True,
            "user": authenticated(found.user).user_info(),
            "audiences": list(found.audiences),
        }
        return _answer(body, status)

    async def self_subject_review(self, requester: User, namespace: str, body: Obj) -> Obj:
        return {
            "kind": body.get("kind"),
            "apiVersion": body.get("apiVersion"),
            "metadata": {},
            "status": {"userInfo": requester.user_info()},
        }

    async def subject_access_review(self, requester: User, namespace: str, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        if not spec.get("user") and not spec.get("groups"):
            raise errors.invalid(
                "SubjectAccessReview",
                "authorization.k8s.io",
                "",
                [_invalid("spec.user", "", "at least one of user or group must be specified")],
            )
        subject = _subject(spec)
        return _answer(
            body, _access_status(self.authorize, _attributes(subject, spec, "SubjectAccessReview"))
        )

    async def local_subject_access_review(self, requester: User, namespace: str, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        if not spec.get("user") and not spec.get("groups"):
            raise errors.invalid(
                "LocalSubjectAccessReview",
                "authorization.k8s.io",
                "",
                [_invalid("spec.user", "", "at least one of user or group must be specified")],
            )
        if spec.get("nonResourceAttributes"):
            raise errors.invalid(
                "LocalSubjectAccessReview",
                "authorization.k8s.io",
                "",
                [_invalid("spec.nonResourceAttributes", "", "disallowed on this kind of request")],
            )
        subject = _subject(spec)
        attrs = _attributes(subject, spec, "LocalSubjectAccessReview", namespace=namespace)
        return _answer(body, _access_status(self.authorize, attrs))

    async def self_subject_access_review(self, requester: User, namespace: str, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        return _answer(
            body, _access_status(self.authorize, _attributes(requester, spec, "SelfSubjectAccessReview"))
        )

    async def self_subject_rules_review(self, requester: User, namespace: str, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        wanted = str(spec.get("namespace") or "")
        resource_rules: list[Obj] = []
        non_resource_rules: list[Obj] = []
        if self.rbac is not None:
            for grant in self.rbac.grants(requester, wanted):
                rule = grant.rule
                if rule.get("nonResourceURLs"):
                    non_resource_rules.append(
                        {
                            "verbs": list(rule.get("verbs") or []),
                            "nonResourceURLs": list(rule["nonResourceURLs"]),
                        }
                    )
                else:
                    shaped: Obj = {
                        "verbs": list(rule.get("verbs") or []),
                        "apiGroups": list(rule.get("apiGroups") or []),
                        "resources": list(rule.get("resources") or []),
                    }
                    if rule.get("resourceNames"):
                        shaped["resourceNames"] = list(rule["resourceNames"])
                    resource_rules.append(shaped)
        status: Obj = {
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": self.rbac is None,
        }
        return _answer(body, status)
