"""Debian packages as a source of image files: fetch, unpack, and copy a program with the libraries it loads.

:class:`DebianPackages` fetches ``.deb`` files for one Debian architecture with
``apt-get download <name>:<arch>`` (the host's apt sources; no installation, no root needed
beyond reading apt's lists) into a cache directory, unpacks each with ``dpkg-deb -x`` into its
own tree and reads its control fields with ``dpkg-deb -f``. Both are kept: a second image build
downloads nothing.

:meth:`DebianPackages.program` returns a dynamically linked program together with what it needs
to run in an empty image: its ELF interpreter (``/lib64/ld-linux-x86-64.so.2``) and the closure
of its ``DT_NEEDED`` libraries (``readelf`` reads any architecture), libc included. A library
not found in the packages fetched so far is looked for in the library packages they depend on,
fetched one dependency level at a time. Libraries land in ``/lib/<gnu-triplet>/``, which
Debian's dynamic loader searches without an ``ld.so.cache``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from build.runner import CommandFailed, CommandLog, call
from build.targets import Target
from conformance.upstream.errors import PackageMissing

APT_GET = ("apt-get", "-q", "-o", "APT::Sandbox::User=root")
LIBRARY_PACKAGE = re.compile(r"^(lib\S+|zlib1g|\S+-libs?\d*)$")
"""Dependencies followed to find libraries: libfoo1, zlib1g, bind9-libs."""
MAX_DEPENDENCY_ROUNDS = 10
_NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")
_INTERPRETER = re.compile(r"Requesting program interpreter: ([^\]]+)\]")


@dataclass(frozen=True, kw_only=True)
class Package:
    """A fetched and unpacked package: its version, ``.deb``, unpacked tree and dependency names."""

    name: str
    version: str
    deb: Path
    tree: Path
    depends: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ImageFile:
    """A file to put into an image: ``path`` inside it, taken from ``source`` (a real file)."""

    path: str
    source: Path
    package: str


def dependency_names(field: str) -> list[str]:
    """Package names of a ``Depends:`` field: first alternative of each, without versions or arch."""
    names: list[str] = []
    for clause in field.split(","):
        first = clause.split("|")[0].strip()
        name = re.split(r"[\s(:]", first, maxsplit=1)[0] if first else ""
        if name and name not in names:
            names.append(name)
    return names


class DebianPackages:
    """The packages of one target architecture, fetched into ``directory`` (``debs/<arch>``)."""

    def __init__(self, directory: Path, target: Target, log: CommandLog) -> None:
        self.directory = directory
        self.target = target
        self.log = log
        self.packages: dict[str, Package] = {}

    def get(self, name: str) -> Package:
        """``name`` fetched (unless its .deb is cached) and unpacked."""
        if name in self.packages:
            return self.packages[name]
        deb = self._deb(name)
        tree = self.directory / "trees" / name
        if not (tree / ".unpacked").is_file():
            if tree.exists():
                call(["rm", "-rf", tree], log=self.log)
            tree.mkdir(parents=True)
            call(["dpkg-deb", "-x", deb, tree], log=self.log)
            (tree / ".unpacked").write_text(deb.name + "\n", encoding="utf-8")
        fields = self._fields(deb)
        package = Package(
            name=name,
            version=fields.get("Version", ""),
            deb=deb,
            tree=tree,
            depends=tuple(dependency_names(fields.get("Pre-Depends", "") + "," + fields.get("Depends", ""))),
        )
        self.packages[name] = package
        return package

    def file(self, package: str, path: str) -> Path:
        """The real file behind ``path`` (``usr/bin/dig``) in ``package``'s tree, links followed inside it."""
        found = self._inside(self.get(package).tree, path)
        if found is None:
            raise PackageMissing(f"{path} is not in the {package} package ({self.target.debian_arch})")
        return found

    def program(self, package: str, path: str, destination: str | None = None) -> list[ImageFile]:
        """``path`` of ``package`` with its interpreter and library closure, as image files.

        The program goes to ``destination`` (default: ``path``); a static program comes alone.
        """
        binary = self.file(package, path)
        files = [ImageFile(path=destination or "/" + path.lstrip("/"), source=binary, package=package)]
        interpreter = _interpreter(binary, self.log)
        if interpreter is None:
            return files
        owner, real = self._library(PurePosixPath(interpreter).name, extra=[interpreter.lstrip("/")])
        files.append(ImageFile(path=interpreter, source=real, package=owner))
        libraries = self._closure(binary)
        for soname, (owner, real) in sorted(libraries.items()):
            files.append(
                ImageFile(path=f"/lib/{self.target.gnu_triplet}/{soname}", source=real, package=owner)
            )
        return files

    def _closure(self, binary: Path) -> dict[str, tuple[str, Path]]:
        found: dict[str, tuple[str, Path]] = {}
        queue = [binary]
        while queue:
            for soname in _needed(queue.pop(), self.log):
                if soname not in found:
                    found[soname] = self._library(soname)
                    queue.append(found[soname][1])
        return found

    def _library(self, soname: str, extra: list[str] | None = None) -> tuple[str, Path]:
        """``(package, real file)`` of a library, fetching library dependencies until it shows up."""
        for _ in range(MAX_DEPENDENCY_ROUNDS):
            for package in list(self.packages.values()):
                for candidate in [*(extra or []), *self._library_paths(soname)]:
                    real = self._inside(package.tree, candidate)
                    if real is not None:
                        return package.name, real
            fresh = sorted(
                {
                    name
                    for package in list(self.packages.values())
                    for name in package.depends
                    if LIBRARY_PACKAGE.match(name) and name not in self.packages
                }
            )
            if not fresh:
                break
            for name in fresh:
                self.get(name)
        fetched = ", ".join(sorted(self.packages))
        raise PackageMissing(
            f"no fetched package has {soname} ({self.target.debian_arch}); fetched: {fetched}"
        )

    def _library_paths(self, soname: str) -> list[str]:
        triplet = self.target.gnu_triplet
        return [f"{base}/{soname}" for base in (f"lib/{triplet}", f"usr/lib/{triplet}", "lib", "usr/lib")]

    @staticmethod
    def _inside(tree: Path, path: str) -> Path | None:
        """Follow ``path`` in ``tree`` like the loader would in the image (absolute links stay inside)."""
        current = PurePosixPath(path.lstrip("/"))
        for _ in range(40):
            host = tree / current
            if host.is_symlink():
                target = PurePosixPath(host.readlink().as_posix())
                joined = target if target.is_absolute() else current.parent / target
                current = PurePosixPath(_normalize(joined.as_posix()))
                continue
            return host if host.is_file() else None
        return None

    def _deb(self, name: str) -> Path:
        debs = self.directory / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        cached = self._cached_deb(debs, name)
        if cached is not None:
            return cached
        try:
            call([*APT_GET, "download", f"{name}:{self.target.debian_arch}"], log=self.log, cwd=debs)
        except CommandFailed as exc:
            raise PackageMissing(
                f"apt-get cannot download {name}:{self.target.debian_arch} (exit {exc.returncode}); "
                f"for a foreign architecture run: dpkg --add-architecture {self.target.debian_arch} "
                f"&& apt-get update (log: {self.log.path})"
            ) from exc
        found = self._cached_deb(debs, name)
        if found is None:
            raise PackageMissing(f"apt-get download {name} left no {name}_*.deb in {debs}")
        return found

    def _cached_deb(self, debs: Path, name: str) -> Path | None:
        matches = sorted(
            path
            for arch in (self.target.debian_arch, "all")
            for path in debs.glob(f"{name}_*_{arch}.deb")
            if path.name.split("_", 1)[0] == name
        )
        return matches[-1] if matches else None

    def _fields(self, deb: Path) -> dict[str, str]:
        output = call(["dpkg-deb", "-f", deb, "Package", "Version", "Depends", "Pre-Depends"], log=self.log)
        fields: dict[str, str] = {}
        for line in output.splitlines():
            key, _, value = line.partition(":")
            if value:
                fields[key.strip()] = value.strip()
        return fields


def _normalize(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _needed(binary: Path, log: CommandLog) -> list[str]:
    return _NEEDED.findall(call(["readelf", "--dynamic", "--wide", binary], log=log))


def _interpreter(binary: Path, log: CommandLog) -> str | None:
    found = _INTERPRETER.search(call(["readelf", "--program-headers", "--wide", binary], log=log))
    return found.group(1) if found else None
