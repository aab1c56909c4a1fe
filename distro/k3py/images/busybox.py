"""A busybox image from the host's static busybox (Debian's ``busybox-static``).

One binary and a link per applet give a small image with ``sh``, ``sleep``, ``httpd``, ``nc``,
``wget`` and the rest, enough to run and test real workloads on a cluster with no registry:
write it with :func:`write_busybox` into ``<data-dir>/agent/images`` (or import it) and use its
reference in pod specs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from k3py.images import oci
from k3py.util.arch import kube_arch

BUSYBOX = Path("/bin/busybox")
DEFAULT_REFERENCE = "docker.io/k3py/busybox:local"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"


def applets(busybox: Path = BUSYBOX) -> list[str]:
    """The applets ``busybox`` was built with, as installable paths (``bin/sh``, ``usr/bin/wget``…)."""
    listed = subprocess.run(
        [str(busybox), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    return sorted({path for path in listed if path and not path.endswith("/busybox")})


def busybox_image(
    reference: str = DEFAULT_REFERENCE, busybox: Path = BUSYBOX, *, created: int = 0
) -> oci.Image:
    """An image of ``busybox`` with every applet linked, ``/tmp`` and root and nobody accounts."""
    if not busybox.is_file():
        raise oci.ImageError(f"{busybox} not found: install Debian's busybox-static")
    entries: list[oci.Entry] = [oci.File("bin/busybox", busybox.read_bytes(), 0o755)]
    for path in applets(busybox):
        depth = path.count("/")
        entries.append(oci.Symlink(path, "../" * depth + "bin/busybox" if depth > 1 else "busybox"))
    entries += [
        oci.Directory("tmp", 0o1777),
        oci.Directory("root", 0o700),
        oci.Directory("home", 0o755),
        oci.Directory("var/www", 0o755),
        oci.File("etc/passwd", PASSWD.encode(), 0o644),
        oci.File("etc/group", GROUP.encode(), 0o644),
    ]
    unique = {entry.path: entry for entry in entries}
    return oci.Image(
        reference=reference,
        architecture=kube_arch(),
        files=tuple(unique.values()),
        cmd=("sh",),
        created=created,
    )


def write_busybox(path: Path, reference: str = DEFAULT_REFERENCE) -> oci.Written:
    """Write the busybox image as an OCI archive at ``path``."""
    return oci.write_image(busybox_image(reference), path)
