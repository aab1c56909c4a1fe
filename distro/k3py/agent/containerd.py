"""containerd for the node agent: its files, its config, the supervised process and the clean-up.

- :class:`RuntimeFiles` finds the binaries: the unpacked payload of a release binary, else the
  host's Debian packages (``containerd``, ``runc``, ``containernetworking-plugins``,
  ``catatonit``), with an error naming the package that is missing. From source, the pause
  image is built from the host's catatonit (:mod:`k3py.images.pause`) under ``/run/k3py``,
  with the name the payload's carries (:data:`PAUSE_IMAGE`).
- :class:`ContainerdPaths` derives every path from the data directory. The persistent root is
  ``<data-dir>/agent/containerd``; the state (sockets, task bundles, runc's state) is on /run,
  which a reboot empties, in a short directory named by a hash of the data directory so that the
  socket path stays under the 107 bytes a unix socket allows.
- :class:`Containerd` writes ``config.toml`` (CRI on, overlayfs, cgroupfs, the pause image as
  ``sandbox_image``, the CNI directories, the registry hosts directory ``certs.d`` beside it,
  the streaming server on 127.0.0.1 with a random port,
  ``restrict_oom_score_adj`` when this process lacks ``CAP_SYS_RESOURCE``), starts containerd in
  its own session (a Ctrl-C of the agent's terminal does not reach it) in the caller's network
  namespace, waits for a CRI Version answer, restarts it with back-off if it dies, and stops it
  by pid. Shims, and so the pods, outlive containerd by design.
- :func:`kill_all` (:mod:`k3py.agent.containerd_reset`) is the reset: containerd and the shims
  started for this socket with their containers, the cgroups runc made, the mounts left under
  root and state, the shim sockets and the state directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from k3py.agent.containerd_reset import STOP_TIMEOUT, is_containerd_for, processes, terminate
from k3py.agent.containerd_reset import kill_all as kill_all  # part of this module's API
from k3py.agent.cri import CriError, Runtime
from k3py.agent.errors import ContainerdError as ContainerdError  # part of this module's API
from k3py.config.model import RUN_DIR
from k3py.images import pause
from k3py.payload import Unpacked

log = logging.getLogger(__name__)

PAUSE_IMAGE: Final = pause.reference()
"""k3py's pause image (containerd's ``sandbox_image``) for the catatonit Debian 12 ships."""
STATE_BASE: Final = RUN_DIR
HOST_PAUSE_ARCHIVE: Final = STATE_BASE / "images" / "pause.tar"
"""Running from source: the pause image built from the host's catatonit (rebuilt after a reboot)."""
START_TIMEOUT: Final = 60.0
BACKOFF_MAX: Final = 30.0
STABLE_AFTER: Final = 60.0
"""A containerd that ran this long before dying restarts after the shortest back-off."""
MAX_SOCKET_PATH: Final = 100
DISABLED_PLUGINS: Final = (
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
)
CAP_SYS_RESOURCE: Final = 24
_HOST_BIN_DIRS: Final = (Path("/usr/local/bin"), Path("/usr/bin"))
_HOST_SBIN_DIRS: Final = (Path("/usr/local/sbin"), Path("/usr/sbin"), Path("/usr/bin"))
_HOST_CNI_DIRS: Final = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))


