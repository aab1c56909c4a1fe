"""Build the upstream conformance suite (``e2e.test`` and ``ginkgo``) for one Kubernetes release.

:func:`build_suite` is the entry point; it returns a :class:`Suite`. The steps, each one status
line on the console and every command's output in ``<cache>/conformance/<version>/build.log``:

1. **resolve**: the newest ``v1.37.x`` the module proxy lists (``go list -m -versions``), or the
   exact release asked for. Offline, a minor falls back to the newest valid build in the cache.
2. **cached?**: a valid ``manifest.json`` (:mod:`conformance.upstream.cache`) ends the build here.
3. **download**: ``go mod download -json k8s.io/kubernetes@<version>`` (zip checked by go.sum's
   database); its ``.info`` gives the release's commit time, used as the build date.
4. **source**: the module copied to ``src/`` (without vendor/), ``go.work`` deleted, go.mod
   rewritten (:mod:`conformance.upstream.gomod` explains why it is done here and not carried in
   the repository). Kept between builds, keyed by the module's hash.
5. **e2e.test**: ``go test -c -trimpath ./test/e2e`` with the ldflags of hack/lib/version.sh
   (version, major, minor, tree state, build date), so ``e2e.test --version`` and the
   suite's version checks see the release.
6. **ginkgo**: ``go build github.com/onsi/ginkgo/v2/ginkgo`` at the version go.mod requires.
7. **check**: both binaries run (``--version``), then ``manifest.json`` is written, last.

Go settings are :mod:`conformance.upstream.golang`'s. Two builds running at once wait for each
other (a lock in the version directory); the second then finds the first's build.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from build.paths import cache_dir
from build.report import sha256_of
from build.runner import CommandFailed, CommandLog, call
from conformance.upstream import cache, golang, gomod, versions
from conformance.upstream.errors import GoTooOld, ModuleLayoutChanged, UpstreamError, VersionNotFound
from conformance.upstream.progress import Steps
from k3py.util.locks import exclusive

E2E_PACKAGE = "./test/e2e"
GINKGO_PACKAGE = "github.com/onsi/ginkgo/v2/ginkgo"
GINKGO_MODULE = "github.com/onsi/ginkgo/v2"
VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
SOURCE_MARKER = ".k3py-source.json"
NICE = ("nice", "-n", "10")
"""The long Go builds yield the CPU to interactive work."""


@dataclass(frozen=True, kw_only=True)
class Suite:
    """A built suite: the binaries the runner executes and where the version's cache lives."""

    version: str
    directory: Path
    """``<cache>/conformance/<version>``."""
    e2e_test: Path
    ginkgo: Path
    source: Path
    """The module's source tree (``test/images``, ``test/utils/image/manifest.go``…)."""
    images_dir: Path
    """Where :func:`conformance.upstream.images.build_images` writes the test images."""
    log: Path
    manifest: cache.SuiteManifest
    cached: bool
    """True when nothing was built: the cache already held this suite."""

    @property
    def report(self) -> dict[str, object]:
        """The manifest as JSON-ready data (versions, sha256s, build time)."""
        return self.manifest.to_json()


@dataclass(frozen=True)
class Module:
    """The downloaded k8s.io/kubernetes module: where the proxy's copy is, its hash and release time."""

    directory: Path
    sum: str
    time: str


def build_suite(
    version: str | None = None,
    cache_root: Path | None = None,
    console: Console | None = None,
    *,
    rebuild: bool = False,
    gomodcache: Path | None = None,
) -> Suite:
    """Build (or find in the cache) e2e.test and ginkgo for Kubernetes ``version``.

    ``version``: None for the newest ``1.37`` release the proxy offers, a minor (``"1.37"``) or
    an exact release (``"1.37.2"``/``"v1.37.2"``). ``cache_root``: default
    :func:`build.paths.cache_dir` (``.cache/k3py``). ``rebuild`` ignores a valid cache.
    Raises :class:`~conformance.upstream.errors.UpstreamError` (a ``BuildError``) on failure.
    """
    console = console or Console(highlight=False)
    root = cache_root or cache_dir()
    go = golang.find_go()
    env = golang.go_environment(gomodcache or golang.default_gomodcache())
    top = root / "conformance"
    top.mkdir(parents=True, exist_ok=True)
    recipe = cache.recipe_digest(_recipe())
    (top / "resolve.log").unlink(missing_ok=True)
    with CommandLog(top / "resolve.log") as resolve_log:
        steps = Steps(console, resolve_log)
        with steps.step("resolve Kubernetes version") as note:
            chosen = _resolve(go, env, version, top, recipe, resolve_log)
            note.text = chosen
    directory = cache.version_dir(root, chosen)
    directory.mkdir(parents=True, exist_ok=True)
    with exclusive(directory / ".lock"):
        found = None if rebuild else _cached(directory, chosen, recipe)
        if found is not None:
            console.print(f"[green]✓[/] e2e.test and ginkgo {chosen}  [dim]cached in {directory}[/]")
            return found
        log_path = directory / "build.log"
        log_path.unlink(missing_ok=True)
        with CommandLog(log_path) as log:
            why = cache.problems(cache.read_manifest(directory), directory, version=chosen, recipe=recipe)
            log.note(f"building {chosen}: " + ("; ".join(why) if not rebuild else "rebuild requested"))
            return _build(go, env, chosen, directory, recipe, Steps(console, log))


