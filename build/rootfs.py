"""Builder root filesystems: Debian 12 (bookworm) minbase for a target, cached as a tarball.

A :class:`Recipe` is everything that decides a root filesystem's contents: the suite, the
variant, the Debian architecture and the package list (:data:`BASE_PACKAGES`,
:data:`RUNTIME_PACKAGES` and the target's ``build_packages`` from ``arch/<name>.toml``). Its
sha256 names the cached tarball, ``<cache>/rootfs/<target>-<hash>.tar.zst`` (with the recipe
beside it as JSON), so changing the recipe (a package more, a new format) builds a new one and
an unchanged recipe reuses the old.

Building one runs ``debootstrap`` on the host: directly for the native target; for a foreign
one with ``--foreign``, then ``/debootstrap/debootstrap --second-stage`` inside the root through
:class:`~build.runner.ChrootRunner`, its programs run by qemu-user-static through binfmt_misc.
Targets marked ``build_in_tmpfs`` (armv7) bootstrap and later unpack in a tmpfs. Package
versions come from the mirror on the day the tarball is made; ``--refresh-rootfs`` remakes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from build.runner import ChrootRunner, CommandLog, call, remove_tree, tmpfs
from build.targets import Target
from k3py.util.locks import exclusive

# Bump when the way a root filesystem is made changes (not its package list): old tarballs go stale.
RECIPE_FORMAT = 1
SUITE = "bookworm"
VARIANT = "minbase"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
TMPFS_SIZE = "6g"

# What every builder needs: a Python with venv and headers (PyInstaller needs the shared
# libpython from python3-dev), a C compiler and zlib for wheels built from source (PyInstaller's
# bootloader on armv7), binutils for PyInstaller's --strip, CA certificates for HTTPS to PyPI.
BASE_PACKAGES = ("python3", "python3-venv", "python3-dev", "gcc", "zlib1g-dev", "binutils", "ca-certificates")
# What the binary's runtime payload is taken from (see build/payload.py): the target's own builds
# of containerd, runc, the CNI plugins and catatonit (the pause image's only file).
RUNTIME_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "catatonit")


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """What a root filesystem is made of; equal recipes give interchangeable root filesystems."""

    format: int
    suite: str
    variant: str
    debian_arch: str
    packages: tuple[str, ...]

    @classmethod
    def for_target(cls, target: Target) -> Recipe:
        return cls(
            format=RECIPE_FORMAT,
            suite=SUITE,
            variant=VARIANT,
            debian_arch=target.debian_arch,
            packages=tuple(sorted({*BASE_PACKAGES, *RUNTIME_PACKAGES, *target.build_packages})),
        )

    @classmethod
    def bare(cls, target: Target) -> Recipe:
        """Debian minbase and nothing else: no Python, no containerd (where release binaries must run)."""
        return cls(
            format=RECIPE_FORMAT, suite=SUITE, variant=VARIANT, debian_arch=target.debian_arch, packages=()
        )

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.as_json().encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class RootfsImage:
    """A cached root filesystem tarball and how this build came by it."""

    tarball: Path
    recipe: Recipe
    cached: bool
    seconds: float

    @property
    def size(self) -> int:
        return self.tarball.stat().st_size


def tarball_path(cache: Path, target: Target, recipe: Recipe) -> Path:
    return cache / "rootfs" / f"{target.name}-{recipe.digest[:16]}.tar.zst"


def mirror() -> str:
    """The Debian mirror debootstrap uses (``$K3PY_DEBIAN_MIRROR``); not part of the recipe."""
    return os.environ.get("K3PY_DEBIAN_MIRROR", DEFAULT_MIRROR)


def ensure_rootfs(
    target: Target, *, cache: Path, log: CommandLog, refresh: bool = False, recipe: Recipe | None = None
) -> RootfsImage:
    """The cached tarball of ``recipe`` (default: ``target``'s builder); bootstrapped first if missing."""
    started = time.monotonic()
    recipe = recipe or Recipe.for_target(target)
    tarball = tarball_path(cache, target, recipe)
    if tarball.is_file() and not refresh:
        log.note(f"root filesystem: reusing {tarball} (recipe {recipe.digest[:16]})")
        return RootfsImage(tarball=tarball, recipe=recipe, cached=True, seconds=time.monotonic() - started)
    # One bootstrap per recipe at a time, each in a work directory of its own: two recipes of one
    # target (the builder's and a bare one) may be bootstrapped at once by different processes.
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(tarball.parent / f"{tarball.name}.lock"):
        if tarball.is_file() and not refresh:
            log.note(f"root filesystem: reusing {tarball} (made meanwhile)")
            return RootfsImage(
                tarball=tarball, recipe=recipe, cached=True, seconds=time.monotonic() - started
            )
        log.note(f"root filesystem: bootstrapping {tarball.name} for recipe {recipe.as_json()}")
        work = cache / "work" / f"{target.name}-bootstrap-{recipe.digest[:12]}"
        with scratch_dir(work, target, log) as scratch:
            root = scratch / "root"
            bootstrap(target, recipe, root, log)
            trim(root)
            pack(root, tarball, log)
        tarball.with_suffix("").with_suffix(".json").write_text(recipe.as_json() + "\n", encoding="utf-8")
    return RootfsImage(tarball=tarball, recipe=recipe, cached=False, seconds=time.monotonic() - started)


def bootstrap(target: Target, recipe: Recipe, root: Path, log: CommandLog) -> None:
    """Run debootstrap into ``root`` (two stages, the second under QEMU, for a foreign target)."""
    command: list[str | os.PathLike[str]] = [
        "debootstrap",
        f"--variant={recipe.variant}",
        f"--arch={recipe.debian_arch}",
        *([f"--include={','.join(recipe.packages)}"] if recipe.packages else []),
        *(["--foreign"] if target.emulated else []),
        recipe.suite,
        root,
        mirror(),
    ]
    call(command, log=log)
    if target.emulated:
        # debootstrap mounts /proc and /sys itself during the second stage.
        with ChrootRunner(root, log, system_mounts=False) as chroot:
            chroot.run(["/debootstrap/debootstrap", "--second-stage"])


def trim(root: Path) -> None:
    """Drop what only apt needed (downloaded .debs, package lists) from the tarball."""
    for directory in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.is_file() and entry.name != "lock":
                entry.unlink()


def pack(root: Path, tarball: Path, log: CommandLog) -> None:
    """Write ``root`` as a zstd tarball, atomically (a half-written tarball is never reused)."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(tarball.name + ".partial")
    command = ["tar", "--create", "--zstd", "--numeric-owner", "--xattrs", "--sort=name"]
    call([*command, f"--file={partial}", f"--directory={root}", "."], log=log)
    partial.replace(tarball)


def unpack(image: RootfsImage, root: Path, log: CommandLog) -> None:
    """Extract ``image`` into an empty ``root``."""
    root.mkdir(parents=True)
    command = ["tar", "--extract", "--zstd", "--numeric-owner", "--xattrs", "--same-permissions"]
    call([*command, f"--file={image.tarball}", f"--directory={root}"], log=log)


@contextmanager
def scratch_dir(path: Path, target: Target, log: CommandLog) -> Iterator[Path]:
    """An empty directory for a root filesystem: a tmpfs for ``build_in_tmpfs`` targets; removed after."""
    remove_tree(path, log)
    if target.build_in_tmpfs:
        with tmpfs(path, size=TMPFS_SIZE, log=log):
            yield path
        path.rmdir()
        return
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        remove_tree(path, log)