@dataclass(frozen=True)
class RuntimeFiles:
    """Where the runtime's programs are: a payload's ``bin/``, ``cni/``, ``lib/``, or the host's."""

    bin_dir: Path
    cni_bin_dir: Path
    lib_dir: Path | None
    pause_archive: Path | None
    runc: Path | None = None
    """runc when it is not in ``bin_dir`` (Debian installs it in /usr/sbin)."""
    catatonit: Path | None = None
    """The host's catatonit, to build the pause image from when there is no ``pause_archive``."""

    @property
    def containerd(self) -> Path:
        return self.bin_dir / "containerd"

    @property
    def runc_binary(self) -> Path:
        return self.runc if self.runc is not None else self.bin_dir / "runc"

    @classmethod
    def find(cls, unpacked: Unpacked | None) -> RuntimeFiles:
        """The payload's files if there is one, else the host's packages."""
        if unpacked is not None:
            lib = unpacked.path / "lib"
            archive = unpacked.path / "images" / "pause.tar"
            files = cls(
                bin_dir=unpacked.path / "bin",
                cni_bin_dir=unpacked.path / "cni",
                lib_dir=lib if lib.is_dir() else None,
                pause_archive=archive if archive.is_file() else None,
                catatonit=unpacked.path / "bin" / "catatonit",
            )
            for program in ("containerd", "containerd-shim-runc-v2", "runc"):
                if not (files.bin_dir / program).is_file():
                    raise ContainerdError(
                        f"the payload in {unpacked.path} has no bin/{program}: remove that directory "
                        "and start again to unpack it afresh"
                    )
            return files
        containerd = _first("containerd", _HOST_BIN_DIRS, package="containerd")
        _first("containerd-shim-runc-v2", (containerd.parent,), package="containerd")
        runc = _first("runc", _HOST_SBIN_DIRS, package="runc")
        cni = next((d for d in _HOST_CNI_DIRS if (d / "loopback").is_file()), None)
        if cni is None:
            raise ContainerdError(
                "no CNI plugins in /usr/lib/cni or /opt/cni/bin: install the Debian package "
                "containernetworking-plugins (or run a k3py release binary, which carries them)"
            )
        catatonit = _first("catatonit", _HOST_BIN_DIRS, package="catatonit")
        return cls(
            bin_dir=containerd.parent,
            cni_bin_dir=cni,
            lib_dir=None,
            pause_archive=_host_pause_archive(catatonit, HOST_PAUSE_ARCHIVE),
            runc=runc,
            catatonit=catatonit,
        )


def _host_pause_archive(catatonit: Path, archive: Path) -> Path:
    """The pause image built from the host's catatonit (again only when catatonit changed)."""
    if not archive.is_file() or archive.stat().st_mtime < catatonit.stat().st_mtime:
        archive.parent.mkdir(parents=True, exist_ok=True)
        try:
            pause.write_host_pause_image(catatonit, archive)
        except FileNotFoundError:  # another agent wrote the same bytes at the same moment
            if not archive.is_file():
                raise
    return archive


def _first(program: str, directories: tuple[Path, ...], *, package: str) -> Path:
    for directory in directories:
        if (directory / program).is_file() and os.access(directory / program, os.X_OK):
            return directory / program
    where = ", ".join(str(d) for d in directories)
    raise ContainerdError(
        f"{program} is not installed (looked in {where}): install the Debian package {package}, "
        "or run a k3py release binary, which carries it"
    )


@dataclass(frozen=True)
class PauseArchive:
    """The pause image's OCI archive and the name it carries (containerd's ``sandbox_image``)."""

    path: Path
    reference: str


def pause_archive(files: RuntimeFiles, directory: Path) -> PauseArchive:
    """The payload's pause image, or one built from the host's catatonit into ``directory``."""
    if files.pause_archive is not None:
        names = archive_names(files.pause_archive)
        if not names:
            raise ContainerdError(f"{files.pause_archive} names no image (io.containerd.image.name)")
        return PauseArchive(files.pause_archive, names[0])
    if files.catatonit is None:
        raise ContainerdError("no pause image and no catatonit to build one: install the package catatonit")
    written = pause.write_host_pause_image(files.catatonit, directory / "pause.tar")
    return PauseArchive(written.path, written.reference)


def archive_names(archive: Path) -> list[str]:
    """The image names in an OCI archive's ``index.json``."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            return []
        index = json.load(member)
    return [
        str(m["annotations"]["io.containerd.image.name"])
        for m in index.get("manifests", [])
        if "io.containerd.image.name" in (m.get("annotations") or {})
    ]


@dataclass(frozen=True)
class ContainerdPaths:
    """Every path of one agent's containerd."""

    root: Path
    state: Path
    socket: Path
    config: Path
    cni_conf_dir: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> ContainerdPaths:
        data_dir = data_dir.resolve()  # one containerd per data directory, however it is spelt
        tag = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
        state = STATE_BASE / f"containerd-{tag}"
        return cls(
            root=data_dir / "agent" / "containerd",
            state=state,
            socket=state / "containerd.sock",
            config=data_dir / "agent" / "etc" / "containerd" / "config.toml",
            cni_conf_dir=data_dir / "agent" / "etc" / "cni" / "net.d",
        )

    @property
    def certs_dir(self) -> Path:
        """The CRI registry's ``config_path``: a ``hosts.toml`` per registry (``registry_hosts``)."""
        return self.config.parent / "certs.d"

    @property
    def ttrpc_socket(self) -> Path:
        return self.state / "containerd.sock.ttrpc"

    @property
    def runc_root(self) -> Path:
        return self.state / "runc"


