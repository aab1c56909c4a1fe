"""containerd's paths, config and runtime files; the pause image's name (no containerd runs here)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from k3py.agent.containerd import (
    PAUSE_IMAGE,
    ContainerdError,
    ContainerdPaths,
    RuntimeFiles,
    render_config,
    runtime_environment,
)
from k3py.images import pause
from k3py.payload import Unpacked


def test_paths_follow_the_data_dir_and_keep_the_socket_short(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 150)
    paths = ContainerdPaths.for_data_dir(deep)
    assert paths.root == deep / "agent" / "containerd"
    assert paths.config == deep / "agent" / "etc" / "containerd" / "config.toml"
    assert paths.cni_conf_dir == deep / "agent" / "etc" / "cni" / "net.d"
    assert paths.socket.parent == paths.state and str(paths.state).startswith("/run/")
    assert len(str(paths.socket).encode()) < 100
    assert ContainerdPaths.for_data_dir(deep) == paths
    assert ContainerdPaths.for_data_dir(tmp_path / "other").state != paths.state


@pytest.mark.parametrize("restrict", [True, False])
def test_config(tmp_path: Path, restrict: bool) -> None:
    paths = ContainerdPaths.for_data_dir(tmp_path / 'data "quoted"')
    files = RuntimeFiles(
        bin_dir=tmp_path / "bin",
        cni_bin_dir=tmp_path / "cni",
        lib_dir=None,
        pause_archive=None,
        runc=Path("/x/runc"),
    )
    text = render_config(
        paths, files, sandbox_image=PAUSE_IMAGE, restrict_oom_score_adj=restrict, apparmor=False
    )
    config = tomllib.loads(text)
    assert config["version"] == 2
    assert config["root"] == str(paths.root) and config["state"] == str(paths.state)
    assert config["grpc"]["address"] == str(paths.socket)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["restrict_oom_score_adj"] is restrict
    assert cri["disable_apparmor"] is True
    assert (cri["stream_server_address"], cri["stream_server_port"]) == ("127.0.0.1", "0")
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    options = cri["containerd"]["runtimes"]["runc"]["options"]
    assert options == {"SystemdCgroup": False, "BinaryName": "/x/runc", "Root": str(paths.state / "runc")}
    assert cri["cni"] == {"bin_dir": str(tmp_path / "cni"), "conf_dir": str(paths.cni_conf_dir)}
    assert "io.containerd.snapshotter.v1.btrfs" in config["disabled_plugins"]


def _unpacked(path: Path) -> Unpacked:
    return Unpacked(path=path, sha256="0" * 64, manifest={}, unpacked_now=False, seconds=0.0)


def test_payload_files(tmp_path: Path) -> None:
    for name in (
        "bin/containerd",
        "bin/containerd-shim-runc-v2",
        "bin/runc",
        "lib/libseccomp.so.2",
        "images/pause.tar",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    files = RuntimeFiles.find(_unpacked(tmp_path))
    assert files.containerd == tmp_path / "bin" / "containerd"
    assert files.runc_binary == tmp_path / "bin" / "runc"
    assert files.cni_bin_dir == tmp_path / "cni"
    assert files.lib_dir == tmp_path / "lib"
    assert files.pause_archive == tmp_path / "images" / "pause.tar"
    (tmp_path / "bin" / "runc").unlink()
    with pytest.raises(ContainerdError, match="no bin/runc"):
        RuntimeFiles.find(_unpacked(tmp_path))


def test_pause_image_name() -> None:
    assert pause.upstream_version("0.1.7-1+b2") == "0.1.7"
    assert pause.upstream_version("1:2.0.0-3") == "2.0.0"
    assert pause.reference("0.1.7-1+b2") == "docker.io/k3py/pause:catatonit-0.1.7" == PAUSE_IMAGE
    image = pause.pause_image(b"\x7fELF", reference=PAUSE_IMAGE, target=pause.HostPlatform(), created=0)
    assert image.entrypoint == ("/catatonit", "-P") and image.env == ()
    assert image.architecture == pause.HostPlatform().go_arch


def test_environment_of_a_release_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = RuntimeFiles(
        bin_dir=tmp_path / "bin", cni_bin_dir=tmp_path / "cni", lib_dir=tmp_path / "lib", pause_archive=None
    )
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/tmp/_MEIabc")  # the bootloader's bundled libraries
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/opt/user/lib")
    monkeypatch.setenv("PATH", "/usr/bin")
    env = runtime_environment(files)
    assert env["LD_LIBRARY_PATH"] == f"{tmp_path / 'lib'}:/opt/user/lib"
    assert env["PATH"] == f"{tmp_path / 'bin'}:/usr/bin"
    assert "LD_LIBRARY_PATH_ORIG" not in env
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG")
    host = RuntimeFiles(
        bin_dir=Path("/usr/bin"), cni_bin_dir=Path("/usr/lib/cni"), lib_dir=None, pause_archive=None
    )
    assert "LD_LIBRARY_PATH" not in runtime_environment(host)
