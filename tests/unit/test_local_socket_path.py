"""Where the API server's local socket lives: under /run/k3py for root, else in the session's
runtime directory, else in the data directory; one per data directory however it is spelt."""

from __future__ import annotations

from pathlib import Path

import pytest

from k3py.config.model import RUN_DIR, local_socket


def test_root_gets_a_short_path_per_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    one, other = tmp_path / "one", tmp_path / "other"
    assert local_socket(one).parent.parent == RUN_DIR
    assert local_socket(one) == local_socket(tmp_path / "x" / ".." / "one")
    assert local_socket(one) != local_socket(other)
    assert len(str(local_socket(tmp_path / ("long" * 40)))) < 100  # a Unix socket's path is short


def test_others_use_their_runtime_directory_or_the_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert local_socket(tmp_path / "data").is_relative_to(tmp_path / "run" / "k3py")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert local_socket(tmp_path / "data") == tmp_path / "data" / "server" / "run" / "api.sock"
