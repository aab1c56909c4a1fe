"""Pod and container specs turned into CRI sandbox and container configurations.

The labels carried on sandboxes and containers (``io.kubernetes.pod.uid``,
``io.kubernetes.container.name``…) are the upstream kubelet's, so a restarted agent finds
what it started before by listing the runtime, and tools such as ``crictl`` show the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from k3py.agent.envvars import expand
from k3py.api.defaults import quantity_value

Obj = dict[str, Any]

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_KIND = "io.kubernetes.container.kind"  # "init" for init containers
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_PATH = "io.kubernetes.container.terminationMessagePath"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"

# runtime.v1 enums
NAMESPACE_POD, NAMESPACE_CONTAINER, NAMESPACE_NODE = 0, 1, 2
PROTOCOLS = {"TCP": 0, "UDP": 1, "SCTP": 2}

NETNS_RECORD = "sandbox-netns"
"""In a pod's directory: the network namespaces of its sandboxes, one path a line, so that
``k3py killall`` can remove those a stopped runtime left behind."""

CPU_PERIOD = 100_000
MIN_SHARES = 2
SHARES_PER_CPU = 1024


@dataclass(frozen=True)
class NodeSettings:
    """What the sandbox config takes from the node."""

    node_name: str
    cluster_dns: str
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")


def cgroup_parent(node_name: str, pod_uid: str) -> str:
    """The pod's cgroup (cgroupfs driver), one tree per node so nodes sharing a host stay apart."""
    return f"/k3py/{node_name}/pod{pod_uid}"


def namespace_options(spec: Obj) -> Obj:
    """Which namespaces a pod's containers share with the node or each other."""
    if spec.get("hostPID"):
        pid = NAMESPACE_NODE
    else:
        pid = NAMESPACE_POD if spec.get("shareProcessNamespace") else NAMESPACE_CONTAINER
    return {
        "network": NAMESPACE_NODE if spec.get("hostNetwork") else NAMESPACE_POD,
        "pid": pid,
        "ipc": NAMESPACE_NODE if spec.get("hostIPC") else NAMESPACE_POD,
    }