def has_capability(bit: int) -> bool:
    """Whether this process's effective capability set holds ``bit`` (/proc/self/status CapEff)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def _apparmor_enabled() -> bool:
    try:
        enabled = Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False
    return enabled and shutil.which("apparmor_parser") is not None


def runtime_environment(files: RuntimeFiles) -> dict[str, str]:
    """containerd's environment, which its shims and runc inherit.

    ``PATH`` starts with ``bin_dir`` (containerd finds ``containerd-shim-runc-v2`` there) and
    ``LD_LIBRARY_PATH`` is the payload's ``lib/`` (runc's libseccomp). A release binary's
    bootloader points ``LD_LIBRARY_PATH`` at its own bundled libraries: that value is not passed
    on, the user's original (``LD_LIBRARY_PATH_ORIG``) is.
    """
    env = dict(os.environ)
    original = env.pop("LD_LIBRARY_PATH_ORIG", None)
    if getattr(sys, "frozen", False):
        env.pop("LD_LIBRARY_PATH", None)
        if original:
            env["LD_LIBRARY_PATH"] = original
    env["PATH"] = (
        f"{files.bin_dir}:{env.get('PATH') or '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}"
    )
    if files.lib_dir is not None:
        inherited = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = f"{files.lib_dir}:{inherited}" if inherited else str(files.lib_dir)
    return env


def render_config(
    paths: ContainerdPaths,
    files: RuntimeFiles,
    *,
    sandbox_image: str,
    restrict_oom_score_adj: bool,
    apparmor: bool,
) -> str:
    """containerd's ``config.toml`` (version 2) for the agent."""
    q = json.dumps  # a JSON string is a TOML basic string
    cri = '[plugins."io.containerd.grpc.v1.cri"'
    lines = [
        "# Written by k3py at every agent start: edits here do not last.",
        "version = 2",
        f"root = {q(str(paths.root))}",
        f"state = {q(str(paths.state))}",
        f"disabled_plugins = [{', '.join(q(p) for p in DISABLED_PLUGINS)}]",
        "",
        "[grpc]",
        f"  address = {q(str(paths.socket))}",
        "  uid = 0",
        "  gid = 0",
        "",
        "[ttrpc]",
        f"  address = {q(str(paths.ttrpc_socket))}",
        "",
        '[plugins."io.containerd.internal.v1.opt"]',
        f"  path = {q(str(paths.root / 'opt'))}",
        "",
        f"{cri}]",
        f"  sandbox_image = {q(sandbox_image)}",
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "0"',
        "  enable_selinux = false",
        f"  disable_apparmor = {'false' if apparmor else 'true'}",
        "  # runc cannot lower oom_score_adj below containerd's own without CAP_SYS_RESOURCE",
        f"  restrict_oom_score_adj = {'true' if restrict_oom_score_adj else 'false'}",
        "  enable_unprivileged_ports = true",
        "  enable_unprivileged_icmp = true",
        f"  {cri}.containerd]",
        '    snapshotter = "overlayfs"',
        '    default_runtime_name = "runc"',
        "    discard_unpacked_layers = false",
        f"    {cri}.containerd.runtimes.runc]",
        '      runtime_type = "io.containerd.runc.v2"',
        f"      {cri}.containerd.runtimes.runc.options]",
        "        SystemdCgroup = false",
        f"        BinaryName = {q(str(files.runc_binary))}",
        f"        Root = {q(str(paths.runc_root))}",
        f"  {cri}.cni]",
        f"    bin_dir = {q(str(files.cni_bin_dir))}",
        f"    conf_dir = {q(str(paths.cni_conf_dir))}",
        "  # mirrors and the embedded registry: hosts.toml files, read at every pull",
        f"  {cri}.registry]",
        f"    config_path = {q(str(paths.certs_dir))}",
        "",
    ]
    return "\n".join(lines)


