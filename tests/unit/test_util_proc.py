"""``util.proc``: the one place external commands run, echoed and checked."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from k3py.util import proc


def test_run_echoes_and_captures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="k3py.util.proc")
    result = proc.run([sys.executable, "-c", "print('hello world')"], capture=True)
    assert result.returncode == 0
    assert result.stdout == "hello world\n"
    assert f"+ {sys.executable} -c 'print('\"'\"'hello world'\"'\"')'" in caplog.text


def test_quiet_run_logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="k3py.util.proc")
    proc.run([sys.executable, "-c", "pass"], quiet=True)
    assert "+ " not in caplog.text


def test_failure_raises_with_exit_code_and_last_stderr_line() -> None:
    script = "import sys; sys.stderr.write('first\\nlast words\\n'); sys.exit(7)"
    with pytest.raises(proc.CommandFailed) as caught:
        proc.run([sys.executable, "-c", script], capture=True)
    assert caught.value.returncode == 7
    assert str(caught.value).endswith(": last words")
    assert caught.value.command[0] == sys.executable


def test_unchecked_failure_is_returned() -> None:
    result = proc.run([sys.executable, "-c", "raise SystemExit(3)"], check=False)
    assert result.returncode == 3


def test_missing_program_is_named() -> None:
    with pytest.raises(proc.CommandNotFound, match="command not found: k3py-no-such-program"):
        proc.run(["k3py-no-such-program"])


def test_which_searches_path_then_extra_dirs(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert proc.which("tool", path=str(tmp_path)) == tool
    assert proc.which("tool", path="/nonexistent", extra_dirs=[tmp_path]) == tool
    assert proc.which("tool", path="/nonexistent") is None
