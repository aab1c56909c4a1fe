"""A pod's fsGroup on the volumes the kubelet writes (no runtime, no mounts)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

from k3py.agent.volume_ownership import expected_mode, fs_group, set_volume_ownership
from k3py.agent.volumes import PodVolumes, write_atomically

# Root may hand out any group; anyone else only one of their own.
GROUP = 1001 if os.geteuid() == 0 else os.getgid()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_expected_modes_follow_upstream_masks() -> None:
    assert expected_mode(0o400, read_only=True) == 0o440
    assert expected_mode(0o644, read_only=True) == 0o644
    assert expected_mode(0o600, read_only=False) == 0o660
    assert expected_mode(0o755, read_only=True, directory=True) == 0o2755
    assert expected_mode(0o700, read_only=False, directory=True) == 0o2770


def test_fs_group_is_read_from_the_pod_security_context() -> None:
    assert fs_group({"spec": {"securityContext": {"fsGroup": 1001}}}) == 1001
    assert fs_group({"spec": {"securityContext": {}}}) is None
    assert fs_group({"spec": {}}) is None


def test_secret_payload_with_default_mode_0440_and_fs_group(tmp_path: Path) -> None:
    """The conformance case: defaultMode 0440 and fsGroup 1001 → ``-r--r-----``, group 1001."""
    assert write_atomically(tmp_path, {"data-1": (b"value-1\n", 0o440)}, group=GROUP)
    target = tmp_path / "data-1"
    assert _mode(target) == 0o440 and target.stat().st_gid == GROUP
    assert tmp_path.stat().st_gid == GROUP and tmp_path.stat().st_mode & stat.S_ISGID
    payload = tmp_path / (tmp_path / "..data").readlink()
    assert payload.stat().st_gid == GROUP and _mode(payload) == 0o2755
    # the visible names are links: group only, never a mode change through them
    assert (tmp_path / "data-1").is_symlink() and os.lstat(tmp_path / "data-1").st_gid == GROUP
    # what is on disk already matches: nothing is rewritten on the next refresh
    assert not write_atomically(tmp_path, {"data-1": (b"value-1\n", 0o440)}, group=GROUP)


def test_owner_only_modes_gain_group_read(tmp_path: Path) -> None:
    assert write_atomically(tmp_path, {"key": (b"k", 0o400), "sub/x": (b"x", 0o600)}, group=GROUP)
    assert _mode(tmp_path / "key") == 0o440
    assert _mode(tmp_path / "sub" / "x") == 0o640
    assert (tmp_path / "sub" / "x").stat().st_gid == GROUP
    assert not write_atomically(tmp_path, {"key": (b"k", 0o400), "sub/x": (b"x", 0o600)}, group=GROUP)


def test_without_a_group_modes_stay_as_asked(tmp_path: Path) -> None:
    assert write_atomically(tmp_path, {"key": (b"k", 0o400)})
    assert _mode(tmp_path / "key") == 0o400
    set_volume_ownership(tmp_path, None, read_only=False)
    assert _mode(tmp_path / "key") == 0o400


def test_writable_volume_gets_read_write_for_the_group(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir(mode=0o700)
    (tmp_path / "dir" / "file").write_text("x")
    (tmp_path / "dir" / "file").chmod(0o600)
    (tmp_path / "link").symlink_to("dir/file")
    set_volume_ownership(tmp_path, GROUP, read_only=False)
    assert _mode(tmp_path / "dir" / "file") == 0o660
    assert _mode(tmp_path / "dir") == 0o2770
    assert (tmp_path / "dir" / "file").stat().st_gid == GROUP
    assert os.lstat(tmp_path / "link").st_gid == GROUP


async def test_pod_volumes_apply_the_pod_fs_group(tmp_path: Path) -> None:
    secret = {"kind": "Secret", "data": {"data-1": base64.b64encode(b"value-1\n").decode()}}

    async def fetch(kind: str, name: str) -> dict[str, Any] | None:
        return secret if (kind, name) == ("Secret", "s") else None

    async def no_token(account: str, audience: str, seconds: int) -> tuple[str, float]:
        raise AssertionError("no token wanted")

    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "securityContext": {"fsGroup": GROUP, "runAsUser": 1000},
            "volumes": [
                {
                    "name": "cfg",
                    "downwardAPI": {
                        "items": [{"path": "name", "mode": 0o400, "fieldRef": {"fieldPath": "metadata.name"}}]
                    },
                },
                {"name": "scratch", "emptyDir": {}},
            ],
        },
    }
    volumes = PodVolumes(tmp_path, pod, fetch, no_token)
    await volumes.setup()
    name = volumes.paths["cfg"] / "name"
    assert name.read_text() == "p" and _mode(name) == 0o440 and name.stat().st_gid == GROUP
    scratch = volumes.paths["scratch"]
    assert scratch.stat().st_gid == GROUP and _mode(scratch) == 0o2777
    # a later refresh leaves what the containers did to the emptyDir alone
    (scratch / "mine").write_text("x")
    (scratch / "mine").chmod(0o600)
    await volumes.refresh(pod)
    assert _mode(scratch / "mine") == 0o600
