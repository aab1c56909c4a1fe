"""The user docs stay true to the code: docs/cli.md's flag tables, README's CI command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from k3py.config import AGENT_FLAGS, SERVER_FLAGS, Flag, Kind

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = ROOT / "docs" / "cli.md"


def flag_table(section: str) -> dict[str, list[str]]:
    """Rows of the flag table under ``## `k3py <section>` flags``, keyed by flag name."""
    text = CLI_DOC.read_text(encoding="utf-8")
    body = text.split(f"## `k3py {section}` flags", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in body.splitlines():
        if line.startswith("| `--"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`").removeprefix("--")] = cells
    return rows


def documented_default(flag: Flag, cell: str) -> object:
    match = re.fullmatch(r"`([^`]*)`", cell)
    if match is None:
        return None
    return flag.parse(match.group(1))


@pytest.mark.parametrize(("section", "flags"), [("server", SERVER_FLAGS), ("agent", AGENT_FLAGS)])
def test_flag_tables_match_the_flag_declarations(section: str, flags: tuple[Flag, ...]) -> None:
    rows = flag_table(section)
    assert list(rows) == [flag.name for flag in flags]
    for flag in flags:
        _, short, default, env, description, status = rows[flag.name]
        assert short == (f"`-{flag.short}`" if flag.short else ""), flag.name
        assert env == (f"`{flag.env}`" if flag.env else ""), flag.name
        assert description and status, flag.name
        if flag.required:
            assert default == "(required)"
        elif flag.kind is Kind.SWITCH:
            assert default == "off"
        elif flag.default_help is not None and flag.default_help:
            assert flag.default_help.split(",")[0] in default.replace("`", ""), flag.name
        elif flag.default in (None, ()):
            assert default == "", flag.name
        else:
            assert documented_default(flag, default) == flag.parse(flag.default), flag.name


def test_every_environment_variable_is_documented() -> None:
    text = CLI_DOC.read_text(encoding="utf-8")
    for flag in (*SERVER_FLAGS, *AGENT_FLAGS):
        if flag.env:
            assert f"| `{flag.env}` | `--{flag.name}` |" in text


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", text, flags=re.DOTALL)


def test_ci_runs_the_readme_test_command() -> None:
    test_command = next(command for command in readme_commands() if "invoke deps test" in command)
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci_script.splitlines()


def test_readme_starts_the_server_with_the_documented_data_dir() -> None:
    first = readme_commands()[0]
    assert first.endswith(".venv/bin/k3py server --data-dir /var/lib/k3py")


def test_the_test_run_collects_tests_build() -> None:
    """pytest skips directories named "build" by default; tests/build must still run in CI."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        options = tomllib.load(f)["tool"]["pytest"]["ini_options"]
    assert "norecursedirs" in options and "build" not in options["norecursedirs"]
    assert any((ROOT / "tests" / "build").glob("test_*.py"))
