"""Run a built binary and time it: natively, or in a chroot of its target's Debian under QEMU.

:func:`serve` runs ``k3py server`` from a binary on a loopback port and measures the time from
process start to the first ``200`` from ``/readyz`` over TLS (:class:`ServedBinary`). A foreign
binary runs in a chroot of its target's root filesystem (:func:`guest_root`), its programs run
by QEMU through binfmt_misc. The build tests and ``bench/build.py`` share these.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import yaml

from build.errors import BuildError
from build.report import BuildReport
from build.rootfs import TMPFS_SIZE
from build.runner import ChrootRunner, CommandLog, call, remove_tree, tmpfs
from build.targets import load_target
from k3py.agent.containerd import ContainerdPaths
from k3py.agent.containerd_reset import kill_all
from k3py.agent.netns import run_in_netns


class SmokeFailed(BuildError):
    """A built binary did not start or did not become ready in time."""


@dataclass
class ServedBinary:
    """A ``k3py server`` started from a binary; ``ready_seconds`` is process start → /readyz 200."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    kubeconfig: Path
    ready_seconds: float
    netns: str | None = None
    """The network namespace the server runs in (``/proc/<pid>/ns/net``); None: the host's."""

    def get(self, path: str, *, client_cert: bool = False) -> tuple[int, bytes]:
        """GET ``path`` over TLS, trusting the server CA; with the admin's client cert if asked."""
        if self.netns is not None:
            return run_in_netns(self.netns, lambda: self._get(path, client_cert=client_cert))
        return self._get(path, client_cert=client_cert)

    def _get(self, path: str, *, client_cert: bool) -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(self.data_dir / "server/tls/server-ca.crt"))
        if client_cert:
            cert, key = _client_credentials(self.kubeconfig, self.data_dir.parent)
            context.load_cert_chain(cert, key)
        try:
            with urllib.request.urlopen(self.url + path, context=context, timeout=10) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())


def _client_credentials(kubeconfig: Path, scratch: Path) -> tuple[Path, Path]:
    user = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))["users"][0]["user"]
    cert, key = scratch / "admin.crt", scratch / "admin.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    key.chmod(0o600)
    return cert, key


@dataclass(frozen=True)
class Host:
    """Where a binary runs: ``prefix`` before its command (``chroot <root>``), ``root`` its file system."""

    prefix: tuple[str, ...] = ()
    root: Path = Path("/")

    def inside(self, path: Path) -> str:
        """``path`` (on the host, under ``root``) as the binary sees it."""
        return "/" + path.relative_to(self.root).as_posix()

    def command(self, binary: Path, *args: str) -> list[str]:
        return [*self.prefix, self.inside(binary), *args]


NATIVE = Host()


@contextmanager
def guest_root(report: BuildReport, scratch: Path, tarball: Path | None = None) -> Iterator[Host]:
    """A Debian of the target (its builder root filesystem, or ``tarball``) with the binary in
    ``/usr/local/bin``, mounted and ready to chroot into.

    A foreign binary is dynamically linked against the target's glibc, which an amd64 host does
    not have: on this host it runs in a chroot of the target's root, its programs under QEMU.
    """
    target = load_target(report.target)
    # A 32-bit guest reading a 64-bit host's ext4 can fail with EOVERFLOW: use a tmpfs.
    fs = scratch / "fs"
    fs.mkdir()
    with (
        CommandLog(scratch / "guest-root.log") as log,
        tmpfs(fs, size=TMPFS_SIZE, log=log) if target.build_in_tmpfs else nullcontext(fs),
    ):
        root = fs / "root"
        root.mkdir()
        source = tarball or report.rootfs_tarball
        call(["tar", "--extract", "--zstd", f"--file={source}", f"--directory={root}"], log=log)
        shutil.copy2(report.artifact, root / "usr/local/bin/k3py")
        try:
            with ChrootRunner(root, log):
                yield Host(prefix=("chroot", str(root)), root=root)
        finally:
            remove_tree(root, log)


@contextmanager
def serve(
    host: Host, binary: Path, workdir: Path, port: int, *, timeout: float, agent: bool = False
) -> Iterator[ServedBinary]:
    """Run the binary's server until the block ends; fail if /readyz is not 200 within ``timeout``.

    ``binary`` and ``workdir`` are host paths under ``host.root``. With ``agent`` the embedded
    agent stays enabled, so the server unpacks the runtime payload into its data directory first.
    """
    data_dir, kubeconfig, log = workdir / "data", workdir / "k.yaml", workdir / "server.log"
    command = host.command(
        binary,
        "server",
        "--config",
        os.devnull,
        *(() if agent else ("--disable-agent",)),
        "--data-dir",
        host.inside(data_dir),
        "--https-listen-port",
        str(port),
        "--bind-address",
        "127.0.0.1",
        "--write-kubeconfig",
        host.inside(kubeconfig),
    )
    if agent:
        # The node's network (its bridge, rules, kubelet port) goes in a network namespace of its
        # own, never the build host's; requests reach the server there.
        command = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        netns = f"/proc/{process.pid}/ns/net" if agent else None
        served = ServedBinary(process, f"https://127.0.0.1:{port}", data_dir, kubeconfig, 0.0, netns)
        served.ready_seconds = _wait_ready(served, started, timeout, log)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if agent and host.root == Path("/"):
            # The server stops its containerd but leaves its state directory (as K3s does, for
            # the pods that outlive it); a chroot's goes with the chroot.
            kill_all(ContainerdPaths.for_data_dir(Path(host.inside(data_dir))))


def _wait_ready(served: ServedBinary, started: float, timeout: float, log: Path) -> float:
    ca = served.data_dir / "server/tls/server-ca.crt"
    while time.monotonic() - started < timeout:
        if served.process.poll() is not None:
            raise SmokeFailed(
                f"server exited with {served.process.returncode}:\n{log.read_text(errors='replace')}"
            )
        if ca.exists():
            try:
                if served.get("/readyz")[0] == 200:
                    return time.monotonic() - started
            except (OSError, ssl.SSLError):
                pass
        time.sleep(0.05)
    raise SmokeFailed(f"no 200 from /readyz within {timeout:.0f} s:\n{log.read_text(errors='replace')}")
