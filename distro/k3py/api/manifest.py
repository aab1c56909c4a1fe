"""The API manifest: what upstream Kubernetes 1.37 can serve.

``manifest.toml`` beside this module lists every group/version/resource of upstream kube-apiserver
1.37 (GA, beta and alpha, on or off by default) with its REST names, scope, verbs, subresources,
lifecycle and whether the conformance suite needs it. :func:`load` reads it into frozen
:class:`Manifest` / :class:`GroupVersion` / :class:`ManifestResource` values and checks every
field, naming the group-version and resource when one is wrong (:class:`ManifestError`).

Which of these APIs k3py serves is :mod:`k3py.api.profiles`' business.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Final, NoReturn

DATA_FILE: Final = "manifest.toml"
VERBS: Final = frozenset({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"})
CORE: Final = "core"
"""How ``only``/``drop`` and reports write the core group ("")."""


class ManifestError(Exception):
    """The manifest data is malformed or inconsistent."""


class Stability(StrEnum):
    GA = "ga"
    BETA = "beta"
    ALPHA = "alpha"


# kube-apiserver's patterns for api/ga, api/beta and api/alpha (they look at the version only).
VERSION_PATTERNS: Final = {
    Stability.GA: re.compile(r"v\d+"),
    Stability.BETA: re.compile(r"v\d+beta\d+"),
    Stability.ALPHA: re.compile(r"v\d+alpha\d+"),
}
_RELEASE: Final = re.compile(r"1\.\d+")
_KIND: Final = re.compile(r"[A-Z][A-Za-z0-9]*")
_LOWER: Final = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestResource:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    deprecated_in: str = ""
    removed_in: str = ""
    replacement: str = ""
    conformance: bool = False
    conformance_reason: str = ""

    @property
    def group_version(self) -> str:
        """The apiVersion: ``v1`` or ``apps/v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """``plural.group``, or just ``plural`` for the core group (kubectl's spelling)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def deprecated(self) -> bool:
        return bool(self.deprecated_in)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupVersion:
    group: str
    version: str
    stability: Stability
    served_by_default: bool
    resources: tuple[ManifestResource, ...]
    deprecated_in: str = ""
    removed_in: str = ""
    replacement: str = ""

    @property
    def group_version(self) -> str:
        """The apiVersion: ``v1`` or ``apps/v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """``GROUP/VERSION`` with the core group written ``core``, as profiles and reports write it."""
        return f"{self.group or CORE}/{self.version}"

    @property
    def deprecated(self) -> bool:
        return bool(self.deprecated_in)

    @property
    def conformance(self) -> bool:
        return any(r.conformance for r in self.resources)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stripped:
    """How a build stripped the manifest it carries (the ``[build]`` table of a stripped manifest).

    ``keep_alpha`` and ``keep_deprecated`` are applied again when the server selects what to serve,
    so that what the build kept stays served; ``only`` and ``drop`` were applied once and for all
    (what they removed is gone) and are recorded for the report.
    """

    keep_alpha: bool = False
    keep_deprecated: bool = False
    only: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Manifest:
    kubernetes: str
    """The Kubernetes minor release the data describes, e.g. ``1.37``."""
    groupversions: tuple[GroupVersion, ...]
    stripped: Stripped | None = None
    """Set when this is a build's stripped manifest rather than the full upstream one."""

    def __iter__(self) -> Iterator[GroupVersion]:
        return iter(self.groupversions)

    def groups(self) -> tuple[str, ...]:
        """Group names in the data's order ("" for core)."""
        return tuple(dict.fromkeys(gv.group for gv in self.groupversions))

    def versions(self, group: str) -> tuple[str, ...]:
        """A group's versions, most preferred first."""
        return tuple(gv.version for gv in self.groupversions if gv.group == group)

    def groupversion(self, group: str, version: str) -> GroupVersion:
        for gv in self.groupversions:
            if gv.group == group and gv.version == version:
                return gv
        raise KeyError(f"no group-version {group or CORE}/{version} in the manifest")

    def resources(self) -> Iterator[ManifestResource]:
        for gv in self.groupversions:
            yield from gv.resources

    def resource(self, group: str, version: str, plural: str) -> ManifestResource:
        for r in self.groupversion(group, version).resources:
            if r.plural == plural:
                return r
        raise KeyError(f"no resource {plural} in {group or CORE}/{version}")


