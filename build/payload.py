"""The runtime payload appended to the binary: the target's containerd, runc, CNI plugins and pause image.

Everything comes from the target's builder root filesystem, where Debian installed
:data:`~build.rootfs.RUNTIME_PACKAGES`; nothing is downloaded or compiled. :func:`collect`
copies the files :data:`COMPONENTS` names (read on the host, no emulation needed), adds the
shared libraries they load beyond the C library (``readelf`` lists them; ``runc`` needs
libseccomp), makes the pause image from ``catatonit`` (:mod:`k3py.images.oci`) and writes
``manifest.json``. :func:`compress` packs that into a reproducible ``tar.xz`` (sorted, owned by
root, times fixed to :data:`EPOCH`), cached under ``<cache>/payload/`` by the digest of
its manifest, since ``xz -9e`` takes the better part of a minute. :func:`attach` appends the
payload and its trailer (:mod:`k3py.payload`) to PyInstaller's executable.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from build.errors import BuildError
from build.report import sha256_of
from build.runner import CommandLog, call
from build.targets import Target
from k3py import payload as runtime_payload
from k3py.images import oci
from k3py.images.pause import PAUSE_REPOSITORY as PAUSE_REPOSITORY  # the build and the agent share these
from k3py.images.pause import pause_image as pause_image

FORMAT = 1
XZ_PRESET = 9 | lzma.PRESET_EXTREME
EPOCH = 0
"""The time stamped on the payload's files and pause image (not the commit's, so the cache lasts)."""
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
# Libraries every Linux system has: the C library's own files are never carried.
C_LIBRARY_PACKAGE = "libc6"


class PayloadMissing(BuildError):
    """A file the payload needs is not in the builder root filesystem."""


@dataclass(frozen=True)
class Component:
    """One file of the payload: where Debian installs it in the root, where it goes in the payload."""

    name: str
    package: str
    source: str
    destination: str


COMPONENTS = (
    Component("containerd", "containerd", "usr/bin/containerd", "bin/containerd"),
    Component(
        "containerd-shim-runc-v2",
        "containerd",
        "usr/bin/containerd-shim-runc-v2",
        "bin/containerd-shim-runc-v2",
    ),
    Component("runc", "runc", "usr/sbin/runc", "bin/runc"),
    Component("catatonit", "catatonit", "usr/bin/catatonit", "bin/catatonit"),
    *(
        Component(plugin, "containernetworking-plugins", f"usr/lib/cni/{plugin}", f"cni/{plugin}")
        for plugin in CNI_PLUGINS
    ),
)


@dataclass(frozen=True, kw_only=True)
class Collected:
    """A payload tree ready to compress, and its manifest."""

    tree: Path
    manifest: dict[str, object]

    @property
    def digest(self) -> str:
        """Names the compressed payload in the cache: equal manifests give equal archives."""
        text = json.dumps({"format": FORMAT, "xz": XZ_PRESET, "manifest": self.manifest}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def unpacked_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.tree.rglob("*") if path.is_file())


@dataclass(frozen=True, kw_only=True)
class Compressed:
    """The payload as it goes into the binary."""

    archive: Path
    sha256: str
    cached: bool

    @property
    def size(self) -> int:
        return self.archive.stat().st_size


def collect(root: Path, tree: Path, target: Target, *, epoch: int, log: CommandLog) -> Collected:
    """Fill ``tree`` with the payload for ``target`` from its root filesystem ``root``."""
    versions = installed_versions(root)
    tree.mkdir(parents=True)
    entries: list[dict[str, object]] = []
    for component in COMPONENTS:
        source = root / component.source
        if not source.is_file():
            raise PayloadMissing(
                f"{component.source} (package {component.package}) is missing from the root filesystem {root}"
            )
        entries.append(
            _copy(
                source,
                tree / component.destination,
                name=component.name,
                package=component.package,
                version=versions.get(component.package, ""),
            )
        )
    owned_by_libc = _package_files(root, C_LIBRARY_PACKAGE, target)
    for library in sorted(_needed_libraries(tree, log) - {Path(p).name for p in owned_by_libc}):
        source = _find_library(root, library, target)
        owner = _owner(root, source)
        entries.append(
            _copy(
                source.resolve(),
                tree / "lib" / library,
                name=library,
                package=owner,
                version=versions.get(owner, ""),
                mode=0o644,
            )
        )
    catatonit = next(c for c in COMPONENTS if c.name == "catatonit")
    pause = _pause_image(
        tree / catatonit.destination,
        tree / "images" / "pause.tar",
        target,
        version=versions.get(catatonit.package, ""),
        epoch=epoch,
    )
    entries.append(pause)
    manifest: dict[str, object] = {
        "format": FORMAT,
        "target": target.name,
        "platform": target.oci_platform,
        "components": entries,
    }
    (tree / runtime_payload.MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return Collected(tree=tree, manifest=manifest)


def compress(collected: Collected, cache: Path, target: Target, *, epoch: int, log: CommandLog) -> Compressed:
    """The payload's ``tar.xz`` from the cache, or written there now."""
    archive = cache / "payload" / f"{target.name}-{collected.digest[:16]}.tar.xz"
    cached = archive.is_file()
    if cached:
        log.note(f"payload: reusing {archive}")
    else:
        log.note(f"payload: compressing {collected.unpacked_bytes} bytes to {archive} (xz -9e)")
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        with (
            lzma.open(partial, "wb", preset=XZ_PRESET) as xz,
            tarfile.open(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in sorted(
                collected.tree.rglob("*"), key=lambda p: p.relative_to(collected.tree).as_posix()
            ):
                info = tar.gettarinfo(str(path), arcname=path.relative_to(collected.tree).as_posix())
                info.mtime = epoch
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mode = 0o755 if path.is_dir() or info.mode & 0o111 else 0o644
                if info.isfile():
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        partial.replace(archive)
    return Compressed(archive=archive, sha256=sha256_of(archive), cached=cached)


def attach(executable: Path, compressed: Compressed, out: Path) -> None:
    """Write ``out``: ``executable``, then the payload, then the trailer that finds it."""
    with out.open("wb") as f:
        with executable.open("rb") as source:
            shutil.copyfileobj(source, f, 1 << 20)
        offset = f.tell()
        with compressed.archive.open("rb") as source:
            shutil.copyfileobj(source, f, 1 << 20)
        f.write(runtime_payload.trailer(offset, compressed.size, compressed.sha256))


def installed_versions(root: Path) -> dict[str, str]:
    """``package -> version`` of what dpkg installed in ``root`` (read from its status file)."""
    versions: dict[str, str] = {}
    status = (root / "var/lib/dpkg/status").read_text(encoding="utf-8")
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, flags=re.MULTILINE))
        if "installed" in fields.get("Status", "").split() and "Package" in fields:
            versions[fields["Package"]] = fields.get("Version", "")
    return versions


