"""The build's parts that need no root filesystem: recipes, targets, the command log, mounts, reports."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest

from build import host
from build.report import sha256_of, write_checksum, write_lock
from build.rootfs import BASE_PACKAGES, Recipe, tarball_path
from build.runner import (
    Bind,
    ChrootRunner,
    CommandFailed,
    CommandLog,
    call,
    mount_points_under,
    terminate_as_interrupt,
)
from build.targets import UnknownTarget, load_target, native_target_name, resolve_targets
from tests.build.conftest import Recorder


def test_every_target_loads_and_all_means_the_three() -> None:
    assert [t.name for t in resolve_targets("all")] == ["amd64", "arm64", "armv7"]
    assert [t.name for t in resolve_targets("arm64, amd64")] == ["arm64", "amd64"]
    assert native_target_name() == "amd64"
    assert load_target("armv7").build_in_tmpfs
    with pytest.raises(UnknownTarget, match="expected one of amd64, arm64, armv7"):
        load_target("riscv64")


def test_the_recipe_hash_follows_its_contents() -> None:
    arm64 = Recipe.for_target(load_target("arm64"))
    assert arm64 == Recipe.for_target(load_target("arm64"))
    assert set(BASE_PACKAGES) <= set(arm64.packages)
    assert list(arm64.packages) == sorted(set(arm64.packages))
    more = dataclasses.replace(arm64, packages=(*arm64.packages, "containerd"))
    assert more.digest != arm64.digest
    assert Recipe.for_target(load_target("amd64")).digest != arm64.digest
    path = tarball_path(Path("/cache"), load_target("arm64"), arm64)
    assert path == Path(f"/cache/rootfs/arm64-{arm64.digest[:16]}.tar.zst")


def test_armv7_extra_packages_do_not_duplicate_the_base_ones() -> None:
    packages = Recipe.for_target(load_target("armv7")).packages
    assert len(packages) == len(set(packages))


def test_a_command_is_echoed_logged_and_its_output_returned(tmp_path: Path) -> None:
    sink = Recorder()
    with CommandLog(tmp_path / "build.log", sink) as log:
        assert call(["sh", "-c", "echo one; echo two >&2"], log=log) == "one\ntwo"
    assert sink.commands == ["+ sh -c 'echo one; echo two >&2'"]
    assert sink.lines == ["one", "two"]
    assert (tmp_path / "build.log").read_text() == "+ sh -c 'echo one; echo two >&2'\none\ntwo\n"


def test_a_failing_command_names_itself_its_exit_code_and_its_last_words(tmp_path: Path) -> None:
    with CommandLog(tmp_path / "build.log") as log, pytest.raises(CommandFailed) as caught:
        call(["sh", "-c", "echo boom; exit 3"], log=log)
    assert caught.value.returncode == 3
    message = str(caught.value)
    assert "exit code 3: sh -c 'echo boom; exit 3'" in message
    assert "boom" in message and str(tmp_path / "build.log") in message
    with CommandLog(tmp_path / "build.log") as log, pytest.raises(CommandFailed, match="exit code 127"):
        call(["/nonexistent/tool"], log=log)


def test_checksum_and_lock_files(tmp_path: Path) -> None:
    binary = tmp_path / "k3py-linux-amd64"
    binary.write_bytes(b"k3py")
    digest = write_checksum(binary)
    assert digest == sha256_of(binary)
    assert (tmp_path / "k3py-linux-amd64.sha256").read_text() == f"{digest}  k3py-linux-amd64\n"
    lock = tmp_path / "k3py-linux-amd64.lock"
    write_lock(
        lock, artifact=binary.name, runtime={"orjson": "3", "aiohttp": "3.9"}, tools={"pyinstaller": "6"}
    )
    lines = lock.read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["aiohttp==3.9", "orjson==3"]
    assert "# pyinstaller==6" in lines


def test_the_native_target_needs_no_binfmt_handler() -> None:
    assert host.handler_problem(load_target("amd64")) is None


@pytest.mark.root
def test_chroot_mounts_are_torn_down_even_on_ctrl_c(tmp_path: Path) -> None:
    root, work = tmp_path / "root", tmp_path / "work"
    (root / "etc").mkdir(parents=True)
    with (
        CommandLog(tmp_path / "build.log") as log,
        pytest.raises(KeyboardInterrupt),
        ChrootRunner(root, log, binds=[Bind(work, "/work")]),
    ):
        mounted = {p.relative_to(root).as_posix() for p in mount_points_under(root)}
        assert {"proc", "sys", "dev", "work"} <= mounted
        raise KeyboardInterrupt
    assert mount_points_under(root) == []


@pytest.mark.root
def test_a_command_failing_in_the_chroot_raises_and_unmounts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    with (
        CommandLog(tmp_path / "build.log") as log,
        pytest.raises(CommandFailed, match=r"exit code 127: chroot "),
        ChrootRunner(root, log) as chroot,
    ):
        chroot.run(["true"])  # an empty root has no /usr/bin/env
    assert mount_points_under(root) == []


@pytest.mark.root
def test_sigterm_tears_the_chroot_down_like_ctrl_c(tmp_path: Path) -> None:
    root, work = tmp_path / "root", tmp_path / "work"
    (root / "etc").mkdir(parents=True)
    with (
        CommandLog(tmp_path / "build.log") as log,
        pytest.raises(KeyboardInterrupt, match="signal 15"),
        terminate_as_interrupt(),
        ChrootRunner(root, log, binds=[Bind(work, "/work")]),
    ):
        assert mount_points_under(root)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends
    assert mount_points_under(root) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
