"""``k3py server`` as a real process: real SQLite, real HTTP on a loopback port, real signals."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5, context=_any_certificate()) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                pytest.fail(
                    f"k3py server exited with {self.process.returncode} before it was healthy:\n{err}"
                )
            try:
                if self.get("/healthz") == (200, "ok"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"k3py server was not healthy within {START_TIMEOUT}s")

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=STOP_TIMEOUT)
        return self.process.returncode, err


def _any_certificate() -> ssl.SSLContext:
    """The health endpoints answer anyone; these tests do not check the server's certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def server_command(data_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "k3py.cli",
        "server",
        "--config",
        os.devnull,
        "--data-dir",
        str(data_dir),
        "--bind-address",
        "127.0.0.1",
        "--https-listen-port",
        str(port),
        "--write-kubeconfig",
        str(data_dir / "k3py.yaml"),
        "--disable-agent",  # these tests are about the server; nodes are tested in tests/e2e
        *extra,
    ]


def run_server_once(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        server_command(data_dir, port), capture_output=True, text=True, timeout=START_TIMEOUT, check=False
    )


@pytest.fixture
def server(tmp_path: Path, free_port: int) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        server_command(data_dir, free_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = ServerProcess(process, f"https://127.0.0.1:{free_port}", data_dir)
    try:
        yield started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("k3py server: error:")]


def test_serves_health_and_stops_cleanly_on_sigterm(server: ServerProcess) -> None:
    server.wait_healthy()

    assert server.get("/livez") == (200, "ok")
    assert server.get("/readyz") == (200, "ok")
    status, body = server.get("/readyz?verbose")
    assert status == 200
    assert body.splitlines() == ["[+]ping ok", "[+]etcd ok", "[+]shutdown ok", "readyz check passed"]
    assert server.get("/healthz?verbose")[1].splitlines() == [
        "[+]ping ok",
        "[+]etcd ok",
        "healthz check passed",
    ]
    # system:public-info-viewer lets anonymous clients read the roots only, as upstream.
    assert server.get("/livez/etcd")[0] == 403
    assert (server.data_dir / "server" / "db" / "state.db").is_file()

    begin = time.monotonic()
    code, stderr = server.stop(signal.SIGTERM)
    assert code == 0, stderr
    assert time.monotonic() - begin < 5
    assert "Received SIGTERM, shutting down" in stderr
    assert "Datastore closed" in stderr
    assert error_lines(stderr) == []


def test_sigint_also_stops_cleanly(server: ServerProcess) -> None:
    server.wait_healthy()
    code, stderr = server.stop(signal.SIGINT)
    assert code == 0, stderr
    assert "Received SIGINT" in stderr


def test_restart_reopens_the_same_database(server: ServerProcess, free_port: int) -> None:
    server.wait_healthy()
    assert server.stop()[0] == 0
    again = subprocess.Popen(server_command(server.data_dir, free_port), stderr=subprocess.PIPE, text=True)
    restarted = ServerProcess(again, server.url, server.data_dir)
    try:
        restarted.wait_healthy()
        assert restarted.stop()[0] == 0
    finally:
        if again.poll() is None:
            again.kill()
            again.communicate()


def test_corrupt_database_exits_1_with_one_line(tmp_path: Path, free_port: int) -> None:
    db = tmp_path / "data" / "server" / "db" / "state.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not an SQLite database\n" * 512)

    result = run_server_once(tmp_path / "data", free_port)

    assert result.returncode == 1, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert str(db) in errors[0]
    assert "Traceback" not in result.stderr


def test_busy_port_exits_1_with_one_line(tmp_path: Path, server: ServerProcess, free_port: int) -> None:
    server.wait_healthy()
    result = run_server_once(tmp_path / "other", free_port)
    assert result.returncode == 1, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1
    assert f"cannot listen on 127.0.0.1:{free_port}: address already in use" in errors[0]


def test_unsupported_datastore_is_a_usage_error(tmp_path: Path, free_port: int) -> None:
    command = [*server_command(tmp_path, free_port), "--datastore-endpoint", "postgres://db/k3py"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
    assert result.returncode == 2
    assert result.stderr == (
        "k3py server: error: --datastore-endpoint: postgres:// datastores are not supported yet "
        "(only sqlite:// for now)\n"
    )