def find_suite(version: str, cache_root: Path | None = None) -> Suite | None:
    """The cached suite of exactly ``version`` (``v1.37.2``) if it is valid, else None; builds nothing."""
    directory = cache.version_dir(cache_root or cache_dir(), version)
    return _cached(directory, version, cache.recipe_digest(_recipe()))


def _recipe() -> dict[str, object]:
    """What shapes the binaries besides the version (a change here invalidates every cached build)."""
    return {
        "goflags": golang.GOFLAGS,
        "cgo": "0",
        "e2e": ["test", "-c", "-trimpath", "-ldflags", _ldflags("<version>", "<time>"), E2E_PACKAGE],
        "ginkgo": ["build", "-trimpath", "-ldflags", "-s -w", GINKGO_PACKAGE],
        "source": "module zip, vendor/ and go.work removed, staging replaces -> published v0 modules",
    }


def _ldflags(version: str, build_date: str) -> str:
    """hack/lib/version.sh's ``-X`` flags for both version packages, plus ``-s -w``."""
    release = versions.parse_release(version)
    minor = str(release.minor) if release else "<minor>"
    values = {
        "gitVersion": version,
        "gitMajor": "1",
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = ["-s", "-w"]
    for package in VERSION_PACKAGES:
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)


def _resolve(
    go: Path, env: dict[str, str], request: str | None, top: Path, recipe: str, log: CommandLog
) -> str:
    exact = versions.exact_version(request) if request else None
    if exact is not None:
        return exact
    try:
        listed = call([go, "list", "-m", "-versions", versions.MODULE], log=log, env=env, cwd=top)
    except CommandFailed as exc:
        fallback = _newest_cached(top, request, recipe)
        if fallback is None:
            raise VersionNotFound(
                f"cannot list {versions.MODULE} versions from the module proxy (exit {exc.returncode}) "
                f"and no build is cached; check GOPROXY or name an exact version (log: {log.path})"
            ) from exc
        log.note(f"module proxy unreachable: using the cached {fallback}")
        return fallback
    return versions.select_version(listed, request)


def _newest_cached(top: Path, request: str | None, recipe: str) -> str | None:
    """The newest version with a valid build under ``top`` matching ``request``'s minor."""
    names = "go " + " ".join(path.name for path in top.iterdir() if path.is_dir())
    try:
        newest = versions.select_version(names, request)
    except VersionNotFound:
        return None
    return newest if _cached(top / newest, newest, recipe) is not None else None


def _cached(directory: Path, version: str, recipe: str) -> Suite | None:
    manifest = cache.read_manifest(directory)
    if cache.problems(manifest, directory, version=version, recipe=recipe) or manifest is None:
        return None
    return _suite(directory, manifest, cached=True)


def _suite(directory: Path, manifest: cache.SuiteManifest, *, cached: bool) -> Suite:
    return Suite(
        version=manifest.kubernetes_version,
        directory=directory,
        e2e_test=directory / manifest.binaries["e2e.test"].path,
        ginkgo=directory / manifest.binaries["ginkgo"].path,
        source=directory / "src",
        images_dir=directory / "images",
        log=directory / "build.log",
        manifest=manifest,
        cached=cached,
    )


