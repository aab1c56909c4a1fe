"""Pod specs turned into container environments, CRI configs and pod status (no runtime)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from k3py.agent import cri_config, podstatus
from k3py.agent.envvars import ConfigError, container_env, expand, service_variables
from k3py.agent.podstatus import ContainerView
from k3py.agent.volumes import write_atomically


def pod(**spec: object) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
        "status": {"podIP": "10.42.0.5", "hostIP": "10.0.0.1"},
    }


def test_expand_follows_upstream_rules() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(MISSING) $(A", env) == "$(MISSING) $(A"
    assert expand("a$b$", env) == "a$b$"


def test_service_variables_for_the_namespace_and_the_master_service() -> None:
    services = [
        {
            "metadata": {"name": "web-svc", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.7", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        },
        {
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443}]},
        },
        {
            "metadata": {"name": "other", "namespace": "elsewhere"},
            "spec": {"clusterIP": "10.43.0.9", "ports": [{"port": 1}]},
        },
        {
            "metadata": {"name": "headless", "namespace": "ns"},
            "spec": {"clusterIP": "None", "ports": [{"port": 1}]},
        },
    ]
    env = service_variables(services, namespace="ns", links=True)
    assert env["WEB_SVC_SERVICE_HOST"] == "10.43.0.7"
    assert env["WEB_SVC_SERVICE_PORT_HTTP"] == "80"
    assert env["WEB_SVC_PORT_80_TCP"] == "tcp://10.43.0.7:80"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert not any(k.startswith(("OTHER_", "HEADLESS_")) for k in env)
    assert "WEB_SVC_SERVICE_HOST" not in service_variables(services, namespace="ns", links=False)


def test_container_env_sources_and_references() -> None:
    cm = {"kind": "ConfigMap", "data": {"color": "blue", "bad-key!": "x", "K": "v"}}
    secret = {"kind": "Secret", "data": {"password": base64.b64encode(b"s3cret").decode()}}
    objects = {("ConfigMap", "cfg"): cm, ("Secret", "sec"): secret}
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
            {
                "name": "MISSING",
                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}},
            },
            {"name": "GREETING", "value": "hi $(NAME) in $(CFG_color)"},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
        ],
        "resources": {"limits": {"memory": "64Mi"}},
    }
    p = pod(containers=[container])
    env = container_env(
        p, container, services=[], lookup=lambda k, n: objects.get((k, n)), node_allocatable={"memory": "1Gi"}
    )
    assert env["NAME"] == "p" and env["APP"] == "x" and env["IP"] == "10.42.0.5"
    assert env["PW"] == "s3cret"
    assert env["GREETING"] == "hi p in blue"
    assert env["MEM"] == "64"
    assert "MISSING" not in env
    assert env["CFG_bad-key!"] == "x"


def test_env_from_keeps_every_prefix_as_upstream() -> None:
    """Relaxed names (1.34+): digits, symbols and ``$`` in a prefix; nothing is skipped."""
    secret = {"kind": "Secret", "data": {"data-1": base64.b64encode(b"value-1\n").decode()}}
    prefixes = ["", "1-", "$_-", "ABC_", "#@!"]
    container = {
        "name": "c",
        "envFrom": [{"secretRef": {"name": "s"}, **({"prefix": p} if p else {})} for p in prefixes],
        "env": [{"name": "LAST", "value": "$(1-data-1)"}],
    }
    env = container_env(pod(), container, services=[], lookup=lambda k, n: secret, node_allocatable={})
    for prefix in prefixes:
        assert env[f"{prefix}data-1"] == "value-1\n"
    assert env["LAST"] == "value-1\n"
    assert list(env)[-1] == "LAST"


def test_missing_key_is_a_config_error() -> None:
    container = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}],
    }
    with pytest.raises(ConfigError, match="couldn't find key k"):
        container_env(
            pod(),
            container,
            services=[],
            lookup=lambda k, n: {"kind": "ConfigMap", "data": {}},
            node_allocatable={},
        )
    with pytest.raises(ConfigError, match='configmap "cfg" not found'):
        container_env(pod(), container, services=[], lookup=lambda k, n: None, node_allocatable={})


def test_sandbox_and_container_config() -> None:
    p = pod(
        containers=[
            {
                "name": "c",
                "image": "busybox",
                "ports": [{"containerPort": 80, "hostPort": 8080}],
                "command": ["sh", "-c"],
                "args": ["echo $(X)"],
                "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "32Mi"}},
                "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["NET_ADMIN"]}},
            }
        ]
    )
    node = cri_config.NodeSettings(node_name="n1", cluster_dns="10.43.0.10")
    sandbox = cri_config.sandbox_config(p, node, log_directory=Path("/logs"), attempt=0)
    assert sandbox["hostname"] == "p"
    assert sandbox["dns_config"]["servers"] == ["10.43.0.10"]
    assert sandbox["dns_config"]["searches"][0] == "ns.svc.cluster.local"
    assert sandbox["port_mappings"] == [
        {"protocol": 0, "container_port": 80, "host_port": 8080, "host_ip": ""}
    ]
    assert sandbox["linux"]["cgroup_parent"] == "/k3py/n1/podu1"
    config = cri_config.container_config(
        p,
        p["spec"]["containers"][0],
        env={"X": "1"},
        mounts=[],
        restart_count=2,
        init=False,
        termination_log=Path("/t"),
    )
    assert config["args"] == ["echo 1"]
    assert config["log_path"] == "c/2.log"
    resources = config["linux"]["resources"]
    assert resources["cpu_shares"] == 256 and resources["cpu_quota"] == 50000
    assert resources["memory_limit_in_bytes"] == 32 << 20
    security = config["linux"]["security_context"]
    assert security["run_as_user"] == {"value": 1000}
    assert security["capabilities"]["add_capabilities"] == ["NET_ADMIN"]
    assert {"container_path": "/dev/termination-log", "host_path": "/t", "readonly": False} in config[
        "mounts"
    ]
    host = cri_config.sandbox_config(pod(hostNetwork=True), node, log_directory=Path("/l"), attempt=0)
    assert host["hostname"] == "" and host["linux"]["security_context"]["namespace_options"]["network"] == 2


def _view(name: str, state: dict[str, Any], last: dict[str, Any] | None = None) -> ContainerView:
    return ContainerView(name, "img", state=state, last_state=last or {})


def test_phase_rules() -> None:
    running: dict[str, Any] = {"running": {}}
    ok = {"terminated": {"exitCode": 0}}
    bad = {"terminated": {"exitCode": 1}}
    crash = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert podstatus.phase("Always", [], [_view("a", running)], init_failed=False) == "Running"
    assert podstatus.phase("Never", [], [_view("a", ok)], init_failed=False) == "Succeeded"
    assert podstatus.phase("Never", [], [_view("a", ok), _view("b", bad)], init_failed=False) == "Failed"
    assert podstatus.phase("OnFailure", [], [_view("a", bad)], init_failed=False) == "Running"
    assert (
        podstatus.phase("Always", [], [_view("a", crash, {"terminated": {"exitCode": 1}})], init_failed=False)
        == "Running"
    )
    assert podstatus.phase("Always", [], [_view("a", {"waiting": {}})], init_failed=False) == "Pending"
    assert (
        podstatus.phase("Always", [_view("i", running)], [_view("a", {"waiting": {}})], init_failed=False)
        == "Pending"
    )
    assert (
        podstatus.phase("Never", [_view("i", bad)], [_view("a", {"waiting": {}})], init_failed=True)
        == "Failed"
    )


def test_qos_and_conditions() -> None:
    assert podstatus.qos_class(pod()) == "BestEffort"
    guaranteed = pod(containers=[{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}])
    assert podstatus.qos_class(guaranteed) == "Guaranteed"
    burstable = pod(containers=[{"name": "c", "resources": {"requests": {"cpu": "1"}}}])
    assert podstatus.qos_class(burstable) == "Burstable"
    views = [_view("a", {"running": {}})]
    conditions = podstatus.conditions(pod(), [], views, sandbox_ready=True, pod_phase="Running")
    ready = next(c for c in conditions if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["message"] == "containers with unready status: [a]"
    views[0].ready = True
    conditions = podstatus.conditions(pod(), [], views, sandbox_ready=True, pod_phase="Running")
    assert {c["type"]: c["status"] for c in conditions} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }


def test_conditions_others_own_are_kept() -> None:
    disrupted = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    mine = {"type": "Ready", "status": "True"}
    evicted = pod()
    evicted["status"] = {"conditions": [disrupted, mine]}
    views = [_view("a", {"terminated": {"exitCode": 137}})]
    conditions = podstatus.conditions(evicted, [], views, sandbox_ready=False, pod_phase="Failed")
    assert disrupted in conditions
    assert [c["status"] for c in conditions if c["type"] == "Ready"] == ["False"]


def test_atomic_writer_swaps_whole_sets(tmp_path: Path) -> None:
    assert write_atomically(tmp_path, {"a": (b"1", 0o644), "sub/b": (b"2", 0o600)})
    assert (tmp_path / "a").read_text() == "1" and (tmp_path / "sub" / "b").read_text() == "2"
    assert (tmp_path / "a").is_symlink() and (tmp_path / "..data").is_symlink()
    assert not write_atomically(tmp_path, {"a": (b"1", 0o644), "sub/b": (b"2", 0o600)})
    first = (tmp_path / "..data").readlink()
    assert write_atomically(tmp_path, {"a": (b"changed", 0o644)})
    assert (tmp_path / "a").read_text() == "changed"
    assert not (tmp_path / "sub").exists()
    assert not (tmp_path / first).exists()
    assert ((tmp_path / "a").stat().st_mode & 0o777) == 0o644