# Loading.


def load(path: Path | None = None) -> Manifest:
    """The manifest at ``path``, or the bundled one (read once, then shared)."""
    if path is None:
        return _bundled()
    return parse(path.read_bytes(), str(path))


def parse(data: bytes, origin: str = DATA_FILE) -> Manifest:
    """A manifest from TOML text; ``origin`` names it in errors."""
    try:
        document = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ManifestError(f"{origin} is not valid TOML: {err}") from None
    table = _Table(document, origin)
    kubernetes = table.release("kubernetes", required=True)
    groupversions = tuple(
        _groupversion(_Table(raw, f"{origin}: group-version #{i}"), origin, kubernetes)
        for i, raw in enumerate(table.tables("groupversion"), 1)
    )
    stripped = _stripped(table.get_table("build"), origin)
    table.finish()
    if not groupversions:
        raise ManifestError(f"{origin}: no [[groupversion]] tables")
    _check_unique([(gv.group, gv.version) for gv in groupversions], origin, "group-version")
    return Manifest(kubernetes, groupversions, stripped)


def _stripped(raw: object, origin: str) -> Stripped | None:
    if raw is None:
        return None
    table = _Table(raw, f"{origin}: [build]")
    stripped = Stripped(
        keep_alpha=table.flag("keep_alpha", required=True),
        keep_deprecated=table.flag("keep_deprecated", required=True),
        only=table.strings("only"),
        drop=table.strings("drop"),
    )
    table.finish()
    return stripped


@functools.cache
def _bundled() -> Manifest:
    resource = resources.files(__package__ or "k3py.api").joinpath(DATA_FILE)
    try:
        data = resource.read_bytes()
    except OSError as err:
        raise ManifestError(f"cannot read the bundled API manifest {DATA_FILE}: {err}") from None
    return parse(data, DATA_FILE)


def _groupversion(table: _Table, origin: str, kubernetes: str) -> GroupVersion:
    group = table.text("group", required=True, allow_empty=True)
    version = table.text("version", required=True)
    table.where = f"{origin}: {group or CORE}/{version}"
    stability = table.choice("stability", Stability)
    if not VERSION_PATTERNS[stability].fullmatch(version):
        table.fail(f"version {version!r} is not spelled like a {stability} version")
    served = table.flag("served_by_default", required=True)
    if served and stability is Stability.ALPHA:
        table.fail("alpha versions are never served by default upstream")
    deprecated_in, removed_in = _lifecycle(table, kubernetes)
    replacement = table.text("replacement", allow_empty=True)
    resource_tables = table.tables("resource")
    where = table.where
    table.finish()
    if not resource_tables:
        raise ManifestError(f"{where}: no [[groupversion.resource]] tables")
    items = tuple(
        _resource(_Table(raw, f"{where} resource #{i}"), where, group, version, kubernetes)
        for i, raw in enumerate(resource_tables, 1)
    )
    _check_unique([r.plural for r in items], where, "plural")
    _check_unique([r.kind for r in items], where, "kind")
    return GroupVersion(
        group=group,
        version=version,
        stability=stability,
        served_by_default=served,
        resources=items,
        deprecated_in=deprecated_in,
        removed_in=removed_in,
        replacement=replacement,
    )


def _resource(table: _Table, where: str, group: str, version: str, kubernetes: str) -> ManifestResource:
    kind = table.text("kind", required=True, pattern=_KIND)
    plural = table.text("plural", required=True, pattern=_LOWER)
    table.where = f"{where} {plural}"
    verbs = table.names("verbs", required=True)
    unknown = sorted(set(verbs) - VERBS)
    if unknown or not verbs:
        table.fail(f"verbs must be some of {', '.join(sorted(VERBS))}, not {verbs!r}")
    deprecated_in, removed_in = _lifecycle(table, kubernetes)
    conformance = table.flag("conformance")
    reason = table.text("conformance_reason", allow_empty=True)
    if conformance != bool(reason):
        table.fail("conformance = true needs a conformance_reason naming the test(s), and only then")
    resource = ManifestResource(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=table.text("singular", required=True, pattern=_LOWER),
        namespaced=table.flag("namespaced", required=True),
        verbs=verbs,
        short_names=table.names("short_names"),
        categories=table.names("categories"),
        subresources=table.names("subresources"),
        deprecated_in=deprecated_in,
        removed_in=removed_in,
        replacement=table.text("replacement", allow_empty=True),
        conformance=conformance,
        conformance_reason=reason,
    )
    table.finish()
    return resource


