"""Profiles: which of the manifest's APIs a k3py build or server serves, and why.

:func:`select` applies a :class:`Profile` and explains itself: every group-version and resource
gets a :class:`Decision`, kept or stripped, with a reason. The steps, each able to overrule the
ones before it:

1. upstream's default: what kube-apiserver 1.37 serves without ``--runtime-config``;
2. k3py's trim: alpha group-versions are stripped (``keep_alpha`` turns them on instead), and
   so are deprecated group-versions and resources (``keep_deprecated`` keeps them), except those
   a conformance test needs;
3. ``runtime_config``, read as kube-apiserver reads ``--runtime-config``: ``api/all``,
   ``api/ga``, ``api/beta``, ``api/alpha`` first (in that order), then ``GROUP/VERSION`` keys
   (``v1`` for the core group), then ``GROUP/VERSION/RESOURCE`` keys (``v1/RESOURCE`` for core).
   As upstream, a version-level key also clears the resource-level choices made for that version;
4. ``only`` / ``drop``: entries ``GROUP`` or ``GROUP/VERSION``, the core group written ``core``
   (``core``, ``core/v1``); they decide what exists at all, so they win over everything.

Names that match nothing (an unknown group, version or resource) raise :class:`ProfileError`,
which lists what is known. Unlike kube-apiserver, which passes unknown groups on to the servers
behind it, k3py serves every group itself, so an unknown runtime-config group is an error too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from k3py.api.manifest import CORE, VERSION_PATTERNS, GroupVersion, Manifest, ManifestResource, Stability
from k3py.config import values

RUNTIME_MATCHERS: Final = values.RUNTIME_CONFIG_MATCHERS


class ProfileError(ValueError):
    """A profile names an API that the manifest does not have, or a value kube-apiserver rejects."""


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Which APIs to serve, on top of upstream's defaults (see the module docstring for the order)."""

    keep_alpha: bool = False
    keep_deprecated: bool = False
    only: tuple[str, ...] = ()
    """Serve only these: ``GROUP`` or ``GROUP/VERSION`` (``core``, ``core/v1`` for the core group)."""
    drop: tuple[str, ...] = ()
    """Never serve these (same spelling as ``only``)."""
    runtime_config: dict[str, bool] = field(default_factory=dict)
    """kube-apiserver's ``--runtime-config``, already read into booleans (:func:`parse_runtime_config`)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one group-version (``resource == ""``) or one resource is served, and why."""

    group: str
    version: str
    resource: str
    stability: Stability
    kept: bool
    reason: str

    @property
    def name(self) -> str:
        base = f"{self.group or CORE}/{self.version}"
        return f"{base}/{self.resource}" if self.resource else base

    @property
    def decision(self) -> str:
        return "kept" if self.kept else "stripped"

    def cells(self) -> tuple[str, str, str, str]:
        """One report row: API, stability, kept/stripped, reason."""
        return (self.name, str(self.stability), self.decision, self.reason)


