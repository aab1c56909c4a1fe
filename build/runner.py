"""Run the build's commands: on the host, or inside a target root filesystem through chroot.

Every command of the build goes through :func:`call`: it is an argument list (never a shell
string), it is echoed as ``+ cmd`` to the build log (and to the console with ``--verbose``), its
output is streamed to the log line by line, and a non-zero exit raises :class:`CommandFailed`
naming the command, its exit code, the last lines it printed and the full log.

:class:`ChrootRunner` runs commands inside a root filesystem. Entering it mounts ``/proc``,
``/sys``, ``/dev`` and the requested bind mounts (work dir, caches) under the root; leaving it,
on success, failure or Ctrl-C alike, kills what still runs inside, unmounts everything in
reverse order (SIGINT held back until done) and checks ``/proc/self/mountinfo`` that nothing
stays mounted. For a foreign root the kernel runs its programs under qemu-user-static through
binfmt_misc (``invoke deps`` registers the handlers), so the runner itself is the same for
every architecture.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, TextIO

from build.errors import BuildError

Argv = Sequence[str | os.PathLike[str]]
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TAIL_LINES = 15


class CommandFailed(BuildError):
    """A build command ran and exited non-zero (or could not be started)."""

    def __init__(self, command: Sequence[str], returncode: int, tail: Sequence[str], log: Path) -> None:
        shown = "\n    ".join(tail)
        detail = f"\n  last output:\n    {shown}" if tail else ""
        super().__init__(
            f"command failed with exit code {returncode}: {shlex.join(command)}{detail}\n  full log: {log}"
        )
        self.command = tuple(command)
        self.returncode = returncode


class MountLeak(BuildError):
    """Something is still mounted under a root filesystem after its runner was torn down."""


class Sink(Protocol):
    """Where the echo of commands and their output go besides the log file (the console)."""

    def command(self, line: str) -> None: ...

    def output(self, line: str) -> None: ...


class QuietSink:
    """Shows nothing: everything is in the log file."""

    def command(self, line: str) -> None:
        pass

    def output(self, line: str) -> None:
        pass


class CommandLog:
    """The build log of one target: every ``+ cmd`` and every output line, forwarded to a sink."""

    def __init__(self, path: Path, sink: Sink | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.sink: Sink = sink or QuietSink()
        self._file: TextIO = path.open("a", encoding="utf-8")

    def command(self, argv: Sequence[str]) -> None:
        line = f"+ {shlex.join(argv)}"
        self._file.write(line + "\n")
        self._file.flush()
        self.sink.command(line)

    def output(self, line: str) -> None:
        self._file.write(line + "\n")
        self._file.flush()  # so that `tail -f` on the log follows a long build
        self.sink.output(line)

    def note(self, text: str) -> None:
        """A line of the build's own (not a command's) in the log."""
        self._file.write(f"# {text}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CommandLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def call(
    argv: Argv,
    *,
    log: CommandLog,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> str:
    """Run ``argv`` to completion, streaming its output to ``log``; return that output.

    ``env`` replaces the environment when given. A child still running when this function is
    interrupted (Ctrl-C, an error in a sink) is terminated, then killed, before the exception
    propagates.
    """
    args = [os.fspath(part) for part in argv]
    log.command(args)
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        child = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise CommandFailed(args, 127, [f"cannot run {args[0]}: {exc.strerror}"], log.path) from exc
    with child:
        try:
            assert child.stdout is not None
            for raw in child.stdout:
                line = raw.rstrip("\n")
                lines.append(line)
                tail.append(line)
                log.output(line)
            returncode = child.wait()
        except BaseException:
            _stop(child)
            raise
    if check and returncode != 0:
        raise CommandFailed(args, returncode, list(tail), log.path)
    return "\n".join(lines)


def _stop(child: subprocess.Popen[str]) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class Runner(Protocol):
    """Runs commands for one target (chroot today; a docker backend later)."""

    def run(self, argv: Argv, *, env: Mapping[str, str] | None = None, cwd: str = "/") -> str: ...


@dataclass(frozen=True)
class Bind:
    """A host directory made visible inside the root filesystem at ``guest`` (absolute)."""

    host: Path
    guest: str


def mount_points_under(root: Path) -> list[Path]:
    """Mount points at or below ``root`` according to ``/proc/self/mountinfo``, deepest first."""
    base = os.path.realpath(root)
    found: list[Path] = []
    with Path("/proc/self/mountinfo").open(encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = _unescape(line.split()[4])
            if point == base or point.startswith(base.rstrip("/") + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while the block runs, so ``kill`` tears down like Ctrl-C.

    Only the main thread can set handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (teardown must finish); deliver them afterwards."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def unmount_all(root: Path, log: CommandLog) -> None:
    """Unmount everything at or below ``root``; lazily as a last resort; raise if any remains."""
    for attempt in range(3):
        points = mount_points_under(root)
        if not points:
            return
        for point in points:
            if point in mount_points_under(root):
                call(["umount", point], log=log, check=False)
        if attempt:
            time.sleep(0.5)
    for point in mount_points_under(root):
        call(["umount", "--lazy", point], log=log, check=False)
    left = mount_points_under(root)
    if left:
        raise MountLeak(f"still mounted after teardown: {', '.join(map(str, left))} (unmount them by hand)")


def remove_tree(path: Path, log: CommandLog) -> None:
    """Delete ``path`` recursively, but only once nothing is mounted below it.

    ``shutil.rmtree`` would walk into a bind mount of the host's ``/dev`` and delete the host's
    device nodes, so the unmount is checked first and a leak stops the deletion.
    """
    if not path.exists():
        return
    unmount_all(path, log)
    shutil.rmtree(path)


def kill_processes_in(root: Path, log: CommandLog) -> None:
    """SIGKILL every process whose root directory is ``root`` (daemons a build left behind)."""
    base = os.path.realpath(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if str((entry / "root").readlink()) != base:
                continue
            os.kill(int(entry.name), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        log.note(f"killed process {entry.name} left running in {base}")


@dataclass
class ChrootRunner:
    """Commands inside ``root`` through ``chroot``; use as a context manager (mounts live inside).

    ``system_mounts`` mounts ``/proc``, ``/sys`` (read-only) and ``/dev`` (recursive bind);
    debootstrap's second stage mounts its own and runs with it off.
    """

    root: Path
    log: CommandLog
    binds: Sequence[Bind] = ()
    system_mounts: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    _mounted: list[Path] = field(default_factory=list, init=False)

    def __enter__(self) -> ChrootRunner:
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._teardown()

    def run(self, argv: Argv, *, env: Mapping[str, str] | None = None, cwd: str = "/") -> str:
        """Run ``argv`` inside the root with a clean environment (+ ``env``) in ``cwd``."""
        variables = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8", **self.env, **(env or {})}
        pairs = [f"{name}={value}" for name, value in variables.items()]
        command = [
            "chroot",
            str(self.root),
            "/usr/bin/env",
            "-i",
            "-C",
            cwd,
            *pairs,
            *(os.fspath(part) for part in argv),
        ]
        return call(command, log=self.log)

    def _setup(self) -> None:
        if mount_points_under(self.root):
            raise MountLeak(f"{self.root} already has mounts under it: is another build using it?")
        resolv = Path("/etc/resolv.conf")
        if resolv.exists():
            target = self.root / "etc" / "resolv.conf"
            target.unlink(missing_ok=True)
            shutil.copyfile(resolv, target)
        if self.system_mounts:
            self._mount(["-t", "proc", "proc"], "proc")
            self._mount(["-t", "sysfs", "-o", "ro", "sysfs"], "sys")
            self._mount(["--rbind", "/dev"], "dev")
            call(["mount", "--make-rslave", self.root / "dev"], log=self.log)
        for bind in self.binds:
            bind.host.mkdir(parents=True, exist_ok=True)
            self._mount(["--bind", str(bind.host)], bind.guest)

    def _mount(self, options: list[str], guest: str) -> None:
        point = self.root / guest.lstrip("/")
        point.mkdir(parents=True, exist_ok=True)
        call(["mount", *options, point], log=self.log)
        self._mounted.append(point)

    def _teardown(self) -> None:
        with sigint_held():
            kill_processes_in(self.root, self.log)
            for point in reversed(self._mounted):
                recursive = ["--recursive"] if point == self.root / "dev" else []
                call(["umount", *recursive, point], log=self.log, check=False)
            self._mounted.clear()
            unmount_all(self.root, self.log)


class HostRunner:
    """Commands on the build host, with the host's environment (+ ``env``)."""

    def __init__(self, log: CommandLog) -> None:
        self.log = log

    def run(self, argv: Argv, *, env: Mapping[str, str] | None = None, cwd: str = "/") -> str:
        return call(argv, log=self.log, env={**os.environ, **(env or {})}, cwd=Path(cwd))


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str, log: CommandLog) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``path`` for the block (its contents vanish afterwards)."""
    path.mkdir(parents=True, exist_ok=True)
    unmount_all(path, log)
    call(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "k3py-build", path], log=log)
    try:
        yield path
    finally:
        with sigint_held():
            unmount_all(path, log)
