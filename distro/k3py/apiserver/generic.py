"""The generic object store: every verb of every resource, over the revisioned store.

kube-apiserver's cut: handlers parse HTTP, this store implements the verbs once for all
resources, and per-resource strategies (``strategy.py``) prepare, default and validate.
Objects are stored as the JSON the API returns, without ``metadata.resourceVersion``:
that is the store's mod_revision and is set when an object is read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import copy
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from k3py.api import conversion, objects
from k3py.api.apply import ApplyConflict, ApplyError, track_update
from k3py.api.crd import decoding
from k3py.api.crd.model import schema_node
from k3py.api.resources import Registry, Resource
from k3py.api.selectors import (
    SelectorError,
    check_field_selector,
    parse_field_selector,
    parse_label_selector,
    selectable_fields,
)
from k3py.apiserver import errors
from k3py.apiserver.authn import User
from k3py.apiserver.services import IPNetwork, ServiceAllocator
from k3py.apiserver.strategy import strategy_for
from k3py.storage import (
    Backend,
    Compacted,
    Conflict,
    EventType,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    StoreUnavailable,
    Watch,
    prefix_end,
)

Obj = dict[str, Any]
MAX_CAS_RETRIES = 16
RECENTLY_DECODED = 4096
"""Stored versions kept decoded for the shared watches (one batch of writes is far smaller)."""
NAMESPACE_KEY = "namespaces"
NAMESPACE_TERMINATING = (
    "The system is ensuring all content is removed from this namespace.  "
    "Upon completion, this namespace will automatically be purged by the system."
)
TYPED_DECODING: dict[str, Callable[[Obj], str | None]] = {
    "customresourcedefinitions.apiextensions.k8s.io": decoding.decode,
}
"""Built-ins whose every write is first checked as Go's typed decoding would check it (the
field types), by ``resource.name``: their readers rely on the shape."""


def decode(kv: KeyValue, rev: int | None = None) -> Obj:
    obj: Obj = orjson.loads(kv.value)
    objects.metadata(obj)["resourceVersion"] = str(rev if rev is not None else kv.mod_revision)
    return obj


def encode(obj: Obj) -> bytes:
    meta = obj.get("metadata", {})
    if "resourceVersion" in meta:
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
        obj = {**obj, "metadata": meta}
    return orjson.dumps(obj)


@dataclass(frozen=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    """Who is writing, for managedFields (the fieldManager parameter, else the user agent)."""
    applied: bool = False
    """The change was computed by server-side apply, which already recorded ownership."""
    user: User | None = None
    """Who asked for the write (None: the API server itself), for admission."""
    subresource: str = ""
    """The subresource written (``status``, ``scale``...), as admission sees it."""
    deleting: bool = False
    """Admission of a deletion: ``obj`` and ``old`` are both the object being deleted."""


class Admission(Protocol):
    """A step every write passes after the strategy prepared it and before validation: it may
    change ``obj`` (mutating admission) or refuse the write with an ``ApiError``. ``old`` is
    None on create."""

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None: ...


class ConnectAdmission(Protocol):
    """A step every CONNECT request (``pods/exec``, ``attach``, ``portforward``) passes before
    the stream opens; ``query`` is the request's query as pairs. It refuses with an ``ApiError``."""

    async def __call__(
        self,
        res: Resource,
        namespace: str,
        name: str,
        subresource: str,
        query: Iterable[tuple[str, str]],
        user: User,
    ) -> None: ...


class Conversion(Protocol):
    """Converts objects of a custom resource whose CRD converts by webhook to ``api_version``
    (those already in it are returned as they are); refuses with an ``ApiError``."""

    async def __call__(self, res: Resource, objs: list[Obj], api_version: str) -> list[Obj]: ...


@dataclass(frozen=True)
class DeleteOptions:
    user: User | None = None
    dry_run: bool = False
    grace_period_seconds: int | None = None
    propagation_policy: str = ""
    precondition_uid: str = ""
    precondition_resource_version: str = ""
    cascade_asked: bool = False
    """``orphanDependents: false`` given: the one case a delete left pending answers 202."""


