"""The served resources: group, version, kind, REST names, scope, verbs, subresources.

They come from the API manifest (``manifest.toml``, :mod:`k3py.api.manifest`) through a profile
(:mod:`k3py.api.profiles`): every resource the profile keeps and k3py can serve becomes one
:class:`Resource`. Discovery, routing, OpenAPI, storage keys and printing all read the
:class:`Registry` built from them, so a resource that is not here does not exist anywhere.
What only k3py knows (which objects two shapes share, what is not implemented yet) is here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from k3py.api.manifest import ManifestResource
from k3py.api.manifest import load as load_manifest
from k3py.api.profiles import Profile, Selection, select

if TYPE_CHECKING:
    from k3py.api.crd.model import CustomResource

CRUD = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    """Subresources served generically: ``status`` and ``scale``."""
    verbs: tuple[str, ...] = CRUD
    singular: str = field(default="")
    stored_as: str = ""
    """``group/plural`` of the resource whose objects this one serves in another version
    ("core/events" for events.k8s.io events): one set of objects, converted when read
    and written (``k3py.api.conversion``)."""
    storage_version: str = ""
    """With ``stored_as``: the apiVersion the shared objects are stored in, when this resource is
    another version of the same group's resource and no converter of its own exists."""
    custom: CustomResource | None = field(default=None, compare=False)
    """For a resource a CustomResourceDefinition defines: its schema, columns, subresources."""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def name(self) -> str:
        """``plural.group``, or just ``plural`` for the core group (kubectl's spelling)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.custom.list_kind if self.custom is not None else f"{self.kind}List"

    def storage_prefix(self) -> bytes:
        """Where objects of this resource live in the store (one key per object)."""
        if self.stored_as:
            return f"/registry/{self.stored_as}/".encode()
        group = self.group or "core"
        return f"/registry/{group}/{self.plural}/".encode()

    def key(self, namespace: str, name: str) -> bytes:
        if self.namespaced:
            return self.storage_prefix() + f"{namespace}/{name}".encode()
        return self.storage_prefix() + name.encode()

    def namespace_prefix(self, namespace: str) -> bytes:
        return self.storage_prefix() + f"{namespace}/".encode() if namespace else self.storage_prefix()


SERVED_SUBRESOURCES = (
    "status", "scale", "token", "approval", "finalize", "eviction", "ephemeralcontainers", "resize",
)  # fmt: skip
"""Subresources k3py serves: status, scale, certificatesigningrequests/approval,
namespaces/finalize, pods/ephemeralcontainers and pods/resize through the generic store,
serviceaccounts/token (TokenRequest) and pods/eviction by handlers of their own; the others
(pods/log, pods/exec...) are the kubelet proxy's."""

STORED_AS = {
    ("autoscaling", "v1", "horizontalpodautoscalers"): "autoscaling/horizontalpodautoscalers",
    ("events.k8s.io", "v1", "events"): "core/events",
}
"""Resources served in a second shape of another's objects (``k3py.api.conversion`` converts)."""

