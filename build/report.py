"""What one target's build made and how: the report, the lock and the checksum beside the binary.

``dist/k3py-linux-<arch>`` gets three companions: ``.sha256`` (``sha256sum`` format, so
``sha256sum -c`` checks it), ``.lock`` (the exact versions inside the binary, pip requirement
lines, with the build tools as comments) and ``.report.json`` (:class:`BuildReport`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    """One target's build, as written to ``dist/k3py-linux-<arch>.report.json``."""

    target: str
    artifact: str
    size_bytes: int
    python_bytes: int
    payload_bytes: int
    payload_unpacked_bytes: int
    payload_sha256: str
    components: dict[str, dict[str, object]]
    sha256: str
    build_seconds: float
    stage_seconds: dict[str, float]
    rootfs_cached: bool
    rootfs_recipe: str
    rootfs_tarball: str
    rootfs_tarball_bytes: int
    guest_python: str
    guest_machine: str
    guest_debian: str
    k3py_version: str
    runtime: dict[str, str]
    build_tools: dict[str, str]
    source_date_epoch: int
    git_commit: str
    log: str
    # The API the binary carries (build/apimanifest.py); defaults read reports from before it.
    api_profile: dict[str, object] = field(default_factory=dict)
    """keep_alpha, keep_deprecated, only, drop: the build's profile (its manifest's [build] table)."""
    api_groupversions: int = 0
    """Group-versions in the stripped manifest."""
    api_schema_bytes_before: int = 0
    """The full schema bundle, gzip bytes (the wheel's)."""
    api_schema_bytes_after: int = 0
    """The stripped schema bundle, gzip bytes (the binary's)."""
    api_definitions_before: int = 0
    api_definitions_after: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1_000_000


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksum(binary: Path) -> str:
    """Write ``<binary>.sha256`` in ``sha256sum`` format; return the digest."""
    digest = sha256_of(binary)
    binary.with_name(binary.name + ".sha256").write_text(f"{digest}  {binary.name}\n", encoding="utf-8")
    return digest


def write_lock(path: Path, *, artifact: str, runtime: dict[str, str], tools: dict[str, str]) -> None:
    """The exact versions inside the binary as requirement lines; the build tools as comments."""
    lines = [
        f"# {artifact}: the exact versions inside the binary, as pip installed them in its builder.",
        "# Written by `invoke build`; usable with `pip install -r`.",
        *(f"{name}=={version}" for name, version in sorted(runtime.items(), key=_key)),
        "# build tools (not inside the binary):",
        *(f"# {name}=={version}" for name, version in sorted(tools.items(), key=_key)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _key(item: tuple[str, str]) -> str:
    return item[0].lower()
