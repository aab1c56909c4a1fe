"""Run the build's commands in a Docker container of the target's builder root filesystem.

:class:`DockerRunner` is the second :class:`~build.runner.Runner`, for hosts where a Docker engine
answers (:func:`docker_available`; ``$DOCKER_HOST`` or the default socket). It runs the same
commands as :class:`~build.runner.ChrootRunner`, in the same root filesystem:

1. **Image.** The cached tarball of :mod:`build.rootfs` is imported once as
   ``k3py-builder:<target>-<recipe digest, 16 hex>`` with the target's platform (``zstd -d``
   streamed into the engine's import: no second copy on disk) and kept as a cache. Engines older
   than 24.0 ignore the platform of an import and record their own; the image's configuration is
   then rewritten by a ``docker load`` of a configuration-only archive that reuses the imported
   layer. Either way the recorded platform is checked.
2. **Container.** Entering creates and starts one container of that image (``sleep infinity``,
   the target's platform, host network so pip reaches PyPI as the host does, the
   :class:`~build.runner.Bind` mounts, label :data:`LABEL` so leftovers are found with
   ``docker ps -a --filter label=k3py.builder``). A foreign platform's programs run under the
   engine host's qemu-user-static binfmt_misc handlers, as in a chroot.
3. **Commands.** :meth:`DockerRunner.run` is ``docker exec`` with an argument list, environment
   and working directory; its output (stderr merged into stdout in the container, as the engine
   would not keep their order) goes to the :class:`~build.runner.CommandLog` line by line and a
   non-zero exit raises :class:`~build.runner.CommandFailed`, as :func:`~build.runner.call`.
4. **Leaving**, on success, failure or Ctrl-C alike, force-removes the container (SIGINT held back
   until done); the image stays.

Bind mounts name directories on the engine's host: a remote ``$DOCKER_HOST`` only suits a build
whose work directories are on that host.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import socket
import subprocess
import tarfile
import time
import urllib.parse
from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.models.images import Image
from docker.types import Mount

from build.errors import BuildError, HostNotReady
from build.rootfs import RootfsImage
from build.runner import GUEST_PATH, TAIL_LINES, Argv, Bind, CommandFailed, CommandLog, sigint_held
from build.targets import Target

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
IMAGE_REPOSITORY = "k3py-builder"
LABEL = "k3py.builder"  # on images and containers; its value is the target's name
PING_TIMEOUT = 3  # seconds: docker_available() on a dead engine
API_TIMEOUT = 120  # seconds: one API call (create, start, inspect, remove)
# A command that prints nothing for this long is taken as hung (the exec stream's read timeout).
SILENT_TIMEOUT = 4 * 3600
CHUNK = 1 << 20


class EngineUnreachable(HostNotReady):
    """No Docker engine answers at ``$DOCKER_HOST`` (or the default socket)."""


class ImageImportFailed(BuildError):
    """The builder root filesystem could not be imported as a Docker image of its platform."""


START_SETTLE = 1.0
"""Seconds a started builder container is watched for an early exit (a program that cannot run)."""


class PlatformNotRunnable(HostNotReady):
    """The engine cannot start the target's programs (no binfmt_misc handler for a foreign platform)."""


class ContainerFailed(BuildError):
    """The builder container could not be created, started or removed."""


@dataclass(frozen=True)
class Platform:
    """An OCI platform: ``linux/arm/v7``."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)

    def describes(self, attrs: Mapping[str, Any]) -> bool:
        """True when an image's inspect data records this platform (engines may drop a default variant)."""
        recorded = (attrs.get("Os"), attrs.get("Architecture"))
        return recorded == (self.os, self.architecture) and attrs.get("Variant", "") in ("", self.variant)


def platform_of(target: Target) -> Platform:
    return Platform("linux", target.go_arch, target.oci_variant)


def image_tag(target: Target, image: RootfsImage) -> str:
    """``k3py-builder:<target>-<digest16>``: one image per root filesystem recipe."""
    return f"{IMAGE_REPOSITORY}:{target.name}-{image.recipe.digest[:16]}"


def engine_url(engine: str | None = None) -> str:
    """The engine to talk to: ``engine``, else ``$DOCKER_HOST``, else the default socket."""
    return engine or os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE


def connect(engine: str | None = None, *, timeout: int = API_TIMEOUT) -> docker.DockerClient:
    """A client of the engine at :func:`engine_url` (Docker CLI contexts are not consulted)."""
    url = engine_url(engine)
    try:
        _knock(url, timeout)
        client = docker.DockerClient.from_env(environment={**os.environ, "DOCKER_HOST": url}, timeout=timeout)
        client.ping()
    except (DockerException, OSError) as error:
        raise EngineUnreachable(
            f"no Docker engine answers at {url} ({_one_line(error)}): start dockerd or set DOCKER_HOST"
        ) from error
    return client


