"""The build targets, read from the data files in ``arch/`` (one per architecture).

Everything that differs between architectures lives in those files (Debian architecture, QEMU
binary and binfmt handler, wheel tags, tmpfs quirk, extra packages); the build reads a
:class:`Target` and never tests an architecture's name.
"""

from __future__ import annotations

import platform
import tomllib
from dataclasses import dataclass
from pathlib import Path

from build.errors import BuildError

ROOT = Path(__file__).resolve().parents[1]
ARCH_DIR = ROOT / "arch"


class UnknownTarget(BuildError):
    """No ``arch/<name>.toml`` for the requested target."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One architecture k3py is built for (see ``arch/<name>.toml``)."""

    name: str
    debian_arch: str
    uname_machine: str
    qemu_binary: str
    binfmt_name: str
    wheel_platforms: tuple[str, ...]
    go_arch: str
    gnu_triplet: str
    oci_variant: str
    bits: int
    build_in_tmpfs: bool
    build_packages: tuple[str, ...]

    @property
    def emulated(self) -> bool:
        """True when the target's programs run under qemu-user-static on this host."""
        return self.uname_machine != platform.machine()

    @property
    def oci_platform(self) -> str:
        """``linux/arm/v7``: the platform of images and containers for this target."""
        return "/".join(part for part in ("linux", self.go_arch, self.oci_variant) if part)

    @property
    def artifact_name(self) -> str:
        return f"k3py-linux-{self.name}"


def target_names() -> list[str]:
    """Every target described in ``arch/``, sorted."""
    return sorted(path.stem for path in ARCH_DIR.glob("*.toml"))


def load_target(name: str) -> Target:
    """Read ``arch/<name>.toml``; raise :class:`UnknownTarget` if there is none."""
    path = ARCH_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(target_names())
        raise UnknownTarget(f"unknown target {name!r}: expected one of {known} (files in {ARCH_DIR})")
    with path.open("rb") as f:
        data = tomllib.load(f)
    return Target(
        name=str(data["name"]),
        debian_arch=str(data["debian_arch"]),
        uname_machine=str(data["uname_machine"]),
        qemu_binary=str(data["qemu_binary"]),
        binfmt_name=str(data["binfmt_name"]),
        wheel_platforms=tuple(str(p) for p in data["wheel_platforms"]),
        go_arch=str(data["go_arch"]),
        gnu_triplet=str(data["gnu_triplet"]),
        oci_variant=str(data["oci_variant"]),
        bits=int(data["bits"]),
        build_in_tmpfs=bool(data["build_in_tmpfs"]),
        build_packages=tuple(str(p) for p in data.get("build_packages", ())),
    )


def resolve_targets(spec: str) -> list[Target]:
    """``"all"`` or a comma-separated list of names (``"amd64,arm64"``) → targets, in order."""
    names = target_names() if spec == "all" else [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise UnknownTarget(f"no target given: expected 'all' or one of {', '.join(target_names())}")
    return [load_target(name) for name in names]


def native_target_name() -> str:
    """The target this host runs natively (``amd64`` on x86_64)."""
    for name in target_names():
        if not load_target(name).emulated:
            return name
    raise UnknownTarget(f"no target in {ARCH_DIR} runs natively on {platform.machine()}")
