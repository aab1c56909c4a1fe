"""The host's architecture in Kubernetes's (and Go's) naming: amd64, arm64, arm."""

from __future__ import annotations

import platform

_KUBE_NAMES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "armv8l": "arm"}


def kube_arch() -> str:
    machine = platform.machine().lower()
    return _KUBE_NAMES.get(machine, machine)


def kube_platform() -> str:
    return f"linux/{kube_arch()}"