@dataclass
class Filter:
    """Label and field selectors of a list or watch, checked per object."""

    resource: Resource
    namespace: str
    labels: Any = None
    fields: Any = None
    field_names: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, resource: Resource, namespace: str, label_text: str, field_text: str) -> Filter:
        custom = resource.custom.fields if resource.custom is not None else None
        try:
            labels = parse_label_selector(label_text) if label_text else None
            fields = parse_field_selector(field_text) if field_text else None
            if fields is not None:
                fields = check_field_selector(resource.name, fields, custom=custom)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        return cls(resource, namespace, labels, fields)

    def matches(self, obj: Obj) -> bool:
        meta = obj.get("metadata", {})
        if self.labels is not None and not self.labels.matches(meta.get("labels") or {}):
            return False
        if self.fields is not None:
            custom = self.resource.custom.fields if self.resource.custom is not None else None
            return bool(self.fields.matches(selectable_fields(self.resource.name, obj, custom=custom)))
        return True

    @property
    def everything(self) -> bool:
        return self.labels is None and self.fields is None


LATEST = -1
"""A continue token's resourceVersion for "the newest": the rest of a list whose revision was compacted."""


def _continue_token(rev: int, start: bytes) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": start.decode(errors="surrogateescape")})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_continue(token: str) -> tuple[int, bytes]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        rev, start = int(data["rv"]), str(data["start"]).encode(errors="surrogateescape")
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    if rev <= 0 and rev != LATEST:
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        )
    return rev, start


def _parse_rv(value: str, what: str = "resourceVersion") -> int:
    try:
        rev = int(value)
    except ValueError:
        raise errors.bad_request(f"invalid {what} {value!r}") from None
    if rev < 0:
        raise errors.bad_request(f"invalid {what} {value!r}")
    return rev


