"""Where containerd pulls from: K3s's ``registries.yaml`` mirrors and the embedded registry mirror.

containerd 1.6's CRI reads one ``hosts.toml`` per registry under its ``config_path``
(``<data-dir>/agent/etc/containerd/certs.d/<registry>/hosts.toml``) at every pull, and tries
the hosts it lists in order before the registry itself (``server``). The agent writes them at
every start, as K3s does:

1. the embedded registry mirror (``--embedded-registry``, :mod:`k3py.agent.registry_mirror`),
   for every registry it mirrors: those named under ``mirrors:`` in ``registries.yaml`` and,
   because its images are served there, the registry of every imported image;
2. the ``endpoint:`` list that ``registries.yaml`` gives the registry.

``registries.yaml`` is K3s's file (``--private-registry``, ``/etc/k3py/registries.yaml`` by
default); only its ``mirrors:`` part is read. The ``"*"`` mirror is containerd's ``_default``
directory, used for a registry that has no directory of its own. Directories k3py wrote
before and no longer needs are removed; anything else in ``certs.d`` is left alone.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import yaml

log = logging.getLogger(__name__)

HEADER: Final = "# Written by k3py at every agent start from registries.yaml: edits here do not last."
DEFAULT_DIRECTORY: Final = "_default"
DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_SERVER: Final = "https://registry-1.docker.io"
CAPABILITIES: Final = '["pull", "resolve"]'


class RegistryConfigError(Exception):
    """``registries.yaml`` cannot be read: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Registries:
    """``registries.yaml``'s mirrors: registry (or ``*``) → endpoint URLs, in order."""

    mirrors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def read_registries(path: Path) -> Registries:
    """The mirrors ``path`` names; none when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Registries()
    except OSError as exc:
        raise RegistryConfigError(f"{path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RegistryConfigError(f"{path}: not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryConfigError(f"{path}: expected a mapping with mirrors: and configs:")
    if data.get("configs"):
        log.warning("%s: configs (credentials, TLS) are not supported yet and are ignored", path)
    mirrors: dict[str, tuple[str, ...]] = {}
    for registry, entry in (data.get("mirrors") or {}).items():
        entry = {} if entry is None else entry
        endpoints = entry.get("endpoint") or [] if isinstance(entry, dict) else None
        if not isinstance(endpoints, list) or not all(_is_url(e) for e in endpoints):
            raise RegistryConfigError(
                f"{path}: mirrors.{registry}.endpoint must be a list of http:// or https:// URLs"
            )
        mirrors[str(registry)] = tuple(str(e).rstrip("/") for e in endpoints)
    return Registries(mirrors)


def _is_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def render_hosts(registry: str, endpoints: Iterable[str], mirror_url: str | None) -> str:
    """One registry's ``hosts.toml``: the embedded mirror first, then the endpoints, then the registry."""
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [HEADER]
    if registry != "*":
        lines.append(f"server = {q(DOCKER_HUB_SERVER if registry == DOCKER_HUB else 'https://' + registry)}")
    hosts = ([mirror_url] if mirror_url else []) + [e for e in endpoints if e != mirror_url]
    for host in hosts:
        lines += ["", f"[host.{q(host)}]", f"  capabilities = {CAPABILITIES}"]
    return "\n".join(lines) + "\n"


def write_hosts(
    certs_dir: Path, registries: Registries, *, mirror_url: str | None, mirrored: Iterable[str] = ()
) -> list[Path]:
    """Write the ``hosts.toml`` of every registry with a mirror or endpoints; the files written.

    ``mirror_url`` (the embedded mirror, None when off) is listed for the registries of
    ``registries`` and for ``mirrored`` (those of the imported images).
    """
    served = set(registries.mirrors) | set(mirrored) if mirror_url else set()
    wanted: dict[str, str] = {}
    for registry in sorted(served | set(registries.mirrors)):
        endpoints = registries.mirrors.get(registry, ())
        if registry not in served and not endpoints:
            continue
        url = mirror_url if registry in served else None
        wanted[DEFAULT_DIRECTORY if registry == "*" else registry] = render_hosts(registry, endpoints, url)
    certs_dir.mkdir(parents=True, exist_ok=True)
    for directory in certs_dir.iterdir():
        if directory.name not in wanted and _written_by_k3py(directory / "hosts.toml"):
            shutil.rmtree(directory, ignore_errors=True)
    written = []
    for name, text in wanted.items():
        path = certs_dir / name / "hosts.toml"
        path.parent.mkdir(exist_ok=True)
        partial = path.with_name("hosts.toml.partial")
        partial.write_text(text)
        partial.replace(path)
        written.append(path)
    return written


def _written_by_k3py(path: Path) -> bool:
    try:
        with path.open() as file:
            return file.readline().rstrip("\n") == HEADER
    except OSError:
        return False
