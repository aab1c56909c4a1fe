"""The pause (sandbox) image: catatonit alone, run as ``catatonit -P``.

Every pod's sandbox container runs this image; containerd's ``sandbox_image`` names it. The
release build puts it in the payload (``images/pause.tar``, built by ``build/payload.py`` from the
target's Debian catatonit); running from source, the agent builds it from the host's
``/usr/bin/catatonit``. Both use :func:`pause_image` and :func:`reference`, so the image has
the same name either way: ``docker.io/k3py/pause:catatonit-<upstream version>``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Protocol

from k3py.images import oci
from k3py.util import arch
from k3py.util.proc import ProcessError, run

PAUSE_REPOSITORY: Final = "docker.io/k3py/pause"
CATATONIT_VERSION: Final = "0.1.7"
"""The catatonit release Debian 12 ships, in the payload and on the hosts k3py runs from source."""
ENTRYPOINT: Final = ("/catatonit", "-P")
_OCI_VARIANTS: Final = {"arm": "v7", "arm64": "v8"}


class Platform(Protocol):
    """Where the image runs, in Go's and OCI's naming (``build.targets.Target`` is one)."""

    @property
    def go_arch(self) -> str: ...

    @property
    def oci_variant(self) -> str: ...


class HostPlatform:
    """The machine this process runs on, as a :class:`Platform`."""

    @property
    def go_arch(self) -> str:
        return arch.kube_arch()

    @property
    def oci_variant(self) -> str:
        return _OCI_VARIANTS.get(self.go_arch, "")


def upstream_version(debian_version: str) -> str:
    """``1:0.1.7-1+b2`` → ``0.1.7``: the part of a Debian version that names the release."""
    return debian_version.split(":")[-1].split("-")[0] or "unknown"


def reference(version: str = CATATONIT_VERSION) -> str:
    """The pause image's name for catatonit ``version`` (upstream or Debian form)."""
    return f"{PAUSE_REPOSITORY}:catatonit-{upstream_version(version)}"


def pause_image(catatonit: bytes, *, reference: str, target: Platform, created: int) -> oci.Image:
    """A pause image: catatonit alone, run as ``catatonit -P`` (pause mode).

    The payload's sandbox image and the conformance suite's ``registry.k8s.io/pause`` are both this.
    """
    return oci.Image(
        reference=reference,
        architecture=target.go_arch,
        variant=target.oci_variant,
        files=(oci.File("catatonit", catatonit),),
        entrypoint=ENTRYPOINT,
        env=(),
        created=created,
    )


def host_catatonit_version(catatonit: Path) -> str:
    """The upstream version of the host's catatonit: dpkg's record, else ``catatonit --version``."""
    try:
        listed = run(["dpkg-query", "-W", "-f=${Version}", "catatonit"], capture=True, quiet=True)
        if listed.stdout.strip():
            return upstream_version(listed.stdout.strip())
    except ProcessError:
        pass
    try:
        printed = run([catatonit, "--version"], capture=True, quiet=True, check=False)
    except ProcessError:
        return CATATONIT_VERSION
    # "tini version 0.1.7_catatonit"
    found = re.search(r"(\d+\.\d+\.\d+)", printed.stdout + printed.stderr)
    return found.group(1) if found else CATATONIT_VERSION


def write_host_pause_image(catatonit: Path, out: Path, *, created: int = 0) -> oci.Written:
    """Build the pause image from the host's ``catatonit`` at ``out`` (the same bytes every time)."""
    image = pause_image(
        catatonit.read_bytes(),
        reference=reference(host_catatonit_version(catatonit)),
        target=HostPlatform(),
        created=created,
    )
    return oci.write_image(image, out)
