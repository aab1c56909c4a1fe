"""Developer tasks for k3py: ``invoke --list`` shows them, ``invoke --help TASK`` their options.

- ``invoke deps``    install the Debian packages k3py, its tests and its build need; set up QEMU (root)
- ``invoke build``   build the one-file binary dist/k3py-linux-<arch> for a target (root)
- ``invoke manifest`` strip the API manifest and schemas to a profile, as a build does; show why
- ``invoke test``    run the test suite (pytest, in parallel)
- ``invoke lint``    ruff check, ruff format --check, mypy, import-linter
- ``invoke server``  run a development server with its state under .cache/dev
- ``invoke conformance`` run the native or the upstream conformance suite on an ephemeral cluster (root)

Tasks can be chained: ``invoke deps test`` runs both, in order. Every external command
goes through ``k3py.util.proc`` (the build's through ``build.runner``, which also logs their
output) and is echoed as ``+ cmd`` before it runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task
from rich.console import Console, RenderableType
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Task as ProgressTask
from rich.table import Table
from rich.text import Text

from build import apimanifest
from build import host as build_host
from build.errors import BuildError
from build.paths import cache_dir
from build.pipeline import STAGES, BuildOptions, build_target
from build.report import BuildReport
from build.targets import Target, native_target_name, resolve_targets, target_names
from k3py.api.profiles import ROW_HEADER, Profile
from k3py.util import proc

ROOT = Path(__file__).resolve().parent
DEV_DIR = ROOT / ".cache" / "dev"
LINT_PATHS = ("distro", "build", "conformance", "tests", "tasks.py")
DEFAULT_MARKERS = "not qemu and not network"
API_REPORT = ROOT / "docs" / "api-surface.md"

# The options of a build's API profile (k3py.api.profiles.Profile), shared by build and manifest.
PROFILE_HELP = {
    "keep_alpha": "keep the alpha group-versions (stripped by default); the server then serves them",
    "keep_deprecated": "keep deprecated APIs (otherwise stripped, unless a conformance test needs them)",
    "only": "keep only these APIs: GROUP or GROUP/VERSION, comma-separated (the core group is 'core')",
    "drop": "strip these APIs whatever else says: GROUP or GROUP/VERSION, comma-separated",
}

DEBIAN_PACKAGES = {
    "sqlite3": "the sqlite3 shell, to inspect the datastore (<data-dir>/server/db/state.db)",
    "iproute2": "ip, for node addresses, routes and network namespaces",
    "util-linux": "mount, nsenter and unshare, for pod sandboxes and namespaced tests",
    "procps": "ps, pgrep and sysctl, to inspect processes and kernel settings",
    "ca-certificates": "trusted CAs, for HTTPS to package and image registries",
    "docker.io": "dockerd, for the docker build backend (its tests start a private engine)",
    "containerd": "the container runtime the node agent runs pods in (binaries carry their own)",
    "runc": "the OCI runtime containerd starts containers with",
    "containernetworking-plugins": "the pod network's CNI plugins (bridge, host-local, portmap, loopback)",
    "catatonit": "the pause process of k3py's sandbox image",
    "iptables": "masquerading and hostPort rules of the pod network, the service proxy's rules",
    "conntrack": "the service proxy clears UDP flows to endpoints that are gone",
    "busybox-static": "the busybox image that tests and examples run as pods",
}

DEBIAN_PACKAGES.update(build_host.BUILD_PACKAGES)

console = Console(highlight=False)


class _EchoCommands(logging.Handler):
    """Shows the ``+ cmd`` lines of ``k3py.util.proc`` on the console, dimmed."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(record.getMessage(), style="dim", markup=False, soft_wrap=True)


_proc_log = logging.getLogger("k3py.util.proc")
_proc_log.addHandler(_EchoCommands())
_proc_log.setLevel(logging.INFO)
_proc_log.propagate = False


def _tool(name: str) -> Path:
    """A program from this virtualenv first (ruff, mypy, k3py...), else from PATH."""
    found = proc.which(name, path=str(Path(sys.executable).parent)) or proc.which(name)
    if found is None:
        raise Exit(f"{name} not found: install the dev extras (.venv/bin/pip install -e '.[dev]')", code=1)
    return found