def _knock(url: str, timeout: float) -> None:
    """Connect to ``url``'s socket (unix, or tcp with a port) and hang up; OSError if nothing listens.

    Done before the SDK connects because the SDK leaks its socket when the connection fails.
    """
    scheme, _, rest = url.partition("://")
    if scheme == "unix":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            unix.settimeout(timeout)
            unix.connect("/" + rest.lstrip("/"))
    elif scheme in ("tcp", "http", "https"):
        parts = urllib.parse.urlsplit(f"//{rest}")
        if parts.port is not None:
            socket.create_connection((parts.hostname or "localhost", parts.port), timeout=timeout).close()


def docker_available(engine: str | None = None) -> bool:
    """True when a Docker engine answers at :func:`engine_url`, within seconds."""
    try:
        connect(engine, timeout=PING_TIMEOUT).close()
    except EngineUnreachable:
        return False
    return True


@dataclass(kw_only=True)
class DockerRunner:
    """Commands in a container of ``image`` for ``target``; use as a context manager.

    ``engine`` is a ``DOCKER_HOST`` URL (default: the environment's). After entry, ``tag`` names
    the builder image, ``imported`` says whether this entry imported it and ``container_name``
    names the container.
    """

    target: Target
    image: RootfsImage
    log: CommandLog
    binds: Sequence[Bind] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    engine: str | None = None
    tag: str = field(default="", init=False)
    imported: bool = field(default=False, init=False)
    container_name: str = field(default="", init=False)
    _client: docker.DockerClient | None = field(default=None, init=False, repr=False)
    _container: Container | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> DockerRunner:
        try:
            self._setup()
        except (DockerException, requests.RequestException) as error:  # none of the named ones
            self._teardown()
            raise ContainerFailed(f"the Docker engine failed: {_one_line(error)}") from error
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._teardown()

    def run(self, argv: Argv, *, env: Mapping[str, str] | None = None, cwd: str = "/") -> str:
        """Run ``argv`` in the container with ``PATH``, ``HOME``, ``LANG`` (+ ``env``) in ``cwd``."""
        if self._container is None or self._client is None:
            raise ContainerFailed("DockerRunner.run() outside its `with` block: no container")
        args = [os.fspath(part) for part in argv]
        variables = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8", **self.env, **(env or {})}
        pairs = [f"--env={name}={value}" for name, value in variables.items()]
        self.log.command(["docker", "exec", f"--workdir={cwd}", *pairs, self.container_name, *args])
        lines: list[str] = []
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        try:
            # The engine relays stdout and stderr as two streams whose order it does not keep:
            # merged in the container instead, like call()'s stderr=STDOUT.
            merged = ["/bin/sh", "-c", 'exec "$@" 2>&1', "sh", *args]
            created = self._client.api.exec_create(
                self._container.id, merged, environment=variables, workdir=cwd
            )
            frames = _exec_output(self._client, created["Id"])
            try:
                reader = io.BufferedReader(_ChunkReader(frames))
                for raw in io.TextIOWrapper(reader, encoding="utf-8", errors="replace"):
                    line = raw.rstrip("\n")
                    lines.append(line)
                    tail.append(line)
                    self.log.output(line)
            finally:
                frames.close()
            returncode = self._exit_code(created["Id"])
        except (DockerException, OSError, urllib3.exceptions.HTTPError) as error:  # a read timeout too
            raise CommandFailed(args, 125, [*tail, f"docker: {_one_line(error)}"], self.log.path) from error
        if returncode != 0:
            raise CommandFailed(args, returncode, list(tail), self.log.path)
        return "\n".join(lines)

    def _exit_code(self, exec_id: str) -> int:
        assert self._client is not None
        deadline = time.monotonic() + 10
        while True:  # the stream can end a moment before the engine records the exit
            state = self._client.api.exec_inspect(exec_id)
            if not state["Running"] or time.monotonic() > deadline:
                return int(state["ExitCode"] if state["ExitCode"] is not None else 125)
            time.sleep(0.05)

    def _setup(self) -> None:
        self._client = connect(self.engine)
        platform = platform_of(self.target)
        self.tag = image_tag(self.target, self.image)
        self.imported = ensure_image(self._client, self.target, self.image, self.log)
        for bind in self.binds:
            if not bind.host.exists():
                bind.host.mkdir(parents=True)
        self.container_name = f"k3py-build-{self.target.name}-{os.getpid()}-{secrets.token_hex(3)}"
        self.log.note(f"docker: starting {self.container_name} from {self.tag} ({platform})")
        try:
            self._container = self._client.containers.create(
                image=self.tag,
                command=["sleep", "infinity"],
                name=self.container_name,
                platform=str(platform),
                labels={LABEL: self.target.name, "k3py.recipe": self.image.recipe.digest},
                network_mode="host",
                mounts=[Mount(bind.guest, str(bind.host), type="bind") for bind in self.binds],
            )
            self._container.start()
            self._container.reload()
            # An engine may report the container running before its first program failed to
            # exec (the failure lands a moment later): watch it for a short while.
            deadline = time.monotonic() + START_SETTLE
            while self._container.status == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
                self._container.reload()
        except (DockerException, requests.RequestException) as error:
            raise self._start_error(_one_line(error)) from error
        if self._container.status != "running":
            logs = self._container.logs().decode(errors="replace").strip()
            raise self._start_error(f"status {self._container.status}: {logs or 'no output'}")

    def _start_error(self, detail: str) -> BuildError:
        platform = platform_of(self.target)
        if "exec format error" in detail:
            return PlatformNotRunnable(
                f"the Docker engine cannot run {platform} programs ({detail}): register qemu-user-static's "
                f"binfmt_misc handler {self.target.binfmt_name} with the F flag on the engine's host "
                "(`invoke deps` there)"
            )
        return ContainerFailed(
            f"builder container {self.container_name} ({platform}) did not start: {detail}"
        )

    def _teardown(self) -> None:
        with sigint_held():
            try:
                if self._container is not None:
                    self._remove_container(self._container)
            finally:
                self._container = None
                if self._client is not None:
                    self._client.close()
                self._client = None

    def _remove_container(self, container: Container) -> None:
        try:
            container.remove(force=True)
        except NotFound:
            return
        except (DockerException, requests.RequestException) as error:
            raise ContainerFailed(
                f"could not remove builder container {self.container_name} ({_one_line(error)}): "
                f"remove it with `docker rm -f {self.container_name}`"
            ) from error
        self.log.note(f"docker: removed {self.container_name}")


