"""The k3py binary: PyInstaller onefile, made inside the target's root filesystem.

PyInstaller cannot cross-build, so every step after the wheel runs in the target's root (under
QEMU for a foreign target) through a :class:`~build.runner.Runner`:

1. :func:`host_wheel` builds k3py's pure-Python wheel on the host (``pip wheel --no-deps .``;
   never ``python -m build`` from the repository root, where ``build/`` shadows PyPA's build).
2. :func:`install_dependencies` creates a venv in the root, installs that wheel and, from PyPI,
   its dependencies (wheels for the target's tags, built in the root where PyPI has none) and
   returns the exact versions: the lock written beside the binary.
   :func:`install_stripped_api` then puts the build's stripped API manifest and schema bundle
   (:mod:`build.apimanifest`) in place of the wheel's full ones, so the binary carries only those.
3. :func:`install_pyinstaller` adds the pinned PyInstaller (its armv7 bootloader compiles there).
4. :func:`run_pyinstaller` makes the stripped onefile binary from :data:`ENTRY_SCRIPT`, with
   k3py's data files (``k3py/api/data/*.json.gz``, read through importlib.resources) and every
   k3py submodule collected, under a fixed ``PYTHONHASHSEED`` and ``SOURCE_DATE_EPOCH``.

pip's cache is bind-mounted from the host cache (one per target): it keeps the wheels pip
built from source (armv7: cffi, PyInstaller's bootloader). It does not spare downloads where,
as on this project's machines, the proxy's responses are not cacheable: pip's HTTP cache then
stays empty. A wheelhouse or a cached venv layer is the next step for warm builds.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from build.apimanifest import StrippedApi
from build.errors import BuildError
from build.paths import ROOT
from build.runner import CommandLog, Runner, call
from build.targets import Target

PYINSTALLER = "pyinstaller==6.22.3"
PYTHONHASHSEED = "0"
RUNTIME_TMPDIR = "/var/tmp"
GUEST_WORK = "/work"
GUEST_PIP_CACHE = "/var/cache/k3py-pip"
STAGED_API = "api"  # the stripped API data, staged in the job directory (/work/api in the guest)
VENV = "/opt/k3py-build/venv"
ENTRY_SCRIPT = '"""k3py binary entry point (PyInstaller)."""\n\nfrom k3py.cli.main import main\n\nmain()\n'
# Standard-library parts no k3py code path imports; left out of the binary.
EXCLUDED_MODULES = ("tkinter", "idlelib", "lib2to3", "pydoc_data", "ensurepip", "turtledemo")
GUEST_CA_BUNDLE = "/etc/ssl/certs/k3py-host-ca-bundle.pem"
PIP_ENV = {
    "PIP_CACHE_DIR": GUEST_PIP_CACHE,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PIP_ROOT_USER_ACTION": "ignore",
    "PIP_PROGRESS_BAR": "off",
    "PIP_CERT": GUEST_CA_BUNDLE,
}
# How the host reaches PyPI, passed on to pip in the guest (a proxy, a mirror, a timeout).
FORWARDED_ENV = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_DEFAULT_TIMEOUT",
)
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


class WheelNotFound(BuildError):
    """``pip wheel`` succeeded but left no k3py wheel behind."""


@dataclass(frozen=True, kw_only=True)
class GuestInfo:
    """What the target's root filesystem says about itself (run under QEMU for a foreign target)."""

    python: str
    machine: str
    debian: str