def _run(command: Sequence[str | Path], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    """Run a command through the choke point; turn a failure into invoke's Exit."""
    try:
        proc.run(command, cwd=cwd, env=env)
    except proc.CommandFailed as exc:
        raise Exit(code=exc.returncode) from None
    except proc.ProcessError as exc:
        raise Exit(str(exc), code=1) from None


@task(
    help={
        "markers": f"pytest -m expression; '' runs every tier (default: '{DEFAULT_MARKERS}')",
        "path": "test file or directory; repeatable (default: tests)",
        "workers": "pytest-xdist workers: a number, or 'auto' for one per CPU (default: auto)",
    },
    iterable=["path"],
)
def test(
    c: Context, markers: str = DEFAULT_MARKERS, path: list[str] | None = None, workers: str = "auto"
) -> None:
    """Run the tests in parallel. Tests marked `root` run only as root (euid 0)."""
    command: list[str | Path] = [sys.executable, "-m", "pytest", "-n", workers, "--dist", "loadgroup"]
    if markers:
        command += ["-m", markers]
    command += path or ["tests"]
    if os.geteuid() != 0:
        console.print("[yellow]Not root:[/] tests marked [bold]root[/] will be skipped.")
    console.rule(f"[bold]test[/] ({markers or 'all tiers'})")
    _run(command, cwd=ROOT)


@task(help={"fix": "apply ruff's fixes and formatting instead of only checking"})
def lint(c: Context, fix: bool = False) -> None:
    """Check style, formatting, types and import layering; report every failure."""
    paths = [p for p in LINT_PATHS if (ROOT / p).exists()]
    ruff = _tool("ruff")
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff check", [ruff, "check", *(["--fix"] if fix else []), *paths]),
        ("ruff format", [ruff, "format", *([] if fix else ["--check"]), *paths]),
        ("mypy", [_tool("mypy"), *paths]),
        ("import-linter", [_tool("lint-imports")]),
    ]
    failed: list[str] = []
    for name, command in steps:
        console.rule(f"[bold]{name}[/]")
        try:
            proc.run(command, cwd=ROOT)
        except proc.ProcessError:
            failed.append(name)
    if failed:
        raise Exit(f"lint failed: {', '.join(failed)}", code=1)
    console.print("[green]lint: all checks passed[/]")


def _installed(packages: list[str]) -> set[str]:
    result = proc.run(
        [_dpkg_query(), "-W", "-f=${Package} ${db:Status-Status}\\n", *packages],
        capture=True,
        check=False,
        quiet=True,
    )
    return {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}


def _dpkg_query() -> Path:
    found = proc.which("dpkg-query")
    if found is None:
        raise Exit("invoke deps needs Debian (or a derivative): dpkg-query not found", code=1)
    return found


@task(help={"dry_run": "only show what would be installed"})
def deps(c: Context, dry_run: bool = False) -> None:
    """Install the Debian packages k3py and its build need (apt-get); register the QEMU handlers."""
    installed = _installed(list(DEBIAN_PACKAGES))
    missing = [name for name in DEBIAN_PACKAGES if name not in installed]
    table = Table(title="Debian packages", title_justify="left")
    table.add_column("package", style="bold")
    table.add_column("status")
    table.add_column("why k3py needs it")
    for name, why in DEBIAN_PACKAGES.items():
        status = "[green]installed[/]" if name in installed else "[yellow]to install[/]"
        table.add_row(name, status, why)
    console.print(table)
    if not missing:
        console.print("[green]deps: no package to install[/]")
    elif dry_run:
        console.print(f"deps: would install {' '.join(missing)}")
    elif os.geteuid() != 0:
        raise Exit(f"invoke deps must run as root to install: {' '.join(missing)}", code=1)
    else:
        apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        apt_get = shutil.which("apt-get") or "apt-get"
        console.print("[bold]deps:[/] refreshing the package lists")
        _run([apt_get, "update", "-q"], env=apt_env)
        console.print(f"[bold]deps:[/] installing {' '.join(missing)}")
        _run([apt_get, "install", "-y", "-q", "--no-install-recommends", *missing], env=apt_env)
        console.print(f"[green]deps: installed {' '.join(missing)}[/]")
    _deps_qemu(dry_run=dry_run)