def _lifecycle(table: _Table, kubernetes: str) -> tuple[str, str]:
    deprecated_in = table.release("deprecated_in")
    removed_in = table.release("removed_in")
    if deprecated_in and _minor(deprecated_in) > _minor(kubernetes):
        table.fail(f"deprecated_in {deprecated_in} is after {kubernetes}: record deprecations once made")
    if removed_in and _minor(removed_in) <= _minor(kubernetes):
        table.fail(f"removed_in {removed_in}: a resource removed by {kubernetes} is not served by it")
    if removed_in and deprecated_in and _minor(removed_in) <= _minor(deprecated_in):
        table.fail(f"removed_in {removed_in} is not after deprecated_in {deprecated_in}")
    return deprecated_in, removed_in


def _minor(release: str) -> int:
    return int(release.split(".")[1])


def _check_unique(keys: list[Any], where: str, what: str) -> None:
    seen: set[Any] = set()
    for key in keys:
        if key in seen:
            shown = "/".join(key) if isinstance(key, tuple) else key
            raise ManifestError(f"{where}: {what} {shown!r} is listed twice")
        seen.add(key)


class _Table:
    """One TOML table being read: typed getters that raise ManifestError naming the place."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: expected a table, got {type(raw).__name__}")
        self.raw: dict[str, Any] = raw
        self.where = where
        self.used: set[str] = set()

    def fail(self, problem: str) -> NoReturn:
        raise ManifestError(f"{self.where}: {problem}")

    def _get(self, key: str, required: bool, kind: type, default: Any) -> Any:
        self.used.add(key)
        if key not in self.raw:
            if required:
                self.fail(f"missing {key}")
            return default
        value = self.raw[key]
        if not isinstance(value, kind):
            self.fail(f"{key} must be a {kind.__name__}, not {value!r}")
        return value

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        allow_empty: bool = False,
        pattern: re.Pattern[str] | None = None,
    ) -> str:
        value: str = self._get(key, required, str, "")
        if required and not value and not allow_empty:
            self.fail(f"{key} is empty")
        if value and pattern is not None and not pattern.fullmatch(value):
            self.fail(f"{key} {value!r} does not match {pattern.pattern}")
        return value

    def release(self, key: str, *, required: bool = False) -> str:
        value = self.text(key, required=required, allow_empty=not required)
        if value and not _RELEASE.fullmatch(value):
            self.fail(f"{key} must look like 1.NN, not {value!r}")
        return value

    def flag(self, key: str, *, required: bool = False) -> bool:
        value: bool = self._get(key, required, bool, False)
        return value

    def choice(self, key: str, enum: type[Stability]) -> Stability:
        value = self.text(key, required=True)
        try:
            return enum(value)
        except ValueError:
            self.fail(f"{key} must be one of {', '.join(enum)}, not {value!r}")

    def names(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        value: list[Any] = self._get(key, required, list, [])
        if not all(isinstance(v, str) and _LOWER.fullmatch(v) for v in value):
            self.fail(f"{key} must be a list of lowercase names, not {value!r}")
        if len(set(value)) != len(value):
            self.fail(f"{key} lists a name twice: {value!r}")
        return tuple(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value: list[Any] = self._get(key, False, list, [])
        if not all(isinstance(v, str) and v for v in value):
            self.fail(f"{key} must be a list of non-empty strings, not {value!r}")
        return tuple(value)

    def get_table(self, key: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._get(key, False, dict, None)
        return value

    def tables(self, key: str) -> list[Any]:
        value: list[Any] = self._get(key, False, list, [])
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            self.fail(f"unknown field(s) {', '.join(unknown)}")
