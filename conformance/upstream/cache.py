"""The cache of one Kubernetes version's suite, and the manifest that says it is complete.

Layout of ``<cache>/conformance/<version>/``::

    src/                   the module's source, go.mod rewritten (gomod.py); test/images, manifest.go
    bin/e2e.test           the suite (go test -c k8s.io/kubernetes/test/e2e)
    bin/ginkgo             the Ginkgo CLI of the version go.mod requires
    manifest.json          this module's SuiteManifest, written last: no manifest, no build
    build.log              every command of the last build and its output
    conformance-tests.json the [Conformance] specs of the dry run (speclist.py)
    images/ images.json    test images and their report (images.py)

A build is reused when :func:`problems` finds nothing wrong: the manifest's format, version and
recipe (the flags that shape the binaries) match, and each binary's size and sha256 are those
recorded. Anything else rebuilds; the reasons are logged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from build.report import sha256_of

FORMAT = 1
MANIFEST = "manifest.json"
BINARIES = ("e2e.test", "ginkgo")


def version_dir(cache_root: Path, version: str) -> Path:
    """``<cache_root>/conformance/<version>``: everything built for one Kubernetes version."""
    return cache_root / "conformance" / version


@dataclass(frozen=True, kw_only=True)
class Binary:
    """One built file: its path relative to the version directory, size and sha256."""

    path: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, path: Path, base: Path) -> Binary:
        return cls(path=path.relative_to(base).as_posix(), bytes=path.stat().st_size, sha256=sha256_of(path))


@dataclass(frozen=True, kw_only=True)
class SuiteManifest:
    """What was built for one version, from what, with what, and how long it took."""

    format: int = FORMAT
    kubernetes_version: str
    staging_version: str
    ginkgo_version: str
    go_version: str
    goos: str
    goarch: str
    module_sum: str
    """The h1: hash of the k8s.io/kubernetes module zip (as go.sum and sum.golang.org have it)."""
    module_time: str
    """The release's commit time from the proxy: the binaries' build date, so rebuilds match."""
    go_mod_sha256: str
    """The rewritten go.mod the binaries were built from."""
    recipe: str
    """Digest of the build's flags and environment (recipe_digest); a change rebuilds."""
    binaries: dict[str, Binary]
    built_at: str
    build_seconds: float
    step_seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def write(self, directory: Path) -> None:
        """Write ``manifest.json`` atomically (its presence marks a complete build)."""
        partial = directory / (MANIFEST + ".partial")
        partial.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        partial.replace(directory / MANIFEST)


def read_manifest(directory: Path) -> SuiteManifest | None:
    """The manifest in ``directory``, or None if there is none or it cannot be read as one."""
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        binaries = {name: Binary(**entry) for name, entry in data.pop("binaries").items()}
        return SuiteManifest(binaries=binaries, **data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def recipe_digest(recipe: dict[str, object]) -> str:
    """A short, stable digest of what shapes the binaries (flags, ldflags, environment)."""
    text = json.dumps({"format": FORMAT, **recipe}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def problems(manifest: SuiteManifest | None, directory: Path, *, version: str, recipe: str) -> list[str]:
    """Why the cached build in ``directory`` cannot be reused (an empty list: it can)."""
    if manifest is None:
        return [f"no readable {MANIFEST}"]
    found: list[str] = []
    if manifest.format != FORMAT:
        found.append(f"manifest format {manifest.format}, expected {FORMAT}")
    if manifest.kubernetes_version != version:
        found.append(f"built for {manifest.kubernetes_version}, not {version}")
    if manifest.recipe != recipe:
        found.append("the build recipe changed")
    for name in BINARIES:
        record = manifest.binaries.get(name)
        if record is None:
            found.append(f"{name} is not in the manifest")
            continue
        path = directory / record.path
        if not path.is_file():
            found.append(f"{record.path} is missing")
        elif path.stat().st_size != record.bytes or sha256_of(path) != record.sha256:
            found.append(f"{record.path} changed since it was built")
    return found
