"""Strip the API a build carries down to what its profile serves: manifest and schema bundle.

The wheel ships the full upstream data: ``k3py/api/manifest.toml`` (every 1.37 group-version)
and ``k3py/api/data/definitions-1.37.json.gz`` (every OpenAPI definition). :func:`strip` applies
a :class:`~k3py.api.profiles.Profile` to them and writes, to ``<cache>/api/<profile-digest16>/``
(:func:`output_dir`), the two files the binary carries instead:

- ``manifest.toml``: the kept group-versions, each with its kept resources only, in the format
  of the full one, ending with the ``[build]`` table (:class:`~k3py.api.manifest.Stripped`) that
  tells the server how the build stripped it;
- ``definitions-1.37.json.gz``: the definitions of the kept kinds and of their ``*List`` kinds,
  of the types k3py looks up by name whatever is served (:data:`ALWAYS_KEPT`), and everything
  these reference, written as ``build/schemas.py`` writes the full bundle (same bytes for the
  same input).

The pipeline's ``api`` stage puts them in place of the wheel's in the guest venv
(:func:`build.binary.install_stripped_api`); ``invoke manifest`` runs :func:`strip` on its own
and writes :func:`render_report` to ``docs/api-surface.md``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from build import schemas as full_schemas
from build.errors import BuildError
from build.paths import ROOT
from k3py.api.manifest import CORE, GroupVersion, Manifest, ManifestResource, Stability, Stripped, load
from k3py.api.manifest import DATA_FILE as MANIFEST_FILE
from k3py.api.profiles import ROW_HEADER, Profile, ProfileError, Selection, select
from k3py.api.protobuf import DATA_FILE as PROTOBUF_FILE
from k3py.api.resources import from_manifest, missing_required, unserved_reason
from k3py.api.schema import DATA_FILE as SCHEMA_FILE
from k3py.api.schema import REF_PREFIX, Schemas

REPORT_COMMAND: Final = "invoke manifest --write-report"
# The full data the wheel ships, read from the tree being built (as build/schemas.py writes it).
MANIFEST_SOURCE: Final = ROOT / "distro" / "k3py" / "api" / MANIFEST_FILE
PROTOBUF_SOURCE_DIR: Final = ROOT / "distro" / "k3py" / "api" / "data"

# Definitions k3py's own code reaches by name, whatever group-versions a build serves: they must
# stay in every stripped bundle even when no served kind refers to them.
ALWAYS_KEPT: Final[tuple[str, ...]] = (
    # The bodies of the server's own answers: errors and delete results (Status), the OpenAPI
    # documents' common schemas (apiserver/openapi.py: DeleteOptions, WatchEvent, Patch),
    # discovery (/api, /apis, /apis/G/V) and /version.
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    "io.k8s.apimachinery.pkg.version.Info",
    # Server-side apply and printers (api/apply/shapes.py, api/printers.py): object metadata,
    # the atomic RawExtension, and the types whose fields have apply-time defaults.
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.api.core.v1.ContainerPort",
    "io.k8s.api.core.v1.ServicePort",
    "io.k8s.api.core.v1.LocalObjectReference",
    # The bodies of subresources, whose kinds are not resources of their own: every .../scale
    # (apiserver/openapi.py), pods/eviction, serviceaccounts/token, pods/binding.
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.api.policy.v1.Eviction",
    "io.k8s.api.authentication.v1.TokenRequest",
    "io.k8s.api.core.v1.Binding",
)

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f\"\\]")
_ESCAPES: Final = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


class StripError(BuildError):
    """The profile cannot make a stripped API: it names an unknown API, or leaves nothing served."""

    exit_code = 2


@dataclass(frozen=True, kw_only=True)
class BundleSize:
    """A schema bundle's size: gzip bytes on disk and number of definitions."""

    gzip_bytes: int
    definitions: int