def ensure_image(client: docker.DockerClient, target: Target, image: RootfsImage, log: CommandLog) -> bool:
    """Import ``image`` as :func:`image_tag` unless the engine has it; True when it was imported."""
    tag, platform = image_tag(target, image), platform_of(target)
    try:
        client.images.get(tag)
    except NotFound:
        pass
    else:
        log.note(f"docker: reusing image {tag}")
        return False
    started = time.monotonic()
    imported = _import(client, image, tag, target, log)
    if not platform.describes(imported.attrs):
        imported = _relabel(client, imported, tag, platform, log)
    if not platform.describes(imported.attrs):
        attrs = imported.attrs
        recorded = Platform(attrs["Os"], attrs["Architecture"], attrs.get("Variant", ""))
        _remove_tag(client, tag)
        raise ImageImportFailed(f"the Docker engine recorded {tag} as {recorded}, not {platform}")
    log.note(f"docker: imported {tag} ({platform}) in {time.monotonic() - started:.1f} s")
    return True


def _import(
    client: docker.DockerClient, image: RootfsImage, tag: str, target: Target, log: CommandLog
) -> Image:
    """Stream the decompressed tarball into the engine's import (``POST /images/create``)."""
    repository, _, version = tag.partition(":")
    params: dict[str, str | list[str]] = {
        "fromSrc": "-",
        "repo": repository,
        "tag": version,
        "platform": str(platform_of(target)),
        "message": f"k3py builder root filesystem {image.tarball.name}",
        "changes": [f"LABEL {LABEL}={target.name} k3py.recipe={image.recipe.digest}"],
    }
    # The engine's import takes gzip, bzip2 and xz, and zstd only from 23.0: decompress here.
    command = ["zstd", "--decompress", "--stdout", "--quiet", str(image.tarball)]
    log.command(command)
    log.note(f"piped into the Docker engine's import as {tag} ({params['platform']})")
    try:
        zstd = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as error:
        raise ImageImportFailed(f"cannot run zstd ({error.strerror}): run `invoke deps`") from error
    with zstd:
        assert zstd.stdout is not None and zstd.stderr is not None
        try:
            problem = _post_import(client, params, _chunks(zstd.stdout))
        finally:
            # Still running: the engine stopped reading (an error, the tar's end, Ctrl-C): EPIPE ends it.
            stopped = zstd.poll() is None
            zstd.stdout.close()
            zstd.wait()
        if zstd.returncode != 0 and not stopped:
            message = _one_line(zstd.stderr.read().decode(errors="replace")) or "no message"
            problem = f"zstd exited with {zstd.returncode}: {message}"
    if problem:
        _remove_tag(client, tag)
        raise ImageImportFailed(f"importing {image.tarball} as {tag} failed: {problem}")
    return client.images.get(tag)


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _post_import(client: docker.DockerClient, params: Mapping[str, Any], body: Iterator[bytes]) -> str:
    """Send ``body`` (a tar stream) to the import endpoint; return the engine's complaint, or ""."""
    # The SDK's import_image() has no platform parameter: the same request, through its session.
    url = f"{client.api.base_url}/v{client.api.api_version}/images/create"
    headers = {"Content-Type": "application/tar"}
    try:
        response = client.api.post(url, params=params, data=body, headers=headers, stream=True, timeout=None)
        with response:
            if response.status_code >= 400:
                return f"HTTP {response.status_code}: {_one_line(response.text)}"
            for line in response.iter_lines():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and "error" in message:
                    return _one_line(str(message["error"]))
    except requests.RequestException as error:
        return _one_line(error)
    return ""