def _build(go: Path, env: dict[str, str], version: str, directory: Path, recipe: str, steps: Steps) -> Suite:
    started = time.monotonic()
    log = steps.log
    with steps.step(f"download k8s.io/kubernetes@{version}") as note:
        module = _download(go, env, version, directory, log)
        go_version = call([go, "env", "GOVERSION"], log=log, env=env).strip()
        note.text = f"{module.sum}, released {module.time}"
    with steps.step("prepare the module source (go.mod rewrite)") as note:
        source, go_mod_sha = _prepare_source(go, env, module, version, directory / "src", log)
        required = gomod.go_directive((source / "go.mod").read_text(encoding="utf-8"))
        if not gomod.toolchain_satisfies(go_version, required):
            raise GoTooOld(
                f"{go} is {go_version} but Kubernetes {version} needs go {required} or newer "
                "(GOTOOLCHAIN=local: install a newer Go or set K3PY_GO)"
            )
        ginkgo_version = call(
            [go, "list", "-m", "-f", "{{.Version}}", GINKGO_MODULE], log=log, env=env, cwd=source
        ).strip()
        note.text = f"go {required}+ ({go_version}), ginkgo {ginkgo_version}"
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    e2e_test, ginkgo = bin_dir / "e2e.test", bin_dir / "ginkgo"
    with steps.step("build e2e.test (go test -c ./test/e2e)") as note:
        partial = bin_dir / "e2e.test.partial"
        ldflags = _ldflags(version, module.time)
        call(
            [*_nice(), go, "test", "-c", "-trimpath", "-ldflags", ldflags, "-o", partial, E2E_PACKAGE],
            log=log,
            env=env,
            cwd=source,
        )
        partial.replace(e2e_test)
        note.text = _size(e2e_test)
    with steps.step(f"build ginkgo {ginkgo_version}") as note:
        partial = bin_dir / "ginkgo.partial"
        call(
            [*_nice(), go, "build", "-trimpath", "-ldflags", "-s -w", "-o", partial, GINKGO_PACKAGE],
            log=log,
            env=env,
            cwd=source,
        )
        partial.replace(ginkgo)
        note.text = _size(ginkgo)
    with steps.step("check the binaries") as note:
        reported = call([e2e_test, "--version"], log=log, cwd=directory)
        if version not in reported:
            raise UpstreamError(f"e2e.test reports version {reported.strip()!r}, expected {version}")
        ginkgo_reported = call([ginkgo, "version"], log=log, cwd=directory)
        if ginkgo_version.removeprefix("v") not in ginkgo_reported:
            raise UpstreamError(f"ginkgo reports {ginkgo_reported.strip()!r}, expected {ginkgo_version}")
        goarch = call([go, "env", "GOARCH"], log=log, env=env).strip()
        manifest = cache.SuiteManifest(
            kubernetes_version=version,
            staging_version=versions.staging_version(version),
            ginkgo_version=ginkgo_version,
            go_version=go_version,
            goos="linux",
            goarch=goarch,
            module_sum=module.sum,
            module_time=module.time,
            go_mod_sha256=go_mod_sha,
            recipe=recipe,
            binaries={
                "e2e.test": cache.Binary.of(e2e_test, directory),
                "ginkgo": cache.Binary.of(ginkgo, directory),
            },
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            build_seconds=round(time.monotonic() - started, 1),
            step_seconds=dict(steps.seconds),
        )
        manifest.write(directory)
        note.text = f"manifest {directory / cache.MANIFEST}"
    return _suite(directory, manifest, cached=False)


def _download(go: Path, env: dict[str, str], version: str, directory: Path, log: CommandLog) -> Module:
    output = call(
        [go, "mod", "download", "-json", f"{versions.MODULE}@{version}"], log=log, env=env, cwd=directory
    )
    data = json.loads(output)
    if data.get("Error"):
        raise VersionNotFound(f"{versions.MODULE}@{version}: {data['Error']}")
    info = json.loads(Path(data["Info"]).read_text(encoding="utf-8"))
    return Module(directory=Path(data["Dir"]), sum=str(data["Sum"]), time=str(info["Time"]))


def _prepare_source(
    go: Path, env: dict[str, str], module: Module, version: str, source: Path, log: CommandLog
) -> tuple[Path, str]:
    """The writable, rewritten module tree in ``source``; reused when made from the same zip."""
    marker = source / SOURCE_MARKER
    if marker.is_file() and (source / "go.mod").is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        go_mod_sha = sha256_of(source / "go.mod")
        if recorded == {"module_sum": module.sum, "go_mod_sha256": go_mod_sha}:
            log.note(f"reusing the prepared source in {source}")
            return source, go_mod_sha
    partial = source.with_name(source.name + ".partial")
    for stale in (partial, source):
        _remove_tree(stale)
    log.note(f"copying {module.directory} to {partial} (without vendor/)")
    shutil.copytree(
        module.directory,
        partial,
        ignore=lambda where, names: {"vendor"} if Path(where) == module.directory else set(),
    )
    _make_writable(partial)
    for name in ("go.work", "go.work.sum"):
        (partial / name).unlink(missing_ok=True)
    edits = gomod.staging_edits(
        (partial / "go.mod").read_text(encoding="utf-8"), versions.staging_version(version)
    )
    call([go, "mod", "edit", *edits.arguments()], log=log, env=env, cwd=partial)
    left = gomod.leftovers((partial / "go.mod").read_text(encoding="utf-8"))
    if left:
        raise ModuleLayoutChanged(f"go.mod still has {', '.join(left)} after the rewrite")
    go_mod_sha = sha256_of(partial / "go.mod")
    (partial / SOURCE_MARKER).write_text(
        json.dumps({"module_sum": module.sum, "go_mod_sha256": go_mod_sha}) + "\n", encoding="utf-8"
    )
    partial.replace(source)
    return source, go_mod_sha


def _make_writable(tree: Path) -> None:
    """The module cache's files are read-only; the copy must be editable (and deletable)."""
    for directory, _, files in os.walk(tree):
        here = Path(directory)
        here.chmod(here.stat().st_mode | stat.S_IWUSR)
        for name in files:
            path = here / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _remove_tree(path: Path) -> None:
    if path.exists():
        _make_writable(path)
        shutil.rmtree(path)


def _nice() -> tuple[str, ...]:
    return NICE if shutil.which(NICE[0]) else ()


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"
