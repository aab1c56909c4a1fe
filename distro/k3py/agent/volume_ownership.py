"""A pod's ``fsGroup`` on its volumes, as upstream's ``SetVolumeOwnership`` applies it.

With ``spec.securityContext.fsGroup`` set, every file and directory of a volume the kubelet
sets up (emptyDir, configMap, secret, downwardAPI, projected; never hostPath) gets that group,
and its mode gains group (and owner) permissions: ``rw`` (0660) on a writable volume, ``r``
(0440) on the volumes the kubelet writes from API objects, plus ``x`` and set-group-ID on
directories, so files made later inherit the group. Links keep their mode and get the group
only (``lchown``). A secret written with ``defaultMode: 0400`` is therefore ``0440`` and
``root:<fsGroup>``: readable by a non-root container that carries the fsGroup as a
supplementary group, which is how upstream's conformance tests read it.

The volumes the kubelet writes apply this to a fresh payload before it is published
(:func:`k3py.agent.volumes.write_atomically`), so a container never sees a file without its
group; :func:`expected_mode` is the mode a file ends with, for comparing a payload with what is
already on disk.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

RW_MASK = 0o660
RO_MASK = 0o440
EXEC_MASK = 0o110


def fs_group(pod: Obj) -> int | None:
    """The pod's ``spec.securityContext.fsGroup``, if it has one."""
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return int(value) if isinstance(value, int) else None


def expected_mode(mode: int, *, read_only: bool, directory: bool = False) -> int:
    """The permission bits ``mode`` becomes once the volume's fsGroup is applied."""
    mask = RO_MASK if read_only else RW_MASK
    if directory:
        mask |= EXEC_MASK | stat.S_ISGID
    return mode | mask


def set_volume_ownership(root: Path, group: int | None, *, read_only: bool) -> None:
    """Give everything under ``root`` (``root`` included) the group ``group`` and its permissions.

    Nothing happens without a group. Errors on single entries are ignored, as upstream logs and
    goes on: a file removed meanwhile is no reason to fail the volume.
    """
    if group is None:
        return
    for path in _walk(root):
        try:
            info = path.lstat()
            os.lchown(path, -1, group)
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        wanted = expected_mode(mode, read_only=read_only, directory=stat.S_ISDIR(info.st_mode))
        if wanted != mode:
            try:
                path.chmod(wanted)
            except OSError:
                continue


def _walk(root: Path) -> list[Path]:
    """``root`` and everything below it, children before their directory; links are not followed."""
    out: list[Path] = []
    pending = [root]
    while pending:
        path = pending.pop()
        out.append(path)
        if path.is_dir() and not path.is_symlink():
            try:
                pending.extend(sorted(path.iterdir()))
            except OSError:
                continue
    out.reverse()
    return out