def host_network(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def sandbox_config(pod: Obj, node: NodeSettings, *, log_directory: Path, attempt: int) -> Obj:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    uid = meta["uid"]
    labels = dict(meta.get("labels") or {})
    labels.update({POD_NAME: meta["name"], POD_NAMESPACE: meta["namespace"], POD_UID: uid})
    security = spec.get("securityContext") or {}
    sandbox_security: Obj = {"namespace_options": namespace_options(spec)}
    if (user := security.get("runAsUser")) is not None:
        sandbox_security["run_as_user"] = {"value": int(user)}
    if (group := security.get("runAsGroup")) is not None:
        sandbox_security["run_as_group"] = {"value": int(group)}
    if groups := security.get("supplementalGroups"):
        sandbox_security["supplemental_groups"] = [int(g) for g in groups]
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    if any((c.get("securityContext") or {}).get("privileged") for c in containers):
        sandbox_security["privileged"] = True  # containerd allows privileged containers only there
    config: Obj = {
        "metadata": {"name": meta["name"], "uid": uid, "namespace": meta["namespace"], "attempt": attempt},
        "hostname": "" if spec.get("hostNetwork") else pod_hostname(pod),
        "log_directory": str(log_directory),
        "dns_config": dns_config(pod, node),
        "port_mappings": port_mappings(pod),
        "labels": labels,
        "annotations": dict(meta.get("annotations") or {}),
        "linux": {
            "cgroup_parent": cgroup_parent(node.node_name, uid),
            "security_context": sandbox_security,
            "sysctls": {s["name"]: str(s.get("value", "")) for s in security.get("sysctls") or []},
        },
    }
    return config


def pod_hostname(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    name = spec.get("hostname") or pod["metadata"]["name"]
    return str(name)[:63].rstrip("-.")


def dns_config(pod: Obj, node: NodeSettings) -> Obj:
    """ClusterFirst: the cluster DNS and search path; Default: the node's resolv.conf; None: dnsConfig."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    namespace = pod["metadata"]["namespace"]
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
        servers = [node.cluster_dns]
        domain = node.cluster_domain
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
        options = ["ndots:5"]
    elif policy != "None":
        servers, searches, options = _host_resolv(node.resolv_conf)
    custom = spec.get("dnsConfig") or {}
    servers += [s for s in custom.get("nameservers") or [] if s not in servers]
    searches += [s for s in custom.get("searches") or [] if s not in searches]
    for option in custom.get("options") or []:
        name = option.get("name", "")
        text = f"{name}:{option['value']}" if option.get("value") is not None else name
        options = [o for o in options if o.split(":")[0] != name] + [text]
    return {"servers": servers[:3], "searches": searches[:32], "options": options}


def _host_resolv(path: Path) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        text = path.read_text()
    except OSError:
        return servers, searches, options
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields[0] == "options":
            options += fields[1:]
    return servers, searches, options


def port_mappings(pod: Obj) -> list[Obj]:
    out = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if not port.get("hostPort"):
                continue
            out.append(
                {
                    "protocol": PROTOCOLS.get(port.get("protocol") or "TCP", 0),
                    "container_port": int(port["containerPort"]),
                    "host_port": int(port["hostPort"]),
                    "host_ip": port.get("hostIP") or "",
                }
            )
    return out


def _quantity(resources: Obj, kind: str, name: str) -> Fraction | None:
    return quantity_value((resources.get(kind) or {}).get(name))


def linux_resources(container: Obj) -> Obj:
    """CPU shares from the request (limit when no request), a CFS quota from the limit, memory limit."""
    resources = container.get("resources") or {}
    cpu_request = _quantity(resources, "requests", "cpu")
    cpu_limit = _quantity(resources, "limits", "cpu")
    memory_limit = _quantity(resources, "limits", "memory")
    if cpu_request is None:
        cpu_request = cpu_limit
    shares = MIN_SHARES if cpu_request is None else max(MIN_SHARES, int(cpu_request * SHARES_PER_CPU))
    out: Obj = {"cpu_shares": shares}
    if cpu_limit is not None and cpu_limit > 0:
        out["cpu_period"] = CPU_PERIOD
        out["cpu_quota"] = max(1000, int(cpu_limit * CPU_PERIOD))
    if memory_limit is not None and memory_limit > 0:
        out["memory_limit_in_bytes"] = int(memory_limit)
    return out


def security_context(pod: Obj, container: Obj) -> Obj:
    pod_security = (pod.get("spec") or {}).get("securityContext") or {}
    security = container.get("securityContext") or {}
    spec = pod.get("spec") or {}
    out: Obj = {
        "namespace_options": namespace_options(spec),
        "privileged": bool(security.get("privileged")),
        "readonly_rootfs": bool(security.get("readOnlyRootFilesystem")),
    }
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    if user is not None:
        out["run_as_user"] = {"value": int(user)}
    group = security.get("runAsGroup", pod_security.get("runAsGroup"))
    if group is not None:
        out["run_as_group"] = {"value": int(group)}
    groups = [int(g) for g in pod_security.get("supplementalGroups") or []]
    if (fs_group := pod_security.get("fsGroup")) is not None:
        groups.append(int(fs_group))
    if groups:
        out["supplemental_groups"] = groups
    if capabilities := security.get("capabilities"):
        out["capabilities"] = {
            "add_capabilities": [_cap(c) for c in capabilities.get("add") or []],
            "drop_capabilities": [_cap(c) for c in capabilities.get("drop") or []],
        }
    if security.get("allowPrivilegeEscalation") is False:
        out["no_new_privs"] = True
    return out


def _cap(name: str) -> str:
    """A capability as the pod spec names it (``NET_ADMIN``): containerd adds the ``CAP_`` itself."""
    return str(name).upper().removeprefix("CAP_")


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False


def container_config(
    pod: Obj,
    container: Obj,
    *,
    env: Mapping[str, str],
    mounts: list[Mount],
    restart_count: int,
    init: bool,
    termination_log: Path | None,
) -> Obj:
    name = container["name"]
    meta = pod["metadata"]
    command = [expand(c, env) for c in container.get("command") or []]
    args = [expand(a, env) for a in container.get("args") or []]
    labels = {
        POD_NAME: meta["name"],
        POD_NAMESPACE: meta["namespace"],
        POD_UID: meta["uid"],
        CONTAINER_NAME: name,
    }
    annotations = {
        RESTART_COUNT: str(restart_count),
        TERMINATION_PATH: container.get("terminationMessagePath") or "/dev/termination-log",
        GRACE_PERIOD: str((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)),
    }
    if init:
        labels[CONTAINER_KIND] = "init"
    all_mounts = list(mounts)
    if termination_log is not None:
        all_mounts.append(Mount(annotations[TERMINATION_PATH], str(termination_log)))
    return {
        "metadata": {"name": name, "attempt": restart_count},
        "image": {"image": container.get("image", "")},
        "command": command,
        "args": args,
        "working_dir": container.get("workingDir") or "",
        "envs": [{"key": k, "value": v} for k, v in env.items()],
        "mounts": [
            {"container_path": m.container_path, "host_path": m.host_path, "readonly": m.readonly}
            for m in all_mounts
        ],
        "labels": labels,
        "annotations": annotations,
        "log_path": f"{name}/{restart_count}.log",
        "stdin": bool(container.get("stdin")),
        "stdin_once": bool(container.get("stdinOnce")),
        "tty": bool(container.get("tty")),
        "linux": {
            "resources": linux_resources(container),
            "security_context": security_context(pod, container),
        },
    }
