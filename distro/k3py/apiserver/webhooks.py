"""Dynamic admission: calling the webhooks of Mutating- and ValidatingWebhookConfigurations.

:class:`WebhookAdmission` follows both configuration kinds through
:class:`~k3py.apiserver.cache.ObjectCache` (a configuration applies within milliseconds of
being written, as upstream's informer-fed one does) and gives the object store two admission
steps, run after the built-in plugins as kube-apiserver orders them:

- :attr:`WebhookAdmission.mutating` calls the matching mutating webhooks one after another,
  by configuration name then webhook order; each may answer a JSONPatch, applied at once so
  the next webhook sees it. A webhook with ``reinvocationPolicy: IfNeeded`` is called once
  more when a webhook after it changed the object. The store's defaults (and a custom
  resource's pruning and defaulting) are applied again after a webhook changed the object;
- :attr:`WebhookAdmission.validating` calls the matching validating webhooks concurrently;
  the first refusal (in webhook order) refuses the write.

Which webhooks match is :mod:`~k3py.apiserver.webhook_rules`; the AdmissionReview sent and
its answer are :mod:`~k3py.apiserver.webhook_review`; calling one is
:mod:`~k3py.apiserver.webhook_client`. A refusal is the webhook's ``status`` with upstream's
message ``admission webhook "<name>" denied the request: <message>``; a webhook that cannot
be called refuses with a 500 under ``failurePolicy: Fail`` and is skipped under ``Ignore``.
Writes the API server makes itself (no user) are not sent to webhooks. Response
``warnings`` are logged, not returned: the handlers have no channel for them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import logging
from collections.abc import Iterable, Sequence

import orjson

from k3py.api.cel import Authorizer as CelAuthorizer
from k3py.api.patch import PatchError, json_patch
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.admission_policy_cel import cel_authorizer
from k3py.apiserver.authn import User
from k3py.apiserver.authz import Authorizer
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import Obj, ObjectStore, WriteOptions
from k3py.apiserver.webhook_client import CallError, WebhookClient
from k3py.apiserver.webhook_review import (
    Call,
    admission_request,
    connect_options,
    denied,
    fingerprint,
    redefault,
    response_of,
    review_of,
    review_version,
)
from k3py.apiserver.webhook_rules import (
    GROUP,
    GroupVersionResource,
    Hook,
    Match,
    conditions_hold,
    exempt,
    hooks_of,
    matched_resource,
    namespace_selected,
    needs_namespace,
    object_selected,
)

log = logging.getLogger(__name__)

SIDE_EFFECT_FREE_ON_DRY_RUN = frozenset({"None", "NoneOnDryRun"})


class WebhookAdmission:
    """The webhook configurations, followed, and the two admission steps that use them."""

    def __init__(self, store: ObjectStore, authorize: Authorizer | None = None) -> None:
        self.store = store
        self.authorize = authorize
        """Answers the ``authorizer`` of ``matchConditions`` (as the requester)."""
        self.client = WebhookClient(store)
        self._caches: dict[bool, ObjectCache] = {}
        self._hooks: dict[bool, list[Hook] | None] = {True: [], False: []}
        self.mutating = _Step(self, mutating=True)
        self.validating = _Step(self, mutating=False)

    async def start(self) -> None:
        """Follow both configuration kinds (listed before this returns)."""
        for mutating, plural in (
            (True, "mutatingwebhookconfigurations"),
            (False, "validatingwebhookconfigurations"),
        ):
            resource = self.store.registry.lookup(GROUP, "v1", plural)
            if resource is None:
                log.info("%s/v1 %s are not served: no admission webhooks", GROUP, plural)
                continue
            cache = ObjectCache(self.store, resource)
            cache.subscribe(self._forget_mutating if mutating else self._forget_validating)
            await cache.start()
            self._caches[mutating] = cache

    def _forget_mutating(self, _: Obj | None) -> None:
        self._hooks[True] = None

    def _forget_validating(self, _: Obj | None) -> None:
        self._hooks[False] = None

    async def close(self) -> None:
        for cache in self._caches.values():
            await cache.stop()
        self._caches.clear()
        await self.client.close()

    def hooks(self, *, mutating: bool) -> list[Hook]:
        hooks = self._hooks.get(mutating)
        if hooks is None:
            cache = self._caches.get(mutating)
            hooks = hooks_of(cache.objects() if cache else [], mutating=mutating)
            self._hooks[mutating] = hooks
        return hooks

    # -- the admission steps -----------------------------------------------------------------

    async def admit(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions, *, mutating: bool
    ) -> None:
        if opts.user is None or not self.hooks(mutating=mutating):
            return  # the API server's own writes, or nothing to call
        call = Call.of_write(res, namespace, obj, old, opts, self._equivalents(res))
        if exempt(call.resource):
            return
        matches = await self.matches(call, mutating=mutating)
        if not matches:
            return
        if mutating:
            await self._mutate(call, matches, obj)
        else:
            await self._validate(call, matches)

    async def connect(
        self,
        res: Resource,
        namespace: str,
        name: str,
        subresource: str,
        query: Iterable[tuple[str, str]],
        user: User,
    ) -> None:
        """Admission of a CONNECT (``pods/exec``, ``attach``, ``portforward``; ``query`` is the
        request's query string as pairs): the mutating, then the validating webhooks are called
        with the options object (e.g. a PodAttachOptions) as ``object``."""
        options = connect_options(subresource, query)
        call = Call(res, namespace, name, "CONNECT", subresource, options, None, user, False, options)
        call.equivalents = self._equivalents(res)
        if exempt(call.resource):
            return
        for mutating in (True, False):
            matches = await self.matches(call, mutating=mutating)
            if matches and mutating:
                await self._mutate(call, matches, copy.deepcopy(options))
            elif matches:
                await self._validate(call, matches)

    def _admission_request(self, call: Call, resource: GroupVersionResource) -> Obj:
        """The ``request`` of ``matchConditions``: the AdmissionRequest for the matched resource."""
        found = self.store.registry.lookup(resource.group, resource.version, resource.resource)
        return admission_request(call, resource, found.kind if found is not None else call.res.kind)

    def _authorizer(self, call: Call) -> CelAuthorizer | None:
        return cel_authorizer(self.authorize, call.user) if self.authorize is not None else None

    def _equivalents(self, res: Resource) -> tuple[GroupVersionResource, ...]:
        """The same objects served in other versions (``matchPolicy: Equivalent``)."""
        found = []
        for other in self.store.registry:
            if (other.group, other.version, other.plural) == (res.group, res.version, res.plural):
                continue
            same = other.group == res.group and other.plural == res.plural
            shared = bool(res.stored_as) and other.stored_as == res.stored_as
            stored = (other.group, other.plural) == _stored_pair(res) or (
                res.group,
                res.plural,
            ) == _stored_pair(other)
            if same or shared or stored:
                found.append(GroupVersionResource(other.group, other.version, other.plural))
        return tuple(found)

    async def matches(self, call: Call, *, mutating: bool) -> list[Match]:
        request = call.matching()
        found: list[Match] = []
        namespace_labels: dict[str, str] | None = None
        for hook in self.hooks(mutating=mutating):
            resource = matched_resource(hook, request)
            if resource is None:
                continue
            if needs_namespace(hook, request) and namespace_labels is None:
                namespace_labels = await self._namespace_labels(call.namespace)
            if not namespace_selected(hook, request, namespace_labels):
                continue
            if not object_selected(hook, request):
                continue
            if hook.conditions and not conditions_hold(
                hook, request, self._admission_request(call, resource), self._authorizer(call)
            ):
                continue
            found.append(Match(hook, resource))
        return found

    async def _namespace_labels(self, namespace: str) -> dict[str, str]:
        namespaces = self.store.registry.lookup("", "v1", "namespaces")
        if namespaces is None:
            return {}
        try:
            found = await self.store.get(namespaces, "", namespace)
        except errors.ApiError:
            return {}
        labels = (found.get("metadata") or {}).get("labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    # -- mutating ----------------------------------------------------------------------------

    async def _mutate(self, call: Call, matches: Sequence[Match], obj: Obj) -> None:
        called: list[tuple[Match, str]] = []  # each with the object as it saw it
        for match in matches:
            before = fingerprint(obj)
            await self._call_mutating(call, match, obj)
            called.append((match, before))
        if not called:
            return
        final = fingerprint(obj)
        # IfNeeded: once more for a webhook that saw an object someone changed after it.
        for match, _ in called:
            if match.hook.reinvocation == "IfNeeded" and _changed_after(called, match, final):
                await self._call_mutating(call, match, obj)

    async def _call_mutating(self, call: Call, match: Match, obj: Obj) -> None:
        if call.obj is not None:
            call.obj = obj  # every webhook sees what the ones before it made
        response = await self._call_hook(call, match)
        if response is None:
            return
        patch = response.get("patch")
        if not patch or call.operation in ("DELETE", "CONNECT"):
            return
        if response.get("patchType") != "JSONPatch":
            raise errors.internal(
                f'admission webhook "{match.hook.name}" returned a patch with unsupported patchType '
                f"{response.get('patchType')!r}"
            )
        try:
            ops = orjson.loads(base64.b64decode(str(patch), validate=True))
            patched = json_patch.apply(obj, ops)
        except (binascii.Error, ValueError, orjson.JSONDecodeError, PatchError) as exc:
            raise errors.internal(
                f'admission webhook "{match.hook.name}" returned an unusable patch: {exc}'
            ) from None
        if not isinstance(patched, dict):
            raise errors.internal(
                f'admission webhook "{match.hook.name}" patched the object into a non-object'
            )
        redefault(call.res, patched)
        obj.clear()
        obj.update(patched)

    # -- validating --------------------------------------------------------------------------

    async def _validate(self, call: Call, matches: Sequence[Match]) -> None:
        outcomes = await asyncio.gather(*(self._call_hook(call, m) for m in matches), return_exceptions=True)
        for outcome in outcomes:  # the first refusal in webhook order wins
            if isinstance(outcome, BaseException):
                raise outcome

    # -- one call ----------------------------------------------------------------------------

    async def _call_hook(self, call: Call, match: Match) -> Obj | None:
        """The webhook's response when it allowed the request (None when its failure was
        ignored); raise the refusal as an ``ApiError`` otherwise."""
        hook = match.hook
        if call.dry_run and hook.side_effects not in SIDE_EFFECT_FREE_ON_DRY_RUN:
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        try:
            version = review_version(hook)
            review = await self.client.call(hook.client_config, review_of(call, match, version), hook.timeout)
            response = response_of(review, call.uid, version)
        except CallError as exc:
            if hook.ignores_failures:
                log.warning('Failed calling webhook "%s", failing open: %s', hook.name, exc)
                return None
            raise errors.internal(f'failed calling webhook "{hook.name}": {exc}') from None
        for warning in response.get("warnings") or []:
            log.info('admission webhook "%s" warning: %s', hook.name, warning)
        if not response.get("allowed"):
            raise denied(hook.name, response.get("status"))
        return response


# -- helpers ----------------------------------------------------------------------------------


class _Step:
    """One of the two admission steps (``ObjectStore.admission`` entries)."""

    def __init__(self, owner: WebhookAdmission, *, mutating: bool) -> None:
        self.owner = owner
        self.is_mutating = mutating

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        await self.owner.admit(res, namespace, obj, old, opts, mutating=self.is_mutating)


def _changed_after(called: list[tuple[Match, str]], match: Match, final: str) -> bool:
    """Whether a webhook after ``match`` changed the object (``called`` holds the object as
    each webhook saw it; ``match``'s own change is no reason to call it again)."""
    index = next(i for i, (m, _) in enumerate(called) if m is match)
    after_own = called[index + 1][1] if index + 1 < len(called) else final
    return after_own != final


def _stored_pair(res: Resource) -> tuple[str, str] | None:
    if not res.stored_as:
        return None
    group, _, plural = res.stored_as.partition("/")
    return ("" if group == "core" else group, plural)
