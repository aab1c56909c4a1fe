"""The target descriptions in arch/ are complete and agree with each other."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ARCH = Path(__file__).resolve().parents[2] / "arch"
REQUIRED = {
    "name": str,
    "debian_arch": str,
    "uname_machine": str,
    "qemu_binary": str,
    "binfmt_name": str,
    "wheel_platforms": list,
    "go_arch": str,
    "gnu_triplet": str,
    "oci_variant": str,
    "bits": int,
    "build_in_tmpfs": bool,
    "build_packages": list,
}


def load(name: str) -> dict[str, object]:
    with (ARCH / f"{name}.toml").open("rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize("name", ["amd64", "arm64", "armv7"])
def test_target_file_has_every_field(name: str) -> None:
    data = load(name)
    for field, kind in REQUIRED.items():
        assert isinstance(data.get(field), kind), f"{name}.toml: {field} missing or not {kind.__name__}"
    assert data["name"] == name
    platforms = data["wheel_platforms"]
    assert isinstance(platforms, list)
    assert all(str(data["uname_machine"]) in p for p in platforms)


def test_only_the_native_target_runs_without_qemu() -> None:
    emulated = {n: load(n)["qemu_binary"] for n in ("amd64", "arm64", "armv7")}
    assert emulated["amd64"] == ""
    assert emulated["arm64"] and emulated["armv7"]


@pytest.mark.parametrize("name", ["amd64", "arm64", "armv7"])
def test_an_emulated_target_names_its_binfmt_handler(name: str) -> None:
    data = load(name)
    assert bool(data["binfmt_name"]) == bool(data["qemu_binary"])
    if data["binfmt_name"]:
        assert str(data["binfmt_name"]).startswith("qemu-")


def test_no_unknown_target_files() -> None:
    assert sorted(p.stem for p in ARCH.glob("*.toml")) == ["amd64", "arm64", "armv7"]