@dataclass(frozen=True, kw_only=True)
class StrippedApi:
    """What :func:`strip` decided and wrote."""

    selection: Selection
    build: Stripped
    """The stripped manifest's ``[build]`` table: the profile, as the server and the report see it."""
    manifest_path: Path
    schemas_path: Path
    protobuf_path: Path
    before: BundleSize
    after: BundleSize
    protobuf_before: BundleSize
    protobuf_after: BundleSize
    """``definitions`` counts the wire layout's structs."""

    @property
    def paths(self) -> dict[Path, str]:
        """Each stripped file and where it goes in the installed ``k3py/api`` package."""
        return {
            self.manifest_path: self.manifest_path.name,
            self.schemas_path: f"data/{self.schemas_path.name}",
            self.protobuf_path: f"data/{self.protobuf_path.name}",
        }

    @property
    def profile(self) -> Profile:
        return self.selection.profile

    @property
    def served(self) -> tuple[GroupVersion, ...]:
        """The group-versions of the stripped manifest."""
        return tuple(self.selection.groupversions())


def profile_digest(profile: Profile) -> str:
    """16 hex digits naming a profile's output directory."""
    canonical = json.dumps(dataclasses.asdict(build_table(profile)), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def output_dir(cache: Path, profile: Profile) -> Path:
    """``<cache>/api/<profile-digest16>``: where a build's stripped API data goes."""
    return cache / "api" / profile_digest(profile)


def strip(profile: Profile, out_dir: Path) -> StrippedApi:
    """Select what ``profile`` serves; write the stripped manifest and schema bundle to ``out_dir``."""
    stripped = build_table(profile)
    try:
        selection = select(load(MANIFEST_SOURCE), profile)
    except ProfileError as err:
        raise StripError(str(err)) from None
    kept = list(selection.resources())
    if missing := missing_required(from_manifest(selection)):
        raise StripError(
            f"the profile ({describe(profile)}) strips {', '.join(missing)}, which k3py cannot run without"
        )
    source = full_schemas.output_path()
    document = json.loads(gzip.decompress(source.read_bytes()))
    definitions: dict[str, Any] = document["$defs"]
    names = kept_definitions(definitions, kept)

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = _write(out_dir / MANIFEST_FILE, render_manifest(selection, stripped).encode())
    slim = {key: ({n: definitions[n] for n in names} if key == "$defs" else value)
            for key, value in document.items()}  # fmt: skip
    packed = gzip.compress(full_schemas.minify(slim), compresslevel=9, mtime=0)
    schemas_path = _write(out_dir / SCHEMA_FILE, packed)
    wire_source = PROTOBUF_SOURCE_DIR / PROTOBUF_FILE
    wire = json.loads(gzip.decompress(wire_source.read_bytes()))
    wire_slim = strip_wire_layout(wire, {gv.group_version for gv in selection.groupversions()})
    wire_packed = gzip.compress(
        json.dumps(wire_slim, separators=(",", ":")).encode(), compresslevel=9, mtime=0
    )
    protobuf_path = _write(out_dir / PROTOBUF_FILE, wire_packed)
    return StrippedApi(
        selection=selection,
        build=stripped,
        manifest_path=manifest_path,
        schemas_path=schemas_path,
        protobuf_path=protobuf_path,
        before=BundleSize(gzip_bytes=source.stat().st_size, definitions=len(definitions)),
        after=BundleSize(gzip_bytes=len(packed), definitions=len(names)),
        protobuf_before=BundleSize(gzip_bytes=wire_source.stat().st_size, definitions=len(wire["types"])),
        protobuf_after=BundleSize(gzip_bytes=len(wire_packed), definitions=len(wire_slim["types"])),
    )


WIRE_ALWAYS_KEPT: Final = (
    ("autoscaling/v1", "Scale"),  # the body of every .../scale subresource (apps, core)
    ("policy/v1", "Eviction"),  # pods/eviction
    ("authentication.k8s.io/v1", "TokenRequest"),  # serviceaccounts/token
)
"""Subresource bodies the server decodes whatever group-versions a profile serves."""


def strip_wire_layout(document: dict[str, Any], served: set[str]) -> dict[str, Any]:
    """The protobuf wire layout (``build/protos.py``'s output) cut to the served group-versions.

    Kinds of other group-versions go; so do the structs no kept kind reaches. ``v1`` keeps only
    what core serves plus Status (every group answers with it); ``meta.k8s.io/v1`` (options,
    PartialObjectMetadata) stays whole; the bodies of subresources (:data:`WIRE_ALWAYS_KEPT`)
    stay whatever their own group's fate, since resources of other groups use them.
    """
    kinds: dict[str, dict[str, str]] = {}
    for api_version, by_kind in document["kinds"].items():
        if api_version == "meta.k8s.io/v1" or api_version in served:
            kinds[api_version] = dict(by_kind)
        elif api_version == "v1":
            kinds[api_version] = {"Status": by_kind["Status"]}
    for api_version, kind in WIRE_ALWAYS_KEPT:
        if kind in document["kinds"].get(api_version, {}):
            kinds.setdefault(api_version, {})[kind] = document["kinds"][api_version][kind]
    types: dict[str, list[list[Any]]] = document["types"]
    reached: set[str] = set()
    pending = [name for by_kind in kinds.values() for name in by_kind.values()]
    while pending:
        name = pending.pop()
        if name in reached or name not in types:
            continue
        reached.add(name)
        for _json, _number, text, _flags in types[name]:
            pending.extend(_struct_names(text))
    return {**document, "kinds": kinds, "types": {name: types[name] for name in types if name in reached}}


def _struct_names(text: str) -> list[str]:
    """The struct a wire type names, read as ``k3py.api.protobuf`` reads type strings."""
    for prefix in ("[]", "wrap[]"):
        if text.startswith(prefix):
            return _struct_names(text[len(prefix) :])
    if text.startswith("map["):
        return _struct_names(text[4:].partition("]")[2])
    return [text] if "/" in text and not text.startswith("@") else []


def kept_definitions(definitions: dict[str, Any], resources: Iterable[ManifestResource]) -> list[str]:
    """The names a stripped bundle keeps, in the full bundle's order (see the module docstring).

    Kinds are matched as :meth:`k3py.api.schema.Schemas.kind` matches them at run time, by
    ``x-kubernetes-group-version-kind``; a kept resource whose kind has no definition is an error.
    """
    index = Schemas(definitions)
    roots = list(ALWAYS_KEPT)
    for r in resources:
        node = index.kind(r.group, r.version, r.kind)
        if node is None or node.name is None:
            raise StripError(f"no definition declares {r.group_version} {r.kind}: the schema bundle is stale")
        roots.append(node.name)
        # The list kind, by its group-version-kind and by the name the OpenAPI documents use.
        listed = index.kind(r.group, r.version, r.kind + "List")
        for name in (node.name + "List", listed.name if listed is not None else None):
            if name is not None and name in definitions:
                roots.append(name)
    seen: set[str] = set()
    missing: set[str] = set()
    while roots:
        name = roots.pop()
        if name in seen or name in missing:
            continue
        if name not in definitions:
            missing.add(name)
            continue
        seen.add(name)
        roots.extend(references(definitions[name]))
    if missing:
        raise StripError(
            f"no definition named {', '.join(sorted(missing))} (a $ref or ALWAYS_KEPT): "
            "the schema bundle and build/apimanifest.py disagree"
        )
    return [name for name in definitions if name in seen]


def references(schema: object) -> Iterator[str]:
    """The definition names a schema refers to with ``$ref`` (at any depth)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref[len(REF_PREFIX) :]
        for value in schema.values():
            yield from references(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from references(value)


def describe(profile: Profile) -> str:
    """A profile in one line, as ``invoke manifest``'s flags write it: ``default`` when it has none."""
    stripped = build_table(profile)
    flags = [name for name in ("keep_alpha", "keep_deprecated") if getattr(stripped, name)]
    flags += [
        f"{name}={','.join(getattr(stripped, name))}" for name in ("only", "drop") if getattr(stripped, name)
    ]
    return " ".join(f"--{flag.replace('_', '-')}" for flag in flags) or "default"


def build_table(profile: Profile) -> Stripped:
    """The ``[build]`` table a profile writes; a build's profile has no runtime_config (the server's)."""
    if profile.runtime_config:
        raise StripError("a build's profile takes no --runtime-config: that is the server's to apply")
    return Stripped(
        keep_alpha=profile.keep_alpha,
        keep_deprecated=profile.keep_deprecated,
        only=profile.only,
        drop=profile.drop,
    )


def _write(path: Path, data: bytes) -> Path:
    """Write ``path`` atomically (builds of several targets may strip the same profile at once)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(path)
    return path


# The stripped manifest, as TOML (tomllib reads; nothing in the standard library writes).

TomlValue = str | bool | tuple[str, ...]


def render_manifest(selection: Selection, stripped: Stripped) -> str:
    """The kept part of ``selection``'s manifest, in manifest.toml's layout, with the ``[build]`` table."""
    manifest: Manifest = selection.manifest
    lines = [
        "# The API manifest of a k3py build: distro/k3py/api/manifest.toml stripped by",
        "# build/apimanifest.py to what the build serves. Generated; the [build] table at the end",
        "# records the profile. See the full manifest for the meaning of every field.",
        *_fields([("kubernetes", manifest.kubernetes)]),
    ]
    kept = {(r.group, r.version, r.plural) for r in selection.resources()}
    for gv in selection.groupversions():
        lines += ["", f"# ---- {gv.name} ----", "[[groupversion]]", *_fields(_groupversion_fields(gv))]
        for r in gv.resources:
            if (r.group, r.version, r.plural) in kept:
                lines += ["", "[[groupversion.resource]]", *_fields(_resource_fields(r))]
    build: list[tuple[str, TomlValue]] = [
        ("keep_alpha", stripped.keep_alpha),
        ("keep_deprecated", stripped.keep_deprecated),
        ("only", stripped.only),
        ("drop", stripped.drop),
    ]
    lines += ["", "# How this build stripped the manifest (k3py.api.manifest.Stripped).", "[build]"]
    lines += _fields(build)
    return "\n".join(lines) + "\n"


def _groupversion_fields(gv: GroupVersion) -> list[tuple[str, TomlValue]]:
    return [
        ("group", gv.group),
        ("version", gv.version),
        ("stability", str(gv.stability)),
        ("served_by_default", gv.served_by_default),
        ("deprecated_in", gv.deprecated_in),
        ("removed_in", gv.removed_in),
        ("replacement", gv.replacement),
    ]


def _resource_fields(r: ManifestResource) -> list[tuple[str, TomlValue]]:
    fields: list[tuple[str, TomlValue]] = [
        ("kind", r.kind),
        ("plural", r.plural),
        ("singular", r.singular),
        ("namespaced", r.namespaced),
        ("verbs", r.verbs),
    ]
    optional: list[tuple[str, TomlValue]] = [
        ("short_names", r.short_names),
        ("categories", r.categories),
        ("subresources", r.subresources),
        ("deprecated_in", r.deprecated_in),
        ("removed_in", r.removed_in),
        ("replacement", r.replacement),
        ("conformance", r.conformance),
        ("conformance_reason", r.conformance_reason),
    ]
    return fields + [(key, value) for key, value in optional if value]


def _fields(pairs: Iterable[tuple[str, TomlValue]]) -> list[str]:
    return [f"{key} = {toml_value(value)}" for key, value in pairs]


def toml_value(value: TomlValue) -> str:
    """A TOML boolean, basic string or array of basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    return "[" + ", ".join(toml_string(item) for item in value) + "]"


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    return '"' + _CONTROL.sub(lambda m: _ESCAPES.get(m[0]) or f"\\u{ord(m[0]):04X}", text) + '"'


# The report: docs/api-surface.md.


@dataclass(frozen=True, kw_only=True)
class ConformanceException:
    """A deprecated API kept, without ``keep_deprecated``, because a conformance test needs it."""

    api: str
    deprecation: str
    tests: str


def conformance_exceptions(selection: Selection) -> list[ConformanceException]:
    """The deprecated group-versions and resources a selection keeps for conformance's sake."""
    if selection.profile.keep_deprecated:
        return []
    found: list[ConformanceException] = []
    for gv in selection.manifest:
        if not selection.decision(gv.group, gv.version).kept:
            continue
        if gv.deprecated:
            tests = "; ".join(r.conformance_reason for r in gv.resources if r.conformance)
            found.append(ConformanceException(api=gv.name, deprecation=_deprecation(gv), tests=tests))
            continue
        for r in gv.resources:
            if r.deprecated and selection.decision(r.group, r.version, r.plural).kept:
                api = f"{gv.name}/{r.plural}"
                found.append(
                    ConformanceException(api=api, deprecation=_deprecation(r), tests=r.conformance_reason)
                )
    return found


def _deprecation(api: GroupVersion | ManifestResource) -> str:
    return f"deprecated in {api.deprecated_in}" + (f" (use {api.replacement})" if api.replacement else "")


def totals(selection: Selection) -> dict[str, Counter[str]]:
    """Kept and stripped counts by stability: ``{"groupversions": ..., "resources": ...}``.

    Keys are ``"<stability> kept"`` and ``"<stability> stripped"``.
    """
    counts: dict[str, Counter[str]] = {"groupversions": Counter(), "resources": Counter()}
    for d in selection.groupversion_decisions.values():
        counts["groupversions"][f"{d.stability} {d.decision}"] += 1
    for d in selection.resource_decisions.values():
        counts["resources"][f"{d.stability} {d.decision}"] += 1
    return counts


def render_report(stripped: StrippedApi) -> str:
    """``docs/api-surface.md``: what a build with this profile serves and strips, and why."""
    selection = stripped.selection
    manifest = selection.manifest
    lines = [
        f"# API surface: what a k3py build serves of Kubernetes {manifest.kubernetes}",
        "",
        f"Generated by `{REPORT_COMMAND}` (build/apimanifest.py) from `distro/k3py/api/manifest.toml`",
        f"and the bundled OpenAPI definitions; do not edit. Profile: {describe(stripped.profile)}.",
        "`invoke build` strips the binary's API data the same way; `tests/build/test_apimanifest.py`",
        "fails when this file is stale.",
        "",
        "## Totals",
        "",
        "| stability | group-versions kept | stripped | resources kept | stripped |",
        "|---|--:|--:|--:|--:|",
    ]
    counts = totals(selection)
    for stability in [*Stability, None]:
        names = [str(s) for s in ([stability] if stability else Stability)]
        cells = [
            sum(counts[what][f"{name} {decision}"] for name in names)
            for what in ("groupversions", "resources")
            for decision in ("kept", "stripped")
        ]
        label = str(stability) if stability else "**all**"
        lines.append(f"| {label} | " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        "## Schema bundle",
        "",
        f"`k3py/api/data/{SCHEMA_FILE}`: the served kinds, their lists, the types k3py looks up by",
        "name (`ALWAYS_KEPT`) and everything they reference.",
        "",
        "| bundle | gzip bytes | definitions |",
        "|---|--:|--:|",
        f"| full (upstream {manifest.kubernetes}) | {stripped.before.gzip_bytes:,} | "
        f"{stripped.before.definitions:,} |",
        f"| stripped | {stripped.after.gzip_bytes:,} | {stripped.after.definitions:,} |",
        "",
        f"`k3py/api/data/{PROTOBUF_FILE}`: the protobuf wire layout of the served kinds (kubectl sends",
        "protobuf bodies), cut the same way.",
        "",
        "| wire layout | gzip bytes | structs |",
        "|---|--:|--:|",
        f"| full | {stripped.protobuf_before.gzip_bytes:,} | {stripped.protobuf_before.definitions:,} |",
        f"| stripped | {stripped.protobuf_after.gzip_bytes:,} | {stripped.protobuf_after.definitions:,} |",
        "",
        "## Conformance exceptions",
        "",
        "Deprecated APIs kept because a `[Conformance]` test of the suite needs them served:",
        "",
    ]
    exceptions = conformance_exceptions(selection)
    lines += [f"- `{e.api}`: {_cell(e.deprecation)}. Tests: {_cell(e.tests)}." for e in exceptions]
    if not exceptions:
        lines.append("- none")
    lines += [
        "",
        "## Group-versions",
        "",
        "Every group-version, followed by those of its resources whose decision differs.",
        "",
        "| " + " | ".join(ROW_HEADER) + " |",
        "|" + "---|" * len(ROW_HEADER),
    ]
    for decision in selection.rows():
        api, stability, kept, reason = decision.cells()
        api = f"`{api}`" if not decision.resource else f"↳ `{api}`"
        lines.append(f"| {api} | {stability} | {kept} | {_cell(reason)} |")
    lines += [
        "",
        "## Kept, but not served yet",
        "",
        "Resources the profile keeps that k3py has no implementation for yet: they appear in no",
        "discovery document and their paths answer 404, until k3py serves them.",
        "",
    ]
    waiting = [(r, unserved_reason(r)) for r in selection.resources() if unserved_reason(r)]
    lines += [f"- `{r.group or CORE}/{r.version}/{r.plural}`: {_cell(reason)}" for r, reason in waiting]
    if not waiting:
        lines.append("- none")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
