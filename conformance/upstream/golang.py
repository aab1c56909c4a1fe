"""The Go toolchain as the upstream build uses it: which ``go``, with which environment.

Every Go command of the build runs with the same environment (:func:`go_environment`):

- ``GOTOOLCHAIN=local``: the installed toolchain builds, never one downloaded behind our back;
- ``GOWORK=off`` and ``GOFLAGS=-mod=mod -buildvcs=false -modcacherw``: modules come from the
  proxy as go.mod says (Kubernetes' vendor/ and go.work are not used), no VCS stamping (the tree
  is not a checkout), and new module-cache files stay deletable;
- ``CGO_ENABLED=0`` and ``GOOS/GOARCH/GOARM`` of the target: static binaries, cross-built when asked;
- ``GOMODCACHE``: ``$GOMODCACHE`` if set, else ``~/.cache/k3py/go/pkg/mod``, shared by every
  checkout and version (modules are immutable and content-addressed, ~650 MB for Kubernetes);
- ``GOCACHE`` and ``GOPROXY`` stay as the caller has them (Go's defaults: ``~/.cache/go-build``
  and proxy.golang.org). A warm GOCACHE (~4 GB) turns the 20-minute e2e.test build into ~3 minutes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from build.targets import Target
from conformance.upstream.errors import GoNotFound
from k3py.util import proc

GO_FALLBACK_DIRS = (Path("/usr/local/go/bin"),)
GOFLAGS = "-mod=mod -buildvcs=false -modcacherw"


def find_go() -> Path:
    """``$K3PY_GO``, else ``go`` on PATH, else /usr/local/go/bin/go."""
    if explicit := os.environ.get("K3PY_GO"):
        return Path(explicit)
    found = proc.which("go", extra_dirs=GO_FALLBACK_DIRS)
    if found is None:
        raise GoNotFound(
            "no Go toolchain: install Go (go.dev/dl) into /usr/local/go, or set K3PY_GO to a go binary"
        )
    return found


def default_gomodcache() -> Path:
    """``$GOMODCACHE`` when set, else ``~/.cache/k3py/go/pkg/mod``."""
    if explicit := os.environ.get("GOMODCACHE"):
        return Path(explicit)
    return Path.home() / ".cache" / "k3py" / "go" / "pkg" / "mod"


def go_environment(
    gomodcache: Path, target: Target | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of every Go command: ``base`` (default ``os.environ``) with the build's settings."""
    env = dict(os.environ if base is None else base)
    for name in ("GOFLAGS", "GOWORK", "GOTOOLCHAIN", "GOOS", "GOARCH", "GOARM", "GOARM64", "CGO_ENABLED"):
        env.pop(name, None)
    env.update(
        GOMODCACHE=str(gomodcache),
        GOTOOLCHAIN="local",
        GOWORK="off",
        GOFLAGS=GOFLAGS,
        CGO_ENABLED="0",
        GOOS="linux",
    )
    if target is not None:
        env["GOARCH"] = target.go_arch
        if target.go_arch == "arm" and target.oci_variant.startswith("v"):
            env["GOARM"] = target.oci_variant.removeprefix("v")
    return env