def _copy(
    source: Path, destination: Path, *, name: str, package: str, version: str, mode: int = 0o755
) -> dict[str, object]:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    destination.chmod(mode)
    return {
        "name": name,
        "path": f"{destination.parent.name}/{destination.name}",
        "package": package,
        "version": version,
        "bytes": destination.stat().st_size,
        "sha256": sha256_of(destination),
    }


def _needed_libraries(tree: Path, log: CommandLog) -> set[str]:
    """The ``DT_NEEDED`` libraries of every ELF file in ``tree`` (readelf reads any architecture)."""
    needed: set[str] = set()
    for path in sorted(tree.rglob("*")):
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            dynamic = call(["readelf", "--dynamic", "--wide", path], log=log)
            needed.update(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    return needed


def _library_dirs(root: Path, target: Target) -> list[Path]:
    return [
        root / "lib" / target.gnu_triplet,
        root / "usr/lib" / target.gnu_triplet,
        root / "lib",
        root / "usr/lib",
    ]


def _find_library(root: Path, name: str, target: Target) -> Path:
    for directory in _library_dirs(root, target):
        if (directory / name).exists():
            return directory / name
    raise PayloadMissing(f"shared library {name} is needed by the payload but not in {root}")


def _package_files(root: Path, package: str, target: Target) -> list[str]:
    """The files dpkg lists for ``package`` (``<package>:<arch>.list`` or ``<package>.list``)."""
    info = root / "var/lib/dpkg/info"
    for name in (f"{package}:{target.debian_arch}.list", f"{package}.list"):
        if (info / name).is_file():
            return (info / name).read_text(encoding="utf-8").split()
    raise PayloadMissing(f"dpkg knows no package {package} in {root}")


def _owner(root: Path, library: Path) -> str:
    """The package whose file list holds ``library``'s real file (by name: /lib and /usr/lib are one)."""
    wanted = library.resolve().name
    for listing in sorted((root / "var/lib/dpkg/info").glob("*.list")):
        if any(Path(line).name == wanted for line in listing.read_text(encoding="utf-8").split()):
            return listing.stem.split(":")[0]
    return ""


def _pause_image(
    catatonit: Path, out: Path, target: Target, *, version: str, epoch: int
) -> dict[str, object]:
    """The sandbox ("pause") image: catatonit alone, run as ``catatonit -P`` (pause mode)."""
    upstream = version.split(":")[-1].split("-")[0] or "unknown"
    written = oci.write_image(
        pause_image(
            catatonit.read_bytes(),
            reference=f"{PAUSE_REPOSITORY}:catatonit-{upstream}",
            target=target,
            created=epoch,
        ),
        out,
    )
    return {
        "name": "pause",
        "path": f"images/{out.name}",
        "package": "catatonit",
        "version": version,
        "bytes": out.stat().st_size,
        "sha256": sha256_of(out),
        "image": written.reference,
        "manifest_digest": written.manifest_digest,
    }
