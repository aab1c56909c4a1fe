"""Build the frozen ``ServerConfig``/``AgentConfig`` once: defaults < file < env < flags.

Flow: pick the config file (``--config``, ``K3PY_CONFIG_FILE`` or the default), read the
three sources into raw ``Setting``s, let the highest source win per flag, parse each
winner with its flag's parser (errors name the flag and the source), fill computed
defaults (node name, datastore path), check rules that span flags, and construct the
dataclass from the parsed values keyed by field name.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from k3py.config import values
from k3py.config.errors import ConfigError
from k3py.config.flags import AGENT_FLAGS, SERVER_FLAGS, Flag
from k3py.config.model import DEFAULT_CONFIG_FILE, AgentConfig, ServerConfig, SQLiteEndpoint
from k3py.config.sources import Setting, choose_config_file, env_settings, file_settings, flag_settings


def load_server_config(
    given: Mapping[str, object],
    env: Mapping[str, str] | None = None,
    *,
    default_config_file: Path = DEFAULT_CONFIG_FILE,
) -> ServerConfig:
    """The server's settings from explicitly ``given`` flags (keyed by flag name)."""
    parsed = _resolve(SERVER_FLAGS, given, os.environ if env is None else env, default_config_file)
    data_dir: Path = parsed["data_dir"]
    if parsed["datastore_endpoint"] is None:
        parsed["datastore_endpoint"] = SQLiteEndpoint(path=data_dir / "server" / "db" / "state.db")
    parsed["disable"] = frozenset(parsed["disable"])
    config = ServerConfig(**parsed)
    _check_server(config)
    return config


def load_agent_config(
    given: Mapping[str, object],
    env: Mapping[str, str] | None = None,
    *,
    default_config_file: Path = DEFAULT_CONFIG_FILE,
) -> AgentConfig:
    """The agent's settings from explicitly ``given`` flags (keyed by flag name)."""
    parsed = _resolve(AGENT_FLAGS, given, os.environ if env is None else env, default_config_file)
    return AgentConfig(**parsed)


def _resolve(
    flags: Sequence[Flag], given: Mapping[str, object], env: Mapping[str, str], default_file: Path
) -> dict[str, Any]:
    """Parsed values keyed by field name, from the highest source that sets each flag."""
    from_cli = flag_settings(given, flags)
    from_env = env_settings(env, flags)
    config_file, _ = choose_config_file(from_cli, from_env, default_file)
    from_file: dict[str, Setting] = {}
    if config_file is not None:
        if not config_file.exists():
            raise ConfigError(f"config file {config_file} does not exist", flag="config")
        from_file = file_settings(config_file, flags)

    parsed: dict[str, Any] = {}
    for flag in flags:
        if flag.name == "config":
            parsed[flag.dest] = config_file
            continue
        setting = from_cli.get(flag.name) or from_env.get(flag.name) or from_file.get(flag.name)
        if setting is None:
            if flag.required:
                env_hint = f", ${flag.env}" if flag.env else ""
                raise ConfigError(
                    f"missing: set it with --{flag.name}{env_hint} or the config file key {flag.name!r}",
                    flag=flag.name,
                )
            parsed[flag.dest] = _default(flag)
            continue
        try:
            parsed[flag.dest] = flag.parse(setting.value)
        except ValueError as exc:
            raise ConfigError(str(exc), flag=flag.name, source=setting.source) from None
    return parsed


def _default(flag: Flag) -> Any:
    if flag.name == "node-name":
        return _hostname_node_name()
    if flag.default is None:
        return None
    # Defaults are written as a user would write them and go through the same parser.
    return flag.parse(flag.default)


def _hostname_node_name() -> str:
    hostname = socket.gethostname().lower()
    try:
        return values.node_name(hostname)
    except ValueError:
        raise ConfigError(
            f"the hostname {hostname!r} is not a valid node name; set one with --node-name",
            flag="node-name",
        ) from None


def _check_server(config: ServerConfig) -> None:
    """Rules that involve more than one flag."""
    if config.cluster_dns not in config.service_cidr:
        raise ConfigError(
            f"{config.cluster_dns} is not inside --service-cidr {config.service_cidr}",
            flag="cluster-dns",
        )
    if config.cluster_dns == config.service_cidr.network_address:
        raise ConfigError(
            f"{config.cluster_dns} is the network address of --service-cidr, not a usable IP",
            flag="cluster-dns",
        )
    if config.cluster_cidr.version == config.service_cidr.version and config.cluster_cidr.overlaps(
        config.service_cidr
    ):
        raise ConfigError(
            f"{config.cluster_cidr} overlaps --service-cidr {config.service_cidr}",
            flag="cluster-cidr",
        )
