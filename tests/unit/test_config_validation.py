"""Bad settings are rejected with one line naming the flag, what is wrong and where it was set."""

from __future__ import annotations

from pathlib import Path

import pytest

from k3py.cli.main import run
from k3py.config import ConfigError, load_agent_config, load_server_config, values

NO_DEFAULT_FILE = Path("/nonexistent/k3py/config.yaml")

BAD_SERVER_FLAGS = [
    ("https-listen-port", "0", "not a port number"),
    ("https-listen-port", "65536", "not a port number"),
    ("https-listen-port", "http", "not a port number"),
    ("bind-address", "999.1.1.1", "not an IPv4 or IPv6 address"),
    ("advertise-address", "example.com", "not an IPv4 or IPv6 address"),
    ("node-ip", "10.0.0", "not an IPv4 or IPv6 address"),
    ("cluster-cidr", "10.42.0.0", "not a CIDR"),
    ("cluster-cidr", "10.42.0.1/16", "host bits set"),
    ("service-cidr", "10.43.0.0/33", "not a valid CIDR"),
    ("cluster-dns", "10.42.0.10", "not inside --service-cidr"),
    ("cluster-dns", "10.43.0.0", "network address"),
    ("write-kubeconfig-mode", "0888", "not an octal file mode"),
    ("write-kubeconfig-mode", "01777", "not an octal file mode"),
    ("disable", "kube-proxy", "not a component that can be disabled"),
    ("tls-san", "not a name!", "neither an IP address nor a DNS name"),
    ("node-name", "Node_1", "not a valid node name"),
    ("token", "two words", "no whitespace"),
    ("datastore-endpoint", "etcd://127.0.0.1:2379", "not supported yet"),
    ("datastore-endpoint", "postgres://db/k3py", "not supported yet"),
    ("datastore-endpoint", "mongodb://db", "unknown datastore scheme"),
    ("datastore-endpoint", "sqlite://", "names no database file"),
    ("datastore-endpoint", "sqlite:///x.db?_journal=WAL", "no query parameters"),
    ("datastore-compact-interval", "-1", "not a number of seconds"),
    ("datastore-compact-retain", "-1", "not a whole number"),
]


def given(flag: str, value: str) -> dict[str, object]:
    return {flag: [value]} if flag in ("disable", "tls-san") else {flag: value}


@pytest.mark.parametrize(("flag", "value", "problem"), BAD_SERVER_FLAGS)
def test_bad_flag_value_names_flag_and_problem(flag: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_server_config(given(flag, value), {}, default_config_file=NO_DEFAULT_FILE)
    message = str(caught.value)
    assert message.startswith(f"--{flag}: ")
    assert problem in message
    assert "\n" not in message


@pytest.mark.parametrize(("flag", "value", "problem"), BAD_SERVER_FLAGS[:6])
def test_cli_exits_2_with_one_line_naming_the_flag(
    flag: str, value: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["server", f"--{flag}", value, "--config", "/dev/null"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"k3py server: error: --{flag}: ")
    assert problem in err


def test_bad_value_in_config_file_names_the_file(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("cluster-cidr: 10.42.0.0/99\n")
    with pytest.raises(ConfigError, match=rf"^--cluster-cidr: .* \(from config file {config_file}\)$"):
        load_server_config({"config": str(config_file)}, {})


def test_bad_value_in_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^--node-name: .* \(from environment variable K3PY_NODE_NAME\)$"):
        load_server_config({}, {"K3PY_NODE_NAME": "UPPER"}, default_config_file=NO_DEFAULT_FILE)


def test_unknown_config_file_key_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("https-listen-port: 6443\nhttps-port: 7443\n")
    code = run(["server", "--config", str(config_file)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"k3py server: error: unknown key 'https-port' in config file {config_file}\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- a\n- b\n", "must be a YAML mapping"),
        ("port: [unclosed\n", "not valid YAML at line"),
        ("--data-dir: /x\n", "without the leading dashes"),
        ("config: /etc/other.yaml\n", "cannot name another config file"),
        ("disable-agent: maybe\n", "not a boolean"),
        ("https-listen-port: [1, 2]\n", "expected a single value"),
    ],
)
def test_malformed_config_files(tmp_path: Path, text: str, problem: str) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_server_config({"config": str(config_file)}, {})


def test_unknown_flag_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["server", "--no-such-flag"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "unrecognized arguments: --no-such-flag" in err


def test_flag_without_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["server", "--https-listen-port"]) == 2
    assert "--https-listen-port" in capsys.readouterr().err


def test_agent_requires_server_and_token() -> None:
    with pytest.raises(ConfigError, match=r"^--server: missing"):
        load_agent_config({"token": "t"}, {}, default_config_file=NO_DEFAULT_FILE)
    with pytest.raises(ConfigError, match=r"^--token: missing.*\$K3PY_TOKEN"):
        load_agent_config({"server": "https://192.0.2.1:6443"}, {}, default_config_file=NO_DEFAULT_FILE)


@pytest.mark.parametrize("url", ["http://192.0.2.1:6443", "192.0.2.1:6443", "https://", "https://host:99999"])
def test_agent_server_must_be_an_https_url(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^--server: "):
        load_agent_config({"server": url, "token": "t"}, {}, default_config_file=NO_DEFAULT_FILE)


@pytest.mark.parametrize("endpoint", ["sqlite:///srv/k3py/state.db", "/srv/k3py/state.db"])
def test_sqlite_endpoint_is_accepted(endpoint: str) -> None:
    config = load_server_config({"datastore-endpoint": endpoint}, {}, default_config_file=NO_DEFAULT_FILE)
    assert config.datastore_endpoint.path == Path("/srv/k3py/state.db")
    assert str(config.datastore_endpoint) == "sqlite:///srv/k3py/state.db"


def test_ipv6_service_network_with_dns_inside() -> None:
    config = load_server_config(
        {"service-cidr": "fd00:43::/112", "cluster-cidr": "fd00:42::/56", "cluster-dns": "fd00:43::a"},
        {},
        default_config_file=NO_DEFAULT_FILE,
    )
    assert str(config.cluster_dns) == "fd00:43::a"


def test_overlapping_pod_and_service_networks_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^--cluster-cidr: 10.0.0.0/8 overlaps --service-cidr"):
        load_server_config({"cluster-cidr": "10.0.0.0/8"}, {}, default_config_file=NO_DEFAULT_FILE)


def test_runtime_config_entries_keep_their_order_so_the_last_one_wins() -> None:
    parse = values.list_of(values.runtime_config_item, unique=False)
    entries = parse("batch/v1=false, batch/v1 = true,batch/v1=false,v1/pods")
    assert entries == (("batch/v1", False), ("batch/v1", True), ("batch/v1", False), ("v1/pods", True))
    assert dict(entries)["batch/v1"] is False
    with pytest.raises(ValueError, match="needs =true or =false"):
        parse("api/beta=1")
    with pytest.raises(ValueError, match="not a boolean"):
        parse("apps/v1=maybe")