class ObjectStore:
    def __init__(self, backend: Backend, registry: Registry, service_cidr: IPNetwork | None = None) -> None:
        self.backend = backend
        self.registry = registry
        self.admission: list[Admission] = []
        self.connect_admission: list[ConnectAdmission] = []
        self.conversion: Conversion | None = None
        """Calls conversion webhooks (``strategy: Webhook`` CRDs); None: such CRDs' objects fail."""
        services = registry.lookup("", "v1", "services")
        self.services = (
            ServiceAllocator(backend, service_cidr, services)
            if service_cidr is not None and services is not None
            else None
        )
        self.watch_handlers: set[asyncio.Task[Any]] = set()
        """The HTTP handlers streaming watches, ended by :meth:`end_watches` when the server stops."""
        self._decoded = RecentlyDecoded()

    async def end_watches(self) -> None:
        """End every open watch (its client sees the stream close and would reconnect)."""
        handlers = list(self.watch_handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=5)

    # -- reads -------------------------------------------------------------------------------

    async def get(self, res: Resource, namespace: str, name: str, resource_version: str = "") -> Obj:
        rev = _parse_rv(resource_version) if resource_version not in ("", "0") else 0
        try:
            kv = await self.backend.get(res.key(namespace, name), rev=rev)
        except Compacted:
            raise errors.expired(f"too old resource version: {rev}") from None
        except FutureRevision:
            raise errors.ApiError(
                504, "Timeout", f"Too large resource version: {rev}, current: {self.backend.current_revision}"
            ) from None
        if kv is None:
            raise errors.not_found(res, name)
        return await self._read(res, kv)

    async def find(self, res: Resource, namespace: str, name: str) -> Obj | None:
        """The object as it is now, or None when there is none (``get`` without the 404)."""
        kv = await self.backend.get(res.key(namespace, name))
        return await self._read(res, kv) if kv is not None else None

    async def list(self, res: Resource, namespace: str, opts: ListOptions) -> Obj:
        flt = Filter.parse(res, namespace, opts.label_selector, opts.field_selector)
        prefix = res.namespace_prefix(namespace) if res.namespaced else res.storage_prefix()
        start, end = prefix, prefix_end(prefix)
        rev = 0
        if opts.continue_token:
            rev, start = _parse_continue(opts.continue_token)
            rev = 0 if rev == LATEST else rev  # an inconsistent continuation: at the newest revision
        elif opts.resource_version and opts.resource_version != "0":
            wanted = _parse_rv(opts.resource_version)
            if opts.resource_version_match == "Exact":
                rev = wanted
            elif wanted > self.backend.current_revision:
                raise errors.ApiError(
                    504,
                    "Timeout",
                    f"Too large resource version: {wanted}, current: {self.backend.current_revision}",
                )
        elif opts.resource_version_match == "Exact":
            raise errors.bad_request('resourceVersionMatch "Exact" requires a resourceVersion other than "0"')
        limit = max(0, opts.limit)
        items: list[Obj] = []
        next_key: bytes | None = None
        # a webhook-converted resource is filtered in the version asked for, as its selectable
        # fields are that version's (the objects of a page go to the webhook together)
        convert_first = _webhook_converted(res) and not flt.everything
        try:
            while True:
                want = limit - len(items) if limit else 0
                page = await self.backend.range(start, end, rev=rev, limit=want)
                rev = page.revision
                decoded = [self._decode(res, kv) for kv in page.kvs]
                if convert_first:
                    decoded = await self._served(res, decoded)
                items += [obj for obj in decoded if flt.matches(obj)]
                if not page.more or page.next_key is None:
                    next_key = None
                    break
                start = next_key = page.next_key
                if limit and len(items) >= limit:
                    break
        except Compacted:
            if opts.continue_token:
                # As upstream: the error carries a token for the rest of the list at the newest
                # revision (resourceVersion -1), from the key the expired token was at.
                _, resume = _parse_continue(opts.continue_token)
                expired = errors.expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results. Continuing with the provided "
                    "token results in an inconsistent list - objects that were created, modified, or deleted "
                    "between the time the first chunk was returned and now may show up in the list."
                )
                expired.metadata["continue"] = _continue_token(LATEST, resume)
                raise expired from None
            raise errors.expired(f"too old resource version: {rev}") from None
        except FutureRevision:
            raise errors.ApiError(
                504, "Timeout", f"Too large resource version: {rev}, current: {self.backend.current_revision}"
            ) from None
        meta: Obj = {"resourceVersion": str(rev)}
        if next_key is not None:
            meta["continue"] = _continue_token(rev, next_key)
            if flt.everything:
                # counted among the keys there are now: exact at the newest revision, an estimate
                # for a page of an older snapshot (what the field promises: "estimating the size")
                remaining = await self.backend.count(next_key, end)
                if remaining:
                    meta["remainingItemCount"] = remaining
        if not convert_first:
            items = await self._served(res, items)
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}

    async def watch(
        self,
        res: Resource,
        namespace: str,
        opts: ListOptions,
        *,
        send_initial: bool = False,
        shared: bool = False,
    ) -> WatchEvents:
        """Events ``(type, object)``: from after ``resourceVersion``, or the current state
        as synthetic ADDED events first when no resourceVersion (or "0") is given, as
        kube-apiserver does. With ``send_initial`` the initial events end with a BOOKMARK
        annotated ``k8s.io/initial-events-end``.

        With ``shared`` the objects of the events may be the very ones other shared watches
        are given (each stored version decoded once for all of them, :class:`RecentlyDecoded`):
        for callers that only read them, as the API's watch handler, which writes them out.
        """
        flt = Filter.parse(res, namespace, opts.label_selector, opts.field_selector)
        prefix = res.namespace_prefix(namespace) if res.namespaced else res.storage_prefix()
        rv = opts.resource_version
        initial: builtins.list[Obj] = []
        if rv in ("", "0") or send_initial:
            listed = await self.list(res, namespace, ListOptions(opts.label_selector, opts.field_selector))
            initial = listed["items"]
            after = int(listed["metadata"]["resourceVersion"])
        else:
            after = _parse_rv(rv)
            if after > self.backend.current_revision:
                raise errors.ApiError(
                    504,
                    "Timeout",
                    f"Too large resource version: {after}, current: {self.backend.current_revision}",
                )
        progress = WatchProgress(after)
        stream = self._watch_stream(res, prefix, after, flt, initial, send_initial, progress, shared)
        return WatchEvents(stream, progress)

    async def _watch_stream(
        self,
        res: Resource,
        prefix: bytes,
        after: int,
        flt: Filter,
        initial: builtins.list[Obj],
        send_initial: bool,
        progress: WatchProgress,
        shared: bool,
    ) -> AsyncIterator[tuple[str, Obj]]:
        for obj in initial:
            yield "ADDED", obj
        if send_initial:
            yield "BOOKMARK", bookmark(res, after, initial_end=True)
        convert_first = _webhook_converted(res) and not flt.everything  # as list does
        if shared and not res.stored_as and not _webhook_converted(res):
            decoder: Callable[..., Obj] = self._decoded.get
        else:
            decoder = lambda kv, rev=None: self._decode(res, kv, rev)  # noqa: E731
        try:
            async with self.backend.watch(prefix, after=after) as stream:
                batches = aiter(stream)
                while True:
                    progress.waiting = stream
                    try:
                        batch = await anext(batches)
                    except StopAsyncIteration:
                        return
                    finally:
                        progress.waiting = None
                    for event in batch:
                        if convert_first:
                            kind, changed = await self._translate_served(res, event, flt)
                        else:
                            kind, changed = _translate(event, flt, decoder)
                            if changed is not None:
                                changed = (await self._served(res, [changed]))[0]
                        if changed is not None:
                            yield kind, changed
        except Compacted:
            raise errors.expired(
                f"too old resource version: {after} ({self.backend.compact_revision + 1})"
            ) from None

    async def _translate_served(self, res: Resource, event: Any, flt: Filter) -> tuple[str, Obj | None]:
        """:func:`_translate` on the objects in the version asked for (both sent to the webhook
        in one review), for selectors on a webhook-converted resource."""
        rev = event.kv.mod_revision
        current = None if event.type is EventType.DELETE else event.kv
        kvs = [kv for kv in (event.prev, current) if kv is not None]
        decoded = [self._decode(res, kv, rev if kv is event.prev else None) for kv in kvs]
        served = {id(kv): obj for kv, obj in zip(kvs, await self._served(res, decoded), strict=True)}
        return _translate(event, flt, lambda kv, rev=None: served[id(kv)])

    # -- writes ------------------------------------------------------------------------------

    async def create(self, res: Resource, namespace: str, obj: Obj, opts: WriteOptions) -> Obj:
        strategy = strategy_for(res)
        self.check_type(res, obj)
        meta = objects.metadata(obj)
        if res.namespaced:
            body_ns = meta.get("namespace") or namespace
            if body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            await self._check_namespace(namespace)
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = objects.generate_name(str(meta["generateName"]))
        for bad in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(bad, None)
        meta["uid"] = objects.new_uid()
        meta["creationTimestamp"] = objects.now()
        strategy.prepare_create(obj)
        await self._admit(res, namespace, obj, None, opts)
        strategy.complete_create(obj)
        if not opts.applied:
            obj = self._track(res, None, obj, opts, "")
        if self.services is not None and res is self.services.resource:
            async with self.services.lock:  # no two Services may take the same address
                return await self._create(res, namespace, obj, opts, allocate=True)
        return await self._create(res, namespace, obj, opts)

    async def _create(
        self, res: Resource, namespace: str, obj: Obj, opts: WriteOptions, *, allocate: bool = False
    ) -> Obj:
        meta = obj["metadata"]
        causes = strategy_for(res).validate(obj, None)
        if causes:
            raise errors.invalid(res.kind, res.group, str(meta.get("name") or ""), causes)
        name = str(meta["name"])
        key = res.key(namespace, name)
        if await self.backend.get(key) is not None:
            raise errors.already_exists(res, name)
        if allocate and self.services is not None:
            await self.services.allocate(obj)
        if opts.dry_run:
            meta["resourceVersion"] = ""
            return obj
        try:
            kv = await self.backend.create(key, await self._stored(res, obj))
        except KeyExists:
            raise errors.already_exists(res, name) from None
        except StoreUnavailable as exc:
            raise errors.internal(str(exc)) from None
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def update(
        self, res: Resource, namespace: str, name: str, obj: Obj, opts: WriteOptions, subresource: str = ""
    ) -> Obj:
        self.check_type(res, obj)
        meta = objects.metadata(obj)
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if res.namespaced and meta.get("namespace", namespace) != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        wanted_rv = str(meta.get("resourceVersion") or "")

        def change(current: Obj) -> Obj:
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise errors.conflict(res, name, errors.STALE)
            return copy.deepcopy(obj)

        return await self.guaranteed_update(res, namespace, name, change, opts, subresource)

    async def guaranteed_update(
        self,
        res: Resource,
        namespace: str,
        name: str,
        change: Callable[[Obj], Obj],
        opts: WriteOptions,
        subresource: str = "",
    ) -> Obj:
        """Read, apply ``change``, write with compare-and-swap; retry on a concurrent write.

        ``change`` gets a private copy of the current object and returns the new one; it may
        raise ``ApiError`` (a failed precondition, a bad patch).
        """
        strategy = strategy_for(res)
        key = res.key(namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = await self.backend.get(key)
            if kv is None:
                raise errors.not_found(res, name)
            current = await self._read(res, kv)
            new = change(copy.deepcopy(current))
            self.check_type(res, new)
            new_meta = objects.metadata(new)
            if new_meta.get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({new_meta.get('name')}) "
                    f"does not match the name on the URL ({name})"
                )
            _keep_system_fields(new, current)
            if subresource == "status":
                strategy.prepare_status_update(new, current)
            elif subresource == "approval":
                strategy.prepare_approval_update(new, current)
            elif subresource == "finalize":
                _prepare_finalize(new, current)
            elif subresource:
                strategy.prepare_subresource_update(subresource, new, current)
            else:
                strategy.prepare_update(new, current)
            await self._admit(
                res, namespace, new, current, dataclasses.replace(opts, subresource=subresource)
            )
            if not opts.applied:
                new = self._track(res, current, new, opts, subresource)
            new_meta = objects.metadata(new)
            causes = strategy.validate(new, current, subresource)
            if causes:
                raise errors.invalid(res.kind, res.group, name, causes)
            if (
                not subresource
                and self.services is not None
                and (res.group, res.plural) == ("", "services")
                and self.services.needs_allocation(new.get("spec") or {})
            ):
                await self.services.allocate(new, current)
            if _finalized_deletion(res, new):
                if opts.dry_run:
                    return new
                if await self._delete_at(res, name, kv) is None:
                    continue
                return new
            if _same(new, current):
                return current  # no-op updates do not bump the revision
            if opts.dry_run:
                return new
            try:
                out = await self.backend.update(
                    key, await self._stored(res, new), expected_mod=kv.mod_revision
                )
            except Conflict:
                continue
            except KeyNotFound:
                raise errors.not_found(res, name) from None
            new_meta["resourceVersion"] = str(out.mod_revision)
            return new
        raise errors.conflict(res, name, "too many concurrent writes; please try again")

    async def delete(self, res: Resource, namespace: str, name: str, opts: DeleteOptions) -> tuple[Obj, bool]:
        """Delete, or start a graceful/finalized deletion. Returns (object, deleted now)."""
        strategy = strategy_for(res)
        key = res.key(namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = await self.backend.get(key)
            if kv is None:
                raise errors.not_found(res, name)
            current = await self._read(res, kv)
            if opts.user is not None:
                await self._admit(
                    res,
                    namespace,
                    current,
                    current,
                    WriteOptions(user=opts.user, deleting=True, dry_run=opts.dry_run),
                )
            marked = copy.deepcopy(current)
            strategy.prepare_delete(marked)  # a CRD takes its cleanup finalizer here
            meta = marked["metadata"]
            if opts.precondition_uid and opts.precondition_uid != meta.get("uid"):
                raise errors.conflict(
                    res,
                    name,
                    f"Precondition failed: UID in precondition: {opts.precondition_uid}, "
                    f"UID in object meta: {meta.get('uid')}",
                )
            if (
                opts.precondition_resource_version
                and opts.precondition_resource_version != meta["resourceVersion"]
            ):
                raise errors.conflict(
                    res,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{opts.precondition_resource_version}, "
                    f"ResourceVersion in object meta: {meta['resourceVersion']}",
                )
            finalizers = list(meta.get("finalizers") or [])
            if opts.propagation_policy in ("Foreground",) and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            elif opts.propagation_policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            grace = strategy.grace_period(current, opts.grace_period_seconds)
            namespace_res = _is_namespace(res)
            if namespace_res and meta.get("deletionTimestamp") and _spec_finalizers(marked):
                raise errors.conflict(res, name, NAMESPACE_TERMINATING)
            # A namespace is first marked Terminating: the namespace controller empties it.
            marks_first = namespace_res and not meta.get("deletionTimestamp")
            if not finalizers and grace == 0 and not marks_first:
                if opts.dry_run:
                    return current, True
                out = await self._delete_at(res, name, kv)
                if out is None:
                    continue
                return await self._read(res, out), True
            if meta.get("deletionTimestamp"):
                return current, False  # already being deleted
            new = marked
            nm = new["metadata"]
            nm["deletionTimestamp"] = objects.now()
            nm["deletionGracePeriodSeconds"] = grace
            if finalizers:
                nm["finalizers"] = finalizers
            if namespace_res:  # as upstream's namespace storage marks it: no grace period
                nm.pop("deletionGracePeriodSeconds", None)
                new.setdefault("status", {})["phase"] = "Terminating"
            if "generation" in nm:
                nm["generation"] = int(nm["generation"]) + 1
            if opts.dry_run:
                return new, False
            try:
                out = await self.backend.update(
                    key, await self._stored(res, new), expected_mod=kv.mod_revision
                )
            except Conflict:
                continue
            nm["resourceVersion"] = str(out.mod_revision)
            return new, False
        raise errors.conflict(res, name, "too many concurrent writes; please try again")

    async def _delete_at(self, res: Resource, name: str, kv: KeyValue) -> KeyValue | None:
        """Delete ``kv`` if it is still the newest version; None when a write got there first."""
        try:
            return await self.backend.delete(kv.key, expected_mod=kv.mod_revision)
        except Conflict:
            return None
        except KeyNotFound:
            raise errors.not_found(res, name) from None

    async def delete_collection(
        self, res: Resource, namespace: str, list_opts: ListOptions, opts: DeleteOptions
    ) -> Obj:
        listed = await self.list(res, namespace, list_opts)
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                await self.delete(res, meta.get("namespace", ""), meta["name"], opts)
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        return listed

    # -- helpers -----------------------------------------------------------------------------

    async def _admit(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        for step in self.admission:
            await step(res, namespace, obj, old, opts)

    @staticmethod
    def _decode(res: Resource, kv: KeyValue, rev: int | None = None) -> Obj:
        obj = decode(kv, rev)
        if not res.stored_as or _webhook_converted(res):
            return obj  # a webhook-converted custom resource is converted by _served
        return conversion.from_storage(res, obj)

    async def _read(self, res: Resource, kv: KeyValue, rev: int | None = None) -> Obj:
        return (await self._served(res, [self._decode(res, kv, rev)]))[0]

    async def _served(self, res: Resource, objs: builtins.list[Obj]) -> builtins.list[Obj]:
        """Decoded objects in ``res``'s version: those of a CRD converting by webhook are
        converted (all in one review), then pruned and defaulted; the others are already."""
        if not _webhook_converted(res):
            return objs
        converted = await self._convert(res, objs, res.api_version)
        return [conversion.from_storage(res, obj) for obj in converted]

    async def _stored(self, res: Resource, obj: Obj) -> bytes:
        """What to store for ``obj``: a CRD converting by webhook has it converted to its
        storage version first."""
        if _webhook_converted(res):
            (obj,) = await self._convert(res, [obj], res.storage_version)
            return encode(obj)
        return self._encode(res, obj)

    async def _convert(self, res: Resource, objs: builtins.list[Obj], api_version: str) -> builtins.list[Obj]:
        if self.conversion is None:
            raise errors.internal(f"conversion webhook for {res.group}/{res.kind} failed: not enabled")
        return await self.conversion(res, objs, api_version)

    @staticmethod
    def _encode(res: Resource, obj: Obj) -> bytes:
        return encode(conversion.to_storage(res, obj) if res.stored_as else obj)

    def _track(self, res: Resource, old: Obj | None, new: Obj, opts: WriteOptions, subresource: str) -> Obj:
        """Record ``opts.field_manager`` as the owner of what this write changed."""
        if not opts.field_manager:
            return new
        node = schema_node(res)
        try:
            return track_update(
                old,
                new,
                manager=opts.field_manager,
                node=node,
                api_version=res.api_version,
                now=objects.now(),
                subresource=subresource,
            )
        except (ApplyError, ApplyConflict) as exc:  # unreadable managedFields: upstream drops them
            raise errors.bad_request(str(exc)) from None

    def check_type(self, res: Resource, obj: Obj) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != res.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"
            )
        if api_version and api_version != res.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) "
                f"does not match the expected API version ({res.api_version})"
            )
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version
        decode = TYPED_DECODING.get(res.name) if res.custom is None else None
        if decode is not None and (error := decode(obj)) is not None:
            raise errors.bad_request(
                f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: {error}'
            )

    async def _check_namespace(self, namespace: str) -> None:
        ns_res = self.registry.lookup("", "v1", NAMESPACE_KEY)
        assert ns_res is not None
        kv = await self.backend.get(ns_res.key("", namespace))
        if kv is None:
            raise errors.not_found(ns_res, namespace)
        ns = orjson.loads(kv.value)
        if ns.get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden(
                f"unable to create new content in namespace {namespace} because it is being terminated"
            )


