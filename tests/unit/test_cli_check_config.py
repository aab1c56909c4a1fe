"""``k3py check-config`` reports what the host has, and exits 1 only if a requirement is missing."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from k3py.cli.check_config import Host, check_host, report
from k3py.cli.main import run


def program(directory: Path, name: str, version: str = "") -> None:
    script = directory / name
    script.write_text(f"#!/bin/sh\necho '{version or name}'\n")
    script.chmod(0o755)


def fake_host(root: Path, *, cgroup_v2: bool = True) -> Host:
    proc, sys_dir, bin_dir, cni = root / "proc", root / "sys", root / "bin", root / "cni"
    for directory in (proc / "sys" / "net" / "bridge", proc / "sys" / "net" / "ipv4", bin_dir, cni):
        directory.mkdir(parents=True)
    (proc / "filesystems").write_text("nodev\tsysfs\nnodev\toverlay\n")
    (proc / "sys" / "net" / "ipv4" / "ip_forward").write_text("1\n")
    if cgroup_v2:
        (sys_dir / "fs" / "cgroup").mkdir(parents=True)
        (sys_dir / "fs" / "cgroup" / "cgroup.controllers").write_text(
            "cpuset cpu io memory hugetlb pids rdma\n"
        )
    else:
        (proc / "cgroups").write_text(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\nmemory\t3\t1\t1\npids\t4\t1\t1\n"
        )
    program(bin_dir, "containerd", "containerd github.com/containerd/containerd 1.6.20")
    program(bin_dir, "runc", "runc version 1.1.5")
    for name in ("ip", "mount", "iptables"):
        program(bin_dir, name)
    for plugin in ("bridge", "host-local", "loopback", "portmap"):
        program(cni, plugin)
    return Host(
        proc=proc,
        sys=sys_dir,
        modules=root / "modules",
        path=str(bin_dir),
        cni_dirs=(cni,),
        kernel_release="6.1.0",
    )


def findings_text(host: Host) -> tuple[int, str]:
    out = io.StringIO()
    code = report(check_host(host), out)
    return code, out.getvalue()


@pytest.mark.parametrize("cgroup_v2", [True, False])
def test_complete_host_passes(tmp_path: Path, cgroup_v2: bool) -> None:
    code, text = findings_text(fake_host(tmp_path, cgroup_v2=cgroup_v2))
    assert code == 0, text
    assert f"[+] cgroups: {'v2' if cgroup_v2 else 'v1'} with cpu, memory, pids" in text
    assert "[+] containerd: " in text and "(containerd github.com/containerd/containerd 1.6.20)" in text
    assert "[+] runc: " in text and "(runc version 1.1.5)" in text
    assert "[+] cni/portmap: " in text
    assert text.endswith("All required items are present.\n")


def test_missing_runtime_fails_with_package_hint(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "bin" / "containerd").unlink()
    (tmp_path / "cni" / "loopback").unlink()
    code, text = findings_text(host)
    assert code == 1
    assert "[-] containerd: not found (Debian package containerd)" in text
    assert "[-] cni/loopback: not found in " in text and "containernetworking-plugins" in text
    assert text.endswith("2 required item(s) missing: containerd, cni/loopback\n")


def test_missing_optional_items_only_warn(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "bin" / "iptables").unlink()
    (tmp_path / "proc" / "sys" / "net" / "ipv4" / "ip_forward").write_text("0\n")
    code, text = findings_text(host)
    assert code == 0
    assert "[!] iptables (optional): not found" in text
    assert "[!] ip_forward (optional): disabled" in text


def test_cgroup_controller_missing(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "sys" / "fs" / "cgroup" / "cgroup.controllers").write_text("cpu io\n")
    code, text = findings_text(host)
    assert code == 1
    assert "[-] cgroups: v2 without controller(s) memory, pids" in text


def test_overlay_as_unloaded_module(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "proc" / "filesystems").write_text("nodev\tsysfs\n")
    module_dir = tmp_path / "modules" / "6.1.0" / "kernel" / "fs" / "overlayfs"
    module_dir.mkdir(parents=True)
    (module_dir / "overlay.ko.xz").write_bytes(b"")
    code, text = findings_text(host)
    assert code == 0
    assert "[+] overlay: available as a module" in text
    module_dir.joinpath("overlay.ko.xz").unlink()
    assert findings_text(host)[0] == 1


def test_command_reports_this_host(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["check-config"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert out.splitlines()[0].startswith("[+] kernel: Linux ")
    assert "cgroups" in out and "containerd" in out
    assert ("All required items are present." in out) == (code == 0)


def test_command_with_empty_search_path_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check-config", "--path", str(tmp_path)]) == 1
    assert "[-] containerd: not found" in capsys.readouterr().out


def test_a_release_binary_brings_its_runtime_in_its_payload(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    for program in ("containerd", "runc"):
        (tmp_path / "bin" / program).unlink()
    for plugin in ("bridge", "portmap"):
        (tmp_path / "cni" / plugin).unlink()
    code, text = findings_text(dataclasses.replace(host, payload="ab" * 32))
    assert code == 0, text
    assert "[+] containerd: carried by this binary (unpacked once to <data-dir>/data/abababababab…)" in text
    assert "[+] runc: carried by this binary" in text and "[+] cni/bridge: carried by this binary" in text
    code, text = findings_text(host)
    assert code == 1 and "[-] containerd: not found" in text
