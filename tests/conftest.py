"""Fixtures shared by every test tier; keep this file small.

- The host's ``K3PY_*`` variables never leak into a test (precedence tests set their own).
- Tests marked ``root`` are skipped unless the run has euid 0.
- ``free_port`` gives a loopback TCP port that was free a moment ago.
- Hypothesis has no per-example deadline: a loaded CI machine is slow, not wrong (speed is
  measured by the benchmarks in ``bench/``, never by a test).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("k3py", deadline=None)
settings.load_profile("k3py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip_root = pytest.mark.skip(reason="needs root (euid 0)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip_root)


@pytest.fixture(autouse=True)
def _no_host_k3py_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("K3PY_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
