"""A container's environment, as the kubelet builds it.

Order and precedence follow upstream: the service variables of the pod's namespace come
first (when ``enableServiceLinks`` is on, plus the ``kubernetes`` service's always), then
``envFrom`` sources in order (later keys win), then ``env`` entries, each of which may refer
to earlier ones as ``$(NAME)``. ``$$`` escapes a ``$``, and a reference to an unknown name
stays as written. Command and args are expanded against the final environment in the same way.

Missing config maps, secrets or keys that are not optional raise :class:`ConfigError`: the
container then waits with reason ``CreateContainerConfigError`` and the message says which.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from math import ceil
from typing import Any

from k3py.api.defaults import quantity_value

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]
"""``lookup(kind, name)``: a ConfigMap or Secret of the pod's namespace, or None."""


class ConfigError(Exception):
    """A container cannot be configured (``CreateContainerConfigError``)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """``$(NAME)`` replaced by ``env[NAME]`` where known; ``$$`` becomes ``$``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i : end + 1])
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def service_variables(services: list[Obj], *, namespace: str, links: bool) -> dict[str, str]:
    """Docker-link style variables for the namespace's services (and the master ``kubernetes``)."""
    env: dict[str, str] = {}
    chosen = []
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        if (meta.get("namespace") == namespace and links) or (
            meta.get("namespace") == "default" and meta.get("name") == "kubernetes"
        ):
            chosen.append(svc)
    for svc in sorted(chosen, key=lambda s: s["metadata"]["name"]):
        name = svc["metadata"]["name"].upper().replace("-", "_")
        spec = svc["spec"]
        ip = spec["clusterIP"]
        ports = spec.get("ports") or []
        if not ports:
            continue
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{name}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
        first = ports[0]
        proto = (first.get("protocol") or "TCP").lower()
        env[f"{name}_PORT"] = f"{proto}://{ip}:{first['port']}"
        for port in ports:
            p = port.get("protocol") or "TCP"
            prefix = f"{name}_PORT_{port['port']}_{p.upper()}"
            env[prefix] = f"{p.lower()}://{ip}:{port['port']}"
            env[f"{prefix}_PROTO"] = p.lower()
            env[f"{prefix}_PORT"] = str(port["port"])
            env[f"{prefix}_ADDR"] = ip
    return env


def field_value(pod: Obj, path: str) -> str:
    """A ``fieldRef`` of the pod (``metadata.labels['k']``, ``status.podIP``…)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path):
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{_escape(v)}"' for k, v in sorted(values.items()))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(a.get("ip", "") for a in status.get("hostIPs") or []),
        "status.podIPs": ",".join(a.get("ip", "") for a in status.get("podIPs") or []),
    }
    if path not in simple:
        raise ConfigError(f"unsupported fieldPath: {path}")
    return str(simple[path] or "")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def resource_value(pod: Obj, container_name: str, ref: Obj, node_allocatable: Mapping[str, str]) -> str:
    """A ``resourceFieldRef``: the container's limit (node allocatable when unset) or request."""
    name = ref.get("containerName") or container_name
    container = next(
        (
            c
            for c in (pod.get("spec") or {}).get("containers", [])
            + (pod.get("spec") or {}).get("initContainers", [])
            if c.get("name") == name
        ),
        None,
    )
    if container is None:
        raise ConfigError(f"resourceFieldRef: no container named {name}")
    resource = str(ref.get("resource") or "")
    kind, _, what = resource.partition(".")
    resources = container.get("resources") or {}
    value = quantity_value((resources.get(kind) or {}).get(what))
    if value is None and kind == "limits":
        value = quantity_value(node_allocatable.get(what))
    if value is None and kind == "requests":
        value = Fraction(0)
    if value is None:
        raise ConfigError(f"unsupported resourceFieldRef resource: {resource}")
    divisor = quantity_value(ref.get("divisor") or "1") or Fraction(1)
    if divisor == 0:
        divisor = Fraction(1)
    return str(ceil(value / divisor))


def container_env(
    pod: Obj,
    container: Obj,
    *,
    services: list[Obj],
    lookup: Lookup,
    node_allocatable: Mapping[str, str],
) -> dict[str, str]:
    """The container's environment, in order.

    ``envFrom`` keys are taken as they come, prefix and all: since 1.34 (relaxed environment
    variable validation) a name may be any printable ASCII but ``=``, the API server checks
    prefixes and keys, and the upstream kubelet skips nothing.
    """
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    env = service_variables(
        services, namespace=namespace, links=spec.get("enableServiceLinks", True) is not False
    )
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref is None:
                continue
            data = _source_data(lookup, kind, ref.get("name", ""), bool(ref.get("optional")))
            for k, v in data.items():
                env[prefix + k] = v
    for item in container.get("env") or []:
        name = item.get("name", "")
        source = item.get("valueFrom")
        if source is None:
            env[name] = expand(str(item.get("value") or ""), env)
            continue
        value = _value_from(pod, container, source, lookup, node_allocatable)
        if value is None:
            continue
        env[name] = value
    return env


def _value_from(
    pod: Obj, container: Obj, source: Obj, lookup: Lookup, node_allocatable: Mapping[str, str]
) -> str | None:
    if ref := source.get("fieldRef"):
        return field_value(pod, str(ref.get("fieldPath") or ""))
    if ref := source.get("resourceFieldRef"):
        return resource_value(pod, container.get("name", ""), ref, node_allocatable)
    for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        ref = source.get(key)
        if ref is None:
            continue
        optional = bool(ref.get("optional"))
        data = _source_data(lookup, kind, ref.get("name", ""), optional)
        wanted = ref.get("key", "")
        if wanted not in data:
            if optional:
                return None
            if not data and lookup(kind, ref.get("name", "")) is None:
                raise ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
            raise ConfigError(f"couldn't find key {wanted} in {kind} {_namespace(lookup)}{ref.get('name')}")
        return data[wanted]
    raise ConfigError("unsupported valueFrom source")


def _namespace(lookup: Lookup) -> str:
    namespace = getattr(lookup, "namespace", "")
    return f"{namespace}/" if namespace else ""


def _source_data(lookup: Lookup, kind: str, name: str, optional: bool) -> dict[str, str]:
    obj = lookup(kind, name)
    if obj is None:
        if optional:
            return {}
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    return decoded_data(obj)


def decoded_data(obj: Obj) -> dict[str, str]:
    """A ConfigMap's ``data`` (and decodable ``binaryData``) or a Secret's decoded ``data``."""
    out: dict[str, str] = {}
    if obj.get("kind") == "Secret":
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v).decode(errors="replace")
        for k, v in (obj.get("stringData") or {}).items():
            out[k] = v
        return out
    out.update(obj.get("data") or {})
    return out
