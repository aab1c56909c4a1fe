"""Settings come from defaults < config file < environment < flags, and nowhere else."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest

from k3py.config import (
    AGENT_FLAGS,
    SERVER_FLAGS,
    AgentConfig,
    ConfigError,
    Flag,
    ServerConfig,
    load_agent_config,
    load_server_config,
)

NO_DEFAULT_FILE = Path("/nonexistent/k3py/config.yaml")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_k3s_conventions() -> None:
    config = load_server_config({}, {}, default_config_file=NO_DEFAULT_FILE)
    assert config.config is None
    assert config.data_dir == Path("/var/lib/k3py")
    assert config.https_listen_port == 6443
    assert config.bind_address == ipaddress.ip_address("0.0.0.0")
    assert config.cluster_cidr == ipaddress.ip_network("10.42.0.0/16")
    assert config.service_cidr == ipaddress.ip_network("10.43.0.0/16")
    assert config.cluster_dns == ipaddress.ip_address("10.43.0.10")
    assert config.write_kubeconfig == Path("/etc/k3py/k3py.yaml")
    assert config.write_kubeconfig_mode == 0o600
    assert config.datastore_endpoint.path == Path("/var/lib/k3py/server/db/state.db")
    assert config.datastore_compact_interval == 60.0
    assert config.datastore_compact_retain == 0
    assert config.disable == frozenset()
    assert config.tls_san == ()
    assert config.token is None
    assert not config.disable_agent
    assert not config.debug
    assert config.node_name  # the lowercased hostname


def test_each_source_overrides_the_one_below(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "config.yaml",
        "data-dir: /from/file\nnode-name: file-node\ntoken: file-token\nhttps-listen-port: 7001\n"
        "cluster-cidr: 10.52.0.0/16\n",
    )
    env = {"K3PY_DATA_DIR": "/from/env", "K3PY_NODE_NAME": "env-node", "K3PY_TOKEN": "env-token"}
    given = {"config": str(config_file), "node-name": "flag-node"}

    config = load_server_config(given, env, default_config_file=NO_DEFAULT_FILE)

    assert config.config == config_file
    assert config.node_name == "flag-node"  # flag > env > file
    assert config.data_dir == Path("/from/env")  # env > file
    assert config.token == "env-token"
    assert config.https_listen_port == 7001  # file > default
    assert config.cluster_cidr == ipaddress.ip_network("10.52.0.0/16")
    assert config.service_cidr == ipaddress.ip_network("10.43.0.0/16")  # default
    # The default datastore follows the data dir wherever it came from.
    assert config.datastore_endpoint.path == Path("/from/env/server/db/state.db")


def test_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    default_file = write(tmp_path / "config.yaml", "disable-agent: true\n")
    config = load_server_config({}, {}, default_config_file=default_file)
    assert config.config == default_file
    assert config.disable_agent is True


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    config_file = write(tmp_path / "k3py.yaml", "debug: true\n")
    config = load_server_config(
        {}, {"K3PY_CONFIG_FILE": str(config_file)}, default_config_file=NO_DEFAULT_FILE
    )
    assert config.debug is True


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--config: config file .*missing.yaml does not exist"):
        load_server_config({"config": str(tmp_path / "missing.yaml")}, {})


def test_list_flags_accept_yaml_lists_and_are_replaced_not_merged(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "config.yaml",
        "tls-san:\n  - k3py.example.com\n  - 192.0.2.7\ndisable: [traefik, servicelb]\n",
    )
    from_file = load_server_config({"config": str(config_file)}, {})
    assert from_file.tls_san == ("k3py.example.com", "192.0.2.7")
    assert from_file.disable == frozenset({"traefik", "servicelb"})

    from_flags = load_server_config(
        {"config": str(config_file), "tls-san": ["a.example.com,b.example.com"]}, {}
    )
    assert from_flags.tls_san == ("a.example.com", "b.example.com")
    assert from_flags.disable == frozenset({"traefik", "servicelb"})


@pytest.mark.parametrize(
    ("yaml_value", "mode"),
    [('"0644"', 0o644), ("0644", 0o644), ("644", 0o644), ('"0o640"', 0o640), ("0600", 0o600)],
)
def test_kubeconfig_mode_in_yaml_is_octal(tmp_path: Path, yaml_value: str, mode: int) -> None:
    config_file = write(tmp_path / "config.yaml", f"write-kubeconfig-mode: {yaml_value}\n")
    assert load_server_config({"config": str(config_file)}, {}).write_kubeconfig_mode == mode


def test_empty_file_and_null_values_leave_defaults(tmp_path: Path) -> None:
    assert load_server_config({"config": str(write(tmp_path / "a.yaml", ""))}, {}).https_listen_port == 6443
    null_port = write(tmp_path / "b.yaml", "https-listen-port:\n")
    assert load_server_config({"config": str(null_port)}, {}).https_listen_port == 6443


def test_keys_of_the_other_subcommand_are_skipped(tmp_path: Path) -> None:
    shared = write(
        tmp_path / "config.yaml",
        "server: https://192.0.2.1:6443\ntoken: t0ken\ncluster-cidr: 10.60.0.0/16\n",
    )
    server = load_server_config({"config": str(shared)}, {})
    assert server.cluster_cidr == ipaddress.ip_network("10.60.0.0/16")
    agent = load_agent_config({"config": str(shared)}, {})
    assert agent.server == "https://192.0.2.1:6443"
    assert agent.token == "t0ken"


def test_agent_reads_k3py_url_and_token_from_environment() -> None:
    env = {"K3PY_URL": "https://192.0.2.1:6443/", "K3PY_TOKEN": "secret", "K3PY_NODE_NAME": "worker-1"}
    agent = load_agent_config({}, env, default_config_file=NO_DEFAULT_FILE)
    assert agent.server == "https://192.0.2.1:6443"
    assert agent.node_name == "worker-1"
    assert agent.agent_dir == Path("/var/lib/k3py/agent")


def test_environment_is_ignored_for_flags_without_a_variable() -> None:
    config = load_server_config({}, {"K3PY_HTTPS_LISTEN_PORT": "1"}, default_config_file=NO_DEFAULT_FILE)
    assert config.https_listen_port == 6443


def test_config_is_frozen_and_keeps_secrets_out_of_repr() -> None:
    config = load_server_config({"token": "s3cret"}, {}, default_config_file=NO_DEFAULT_FILE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.https_listen_port = 1  # type: ignore[misc]
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(("model", "flags"), [(ServerConfig, SERVER_FLAGS), (AgentConfig, AGENT_FLAGS)])
def test_every_flag_is_a_field_and_every_field_a_flag(
    model: type[ServerConfig | AgentConfig], flags: tuple[Flag, ...]
) -> None:
    field_names = {field.name for field in dataclasses.fields(model)}
    flag_fields = {flag.dest for flag in flags}
    assert field_names == flag_fields