def _deps_qemu(*, dry_run: bool) -> None:
    """Mount binfmt_misc and register the QEMU handlers of the emulated targets; say what was done."""
    emulated = [target for target in resolve_targets("all") if target.emulated]
    if not dry_run and os.geteuid() != 0:
        problems = [p for p in map(build_host.handler_problem, emulated) if p]
        if problems:
            raise Exit(f"deps: {problems[0]}", code=1)
        return
    try:
        actions = build_host.ensure_binfmt(emulated, dry_run=dry_run)
    except (BuildError, proc.ProcessError) as exc:
        raise Exit(f"deps: {exc}", code=1) from None
    for action in actions:
        console.print(f"[bold]deps:[/] {action}")
    names = ", ".join(f"{t.binfmt_name} ({t.name})" for t in emulated)
    if not actions:
        console.print(f"[green]deps: QEMU handlers already registered: {names}[/]")
    elif not dry_run:
        console.print(f"[green]deps: QEMU handlers registered: {names}[/]")


@task(
    help={
        "port": "port to listen on (default: 6443)",
        "debug": "log at DEBUG level",
        "reset": "delete .cache/dev first, starting from an empty datastore",
    }
)
def server(c: Context, port: int = 6443, debug: bool = False, reset: bool = False) -> None:
    """Run `k3py server` on 127.0.0.1 with its data and kubeconfig under .cache/dev (Ctrl-C stops it)."""
    if reset and DEV_DIR.exists():
        console.print(f"[bold]server:[/] removing {DEV_DIR}")
        shutil.rmtree(DEV_DIR)
    DEV_DIR.mkdir(parents=True, exist_ok=True)
    command: list[str | Path] = [
        _tool("k3py"),
        "server",
        "--config",
        os.devnull,
        "--data-dir",
        DEV_DIR,
        "--write-kubeconfig",
        DEV_DIR / "k3py.yaml",
        "--bind-address",
        "127.0.0.1",
        "--https-listen-port",
        str(port),
        *(["--debug"] if debug else []),
    ]
    console.print(f"[bold]server:[/] check it with: curl http://127.0.0.1:{port}/readyz?verbose")
    try:
        _run(command, cwd=ROOT)
    except KeyboardInterrupt:
        console.print("[bold]server:[/] stopped")


class _BuildDisplay:
    """The progress display of ``invoke build``: one row per stage of each target.

    A pending stage shows a dot, the running one a spinner and the command it is running (or,
    with ``--verbose``, every command and its output scrolls above the rows), a finished one a
    tick, its time and what it made.
    """

    def __init__(self, progress: Progress, targets: list[Target], *, verbose: bool) -> None:
        self.progress = progress
        self.verbose = verbose
        self.rows: dict[tuple[str, str], TaskID] = {}
        self.running: TaskID | None = None
        for target in targets:
            for stage, title in STAGES.items():
                self.rows[target.name, stage] = progress.add_task(
                    title, start=False, total=1, arch=target.name, note=""
                )

    def stage_started(self, target: Target, stage: str) -> None:
        self.running = self.rows[target.name, stage]
        self.progress.start_task(self.running)

    def stage_finished(self, target: Target, stage: str, seconds: float, note: str) -> None:
        self.progress.update(self.rows[target.name, stage], completed=1, note=note)
        self.running = None

    def command(self, line: str) -> None:
        if self.verbose:
            self.progress.console.print(line, style="bold dim", markup=False, soft_wrap=True)
        elif self.running is not None:
            self.progress.update(self.running, note=line if len(line) < 90 else line[:87] + "...")

    def output(self, line: str) -> None:
        if self.verbose:
            self.progress.console.print(line, style="dim", markup=False, soft_wrap=True, highlight=False)


class _StageColumn(SpinnerColumn):
    """· pending, a spinner while running, ✓ done."""

    def render(self, task: ProgressTask) -> RenderableType:
        if not task.started:
            return Text("·", style="dim")
        return super().render(task)


