"""Rewriting Kubernetes' go.mod so that the module builds from the proxy alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.upstream import gomod
from conformance.upstream.errors import ModuleLayoutChanged

# The shape of k8s.io/kubernetes' go.mod, cut down: placeholders, staging replaces, a replace-only
# module (sample-controller), a real replace that must survive, single-line forms.
GO_MOD = """\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/onsi/ginkgo/v2 v2.32.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
\tk8s.io/klog/v2 v2.130.1
\tk8s.io/kubectl v0.0.0 // indirect
)

require k8s.io/metrics v0.0.0

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl
\tk8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
\tgithub.com/example/fork => github.com/example/fork v1.2.3
)

replace k8s.io/metrics => ./staging/src/k8s.io/metrics
"""


def test_staging_replaces_are_dropped_and_placeholders_get_the_published_version() -> None:
    edits = gomod.staging_edits(GO_MOD, "v0.37.2")
    assert edits.drop_replace == (
        "k8s.io/api",
        "k8s.io/client-go",
        "k8s.io/kubectl",
        "k8s.io/sample-controller",
        "k8s.io/metrics",
    )
    # sample-controller is only replaced, never required: it must not become a requirement.
    assert edits.require == ("k8s.io/api", "k8s.io/client-go", "k8s.io/kubectl", "k8s.io/metrics")
    assert edits.arguments() == [
        "-dropreplace=k8s.io/api",
        "-dropreplace=k8s.io/client-go",
        "-dropreplace=k8s.io/kubectl",
        "-dropreplace=k8s.io/sample-controller",
        "-dropreplace=k8s.io/metrics",
        "-require=k8s.io/api@v0.37.2",
        "-require=k8s.io/client-go@v0.37.2",
        "-require=k8s.io/kubectl@v0.37.2",
        "-require=k8s.io/metrics@v0.37.2",
    ]


def test_a_go_mod_without_staging_replaces_is_not_kubernetes() -> None:
    with pytest.raises(ModuleLayoutChanged, match=r"no \./staging/src replace"):
        gomod.staging_edits("module example.com/x\n\ngo 1.22\n", "v0.37.2")


def test_a_placeholder_without_a_staging_replace_means_the_layout_changed() -> None:
    text = GO_MOD.replace("\tk8s.io/client-go => ./staging/src/k8s.io/client-go\n", "")
    with pytest.raises(ModuleLayoutChanged, match=r"k8s.io/client-go at v0.0.0 without a ./staging replace"):
        gomod.staging_edits(text, "v0.37.2")


def test_leftovers_name_what_a_rewrite_missed() -> None:
    assert gomod.leftovers(GO_MOD)[0] == "replace k8s.io/api => ./staging"
    assert "require k8s.io/metrics v0.0.0" in gomod.leftovers(GO_MOD)


def test_the_go_directive_and_the_toolchain_check() -> None:
    assert gomod.go_directive(GO_MOD) == "1.26.0"
    assert gomod.toolchain_satisfies("go1.26.8", "1.26.0")
    assert gomod.toolchain_satisfies("go1.27", "1.26.0")
    assert not gomod.toolchain_satisfies("go1.25.9", "1.26.0")
    assert not gomod.toolchain_satisfies("go1.26.0", "1.26.1")
    with pytest.raises(ModuleLayoutChanged):
        gomod.go_directive("module x\n")


@pytest.mark.skipif(shutil.which("go") is None and not Path("/usr/local/go/bin/go").exists(), reason="no Go")
def test_go_mod_edit_accepts_the_arguments_and_leaves_nothing_behind(tmp_path: Path) -> None:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    (tmp_path / "go.mod").write_text(GO_MOD, encoding="utf-8")
    edits = gomod.staging_edits(GO_MOD, "v0.37.2")
    env = {**os.environ, "GOFLAGS": "", "GOTOOLCHAIN": "local", "GOWORK": "off"}
    subprocess.run([go, "mod", "edit", *edits.arguments()], cwd=tmp_path, check=True, env=env)
    rewritten = (tmp_path / "go.mod").read_text(encoding="utf-8")
    assert gomod.leftovers(rewritten) == []
    assert "k8s.io/api v0.37.2" in rewritten
    assert "k8s.io/kubectl v0.37.2 // indirect" in rewritten
    assert "sample-controller" not in rewritten
    assert "github.com/example/fork => github.com/example/fork v1.2.3" in rewritten
    assert "k8s.io/klog/v2 v2.130.1" in rewritten
