"""killall removes the network namespaces the kubelet recorded and that nothing uses any more."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from k3py.agent.cri_config import NETNS_RECORD
from k3py.agent.killall import recorded_netns

pytestmark = pytest.mark.root


def test_recorded_and_unused_namespaces_are_found(tmp_path: Path) -> None:
    name = f"cni-k3pyt-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        pod = tmp_path / "agent" / "kubelet" / "pods" / "uid-1"
        pod.mkdir(parents=True)
        # containerd names them under /var/run, a link to /run where they are mounted.
        (pod / NETNS_RECORD).write_text(
            f"/var/run/netns/{name}\n/run/netns/cni-gone-{secrets.token_hex(4)}\n"
        )
        assert recorded_netns(tmp_path) == {Path(f"/run/netns/{name}")}
        # One a process still lives in is not ours to remove.
        with subprocess.Popen(["ip", "netns", "exec", name, "sleep", "30"]) as sleeper:
            try:
                for _ in range(50):
                    if recorded_netns(tmp_path) == set():
                        break
                    subprocess.run(["sleep", "0.1"], check=True)
                assert recorded_netns(tmp_path) == set()
            finally:
                sleeper.kill()
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