def host_wheel(out: Path, *, log: CommandLog, source_date_epoch: int) -> Path:
    """Build k3py's wheel from the repository into ``out``; return its path."""
    out.mkdir(parents=True, exist_ok=True)
    env = {"SOURCE_DATE_EPOCH": str(source_date_epoch), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    call(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, ROOT],
        log=log,
        env={**os.environ, **env},
        cwd=ROOT,
    )
    wheels = sorted(out.glob("k3py-*.whl"))
    if len(wheels) != 1:
        raise WheelNotFound(f"expected one k3py wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def trust_host_cas(root: Path) -> None:
    """Give the guest's pip the host's CA bundle (a TLS-intercepting proxy's CA included).

    The bundle is copied into each unpacked root, never into the cached tarball.
    """
    candidates = [os.environ.get("PIP_CERT", ""), os.environ.get("SSL_CERT_FILE", ""), *HOST_CA_BUNDLES]
    source = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
    if source is None:
        raise BuildError(
            f"no CA bundle on the host (looked for {', '.join(HOST_CA_BUNDLES)}): install ca-certificates"
        )
    shutil.copyfile(source, root / GUEST_CA_BUNDLE.lstrip("/"))


def pip_env() -> dict[str, str]:
    """pip's environment in the guest: :data:`PIP_ENV` plus the host's network settings."""
    return {**{name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}, **PIP_ENV}


def guest_info(runner: Runner) -> GuestInfo:
    """Python version, ``platform.machine()`` and Debian version inside the root."""
    script = (
        "import json, platform, pathlib; print(json.dumps({'python': platform.python_version(), "
        "'machine': platform.machine(), 'debian': pathlib.Path('/etc/debian_version').read_text().strip()}))"
    )
    data = json.loads(runner.run(["python3", "-c", script]).splitlines()[-1])
    return GuestInfo(python=data["python"], machine=data["machine"], debian=data["debian"])


def install_dependencies(runner: Runner, wheel: str) -> dict[str, str]:
    """Create the venv, install the k3py wheel (``/work/...``) with its dependencies; return versions."""
    runner.run(["python3", "-m", "venv", VENV])
    runner.run([f"{VENV}/bin/pip", "install", f"{GUEST_WORK}/wheels/{wheel}"], env=pip_env())
    return installed_versions(runner)


def install_stripped_api(runner: Runner, job: Path, api: StrippedApi) -> None:
    """Replace the venv's ``k3py/api/manifest.toml`` and schema bundle with the build's stripped ones.

    The files are staged in the job directory and copied inside the guest (the same for every
    runner); the guest's k3py then reads them back, and must see what the build stripped.
    """
    staged = job / STAGED_API
    staged.mkdir(parents=True, exist_ok=True)
    installed = api.paths
    for source in installed:
        shutil.copyfile(source, staged / source.name)
    # Where pip put k3py's API package, checking that the files being replaced are there.
    locate = (
        "import pathlib, sys, sysconfig; "
        "package = pathlib.Path(sysconfig.get_path('purelib'), 'k3py', 'api'); "
        "missing = [name for name in sys.argv[1:] if not (package / name).is_file()]; "
        "sys.exit(f'the installed k3py has no {missing} in {package}') if missing else print(package)"
    )
    package = runner.run([f"{VENV}/bin/python", "-c", locate, *installed.values()]).splitlines()[-1]
    for source, relative in installed.items():
        runner.run(["cp", f"{GUEST_WORK}/{STAGED_API}/{source.name}", f"{package}/{relative}"])
    check = (
        "import json; from k3py.api.manifest import load; from k3py.api.schema import Schemas; "
        "from k3py.api.protobuf import Descriptor; m = load(); "
        "print(json.dumps([m.stripped is not None, len(m.groupversions), len(Schemas.get()), "
        "len(Descriptor.get())]))"
    )
    seen = json.loads(runner.run([f"{VENV}/bin/python", "-B", "-c", check]).splitlines()[-1])
    expected = [True, len(api.served), api.after.definitions, api.protobuf_after.definitions]
    if seen != expected:
        raise BuildError(
            f"the guest's k3py reads [stripped, group-versions, definitions, wire structs] = {seen}, "
            f"expected {expected}: "
            f"the stripped API data did not replace the installed one in {package}"
        )


def install_pyinstaller(runner: Runner) -> dict[str, str]:
    """Add the pinned PyInstaller to the venv; return the versions it brought."""
    before = installed_versions(runner)
    runner.run([f"{VENV}/bin/pip", "install", PYINSTALLER], env=pip_env())
    after = installed_versions(runner)
    return {name: version for name, version in after.items() if before.get(name) != version}


def installed_versions(runner: Runner) -> dict[str, str]:
    """``name -> version`` of what the venv holds, pip and setuptools aside (never bundled)."""
    listing = runner.run(
        [f"{VENV}/bin/pip", "list", "--format=json", "--exclude", "pip", "--exclude", "setuptools"],
        env=pip_env(),
    )
    start = listing.index("[")
    return {item["name"]: item["version"] for item in json.loads(listing[start:].splitlines()[0])}


def run_pyinstaller(runner: Runner, job: Path, target: Target, *, source_date_epoch: int) -> Path:
    """Make ``job/out/k3py-linux-<arch>`` (host path) with PyInstaller inside the root."""
    (job / "k3py_entry.py").write_text(ENTRY_SCRIPT, encoding="utf-8")
    excludes = [arg for module in EXCLUDED_MODULES for arg in ("--exclude-module", module)]
    command = [
        f"{VENV}/bin/pyinstaller",
        "--noconfirm",
        "--clean",
        "--onefile",
        "--strip",
        # Onefile unpacks itself on every start: into /var/tmp, which is on disk where /tmp may be
        # a tmpfs (Debian 13, Fedora), so the unpacked ~40 MB never pin RAM (ADR 0006).
        f"--runtime-tmpdir={RUNTIME_TMPDIR}",
        f"--name={target.artifact_name}",
        "--collect-data=k3py",
        "--collect-submodules=k3py",
        *excludes,
        f"--distpath={GUEST_WORK}/out",
        f"--workpath={GUEST_WORK}/pyinstaller",
        f"--specpath={GUEST_WORK}/pyinstaller",
        f"{GUEST_WORK}/k3py_entry.py",
    ]
    env = {"PYTHONHASHSEED": PYTHONHASHSEED, "SOURCE_DATE_EPOCH": str(source_date_epoch)}
    runner.run(command, env=env, cwd=GUEST_WORK)
    binary = job / "out" / target.artifact_name
    if not binary.is_file():
        raise BuildError(f"PyInstaller finished but {binary} is missing (see the build log)")
    return binary