ANSWERED = {
    ("authentication.k8s.io", "tokenreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
}
"""Virtual (create-only) resources the API server answers without storing (``k3py.apiserver.reviews``)."""


def unserved_reason(resource: ManifestResource) -> str:
    """Why k3py does not serve a resource its profile keeps ("" when it does)."""
    if (resource.group, resource.plural) in ANSWERED:
        return ""
    if not {"get", "list"} <= set(resource.verbs):
        return f"a virtual resource ({', '.join(resource.verbs)} only) with no handler in k3py yet"
    return ""


REQUIRED = (
    ("", "v1", "namespaces"),
    ("", "v1", "services"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "clusterroles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
)
"""What the server itself reads and writes (system namespaces, the ``kubernetes`` Service, the
roles and bindings its authorizer follows): no profile or ``--runtime-config`` may take these
away (kube-apiserver cannot turn core off, nor RBAC's API while it authorizes with RBAC)."""


@functools.cache
def builtin_group_resources() -> frozenset[tuple[str, str]]:
    """Every ``(group, plural)`` the API manifest lists, in any version, served or not: where
    built-in objects are stored (``/registry/<group>/<plural>/``), which a custom resource of the
    same group and plural would share (upstream's ``OverlappingBuiltInResources``)."""
    return frozenset((r.group, r.plural) for r in load_manifest().resources())


def missing_required(resources: Iterable[Resource]) -> list[str]:
    """The :data:`REQUIRED` resources that ``resources`` lacks, as ``core/v1/namespaces``."""
    present = {(r.group, r.version, r.plural) for r in resources}
    return [f"{g or 'core'}/{v}/{p}" for g, v, p in REQUIRED if (g, v, p) not in present]


def from_manifest(selection: Selection) -> tuple[Resource, ...]:
    """The resources a selection keeps and k3py can serve, in the manifest's order.

    A resource that exists in several versions keeps its objects in one: the manifest's first
    (preferred) version of it, whichever versions the profile serves, so that changing the
    profile or ``--runtime-config`` never changes how stored objects read. The other versions
    read and write them through ``k3py.api.conversion``.
    """
    storage: dict[tuple[str, str], str] = {}
    for gv in selection.manifest:
        for listed in gv.resources:
            storage.setdefault((gv.group, listed.plural), gv.group_version)
    shared: list[Resource] = []
    for served in _served(selection):
        kept_in = storage[(served.group, served.plural)]
        if kept_in != served.api_version and not served.stored_as:
            prefix = f"{served.group or 'core'}/{served.plural}"
            served = dataclasses.replace(served, stored_as=prefix, storage_version=kept_in)
        shared.append(served)
    return tuple(shared)


def _served(selection: Selection) -> tuple[Resource, ...]:
    return tuple(
        Resource(
            group=r.group,
            version=r.version,
            kind=r.kind,
            plural=r.plural,
            namespaced=r.namespaced,
            short_names=r.short_names,
            categories=r.categories,
            subresources=tuple(s for s in r.subresources if s in SERVED_SUBRESOURCES),
            verbs=r.verbs,
            singular=r.singular,
            stored_as=STORED_AS.get((r.group, r.version, r.plural), ""),
        )
        for r in selection.resources()
        if not unserved_reason(r)
    )


def selection(runtime_config: Mapping[str, bool] | None = None) -> Selection:
    """What the bundled manifest serves: as its build stripped it, then ``--runtime-config``.

    A release binary carries a stripped manifest whose ``[build]`` table says which of the
    trims to undo (``keep_alpha``, ``keep_deprecated``); running from source, the full manifest
    gets the default profile, so both serve the same.
    """
    manifest = load_manifest()
    built = manifest.stripped
    profile = Profile(
        keep_alpha=built.keep_alpha if built else False,
        keep_deprecated=built.keep_deprecated if built else False,
        runtime_config=dict(runtime_config or {}),
    )
    return select(manifest, profile)


RESOURCES: tuple[Resource, ...] = from_manifest(selection())
"""What the server serves with no ``--runtime-config``."""


class Registry:
    """Lookup of served resources by URL segments and by kind.

    The built-in resources are fixed; the custom ones (from CustomResourceDefinitions) are
    replaced as a whole by :meth:`set_custom` while the server runs. Every change bumps
    :attr:`revision`, which caches built from the registry (OpenAPI documents) compare.
    """

    def __init__(self, resources: Iterable[Resource] = RESOURCES) -> None:
        self._builtin = tuple(resources)
        self._custom: tuple[Resource, ...] = ()
        self.revision = 0
        self._index()

    def _index(self) -> None:
        self._all = self._builtin + self._custom
        self._by_path = {(r.group, r.version, r.plural): r for r in self._all}
        self._by_kind = {(r.group, r.version, r.kind): r for r in self._all}
        order: dict[str, list[str]] = {}
        for r in self._all:
            versions = order.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
        self._versions = order

    def set_custom(self, resources: Iterable[Resource]) -> None:
        """Serve ``resources`` (in discovery order) as the custom resources, replacing the
        previous ones. One that would take a built-in's URL or kind is left out: built-ins win,
        as kube-apiserver's handlers run before apiextensions-apiserver's. So is one with a
        built-in's group and plural in any version: it would share the built-in's storage."""
        builtin_paths = {(r.group, r.version, r.plural) for r in self._builtin}
        builtin_kinds = {(r.group, r.version, r.kind) for r in self._builtin}
        self._custom = tuple(
            r
            for r in resources
            if (r.group, r.version, r.plural) not in builtin_paths
            and (r.group, r.version, r.kind) not in builtin_kinds
            and (r.group, r.plural) not in builtin_group_resources()
        )
        self.revision += 1
        self._index()

    def custom(self) -> tuple[Resource, ...]:
        return self._custom

    def builtin(self) -> tuple[Resource, ...]:
        return self._builtin

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._all)

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> Resource | None:
        return self._by_kind.get((group, version, kind))

    def groups(self) -> list[str]:
        """Served groups in discovery order: core first, then as listed, then custom groups."""
        return list(self._versions)

    def versions(self, group: str) -> list[str]:
        """A group's served versions, preferred first."""
        return list(self._versions.get(group, []))

    def in_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self._all if r.group == group and r.version == version]
