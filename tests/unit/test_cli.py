"""The ``k3py`` command line: subcommands, help, version, exit codes, kubectl pass-through."""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

import k3py
from k3py.cli.main import main, run
from k3py.cli.parser import SUBCOMMAND_FLAGS, build_parser
from k3py.util.arch import kube_platform

SUBCOMMANDS = ("server", "agent", "kubectl", "check-config", "token", "killall", "version")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("k3py has no subcommands")


def test_version_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["version"]) == 0
    out = capsys.readouterr().out
    assert (
        out == f"k3py version v{k3py.__version__} (python {platform.python_version()}, {kube_platform()})\n"
    )
    assert re.fullmatch(r"k3py version v\d+\.\d+\.\d+\S* \(python 3\.\d+\.\d+\S*, linux/\w+\)\n", out)


def test_version_flag_matches_version_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"k3py version v{k3py.__version__} ")


def test_main_exits_with_the_code_of_run(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["server", "--https-listen-port", "0"])
    assert exited.value.code == 2
    assert "--https-listen-port" in capsys.readouterr().err


def test_all_subcommands_exist() -> None:
    assert set(subparsers()) == set(SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_option_of_every_subcommand_has_help(name: str) -> None:
    parser = subparsers()[name]
    for action in parser._actions:
        assert action.help, f"k3py {name}: {action.option_strings or action.dest} has no help text"
        assert action.help != argparse.SUPPRESS


def test_top_level_options_have_help() -> None:
    for action in build_parser()._actions:
        assert action.help, f"k3py: {action.option_strings or action.dest} has no help text"


@pytest.mark.parametrize("name", ["server", "agent"])
def test_help_lists_every_flag(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run([name, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in SUBCOMMAND_FLAGS[name]:
        assert f"--{flag.name}" in text
        if flag.short:
            assert f"-{flag.short}" in text
        assert flag.help.split()[0] in text


def test_k3s_flag_names_and_short_options() -> None:
    server = {option for action in subparsers()["server"]._actions for option in action.option_strings}
    for option in (
        "-c",
        "-d",
        "-t",
        "-o",
        "--tls-san",
        "--disable",
        "--disable-agent",
        "--write-kubeconfig-mode",
    ):
        assert option in server
    agent = {option for action in subparsers()["agent"]._actions for option in action.option_strings}
    assert {"-s", "--server", "-t", "--token", "--data-dir", "--node-name", "--node-ip", "--config"} <= agent


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("k3py: error: ") and err.count("\n") == 1


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["serve"]) == 2
    assert "invalid choice: 'serve'" in capsys.readouterr().err


def test_abbreviated_flags_are_not_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["server", "--data", "/tmp/x"]) == 2
    assert "--data" in capsys.readouterr().err


def test_an_agent_that_cannot_reach_its_server_says_so(
    capsys: pytest.CaptureFixture[str], free_port: int, tmp_path: Path
) -> None:
    server = f"https://127.0.0.1:{free_port}"  # nothing listens there
    code = run(
        ["agent", "--server", server, "--token", "t", "--config", "/dev/null", "--data-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith(
        f"k3py agent: error: cannot fetch the CA certificate from {server}: cannot reach"
    )
    assert list(tmp_path.iterdir()) == []


def test_every_token_action_option_has_help() -> None:
    token = subparsers()["token"]
    actions = next(a for a in token._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in actions.choices.items():
        for action in parser._actions:
            assert action.help, f"k3py token {name}: {action.option_strings or action.dest} has no help text"


def test_agent_checks_its_settings_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["agent", "--server", "http://192.0.2.1:6443", "--token", "t", "--config", "/dev/null"]) == 2
    assert "--server: " in capsys.readouterr().err


def fake_kubectl(directory: Path) -> None:
    script = directory / "kubectl"
    script.write_text('#!/bin/sh\necho "KUBECONFIG=$KUBECONFIG"\necho "ARGS=$*"\nexit 3\n')
    script.chmod(0o755)


def run_k3py(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k3py.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_kubectl_gets_the_servers_kubeconfig_and_all_arguments(tmp_path: Path) -> None:
    fake_kubectl(tmp_path)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"write-kubeconfig: {tmp_path}/admin.yaml\n")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(PATH=f"{tmp_path}{os.pathsep}{env.get('PATH', '')}", K3PY_CONFIG_FILE=str(config_file))

    result = run_k3py(["kubectl", "-n", "kube-system", "get", "pods", "--help"], env)

    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == [
        f"KUBECONFIG={tmp_path}/admin.yaml",
        "ARGS=-n kube-system get pods --help",
    ]


def test_kubectl_keeps_a_kubeconfig_the_user_set(tmp_path: Path) -> None:
    fake_kubectl(tmp_path)
    env = dict(
        os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}", KUBECONFIG="/my/config"
    )
    result = run_k3py(["kubectl", "version"], env)
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines()[0] == "KUBECONFIG=/my/config"
