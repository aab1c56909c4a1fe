"""The docker runner: builder images imported from the cached root filesystems, commands run by exec.

Every test talks to a private Docker engine started for this module (:mod:`tests.build.dockerd`),
never to the system's. The builder images come from the cached root filesystem tarballs
(``<cache>/rootfs/<target>-*.tar.zst``); a test whose tarball is missing is skipped, as these
tests build no root filesystem. Broken images are made here from a few bytes.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext, suppress
from pathlib import Path

import pytest
from docker.errors import NotFound

from build import docker_runner
from build.binary import guest_info
from build.docker_runner import (
    LABEL,
    PING_TIMEOUT,
    DockerRunner,
    EngineUnreachable,
    ImageImportFailed,
    PlatformNotRunnable,
    docker_available,
    image_tag,
    platform_of,
)
from build.paths import cache_dir
from build.pipeline import BuildOptions, build_target
from build.rootfs import Recipe, RootfsImage, tarball_path
from build.runner import Bind, CommandFailed, CommandLog, QuietSink
from build.targets import Target, load_target
from tests.build.conftest import Build, Recorder, Silent
from tests.build.dockerd import Engine, missing_tools, private_engine

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.docker]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    missing = missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (`apt-get install docker.io` provides them)")
    with private_engine(tmp_path_factory.mktemp("dockerd")) as running:
        yield running


def cached_rootfs(name: str, built: Build) -> RootfsImage:
    """The cached builder root filesystem of ``name`` (this session's build of it made or reused it)."""
    report = built(name)
    target = load_target(name)
    recipe = Recipe.for_target(target)
    tarball = Path(report.rootfs_tarball)
    assert tarball == tarball_path(cache_dir(), target, recipe) and tarball.is_file()
    return RootfsImage(tarball=tarball, recipe=recipe, cached=True, seconds=0.0)


@pytest.fixture(scope="module")
def amd64(built: Build) -> RootfsImage:
    return cached_rootfs("amd64", built)


def made_rootfs(path: Path, files: dict[str, bytes], *, name: str) -> RootfsImage:
    """A tiny "root filesystem": ``files`` (path → content, executable) as a .tar.zst."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for member_name, content in files.items():
            member = tarfile.TarInfo(member_name)
            member.size, member.mode = len(content), 0o755
            tar.addfile(member, io.BytesIO(content))
    subprocess.run(["zstd", "--quiet", "-o", str(path)], input=archive.getvalue(), check=True)
    recipe = Recipe(format=0, suite="test", variant=name, debian_arch="none", packages=())
    return RootfsImage(tarball=path, recipe=recipe, cached=True, seconds=0.0)


def runner_on(
    engine: Engine | str,
    image: RootfsImage,
    log: CommandLog,
    *,
    target: str = "amd64",
    binds: list[Bind] | None = None,
    env: dict[str, str] | None = None,
) -> DockerRunner:
    """A runner on ``engine`` (a private engine, or a ``DOCKER_HOST`` URL)."""
    host = engine if isinstance(engine, str) else engine.host
    return DockerRunner(
        target=load_target(target), image=image, log=log, binds=binds or [], env=env or {}, engine=host
    )


def builder_containers(engine: Engine) -> list[str]:
    """Names of the containers on the engine that carry the builder label, running or not."""
    client = engine.client()
    try:
        return [str(c.name) for c in client.containers.list(all=True, filters={"label": LABEL})]
    finally:
        client.close()


def test_docker_available_only_where_an_engine_answers(
    engine: Engine, tmp_path: Path, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert docker_available(engine.host)
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    assert docker_available()
    started = time.monotonic()
    assert not docker_available(f"unix://{tmp_path}/no-engine.sock")
    assert not docker_available(f"tcp://127.0.0.1:{free_port}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert not docker_available()
    assert time.monotonic() - started < 2 * PING_TIMEOUT


def test_an_unreachable_engine_is_a_one_line_error(tmp_path: Path) -> None:
    image = made_rootfs(tmp_path / "never-imported.tar.zst", {"bin/true": b""}, name="unreachable")
    with (
        CommandLog(tmp_path / "build.log") as log,
        pytest.raises(EngineUnreachable) as raised,
        runner_on(f"unix://{tmp_path}/x.sock", image, log),
    ):
        pytest.fail("entered a runner without an engine")
    message = str(raised.value)
    print(message)
    assert "\n" not in message
    assert f"unix://{tmp_path}/x.sock" in message
    assert "DOCKER_HOST" in message


def test_commands_run_in_the_amd64_builder_and_stream_to_the_log(
    engine: Engine, amd64: RootfsImage, tmp_path: Path
) -> None:
    sink = Recorder()
    script = (
        "import os, platform, sys; print(platform.machine()); print(os.getcwd()); "
        "print(os.environ['K3PY_RUNNER'], os.environ['EXTRA']); print('on stderr', file=sys.stderr)"
    )
    with (
        CommandLog(tmp_path / "build.log", sink) as log,
        runner_on(engine, amd64, log, env={"K3PY_RUNNER": "docker"}) as runner,
    ):
        assert runner.run(["uname", "-m"]) == "x86_64"
        output = runner.run(["python3", "-u", "-c", script], env={"EXTRA": "a b"}, cwd="/tmp")
        guest = guest_info(runner)  # a build step, through the Runner protocol
        client = engine.client()
        attrs = client.images.get(runner.tag).attrs
        client.close()
    assert output.splitlines() == ["x86_64", "/tmp", "docker a b", "on stderr"]
    assert sink.lines[1:5] == ["x86_64", "/tmp", "docker a b", "on stderr"]
    python_command = [c for c in sink.commands if "python3 -u -c" in c]
    assert python_command[0].startswith("+ docker exec --workdir=/tmp ")
    assert "'--env=EXTRA=a b'" in python_command[0]
    assert (guest.machine, guest.python[:2], guest.debian[:3]) == ("x86_64", "3.", "12.")
    assert (attrs["Os"], attrs["Architecture"]) == ("linux", "amd64")
    assert attrs["Config"]["Labels"] == {LABEL: "amd64", "k3py.recipe": amd64.recipe.digest}
    assert runner.tag == f"k3py-builder:amd64-{amd64.recipe.digest[:16]}"


def test_a_bind_mount_is_shared_with_the_host(engine: Engine, amd64: RootfsImage, tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "in.txt").write_text("from the host\n", encoding="utf-8")
    binds = [Bind(job, "/work"), Bind(tmp_path / "made-on-entry", "/var/cache/k3py-pip")]
    with (
        CommandLog(tmp_path / "build.log") as log,
        runner_on(engine, amd64, log, binds=binds) as runner,
    ):
        runner.run(["sh", "-c", "cat in.txt > out.txt; echo from the guest >> out.txt"], cwd="/work")
        runner.run(["touch", "/var/cache/k3py-pip/marker"])
    assert (job / "out.txt").read_text(encoding="utf-8") == "from the host\nfrom the guest\n"
    assert (tmp_path / "made-on-entry" / "marker").is_file()


def test_a_failing_command_raises_command_failed_with_its_exit_code_and_tail(
    engine: Engine, amd64: RootfsImage, tmp_path: Path
) -> None:
    noisy = "for i in $(seq 1 30); do echo line $i; done; echo oops >&2; exit 3"
    with (
        CommandLog(tmp_path / "build.log") as log,
        runner_on(engine, amd64, log) as runner,
    ):
        with pytest.raises(CommandFailed) as failed:
            runner.run(["sh", "-c", noisy])
        with pytest.raises(CommandFailed) as not_found:
            runner.run(["no-such-program", "--flag"])
        assert runner.run(["echo", "still usable"]) == "still usable"
    assert failed.value.returncode == 3
    assert failed.value.command == ("sh", "-c", noisy)
    shown = [line.strip() for line in str(failed.value).splitlines()]
    assert shown[-16:] == [*(f"line {i}" for i in range(17, 31)), "oops", f"full log: {log.path}"]
    assert not_found.value.returncode in (126, 127)
    assert "no-such-program" in str(not_found.value)
    assert "line 30" in log.path.read_text(encoding="utf-8")


def test_a_command_silent_past_the_limit_fails_as_hung(
    engine: Engine, amd64: RootfsImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker_runner, "SILENT_TIMEOUT", 2)
    with CommandLog(tmp_path / "build.log") as log, runner_on(engine, amd64, log) as runner:
        assert runner.run(["sh", "-c", "sleep 1; echo a; sleep 1; echo b; sleep 1; echo c"]) == "a\nb\nc"
        started = time.monotonic()
        with pytest.raises(CommandFailed) as hung:
            runner.run(["sleep", "30"])
    assert time.monotonic() - started < 10
    assert hung.value.returncode == 125
    assert "timed out" in str(hung.value)


@pytest.mark.parametrize("body", ["returns", "raises", "is interrupted"])
def test_the_container_is_removed_on_leaving(
    engine: Engine, amd64: RootfsImage, tmp_path: Path, body: str
) -> None:
    client = engine.client()
    error = {"returns": None, "raises": RuntimeError, "is interrupted": KeyboardInterrupt}[body]
    expected: AbstractContextManager[object] = pytest.raises(error) if error else nullcontext()
    with CommandLog(tmp_path / "build.log") as log, expected, runner_on(engine, amd64, log) as entered:
        name = entered.container_name
        assert client.containers.get(name).status == "running"
        if error:
            raise error("the build step failed")
    with pytest.raises(NotFound):
        client.containers.get(name)
    assert builder_containers(engine) == []
    client.images.get(entered.tag)  # the image stays, as a cache
    client.close()


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, even in a process started with SIGINT ignored (as a
    shell that runs CI in the background starts its children)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_during_a_command_stops_it_and_removes_the_container(
    engine: Engine, amd64: RootfsImage, tmp_path: Path
) -> None:
    timer = threading.Timer(2.0, os.kill, args=(os.getpid(), signal.SIGINT))
    with (
        CommandLog(tmp_path / "build.log") as log,
        pytest.raises(KeyboardInterrupt),
        runner_on(engine, amd64, log) as entered,
    ):
        started = time.monotonic()
        timer.start()
        entered.run(["sleep", "120"])
    timer.join()
    assert time.monotonic() - started < 30
    assert builder_containers(engine) == []


def test_the_image_is_imported_once_then_reused(engine: Engine, amd64: RootfsImage, tmp_path: Path) -> None:
    target = load_target("amd64")
    client = engine.client()
    tag = image_tag(target, amd64)
    with suppress(NotFound):
        client.images.remove(tag, force=True)
    first_sink, second_sink = Recorder(), Recorder()
    with CommandLog(tmp_path / "first.log", first_sink) as log:
        started = time.monotonic()
        with runner_on(engine, amd64, log) as first:
            entered = time.monotonic() - started
            assert first.imported
            imported_id = client.images.get(tag).id
    images = len(client.images.list(all=True))
    print(f"import of {amd64.tarball.name} ({amd64.size / 1e6:.0f} MB) + container start: {entered:.1f} s")
    with CommandLog(tmp_path / "second.log", second_sink) as log:
        started = time.monotonic()
        with runner_on(engine, amd64, log) as second:
            reused = time.monotonic() - started
            assert not second.imported
    print(f"entry with the image cached: {reused:.1f} s")
    assert any(line.startswith("+ zstd --decompress") for line in first_sink.commands)
    assert second_sink.commands == []
    assert client.images.get(tag).id == imported_id
    assert len(client.images.list(all=True)) == images
    client.close()


@pytest.mark.parametrize("broken", ["not zstd", "not a tar"])
def test_a_broken_tarball_is_an_import_error(engine: Engine, tmp_path: Path, broken: str) -> None:
    tarball = tmp_path / "broken.tar.zst"
    garbage = os.urandom(64 * 1024)
    if broken == "not zstd":
        tarball.write_bytes(garbage)
    else:
        subprocess.run(["zstd", "--quiet", "-o", str(tarball)], input=garbage, check=True)
    recipe = Recipe(
        format=0, suite="test", variant=broken.replace(" ", "-"), debian_arch="amd64", packages=()
    )
    image = RootfsImage(tarball=tarball, recipe=recipe, cached=True, seconds=0.0)
    target = load_target("amd64")
    with (
        CommandLog(tmp_path / "build.log") as log,
        pytest.raises(ImageImportFailed) as failed,
        runner_on(engine, image, log),
    ):
        pytest.fail("entered a runner with a broken image")
    print(failed.value)
    assert "\n" not in str(failed.value)
    assert str(tarball) in str(failed.value)
    client = engine.client()
    with pytest.raises(NotFound):
        client.images.get(image_tag(target, image))
    client.close()
    assert builder_containers(engine) == []


def test_a_platform_the_engine_cannot_run_is_a_named_error(engine: Engine, tmp_path: Path) -> None:
    # Not a program of any architecture: what the engine sees when no binfmt handler knows one.
    image = made_rootfs(
        tmp_path / "foreign.tar.zst", {"bin/sleep": b"\x00not an executable\n"}, name="foreign"
    )
    target = load_target("arm64")
    with (
        CommandLog(tmp_path / "build.log") as log,
        pytest.raises(PlatformNotRunnable) as failed,
        runner_on(engine, image, log, target="arm64"),
    ):
        pytest.fail("started a container whose programs cannot run")
    message = str(failed.value)
    print(message)
    assert "\n" not in message
    assert "linux/arm64/v8" in message and "exec format error" in message
    assert target.binfmt_name in message
    assert builder_containers(engine) == []
    client = engine.client()
    attrs = client.images.get(image_tag(target, image)).attrs
    client.close()
    assert (attrs["Os"], attrs["Architecture"], attrs.get("Variant", "")) in {
        ("linux", "arm64", "v8"),
        ("linux", "arm64", ""),
    }


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["arm64", "armv7"])
def test_a_foreign_builder_runs_under_qemu(engine: Engine, tmp_path: Path, name: str, built: Build) -> None:
    image = cached_rootfs(name, built)
    target: Target = load_target(name)
    started = time.monotonic()
    with (
        CommandLog(tmp_path / "build.log") as log,
        runner_on(engine, image, log, target=name) as runner,
    ):
        print(f"{name}: import + container start {time.monotonic() - started:.1f} s")
        guest = guest_info(runner)
        listed = runner.run(["python3", "-c", "import os; print(len(os.listdir('/usr/lib/python3.11')))"])
        client = engine.client()
        attrs = client.images.get(runner.tag).attrs
        client.close()
    assert guest.machine == target.uname_machine
    assert int(listed) > 100  # a 32-bit guest's readdir on the host's file system works
    platform = platform_of(target)
    assert str(platform) == {"arm64": "linux/arm64/v8", "armv7": "linux/arm/v7"}[name]
    assert (attrs["Os"], attrs["Architecture"]) == ("linux", target.go_arch)
    assert attrs.get("Variant", "") in ("", platform.variant)


def test_a_docker_build_gives_the_same_binary_as_the_chroot_build(
    engine: Engine, built: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chroot = built("amd64")
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    options = BuildOptions(dist=tmp_path, backend="docker")
    report = build_target(load_target("amd64"), options=options, listener=Silent(), sink=QuietSink())
    assert report.sha256 == chroot.sha256
    assert "docker exec" in Path(report.log).read_text()
    assert builder_containers(engine) == []