ROW_HEADER: Final = ("API", "STABILITY", "DECISION", "REASON")


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select`: one decision per group-version and per resource."""

    manifest: Manifest
    profile: Profile
    groupversion_decisions: Mapping[tuple[str, str], Decision]
    resource_decisions: Mapping[tuple[str, str, str], Decision]

    def decision(self, group: str, version: str, plural: str = "") -> Decision:
        if plural:
            return self.resource_decisions[(group, version, plural)]
        return self.groupversion_decisions[(group, version)]

    def resources(self) -> Iterator[ManifestResource]:
        """The kept resources, in the manifest's order."""
        for r in self.manifest.resources():
            if self.resource_decisions[(r.group, r.version, r.plural)].kept:
                yield r

    def groupversions(self) -> Iterator[GroupVersion]:
        """Group-versions with at least one kept resource."""
        for gv in self.manifest:
            if any(self.resource_decisions[(gv.group, gv.version, r.plural)].kept for r in gv.resources):
                yield gv

    def rows(self) -> tuple[Decision, ...]:
        """Every group-version's decision, each followed by those of its resources that differ."""
        rows: list[Decision] = []
        for gv in self.manifest:
            own = self.groupversion_decisions[(gv.group, gv.version)]
            rows.append(own)
            for r in gv.resources:
                decision = self.resource_decisions[(gv.group, gv.version, r.plural)]
                if (decision.kept, decision.reason) != (own.kept, own.reason):
                    rows.append(decision)
        return tuple(rows)


def select(manifest: Manifest, profile: Profile | None = None) -> Selection:
    """Decide, for every group-version and resource of ``manifest``, whether ``profile`` serves it."""
    profile = profile or Profile()
    only = _api_names(manifest, profile.only, "--only")
    drop = _api_names(manifest, profile.drop, "--drop")
    versions, resource_keys = _runtime_keys(manifest, profile.runtime_config)

    gv_state: dict[tuple[str, str], tuple[bool, str]] = {}
    overrides: dict[tuple[str, str, str], tuple[bool, str]] = {}
    notes: dict[tuple[str, str, str], str] = {}
    for gv in manifest:
        gv_state[(gv.group, gv.version)] = _trimmed(gv, profile)
        if gv_state[(gv.group, gv.version)][0]:
            for r in gv.resources:
                if r.deprecated and not gv.deprecated:
                    kept, reason = _deprecation(r.deprecated_in, r.replacement, profile, r.conformance_reason)
                    if kept:
                        notes[(gv.group, gv.version, r.plural)] = reason
                    else:
                        overrides[(gv.group, gv.version, r.plural)] = (False, reason)

    def set_version(gv: GroupVersion, enabled: bool, key: str) -> None:
        gv_state[(gv.group, gv.version)] = (enabled, _by_runtime_config(key, enabled))
        for r in gv.resources:  # as upstream: a version-level choice replaces resource-level ones
            overrides.pop((gv.group, gv.version, r.plural), None)
            notes.pop((gv.group, gv.version, r.plural), None)

    for key in RUNTIME_MATCHERS:
        if key in profile.runtime_config:
            for gv in manifest:
                if _matches(key, gv.version):
                    set_version(gv, profile.runtime_config[key], key)
    for key, gv in versions:
        set_version(gv, profile.runtime_config[key], key)
    for key, (group, version, plural) in resource_keys:
        overrides[(group, version, plural)] = (
            profile.runtime_config[key],
            _by_runtime_config(key, profile.runtime_config[key]),
        )

    gv_decisions: dict[tuple[str, str], Decision] = {}
    resource_decisions: dict[tuple[str, str, str], Decision] = {}
    for gv in manifest:
        kept, reason = gv_state[(gv.group, gv.version)]
        limit = _limit(gv, only, drop)
        if limit:
            kept, reason = False, limit
        gv_decisions[(gv.group, gv.version)] = Decision(gv.group, gv.version, "", gv.stability, kept, reason)
        for r in gv.resources:
            key3 = (gv.group, gv.version, r.plural)
            r_kept, r_reason = overrides.get(key3, (kept, notes.get(key3, reason)))
            if limit:
                r_kept, r_reason = False, limit
            resource_decisions[key3] = Decision(
                gv.group, gv.version, r.plural, gv.stability, r_kept, r_reason
            )
    return Selection(manifest, profile, gv_decisions, resource_decisions)


def _trimmed(gv: GroupVersion, profile: Profile) -> tuple[bool, str]:
    """Steps 1 and 2 for one group-version: upstream's default, then k3py's trim."""
    if gv.stability is Stability.ALPHA:
        kept, reason = profile.keep_alpha, "alpha, kept by keep_alpha" if profile.keep_alpha else "alpha"
    elif gv.served_by_default:
        kept, reason = True, "served by default upstream"
    else:
        kept, reason = False, f"{gv.stability}, not served by default upstream"
    if not gv.deprecated:
        return kept, reason
    if not kept:
        return False, f"{reason}; {_deprecated(gv.deprecated_in, gv.replacement)}"
    return _deprecation(gv.deprecated_in, gv.replacement, profile, _conformance_tests(gv))


def _deprecation(deprecated_in: str, replacement: str, profile: Profile, tests: str) -> tuple[bool, str]:
    """Whether a deprecated API stays (keep_deprecated, or a conformance test needs it), and why."""
    what = _deprecated(deprecated_in, replacement)
    if profile.keep_deprecated:
        return True, f"{what}, kept by keep_deprecated"
    if tests:
        return True, f"{what}, kept: conformance needs it (test {tests})"
    return False, what


def _deprecated(deprecated_in: str, replacement: str) -> str:
    return f"deprecated in {deprecated_in}" + (f" (use {replacement})" if replacement else "")


def _conformance_tests(gv: GroupVersion) -> str:
    return "; ".join(r.conformance_reason for r in gv.resources if r.conformance)


def _by_runtime_config(key: str, enabled: bool) -> str:
    return f"{'enabled' if enabled else 'disabled'} by --runtime-config {key}={str(enabled).lower()}"


def _matches(matcher: str, version: str) -> bool:
    if matcher == "api/all":
        return True
    stability = Stability(matcher.removeprefix("api/"))
    return VERSION_PATTERNS[stability].fullmatch(version) is not None


def _limit(gv: GroupVersion, only: dict[tuple[str, str], str], drop: dict[tuple[str, str], str]) -> str:
    """Step 4: why ``only``/``drop`` strip this group-version, or ''."""
    for (group, version), written in drop.items():
        if gv.group == group and version in ("", gv.version):
            return f"dropped by --drop {written}"
    if only and not any(gv.group == g and v in ("", gv.version) for g, v in only):
        return f"not in --only ({', '.join(only.values())})"
    return ""


def _api_names(manifest: Manifest, names: tuple[str, ...], flag: str) -> dict[tuple[str, str], str]:
    """``only``/``drop`` entries by (group, version-or-''), each checked against the manifest."""
    known_groups = manifest.groups()
    parsed: dict[tuple[str, str], str] = {}
    for name in names:
        written, _, version = name.partition("/")
        group = "" if written == CORE else written
        if not written or (group not in known_groups) or (group == "" and written != CORE):
            raise ProfileError(
                f"unknown API group {written!r} in {flag} {name!r} (the core group is written {CORE}); "
                f"known groups: {', '.join(g or CORE for g in known_groups)}"
            )
        if version and version not in manifest.versions(group):
            raise ProfileError(
                f"unknown version {version!r} of {group or CORE} in {flag} {name!r}; "
                f"known versions: {', '.join(manifest.versions(group))}"
            )
        parsed[(group, version)] = name
    return parsed


def _runtime_keys(
    manifest: Manifest, config: Mapping[str, bool]
) -> tuple[list[tuple[str, GroupVersion]], list[tuple[str, tuple[str, str, str]]]]:
    """Check ``runtime_config`` keys as kube-apiserver does; split them into version and resource keys."""
    if config.get("api/all") is False and len(config) == 1:
        raise ProfileError("--runtime-config api/all=false alone would serve nothing; enable something too")
    core_versions = manifest.versions("")
    known_groups = manifest.groups()
    versions: list[tuple[str, GroupVersion]] = []
    resource_keys: list[tuple[str, tuple[str, str, str]]] = []
    for key in config:
        if key in RUNTIME_MATCHERS:
            continue
        tokens = key.split("/")
        if tokens[0] in core_versions:  # v1, v1/RESOURCE: the core group
            tokens.insert(0, "")
        if len(tokens) not in (2, 3) or not all(tokens[1:]):
            raise ProfileError(
                f"--runtime-config: invalid key {key!r} (use GROUP/VERSION[/RESOURCE] or v1[/RESOURCE])"
            )
        group, version = tokens[0], tokens[1]
        if group not in known_groups:
            raise ProfileError(
                f"--runtime-config {key}: unknown API group {group!r}; known groups: "
                f"{', '.join(g or 'v1 (core)' for g in known_groups)}"
            )
        if version not in manifest.versions(group):
            raise ProfileError(
                f"--runtime-config {key}: {group or CORE} has no version {version!r} "
                f"(it has {', '.join(manifest.versions(group))})"
            )
        gv = manifest.groupversion(group, version)
        if len(tokens) == 2:
            versions.append((key, gv))
            continue
        plural = tokens[2]
        if plural.lower() != plural:
            raise ProfileError(f"--runtime-config {key}: a resource is always its lowercase plural")
        if plural not in {r.plural for r in gv.resources}:
            raise ProfileError(
                f"--runtime-config {key}: {gv.name} has no resource {plural!r} "
                f"(it has {', '.join(r.plural for r in gv.resources)})"
            )
        resource_keys.append((key, (group, version, plural)))
    return versions, resource_keys


def parse_runtime_config(value: str) -> dict[str, bool]:
    """Read a ``--runtime-config`` value (``key=value,...``) the way kube-apiserver does."""
    config: dict[str, bool] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            key, enabled = values.runtime_config_item(item)
        except ValueError as err:
            raise ProfileError(f"--runtime-config: {err}") from None
        config[key] = enabled
    return config
