"""The proto3 codec: Go's bytes for known values, zero filling, strict encoding, CRI field numbers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3py.agent.cri import ContainerState, NamespaceMode
from k3py.agent.cri.messages import CONTAINERD, CRI
from k3py.agent.cri.wire import Schema, WireError

SCALARS = Schema(
    {
        "Scalars": (
            "s=1 b=2:bytes flag=3:bool i32=4:int32 i64=5:int64 u32=6:uint32 u64=7:uint64 e=8:enum d=9:double"
            " many=10:*int64 names=11:*str m=12:{str,int64} child=13:Child children=14:*Child"
            " by_id=15:{int32,Child}"
        ),
        "Child": "name=1 n=2:int32",
        "Smaller": "s=1",
    }
)


@pytest.mark.parametrize(
    ("message", "value", "wire"),
    [
        ("ImageSpec", {"image": "a"}, "0a0161"),
        ("ImageSpec", {"image": ""}, ""),  # proto3 zero values are left out
        ("Int64Value", {"value": -1}, "08ffffffffffffffffff01"),
        ("Int64Value", {"value": 150}, "089601"),
        ("ContainerConfig", {"metadata": {}}, "0a00"),  # a set message is written even when empty
        ("LinuxSandboxSecurityContext", {"supplemental_groups": [1, 2, 300]}, "2a040102ac02"),  # packed
        (
            "PodSandboxConfig",
            {"labels": {"b": "2", "a": "1"}},
            "3206" + "0a0161120131" + "3206" + "0a0162120132",
        ),
        ("ExecSyncResponse", {"exit_code": -1}, "18ffffffffffffffffff01"),  # int32: sign-extended, as Go
        (
            "RuntimeCondition",
            {"type": "RuntimeReady", "status": True},
            "0a0c52756e74696d655265616479" + "1001",
        ),
        ("NamespaceOption", {"network": NamespaceMode.NODE}, "0802"),
    ],
)
def test_encoding_matches_go(message: str, value: dict[str, Any], wire: str) -> None:
    assert CRI.encode(message, value).hex() == wire
    decoded = CRI.decode(message, bytes.fromhex(wire))
    for key, expected in value.items():
        if key != "metadata":
            assert decoded[key] == expected


def test_decode_fills_every_field() -> None:
    status = CRI.zero("ContainerStatus")
    assert ContainerState(status["state"]) is ContainerState.CREATED
    assert status["exit_code"] == 0 and status["reason"] == "" and status["metadata"] is None
    assert status["labels"] == {} and status["mounts"] == [] and status["resources"] is None
    assert CRI.decode("ImageStatusResponse", b"") == {"image": None, "info": {}}


def test_nested_round_trip() -> None:
    sandbox = {
        "metadata": {"name": "web", "uid": "u-1", "namespace": "default", "attempt": 2},
        "hostname": "web",
        "log_directory": "/var/log/pods/default_web_u-1",
        "dns_config": {
            "servers": ["10.43.0.10"],
            "searches": ["default.svc.cluster.local"],
            "options": ["ndots:5"],
        },
        "port_mappings": [{"protocol": 1, "container_port": 53, "host_port": 5353, "host_ip": "127.0.0.1"}],
        "labels": {"io.kubernetes.pod.name": "web"},
        "annotations": {"kubernetes.io/config.seen": "now"},
        "linux": {
            "cgroup_parent": "/kubepods/besteffort/podu-1",
            "security_context": {
                "namespace_options": {"network": 0, "pid": 1, "ipc": 0},
                "run_as_user": {"value": 0},
                "run_as_group": {"value": 3000},
                "supplemental_groups": [4000],
                "seccomp": {"profile_type": 0},
                "privileged": True,
            },
            "sysctls": {"net.ipv4.ip_unprivileged_port_start": "0"},
        },
    }
    container = {
        "metadata": {"name": "main"},
        "image": {"image": "busybox"},
        "command": ["sh"],
        "args": ["-c", "sleep 1"],
        "envs": [{"key": "A", "value": ""}],
        "mounts": [{"container_path": "/data", "host_path": "/tmp/d", "readonly": True, "propagation": 2}],
        "devices": [{"container_path": "/dev/fuse", "host_path": "/dev/fuse", "permissions": "rwm"}],
        "stdin": True,
        "tty": True,
        "linux": {
            "resources": {
                "cpu_quota": -1,
                "memory_limit_in_bytes": 1 << 40,
                "oom_score_adj": -997,
                "cpuset_cpus": "0",
            },
            "security_context": {
                "capabilities": {"add_capabilities": ["NET_ADMIN"], "drop_capabilities": ["ALL"]},
                "no_new_privs": True,
                "masked_paths": ["/proc/kcore"],
                "readonly_paths": ["/proc/sys"],
                "run_as_username": "nobody",
                "apparmor": {"profile_type": 2, "localhost_ref": "k3py"},
            },
        },
    }
    request = {"pod_sandbox_id": "abc", "config": container, "sandbox_config": sandbox}
    decoded = CRI.decode("CreateContainerRequest", CRI.encode("CreateContainerRequest", request))
    assert _strip_zeros(decoded) == _strip_zeros(request)
    # a message set to its zero value stays set: run_as_user 0 (root) is not "unset"
    assert decoded["sandbox_config"]["linux"]["security_context"]["run_as_user"] == {"value": 0}
    assert decoded["sandbox_config"]["linux"]["security_context"]["seccomp"] == {
        "profile_type": 0,
        "localhost_ref": "",
    }
    assert decoded["config"]["envs"] == [{"key": "A", "value": ""}]
    assert decoded["config"]["linux"]["resources"]["cpu_quota"] == -1


def _strip_zeros(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_zeros(v) for k, v in value.items() if v not in (None, "", 0, False, [], {}, b"")}
    if isinstance(value, list):
        return [_strip_zeros(v) for v in value]
    return value


def test_unknown_fields_are_skipped_and_unpacked_varints_accepted() -> None:
    full = SCALARS.encode("Scalars", {"s": "x", "i64": 5, "child": {"name": "c"}})
    assert SCALARS.decode("Smaller", full) == {"s": "x"}
    unpacked = bytes.fromhex("5001" + "5002")  # field 10 twice, not packed (as proto2 writers do)
    assert SCALARS.decode("Scalars", unpacked)["many"] == [1, 2]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"nope": 1}, "has no field 'nope'"),
        ({"i32": "1"}, "Scalars.i32"),
        ({"i32": 1 << 31}, "does not fit in int32"),
        ({"u64": -1}, "cannot be negative"),
        ({"s": b"bytes"}, "expected a string"),
        ({"names": "abc"}, "expected a list"),
        ({"child": "c"}, "expected a dict"),
        ({"child": {"bad": 1}}, "Child has no field 'bad'"),
    ],
)
def test_encoding_refuses_what_does_not_fit(value: dict[str, Any], fragment: str) -> None:
    with pytest.raises(WireError, match=fragment):
        SCALARS.encode("Scalars", value)


@pytest.mark.parametrize(
    "data",
    ["0a05616263", "08", "08ffffffffffffffffffffff01", "0b", "0a02ffff", "49000000"],
)
def test_broken_bytes_are_wire_errors(data: str) -> None:
    with pytest.raises(WireError):
        SCALARS.decode("Scalars", bytes.fromhex(data))


def test_layouts_are_checked() -> None:
    with pytest.raises(WireError, match="unknown type 'Missing'"):
        Schema({"A": "x=1:Missing"})
    with pytest.raises(WireError, match="used twice"):
        Schema({"A": "x=1 y=1"})
    with pytest.raises(WireError, match="map keys"):
        Schema({"A": "x=1:{double,str}"})


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "s": st.text(),
            "b": st.binary(),
            "flag": st.booleans(),
            "i32": st.integers(-(1 << 31), (1 << 31) - 1),
            "i64": st.integers(-(1 << 63), (1 << 63) - 1),
            "u32": st.integers(0, (1 << 32) - 1),
            "u64": st.integers(0, (1 << 64) - 1),
            "e": st.integers(0, 3),
            "d": st.floats(allow_nan=False),
            "many": st.lists(st.integers(-(1 << 63), (1 << 63) - 1)),
            "names": st.lists(st.text()),
            "m": st.dictionaries(st.text(), st.integers(-(1 << 63), (1 << 63) - 1)),
            "children": st.lists(st.fixed_dictionaries({"name": st.text(), "n": st.integers(-5, 5)})),
            "by_id": st.dictionaries(
                st.integers(-(1 << 31), (1 << 31) - 1), st.fixed_dictionaries({"n": st.integers(0, 9)})
            ),
        },
    )
)
def test_round_trip(value: dict[str, Any]) -> None:
    decoded = SCALARS.decode("Scalars", SCALARS.encode("Scalars", value))
    for key, expected in value.items():
        if key == "children":
            assert [(c["name"], c["n"]) for c in decoded[key]] == [(c["name"], c["n"]) for c in expected]
        elif key == "by_id":
            assert {k: v["n"] for k, v in decoded[key].items()} == {k: v["n"] for k, v in expected.items()}
        else:
            assert decoded[key] == expected


@pytest.mark.parametrize(
    ("message", "name", "number"),
    [
        # k8s.io/cri-api pkg/apis/runtime/v1/api.proto (v0.37)
        ("PodSandboxConfig", "linux", 8),
        ("PodSandboxConfig", "port_mappings", 5),
        ("LinuxPodSandboxConfig", "sysctls", 3),
        ("LinuxSandboxSecurityContext", "run_as_group", 8),
        ("LinuxSandboxSecurityContext", "seccomp", 9),
        ("ContainerConfig", "linux", 15),
        ("ContainerConfig", "log_path", 11),
        ("ContainerConfig", "stop_signal", 18),
        ("LinuxContainerSecurityContext", "run_as_group", 12),
        ("LinuxContainerSecurityContext", "no_new_privs", 11),
        ("LinuxContainerSecurityContext", "apparmor", 16),
        ("LinuxContainerResources", "memory_swap_limit_in_bytes", 10),
        ("Mount", "propagation", 5),
        ("ContainerStatus", "resources", 16),
        ("ContainerStatus", "log_path", 15),
        ("PodSandboxStatus", "network", 5),
        ("PodSandboxNetworkStatus", "additional_ips", 2),
        ("ImageSpec", "user_specified_image", 18),
        ("Image", "pinned", 8),
        ("ContainerStats", "writable_layer", 4),
        ("ImageFsInfoResponse", "container_filesystems", 2),
    ],
)
def test_cri_field_numbers(message: str, name: str, number: int) -> None:
    assert {f.name: f.number for f in CRI.fields[message]}[name] == number


def test_containerd_write_request() -> None:
    request = {"action": 2, "ref": "r", "total": 3, "expected": "sha256:x", "offset": 0, "data": b"abc"}
    assert CONTAINERD.decode("WriteContentRequest", CONTAINERD.encode("WriteContentRequest", request)) == {
        **request,
        "labels": {},
    }
