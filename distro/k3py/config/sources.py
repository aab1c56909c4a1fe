"""Where raw setting values come from: the config file, the environment, the command line.

Each reader returns ``{flag name: Setting}`` with the raw value and a description of its
source, so a bad value can be reported with where it was set. Nothing is parsed here
beyond YAML; ``config.build`` merges the sources and parses the winners.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from k3py.config.errors import COMMAND_LINE, ConfigError
from k3py.config.flags import ALL_NAMES, Flag

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Setting:
    value: object
    source: str


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps ``0644``-style scalars as text.

    YAML 1.1 reads an unquoted ``0644`` as the octal number 420, which would turn
    ``write-kubeconfig-mode: 0644`` into mode 0420; as text, the mode parser reads it right.
    """


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    raw = loader.construct_scalar(node)
    if isinstance(raw, str) and re.fullmatch(r"0[0-7]+", raw):
        return raw
    return loader.construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def read_config_file(path: Path) -> dict[str, object]:
    """The file's top-level mapping (empty for an empty file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}", flag="config") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text", flag="config") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise ConfigError(f"config file {path} must be a YAML mapping of flag names to values")
    return data


def file_settings(path: Path, flags: Sequence[Flag]) -> dict[str, Setting]:
    """Settings from the config file, checked against ``flags``.

    A key that no subcommand knows is an error; a key that belongs to another subcommand
    (the file is shared by server and agent, as K3s's is) is skipped.
    """
    known = {flag.name for flag in flags}
    source = f"config file {path}"
    settings: dict[str, Setting] = {}
    for key, value in read_config_file(path).items():
        if key == "config":
            raise ConfigError("a config file cannot name another config file", flag=key, source=source)
        if key not in known:
            if key in ALL_NAMES:
                log.debug("Config file key %r does not apply to this command; skipped", key)
                continue
            hint = " (keys are flag names without the leading dashes)" if key.startswith("-") else ""
            raise ConfigError(f"unknown key {key!r} in config file {path}{hint}")
        if value is None:
            continue
        settings[key] = Setting(value, source)
    return settings


def env_settings(env: Mapping[str, str], flags: Sequence[Flag]) -> dict[str, Setting]:
    """Settings from ``K3PY_*`` environment variables; empty variables count as unset."""
    return {
        flag.name: Setting(env[flag.env], f"environment variable {flag.env}")
        for flag in flags
        if flag.env and env.get(flag.env, "").strip()
    }


def flag_settings(given: Mapping[str, object], flags: Sequence[Flag]) -> dict[str, Setting]:
    """Settings from flags given on the command line (keys are flag names)."""
    known = {flag.name for flag in flags}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"unknown flag --{unknown[0]}")
    return {name: Setting(value, COMMAND_LINE) for name, value in given.items()}


def choose_config_file(
    cli: Mapping[str, Setting], env: Mapping[str, Setting], default: Path
) -> tuple[Path | None, str]:
    """The config file to read and where its name came from; None if there is none.

    A file named by ``--config`` or ``K3PY_CONFIG_FILE`` must exist; the default one is
    optional, as in K3s.
    """
    for chosen in (cli.get("config"), env.get("config")):
        if chosen is not None:
            return Path(str(chosen.value)).expanduser().absolute(), chosen.source
    return (default if default.is_file() else None), "default"