def _webhook_converted(res: Resource) -> bool:
    return res.custom is not None and res.custom.conversion_webhook is not None


def _keep_system_fields(new: Obj, current: Obj) -> None:
    """Fields a client cannot change with an update (as ObjectMetaUpdateValidation enforces)."""
    meta, old = new["metadata"], current["metadata"]
    for name in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
        if name in old:
            meta[name] = old[name]
        else:
            meta.pop(name, None)
    meta["resourceVersion"] = old["resourceVersion"]
    if "namespace" in old:
        meta["namespace"] = old["namespace"]


def _finalized_deletion(res: Resource, obj: Obj) -> bool:
    meta = obj["metadata"]
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and meta.get("deletionGracePeriodSeconds", 0) == 0
        and not (_is_namespace(res) and _spec_finalizers(obj))
    )


def _is_namespace(res: Resource) -> bool:
    return res.plural == NAMESPACE_KEY and not res.group


def _spec_finalizers(namespace: Obj) -> list[str]:
    spec = namespace.get("spec")
    return list(spec.get("finalizers") or []) if isinstance(spec, dict) else []


def _prepare_finalize(new: Obj, old: Obj) -> None:
    """Only ``spec.finalizers`` changes through a namespace's ``finalize`` subresource."""
    finalizers = _spec_finalizers(new)
    managed = new["metadata"].get("managedFields")
    result = copy.deepcopy(old)
    spec = result.setdefault("spec", {})
    if finalizers:
        spec["finalizers"] = finalizers
    else:
        spec.pop("finalizers", None)
    if managed is not None:
        result["metadata"]["managedFields"] = managed
    new.clear()
    new.update(result)