def _build_report_table(reports: list[BuildReport]) -> Table:
    table = Table(title="k3py binaries", title_justify="left")
    columns = ("target", "binary", "size", "python", "payload", "sha256", "build time", "rootfs", "guest")
    for column in columns:
        table.add_column(column, style="bold" if column == "target" else None)
    for report in reports:
        artifact = Path(report.artifact)
        table.add_row(
            report.target,
            str(artifact.relative_to(ROOT) if artifact.is_relative_to(ROOT) else artifact),
            f"{report.size_mb:.1f} MB",
            f"{report.python_bytes / 1e6:.1f} MB",
            f"{report.payload_bytes / 1e6:.1f} MB",
            report.sha256[:16],
            f"{report.build_seconds:.0f} s",
            "cached" if report.rootfs_cached else "bootstrapped",
            f"{report.guest_python} ({report.guest_machine})",
        )
    return table


@task(
    name="build",
    help={
        "arch": f"{', '.join(target_names())}, a comma-separated list, or 'all' (default: this host's)",
        "verbose": "show every command and its output",
        "refresh_rootfs": "bootstrap the root filesystem again even if its recipe is cached",
        "keep_work": "keep the unpacked root and PyInstaller's work under .cache/k3py/work/<arch>",
        "backend": "where the target's commands run: chroot, docker, or auto (docker when an engine answers)",
        **PROFILE_HELP,
    },
)
def build_binary(
    c: Context,
    arch: str = "",
    verbose: bool = False,
    refresh_rootfs: bool = False,
    keep_work: bool = False,
    backend: str = "auto",
    keep_alpha: bool = False,
    keep_deprecated: bool = False,
    only: str = "",
    drop: str = "",
) -> None:
    """Build dist/k3py-linux-<arch> (+ .sha256, .lock, .report.json) in a root filesystem of the target."""
    try:
        targets = resolve_targets(arch or native_target_name())
    except BuildError as exc:
        raise Exit(f"build: {exc}", code=exc.exit_code) from None
    profile = _profile(keep_alpha=keep_alpha, keep_deprecated=keep_deprecated, only=only, drop=drop)
    options = BuildOptions(
        refresh_rootfs=refresh_rootfs, keep_work=keep_work, backend=backend, profile=profile
    )
    console.rule(f"[bold]build[/] {', '.join(t.name for t in targets)}")
    columns = (
        _StageColumn(finished_text="[green]✓[/]"),
        TextColumn("[bold]{task.fields[arch]:>5}[/] {task.description:<22}"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[note]}[/]", markup=True),
    )
    reports: list[BuildReport] = []
    with Progress(*columns, console=console, auto_refresh=True, refresh_per_second=4) as progress:
        display = _BuildDisplay(progress, targets, verbose=verbose)
        for target in targets:
            try:
                reports.append(build_target(target, options=options, listener=display, sink=display))
            except BuildError as exc:
                progress.stop()
                raise Exit(f"build {target.name}: {exc}", code=exc.exit_code) from None
            except KeyboardInterrupt:
                progress.stop()
                raise Exit(f"build {target.name}: interrupted (mounts torn down)", code=130) from None
    console.print(_build_report_table(reports))
    for report in reports:
        console.print(
            f"[dim]{report.target} API ({apimanifest.describe(profile)}): {report.api_groupversions} "
            f"group-versions, schemas {report.api_schema_bytes_before:,} → {report.api_schema_bytes_after:,} "
            "bytes gzip[/]"
        )
        console.print(f"[dim]report: {Path(report.artifact).name}.report.json · log: {report.log}[/]")


def _profile(*, keep_alpha: bool, keep_deprecated: bool, only: str, drop: str) -> Profile:
    """A build's API profile from the command line (``--only``/``--drop`` are comma-separated)."""

    def names(value: str) -> tuple[str, ...]:
        return tuple(name for name in (part.strip() for part in value.split(",")) if name)

    return Profile(keep_alpha=keep_alpha, keep_deprecated=keep_deprecated, only=names(only), drop=names(drop))


