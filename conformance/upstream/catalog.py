"""The test images a suite uses, by the exact references it pulls, with the Go constants naming them.

Two sources, cross-checked: ``e2e.test --list-images`` (every reference the built binary may
pull, CSI sidecars included) and ``test/utils/image/manifest.go`` of the same source tree, whose
``configs[<ImageID>] = Config{list.<Registry>, "<name>", "<tag>"}`` lines name each image's
constant (``Agnhost``, ``BusyBox``…), which is what the test sources refer to
(``imageutils.GetE2EImage(imageutils.Agnhost)``). The binary's list is authoritative; the
constants are attached where manifest.go resolves to the same reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from build.runner import CommandLog, call
from conformance.upstream.errors import ModuleLayoutChanged

MANIFEST_GO = "test/utils/image/manifest.go"
_REGISTRY_BLOCK = re.compile(r"initRegistry\s*=\s*RegistryList\{(?P<body>[^}]*)\}", re.DOTALL)
_REGISTRY_FIELD = re.compile(r"(?P<field>\w+)\s*:\s*\"(?P<value>[^\"]+)\"")
_CONFIG = re.compile(
    r"configs\[(?P<constant>\w+)\]\s*=\s*Config\{\s*list\.(?P<registry>\w+)\s*,\s*"
    r"\"(?P<name>[^\"]+)\"\s*,\s*\"(?P<tag>[^\"]+)\"\s*\}"
)


@dataclass(frozen=True, kw_only=True)
class UpstreamImage:
    """One image reference of the suite and the ImageID constants that resolve to it (maybe none)."""

    reference: str
    constants: tuple[str, ...] = ()

    @property
    def repository(self) -> str:
        """``registry.k8s.io/e2e-test-images/agnhost``."""
        return self.reference.rsplit(":", 1)[0]

    @property
    def name(self) -> str:
        """``agnhost``, ``volume/nfs``: the repository below its registry path (the upstream image's name)."""
        return self.repository.split("/", 2)[-1] if "e2e-test-images/" in self.repository else self.basename

    @property
    def basename(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]

    @property
    def archive_name(self) -> str:
        """``agnhost-2.66.1.tar``: a file name unique per reference."""
        return f"{self.name.replace('/', '-')}-{self.tag}.tar"


def parse_manifest_go(text: str) -> dict[str, str]:
    """``ImageID constant -> reference`` from manifest.go's registry list and ``configs[…]`` lines."""
    block = _REGISTRY_BLOCK.search(text)
    if block is None:
        raise ModuleLayoutChanged(f"{MANIFEST_GO} has no initRegistry = RegistryList{{…}} block")
    registries = {m.group("field"): m.group("value") for m in _REGISTRY_FIELD.finditer(block.group("body"))}
    images: dict[str, str] = {}
    for found in _CONFIG.finditer(text):
        registry = registries.get(found.group("registry"))
        if registry is None:
            raise ModuleLayoutChanged(f"{MANIFEST_GO}: unknown registry list.{found.group('registry')}")
        images[found.group("constant")] = f"{registry}/{found.group('name')}:{found.group('tag')}"
    if not images:
        raise ModuleLayoutChanged(f"{MANIFEST_GO} has no configs[…] = Config{{…}} line")
    return images


def list_images(e2e_test: Path, log: CommandLog) -> list[str]:
    """``e2e.test --list-images``: the references, sorted (the binary prints them in map order)."""
    output = call([e2e_test, "--list-images"], log=log, env={"PATH": "/usr/bin:/bin", "KUBECONFIG": ""})
    return sorted({line.strip() for line in output.splitlines() if line.strip() and " " not in line.strip()})


def catalog(references: list[str], constants: dict[str, str]) -> list[UpstreamImage]:
    """Every reference of the binary with its constants; a constant the binary does not list is added."""
    by_reference: dict[str, list[str]] = {reference: [] for reference in references}
    for constant, reference in sorted(constants.items()):
        by_reference.setdefault(reference, []).append(constant)
    return [
        UpstreamImage(reference=reference, constants=tuple(names))
        for reference, names in sorted(by_reference.items())
    ]