class Containerd:
    """One supervised containerd process."""

    def __init__(
        self, paths: ContainerdPaths, files: RuntimeFiles, *, sandbox_image: str, log_path: Path
    ) -> None:
        self.paths = paths
        self.files = files
        self.sandbox_image = sandbox_image
        self.log_path = log_path
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._started_at = 0.0
        self._stopping = False

    def _stop_requested(self) -> bool:
        return self._stopping

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def write_config(self) -> None:
        """Write ``config.toml`` and create the directories it names."""
        if len(str(self.paths.socket).encode()) >= MAX_SOCKET_PATH:
            raise ContainerdError(f"the socket path {self.paths.socket} is too long for a unix socket")
        for directory in (
            self.paths.root,
            self.paths.state,
            self.paths.cni_conf_dir,
            self.paths.config.parent,
            self.paths.certs_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        for private in (self.paths.root, self.paths.state):
            private.chmod(0o711)
        text = render_config(
            self.paths,
            self.files,
            sandbox_image=self.sandbox_image,
            restrict_oom_score_adj=not has_capability(CAP_SYS_RESOURCE),
            apparmor=_apparmor_enabled(),
        )
        partial = self.paths.config.with_name(self.paths.config.name + ".partial")
        partial.write_text(text)
        partial.replace(self.paths.config)

    async def start(self) -> None:
        """Write the config, start containerd and wait until it answers a CRI Version call."""
        self._stopping = False
        await self._start()

    async def _start(self) -> None:
        self.write_config()
        for pid in processes(lambda args: is_containerd_for(args, self.paths.config)):
            log.warning("Stopping a containerd (pid %d) left running with %s", pid, self.paths.config)
            await asyncio.to_thread(terminate, pid, STOP_TIMEOUT)
        command = [str(self.files.containerd), "--config", str(self.paths.config)]
        env = runtime_environment(self.files)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info("+ %s (log: %s)", " ".join(command), self.log_path)
        with self.log_path.open("ab") as output:
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    env=env,
                    start_new_session=True,  # its own session: the terminal's Ctrl-C is not for it
                )
            except OSError as exc:
                raise ContainerdError(f"cannot start {command[0]}: {exc.strerror}") from None
        self._started_at = time.monotonic()
        try:
            await self._wait_ready(self._process)
        except ContainerdError:
            if self._process.returncode is None:  # hung: kill it, so that a restart can begin afresh
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._process.pid, signal.SIGKILL)
                await self._process.wait()
            raise
        log.info("containerd is ready (pid %d, socket %s)", self._process.pid, self.paths.socket)

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> None:
        runtime = Runtime(self.paths.socket, timeout=2.0)
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        try:
            while time.monotonic() < deadline:
                if process.returncode is not None:
                    raise ContainerdError(
                        f"containerd exited with code {process.returncode} while starting: "
                        f"{_tail(self.log_path)}"
                    )
                if self.paths.socket.exists():
                    try:
                        await runtime.version()
                        return
                    except CriError as exc:
                        last = exc
                await asyncio.sleep(0.05)
        finally:
            await runtime.close()
        raise ContainerdError(
            f"containerd did not answer on {self.paths.socket} within {START_TIMEOUT:.0f}s ({last}); "
            f"see {self.log_path}"
        )

    async def supervise(self) -> None:
        """Run until :meth:`stop`: restart containerd whenever it exits, with back-off."""
        backoff = 1.0
        while True:
            process = self._process
            if process is None:
                raise ContainerdError("supervise() needs a started containerd")
            code = await process.wait()
            if self._stopping:
                return
            if time.monotonic() - self._started_at > STABLE_AFTER:
                backoff = 1.0
            log.error(
                "containerd (pid %d) exited with code %s; restarting in %.0fs. Last log lines: %s",
                process.pid,
                code,
                backoff,
                _tail(self.log_path),
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            if self._stop_requested():
                return
            try:
                await self._start()
                self.restarts += 1
            except ContainerdError as exc:
                log.error("containerd did not come back: %s", exc)
                if self._process is process:  # could not even spawn: wait out the back-off again
                    await asyncio.sleep(backoff)
            if self._stop_requested():  # stop() came while it was starting
                await self.stop()
                return

    async def stop(self, *, leave_running: bool = True) -> None:
        """SIGTERM containerd by pid (SIGKILL after a grace period); pods stay unless told otherwise."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            log.info("Stopping containerd (pid %d)", process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning(
                    "containerd (pid %d) ignored SIGTERM for %.0fs: killing it", process.pid, STOP_TIMEOUT
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                await process.wait()
        if not leave_running:
            for line in await asyncio.to_thread(kill_all, self.paths):
                log.info("%s", line)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_bytes()[-8192:].decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return " | ".join(text.strip().splitlines()[-lines:]) or f"(empty log {path})"
