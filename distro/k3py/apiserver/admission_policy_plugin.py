"""The skeleton both admission policy plugins stand on (upstream's ``policy/generic.Plugin``).

A :class:`PolicyPlugin` follows one policy kind and its bindings (:class:`PolicySource`,
compiling each policy with the plugin's ``compile``) and decides whether a request is one
policies see at all (:meth:`PolicyPlugin.admitting`): not the API server's own writes, not
when no policy is bound, never the webhook configurations and policies themselves. The
plugin then walks :meth:`~k3py.apiserver.admission_policy.Admitting.invocations` and, for
each, evaluates what its kind of policy holds (validations or mutations) with the inputs
:meth:`~k3py.apiserver.admission_policy.Admitting.inputs` gives.

``authorize``, the API server's authorizer chain, is what the expressions' ``authorizer``
asks; without it an expression that calls ``authorizer`` fails at evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from k3py.api.resources import Resource
from k3py.apiserver import authz
from k3py.apiserver.admission_policy import Admitting, Obj, PolicySource
from k3py.apiserver.authn import User
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.apiserver.webhook_review import connect_options
from k3py.apiserver.webhook_rules import GroupVersionResource, exempt

T = TypeVar("T")


class PolicyPlugin(Generic[T]):
    """One policy kind (``policies`` and ``bindings`` are their plurals), followed."""

    def __init__(
        self,
        store: ObjectStore,
        policies: str,
        bindings: str,
        compile: Callable[[Obj], T],
        authorize: authz.Authorizer | None = None,
    ) -> None:
        self.store = store
        self.authorize = authorize
        self.source = PolicySource(store, policies, bindings, compile)

    async def start(self) -> None:
        await self.source.start()

    async def close(self) -> None:
        await self.source.close()

    def admitting(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> Admitting | None:
        """The write as policies see it; None when no policy can apply: the API server's own
        writes, none bound, or a resource that policies never see."""
        if opts.user is None or not self.source.hooks():
            return None
        if exempt(GroupVersionResource(res.group, res.version, res.plural)):
            return None
        return Admitting.of(self.store, res, namespace, obj, old, opts, self.authorize)

    def connecting(
        self,
        res: Resource,
        namespace: str,
        name: str,
        subresource: str,
        query: Iterable[tuple[str, str]],
        user: User,
    ) -> Admitting | None:
        """A CONNECT (``pods/exec``, ``attach``, ``portforward``) as policies see it: ``object``
        is the options object its query makes (a PodExecOptions...); None when none is bound."""
        if not self.source.hooks():
            return None
        options = connect_options(subresource, query)
        return Admitting.connecting(
            self.store, res, namespace, name, subresource, options, user, self.authorize
        )