def _relabel(
    client: docker.DockerClient, image: Image, tag: str, platform: Platform, log: CommandLog
) -> Image:
    """Give ``image`` the configuration of ``platform``: ``docker load`` a configuration-only archive.

    Its one layer is the imported one (``rootfs.diff_ids``), which the engine finds in its layer
    store and so never reads from the archive.
    """
    attrs = image.attrs
    config = {
        "architecture": platform.architecture,
        "os": platform.os,
        **({"variant": platform.variant} if platform.variant else {}),
        "created": attrs["Created"],
        "config": attrs.get("Config") or {},
        "rootfs": {"type": "layers", "diff_ids": attrs["RootFS"]["Layers"]},
        "history": [{"created": attrs["Created"], "comment": attrs.get("Comment", "")}],
    }
    layers = [f"{index}/layer.tar" for index, _ in enumerate(attrs["RootFS"]["Layers"])]
    manifest = [{"Config": "config.json", "RepoTags": [tag], "Layers": layers}]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, content in (("config.json", config), ("manifest.json", manifest)):
            data = json.dumps(content).encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    log.note(f"docker: the engine recorded {tag} as {attrs.get('Architecture')}: loading a {platform} config")
    try:
        client.images.load(archive.getvalue())
    except (DockerException, requests.RequestException) as error:
        _remove_tag(client, tag)
        problem = _one_line(error)
        raise ImageImportFailed(f"could not set the platform of {tag} to {platform}: {problem}") from error
    try:
        client.images.remove(attrs["Id"])  # the import's own image, now untagged
    except APIError as error:
        log.note(f"docker: could not remove the intermediate image {attrs['Id']}: {_one_line(error)}")
    return client.images.get(tag)


def _remove_tag(client: docker.DockerClient, tag: str) -> None:
    with contextlib.suppress(NotFound):
        client.images.remove(tag, force=True)


def _exec_output(client: docker.DockerClient, exec_id: str) -> Generator[bytes, None, None]:
    """Start exec ``exec_id`` and yield its output as the engine sends it, until the command ends.

    The engine answers ``POST /exec/<id>/start`` with frames (8-byte header: stream, 3 zero bytes,
    big-endian size; then the data) until the connection closes. Read here, through the SDK's
    session, rather than with ``exec_start(stream=True)``: that leaves its socket open and reads
    with the client's 60-second timeout, too short for a quiet compiler.
    """
    url = f"{client.api.base_url}/v{client.api.api_version}/exec/{exec_id}/start"
    timeout = (API_TIMEOUT, SILENT_TIMEOUT)
    with client.api.post(url, json={"Detach": False, "Tty": False}, stream=True, timeout=timeout) as response:
        if response.status_code >= 400:
            raise ContainerFailed(f"exec start: HTTP {response.status_code}: {_one_line(response.text)}")
        while header := _read_exactly(response.raw, 8):
            yield _read_exactly(response.raw, int.from_bytes(header[4:8], "big"))


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def _read_exactly(stream: _Readable, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only at its end."""
    data = b""
    while len(data) < size and (chunk := stream.read(size - len(data))):
        data += chunk
    return data


class _ChunkReader(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks (an exec's output frames)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        view = memoryview(buffer).cast("B")
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _one_line(error: BaseException | str) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."
