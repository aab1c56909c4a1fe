"""One target's build, stage by stage: host check → stripped API → root filesystem → wheel →
unpack → dependencies → PyInstaller → payload → artifact.

:func:`build_target` owns the order, the timing and the workspace; the stages' work lives in
:mod:`build.host`, :mod:`build.apimanifest`, :mod:`build.rootfs`, :mod:`build.binary` and
:mod:`build.payload`. The ``api`` stage strips the API manifest and schema bundle to the build's
profile (early, so that a bad profile fails before any work); they replace the wheel's in the
guest venv once the dependencies are installed, before PyInstaller. A
:class:`Listener` hears each stage start and finish (``invoke build`` draws its progress display
from it); every command and its output go to ``<cache>/logs/k3py-linux-<arch>.log`` and,
through the log's sink, to the console with ``--verbose``.

The workspace ``<cache>/work/<arch>/`` (a tmpfs for ``build_in_tmpfs`` targets) holds the
unpacked root (``root/``) and the job directory bind-mounted at ``/work`` inside it (wheel,
stripped API data, entry script, PyInstaller's work and output). It is emptied before each
build and removed after a successful one (kept with ``keep_work``, and after a failure for
inspection; a tmpfs goes in any case); a lock file keeps two builds of one target apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from build import apimanifest, binary, host, payload, rootfs
from build.errors import BuildError
from build.paths import DIST, ROOT, cache_dir
from build.report import BuildReport, write_checksum, write_lock
from build.runner import (
    Bind,
    ChrootRunner,
    CommandLog,
    Runner,
    Sink,
    call,
    remove_tree,
    terminate_as_interrupt,
    tmpfs,
)
from build.targets import Target
from k3py.api.profiles import Profile
from k3py.util.locks import exclusive

STAGES = {
    "host": "check the host",
    "api": "API manifest, schemas",
    "rootfs": "root filesystem",
    "wheel": "k3py wheel",
    "unpack": "unpack the root",
    "dependencies": "dependencies",
    "pyinstaller": "PyInstaller",
    "payload": "runtime payload",
    "artifact": "binary, lock, report",
}


class Listener(Protocol):
    """Hears the stages of a target's build (the progress display)."""

    def stage_started(self, target: Target, stage: str) -> None: ...

    def stage_finished(self, target: Target, stage: str, seconds: float, note: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """How to build; the same for every target of one ``invoke build``."""

    dist: Path = DIST
    cache: Path = field(default_factory=cache_dir)
    refresh_rootfs: bool = False
    keep_work: bool = False
    backend: str = "auto"
    """Where commands run: ``chroot``, ``docker`` (a reachable engine), ``auto`` (docker if one answers)."""
    profile: Profile = field(default_factory=Profile)
    """Which APIs the binary serves: its manifest and schema bundle are stripped to them."""


@dataclass
class _Stages:
    """Times each stage and tells the listener; ``note`` is what the display shows when done."""

    target: Target
    listener: Listener
    seconds: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.note = ""
        self.listener.stage_started(self.target, name)
        started = time.monotonic()
        yield
        self.seconds[name] = round(time.monotonic() - started, 2)
        self.listener.stage_finished(self.target, name, self.seconds[name], self.note)


def build_target(target: Target, *, options: BuildOptions, listener: Listener, sink: Sink) -> BuildReport:
    """Build ``dist/k3py-linux-<arch>`` and its companions for ``target``; return the report."""
    log_path = options.cache / "logs" / f"{target.artifact_name}.log"
    log_path.unlink(missing_ok=True)
    log = CommandLog(log_path, sink)
    try:
        # The lock waits for another build of the same target.
        with terminate_as_interrupt(), exclusive(options.cache / "work" / f"{target.name}.lock"):
            return _build(target, options, listener, log)
    finally:
        log.close()


def _build(target: Target, options: BuildOptions, listener: Listener, log: CommandLog) -> BuildReport:
    started = time.monotonic()
    stages = _Stages(target, listener)
    with stages.stage("host"):
        host.require_ready([target])
        commit, epoch = _git_state(log)
        stages.note = f"commit {commit[:12]}"
    with stages.stage("api"):
        api = apimanifest.strip(options.profile, apimanifest.output_dir(options.cache, options.profile))
        stages.note = (
            f"{apimanifest.describe(options.profile)}: {len(api.served)} of "
            f"{len(api.selection.manifest.groupversions)} group-versions, schemas "
            f"{api.before.gzip_bytes / 1e3:.0f} → {api.after.gzip_bytes / 1e3:.0f} kB"
        )
    with stages.stage("rootfs"):
        image = rootfs.ensure_rootfs(target, cache=options.cache, log=log, refresh=options.refresh_rootfs)
        stages.note = f"{'cached' if image.cached else 'bootstrapped'} {image.tarball.name}"
    workspace = options.cache / "work" / target.name
    with _workspace(workspace, target, log, keep=options.keep_work):
        root, job = workspace / "root", workspace / "job"
        with stages.stage("wheel"):
            wheel = binary.host_wheel(job / "wheels", log=log, source_date_epoch=epoch)
            stages.note = wheel.name
        with stages.stage("unpack"):
            rootfs.unpack(image, root, log)
            binary.trust_host_cas(root)
        with _pip_cache(options.cache / "pip" / target.name, workspace, target, log) as pip_cache:
            binds = [Bind(job, binary.GUEST_WORK), Bind(pip_cache, binary.GUEST_PIP_CACHE)]
            with _runner(options.backend, target, image, root, binds, log) as runner:
                with stages.stage("dependencies"):
                    guest = binary.guest_info(runner)
                    runtime = binary.install_dependencies(runner, wheel.name)
                    binary.install_stripped_api(runner, job, api)
                    stages.note = (
                        f"python {guest.python} ({guest.machine}), {len(runtime)} packages, stripped API"
                    )
                with stages.stage("pyinstaller"):
                    tools = binary.install_pyinstaller(runner)
                    built = binary.run_pyinstaller(runner, job, target, source_date_epoch=epoch)
                    stages.note = f"{built.stat().st_size / 1e6:.1f} MB"
        with stages.stage("payload"):
            # The payload's times are fixed, not the commit's: its bytes then depend on the
            # packages alone, and the cached archive serves every commit until they change.
            fixed = payload.EPOCH
            collected = payload.collect(root, workspace / "payload", target, epoch=fixed, log=log)
            compressed = payload.compress(collected, options.cache, target, epoch=fixed, log=log)
            python_bytes, unpacked_bytes = built.stat().st_size, collected.unpacked_bytes
            stages.note = f"{compressed.size / 1e6:.1f} MB xz{' (cached)' if compressed.cached else ''}"
        with stages.stage("artifact"):
            artifact = _publish(built, compressed, options.dist / target.artifact_name)
            digest = write_checksum(artifact)
            lock = artifact.with_name(artifact.name + ".lock")
            write_lock(lock, artifact=target.artifact_name, runtime=runtime, tools=tools)
            stages.note = f"{artifact.relative_to(ROOT) if artifact.is_relative_to(ROOT) else artifact}"
    report = BuildReport(
        target=target.name,
        artifact=str(artifact),
        size_bytes=artifact.stat().st_size,
        python_bytes=python_bytes,
        payload_bytes=compressed.size,
        payload_unpacked_bytes=unpacked_bytes,
        payload_sha256=compressed.sha256,
        components=_components(collected),
        sha256=digest,
        build_seconds=round(time.monotonic() - started, 2),
        stage_seconds=stages.seconds,
        rootfs_cached=image.cached,
        rootfs_recipe=image.recipe.digest,
        rootfs_tarball=str(image.tarball),
        rootfs_tarball_bytes=image.size,
        guest_python=guest.python,
        guest_machine=guest.machine,
        guest_debian=guest.debian,
        k3py_version=runtime.get("k3py", "?"),
        runtime=runtime,
        build_tools=tools,
        source_date_epoch=epoch,
        git_commit=commit,
        log=str(log.path),
        api_profile=asdict(api.build),
        api_groupversions=len(api.served),
        api_schema_bytes_before=api.before.gzip_bytes,
        api_schema_bytes_after=api.after.gzip_bytes,
        api_definitions_before=api.before.definitions,
        api_definitions_after=api.after.definitions,
    )
    report.write(artifact.with_name(artifact.name + ".report.json"))
    return report


BACKENDS = ("auto", "chroot", "docker")


class UnknownBackend(BuildError):
    """``--backend`` names no runner."""


def _runner(
    backend: str, target: Target, image: rootfs.RootfsImage, root: Path, binds: list[Bind], log: CommandLog
) -> AbstractContextManager[Runner]:
    """The runner ``backend`` names: a chroot of the unpacked ``root``, or a container of ``image``.

    The unpacked root serves the payload stage whichever runs the commands; a container gets the
    CA bundle copied into it bound in at the same path.
    """
    if backend not in BACKENDS:
        raise UnknownBackend(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "chroot":
        return ChrootRunner(root, log, binds=binds)
    from build import docker_runner  # the Docker SDK is needed only here

    if backend == "auto" and not docker_runner.docker_available():
        log.note("backend: no Docker engine answers, using chroot")
        return ChrootRunner(root, log, binds=binds)
    ca_bundle = Bind(root / binary.GUEST_CA_BUNDLE.lstrip("/"), binary.GUEST_CA_BUNDLE)
    return docker_runner.DockerRunner(target=target, image=image, log=log, binds=[*binds, ca_bundle])


def _git_state(log: CommandLog) -> tuple[str, int]:
    """The commit being built (``+dirty`` if the tree has changes) and its time (SOURCE_DATE_EPOCH)."""
    git = ["git", "-C", str(ROOT)]
    commit = call([*git, "rev-parse", "HEAD"], log=log, check=False).strip() or "unknown"
    epoch_text = call([*git, "log", "-1", "--format=%ct"], log=log, check=False).strip()
    dirty = call([*git, "status", "--porcelain", "--untracked-files=no"], log=log, check=False).strip()
    epoch = int(epoch_text) if epoch_text.isdigit() else 0
    return (f"{commit}+dirty" if dirty else commit), epoch


@contextmanager
def _workspace(path: Path, target: Target, log: CommandLog, *, keep: bool) -> Iterator[Path]:
    """An empty workspace (a tmpfs for ``build_in_tmpfs`` targets); removed afterwards unless ``keep``."""
    remove_tree(path, log)
    if target.build_in_tmpfs:
        # A tmpfs cannot outlive the build, so ``keep`` does not apply.
        with tmpfs(path, size=rootfs.TMPFS_SIZE, log=log):
            yield path
        path.rmdir()
        return
    path.mkdir(parents=True)
    yield path
    if not keep:
        remove_tree(path, log)


@contextmanager
def _pip_cache(persistent: Path, workspace: Path, target: Target, log: CommandLog) -> Iterator[Path]:
    """pip's cache for the guest: the persistent one, or a copy in the tmpfs for tmpfs targets
    (a 32-bit guest listing a directory on the host's ext4 can fail with EOVERFLOW)."""
    persistent.mkdir(parents=True, exist_ok=True)
    if not target.build_in_tmpfs:
        yield persistent
        return
    staged = workspace / "pip-cache"
    call(["cp", "-a", f"{persistent}/.", staged], log=log)
    yield staged
    call(["cp", "-a", f"{staged}/.", persistent], log=log)


def _components(collected: payload.Collected) -> dict[str, dict[str, object]]:
    """What the payload holds, for the report: name → path, package, version, bytes unpacked."""
    entries = collected.manifest["components"]
    assert isinstance(entries, list)
    keys = ("path", "package", "version", "bytes")
    return {str(entry["name"]): {key: entry[key] for key in keys} for entry in entries}


def _publish(built: Path, compressed: payload.Compressed, artifact: Path) -> Path:
    """Write ``artifact`` (PyInstaller's executable with the payload attached) atomically, executable."""
    artifact.parent.mkdir(parents=True, exist_ok=True)
    partial = artifact.with_name(artifact.name + ".partial")
    payload.attach(built, compressed, partial)
    partial.chmod(0o755)
    partial.replace(artifact)
    return artifact