def _same(a: Obj, b: Obj) -> bool:
    return encode(a) == encode(b)


def _translate(event: Any, flt: Filter, decode: Callable[..., Obj]) -> tuple[str, Obj | None]:
    rev = event.kv.mod_revision
    if flt.everything and event.type is not EventType.DELETE:
        # Nothing to match: whether it is new is all the old object tells.
        return ("MODIFIED" if event.prev is not None else "ADDED"), decode(event.kv)
    prev = decode(event.prev, rev) if event.prev is not None else None
    if event.type is EventType.DELETE:
        if prev is not None and flt.matches(prev):
            return "DELETED", prev
        return "", None
    cur = decode(event.kv)
    cur_ok = flt.matches(cur)
    prev_ok = prev is not None and flt.matches(prev)
    if cur_ok:
        return ("MODIFIED" if prev_ok else "ADDED"), cur
    if prev_ok:
        return "DELETED", cur
    return "", None


class RecentlyDecoded:
    """Stored versions decoded once for every shared watch that sends them: the objects of the
    last :data:`RECENTLY_DECODED` (key, revision) pairs, read-only by contract."""

    def __init__(self) -> None:
        self._objects: dict[tuple[bytes, int, int | None], Obj] = {}

    def get(self, kv: KeyValue, rev: int | None = None) -> Obj:
        key = (kv.key, kv.mod_revision, rev)
        found = self._objects.get(key)
        if found is None:
            found = self._objects[key] = decode(kv, rev)
            if len(self._objects) > RECENTLY_DECODED:
                del self._objects[next(iter(self._objects))]
        return found


class WatchProgress:
    """How far an API watch has got: every event up to :meth:`revision` that it selects has
    been yielded. Known while it waits on the store (between batches), else its start."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.waiting: Watch | None = None
        """The store's watch while the stream waits on it for the next batch."""

    def revision(self) -> int:
        return max(self.after, self.waiting.progress()) if self.waiting is not None else self.after


class WatchEvents:
    """The events of one API watch (``(type, object)``), with its progress for bookmarks."""

    def __init__(self, events: AsyncIterator[tuple[str, Obj]], progress: WatchProgress) -> None:
        self._events = events
        self.progress = progress

    def __aiter__(self) -> WatchEvents:
        return self

    async def __anext__(self) -> tuple[str, Obj]:
        return await anext(self._events)

    async def aclose(self) -> None:
        await self._events.aclose()  # type: ignore[attr-defined]


def bookmark(res: Resource, rev: int, *, initial_end: bool = False) -> Obj:
    """A BOOKMARK event's object: only kind, apiVersion and the resourceVersion."""
    meta: Obj = {"resourceVersion": str(rev)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