@task(
    help={
        **PROFILE_HELP,
        "write_report": f"also write {API_REPORT.relative_to(ROOT)} (the default profile only)",
    }
)
def manifest(
    c: Context,
    keep_alpha: bool = False,
    keep_deprecated: bool = False,
    only: str = "",
    drop: str = "",
    write_report: bool = False,
) -> None:
    """Strip the API manifest and schemas to a profile as `invoke build` does; show what is kept and why."""
    profile = _profile(keep_alpha=keep_alpha, keep_deprecated=keep_deprecated, only=only, drop=drop)
    if write_report and profile != Profile():
        raise Exit(
            f"manifest: --write-report documents the default profile; run it without "
            f"{apimanifest.describe(profile)}",
            code=2,
        )
    out_dir = apimanifest.output_dir(cache_dir(), profile)
    try:
        stripped = apimanifest.strip(profile, out_dir)
    except BuildError as exc:
        raise Exit(f"manifest: {exc}", code=exc.exit_code) from None
    console.print(_manifest_table(stripped))
    counts = apimanifest.totals(stripped.selection)
    for what, title in (("groupversions", "group-versions"), ("resources", "resources")):
        kept = sum(n for key, n in counts[what].items() if key.endswith(" kept"))
        removed = sum(n for key, n in counts[what].items() if key.endswith(" stripped"))
        console.print(f"[bold]{title}:[/] {kept} kept, {removed} stripped")
    before, after = stripped.before, stripped.after
    console.print(
        f"[bold]schemas:[/] {before.gzip_bytes:,} → {after.gzip_bytes:,} bytes gzip "
        f"({before.definitions} → {after.definitions} definitions)"
    )
    for path in (stripped.manifest_path, stripped.schemas_path):
        console.print(f"[dim]wrote {_shown(path)}[/]")
    if write_report:
        API_REPORT.write_text(apimanifest.render_report(stripped), encoding="utf-8")
        console.print(f"[green]manifest: wrote {_shown(API_REPORT)}[/]")


def _manifest_table(stripped: apimanifest.StrippedApi) -> Table:
    table = Table(title=f"API profile: {apimanifest.describe(stripped.profile)}", title_justify="left")
    for column in ROW_HEADER:
        table.add_column(column.lower())
    for decision in stripped.selection.rows():
        api, stability, kept, reason = decision.cells()
        style = "green" if decision.kept else "yellow"
        table.add_row(
            f"  {api}" if decision.resource else f"[bold]{api}[/]", stability, f"[{style}]{kept}[/]", reason
        )
    return table


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


@task(
    help={
        "suite": "native (our pytest suite), cncf (upstream e2e.test [Conformance]) or all (default: native)",
        "focus": "only tests matching: a regular expression for cncf (within its [Conformance] tests), "
        "a pytest -k expression for native",
        "skip": "leave out tests matching (same syntax as --focus)",
        "nodes": "agents to start besides the server (default: 1; the suite needs two Ready nodes)",
        "parallel": "tests at a time: ginkgo processes or pytest-xdist workers (default: 2)",
        "binary": "run the nodes from this built binary, e.g. dist/k3py-linux-amd64 (default: this checkout)",
        "datastore": "the server's datastore (default: sqlite; the only one so far)",
        "keep": "leave the cluster running afterwards, and print how to reach and destroy it",
        "allow_failures": "exit 0 even when tests failed (a tracking run)",
        "version": "Kubernetes version of the upstream suite, e.g. 1.37.2 (default: newest 1.37.x)",
    }
)
def conformance(
    c: Context,
    suite: str = "native",
    focus: str = "",
    skip: str = "",
    nodes: int = 1,
    parallel: int = 2,
    binary: str = "",
    datastore: str = "sqlite",
    keep: bool = False,
    allow_failures: bool = False,
    version: str = "",
) -> None:
    """Start an ephemeral cluster (root), run a conformance suite, write dist/conformance/<run>/."""
    from conformance import command

    if os.geteuid() != 0:
        raise Exit("conformance: needs root (network namespaces for the cluster's nodes)", code=1)
    options = command.Options(
        suite=suite,
        focus=focus,
        skip=skip,
        nodes=nodes,
        parallel=parallel,
        binary=Path(binary) if binary else None,
        datastore=datastore,
        keep=keep,
        allow_failures=allow_failures,
        version=version or None,
    )
    try:
        code = command.run(options, console)
    except (ValueError, BuildError) as exc:
        raise Exit(f"conformance: {exc}", code=2 if isinstance(exc, ValueError) else 1) from None
    if code:
        raise Exit(code=code)


namespace = Collection(deps, test, lint, server, build_binary, manifest, conformance)
