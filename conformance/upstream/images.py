"""The suite's test images as OCI archives for the air-gap directory, and a report of what is missing.

:func:`build_images` asks the built ``e2e.test`` which images it may pull (``--list-images``),
names them with manifest.go's constants (:mod:`conformance.upstream.catalog`), makes each one
that has a recipe (:mod:`conformance.upstream.recipes`) with :mod:`k3py.images.oci` (no
registry, no container engine) and writes ``images.json``: for every reference, built or not
and why, what went in, how it differs from upstream, and for those not built the
``[Conformance]`` specs that use them (:mod:`conformance.upstream.usage`). Everything lands in
``<cache>/conformance/<version>/images/<arch>/``; a second call with the same suite and
architecture finds the report and its archives intact and does nothing.

:func:`airgap_images` lists the archives a cluster's agents should import: copy or link them into
``<data-dir>/agent/images/`` before the agent starts, as K3s users do with its air-gap tarballs.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from build.report import sha256_of
from build.runner import CommandFailed, CommandLog
from build.targets import Target, load_target
from conformance.upstream import catalog, golang, recipes, rootfs, usage
from conformance.upstream.build import Suite
from conformance.upstream.catalog import UpstreamImage
from conformance.upstream.debs import DebianPackages
from conformance.upstream.errors import UpstreamError
from conformance.upstream.progress import Steps
from conformance.upstream.speclist import list_conformance_tests
from k3py.images import oci
from k3py.util.locks import exclusive

FORMAT = 1
REPORT = "images.json"
BUILT, NOT_BUILT, ABSENT, FAILED = "built", "not built", "absent by design", "failed"


class ImageBuildFailed(UpstreamError):
    """Some image with a recipe could not be made (the report says which and why)."""


@dataclass(frozen=True, kw_only=True)
class Blocked:
    """A conformance spec that cannot pass while an image is missing (``how``: direct or file)."""

    test: str
    file: str
    how: str


@dataclass(frozen=True, kw_only=True)
class ImageResult:
    """What happened to one image reference of the suite."""

    reference: str
    name: str
    constants: tuple[str, ...]
    status: str
    archive: str = ""
    """Relative to the version directory: ``images/amd64/agnhost-2.66.1.tar``."""
    bytes: int = 0
    sha256: str = ""
    manifest_digest: str = ""
    reason: str = ""
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    blocks: tuple[Blocked, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ImagesReport:
    """The report written to ``images.json`` beside the archives."""

    format: int = FORMAT
    key: dict[str, str]
    """What the images were made from (version, module hash, architecture): a change rebuilds."""
    version: str
    arch: str
    platform: str
    built_at: str
    seconds: float
    images: tuple[ImageResult, ...]
    directory: Path = field(default=Path(), compare=False)
    """The version directory the ``archive`` paths are relative to (not written)."""

    def by_status(self, status: str) -> list[ImageResult]:
        return [image for image in self.images if image.status == status]

    @property
    def archives(self) -> list[Path]:
        """The built images' archives, in reference order."""
        return [self.directory / image.archive for image in self.by_status(BUILT)]

    @property
    def blocked_tests(self) -> list[str]:
        """Conformance specs that use at least one image that is not built, sorted."""
        return sorted({block.test for image in self.images for block in image.blocks})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("directory")
        data["summary"] = {
            "built": len(self.by_status(BUILT)),
            "not_built": len(self.by_status(NOT_BUILT)),
            "failed": len(self.by_status(FAILED)),
            "absent_by_design": len(self.by_status(ABSENT)),
            "blocked_conformance_tests": len(self.blocked_tests),
        }
        return data

    def write(self, path: Path) -> None:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)


def read_report(path: Path, directory: Path) -> ImagesReport | None:
    """The report at ``path`` (archives relative to ``directory``), None if missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("summary", None)
        images = tuple(
            ImageResult(
                **{
                    **entry,
                    "constants": tuple(entry["constants"]),
                    "sources": tuple(entry["sources"]),
                    "notes": tuple(entry["notes"]),
                    "blocks": tuple(Blocked(**block) for block in entry["blocks"]),
                }
            )
            for entry in data.pop("images")
        )
        return ImagesReport(images=images, directory=directory, **data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def recipes_digest() -> str:
    """What the images are made by: a changed recipe (or image layout) builds them again."""
    modules = (recipes, rootfs, oci)
    return hashlib.sha256(b"".join(Path(str(m.__file__)).read_bytes() for m in modules)).hexdigest()[:16]


def report_problems(report: ImagesReport | None, key: dict[str, str]) -> list[str]:
    """Why a cached report cannot be reused (empty: it can): other inputs, or an archive changed."""
    if report is None:
        return [f"no readable {REPORT}"]
    if report.format != FORMAT or report.key != key:
        return ["made from other inputs"]
    found: list[str] = []
    for image in report.by_status(BUILT):
        path = report.directory / image.archive
        if not path.is_file():
            found.append(f"{image.archive} is missing")
        elif path.stat().st_size != image.bytes or sha256_of(path) != image.sha256:
            found.append(f"{image.archive} changed")
    if report.by_status(FAILED):
        found.append("some images failed last time")
    return found


def plan(image: UpstreamImage) -> tuple[str, recipes.Recipe | None, str]:
    """``(status, recipe, reason)`` for one image: built by a recipe, absent by design, or not built."""
    for constant in image.constants:
        if constant in recipes.ABSENT_BY_DESIGN:
            return ABSENT, None, recipes.ABSENT_BY_DESIGN[constant]
    recipe = recipes.RECIPES.get(image.name)
    if recipe is not None:
        return BUILT, recipe, ""
    return NOT_BUILT, None, recipes.NOT_BUILT.get(image.name, recipes.CSI_REASON)


def blocks_for(image: UpstreamImage, uses: dict[str, list[usage.Use]]) -> tuple[Blocked, ...]:
    """The conformance specs using any constant of ``image``, deduplicated (direct use wins)."""
    found: dict[str, Blocked] = {}
    for constant in image.constants:
        for use in uses.get(constant, []):
            if use.spec not in found or use.how == "direct":
                found[use.spec] = Blocked(test=use.spec, file=use.file, how=use.how)
    return tuple(found[name] for name in sorted(found))


def build_images(
    suite: Suite,
    arch: str | Target = "amd64",
    console: Console | None = None,
    *,
    rebuild: bool = False,
    strict: bool = True,
    gomodcache: Path | None = None,
) -> ImagesReport:
    """Make every image of ``suite`` that has a recipe, for ``arch``; write and return the report.

    With ``strict`` (default) an image whose recipe fails raises :class:`ImageBuildFailed` after
    the report is written; images without a recipe never do (the report lists them).
    """
    console = console or Console(highlight=False)
    target = arch if isinstance(arch, Target) else load_target(arch)
    directory = suite.images_dir / target.name
    directory.mkdir(parents=True, exist_ok=True)
    key = {
        "version": suite.version,
        "module_sum": suite.manifest.module_sum,
        "e2e_test_sha256": suite.manifest.binaries["e2e.test"].sha256,
        "arch": target.name,
        "recipes": recipes_digest(),
    }
    with exclusive(directory / ".lock"):
        report_path = directory / REPORT
        cached = read_report(report_path, suite.directory)
        why = ["rebuild requested"] if rebuild else report_problems(cached, key)
        if not why and cached is not None:
            console.print(
                f"[green]✓[/] test images {suite.version} {target.name}  [dim]cached: "
                f"{len(cached.by_status(BUILT))} built, {len(cached.by_status(NOT_BUILT))} not built[/]"
            )
            return cached
        with CommandLog(directory / "images.log") as log:
            log.note(f"building images for {suite.version} {target.name}: {'; '.join(why)}")
            report = _build(suite, target, key, directory, Steps(console, log), gomodcache)
        report.write(report_path)
        _remove_stale(directory, report)
        shutil.rmtree(directory / "work", ignore_errors=True)
    _summarize(report, console)
    failed = report.by_status(FAILED)
    if strict and failed:
        names = ", ".join(image.reference for image in failed)
        raise ImageBuildFailed(f"{len(failed)} test image(s) failed: {names} (see {report_path})")
    return report


def airgap_images(cache_dir: Path, arch: str = "amd64") -> list[Path]:
    """The built image archives of a suite's cache directory (``Suite.directory``) for ``arch``.

    Empty when no report exists; only archives that are present are listed.
    """
    report = read_report(cache_dir / "images" / arch / REPORT, cache_dir)
    if report is None:
        return []
    return [path for path in report.archives if path.is_file()]


def _build(
    suite: Suite, target: Target, key: dict[str, str], directory: Path, steps: Steps, gomodcache: Path | None
) -> ImagesReport:
    started = time.monotonic()
    log = steps.log
    with steps.step("list the suite's images") as note:
        constants = catalog.parse_manifest_go(
            (suite.source / catalog.MANIFEST_GO).read_text(encoding="utf-8")
        )
        images = catalog.catalog(catalog.list_images(suite.e2e_test, log), constants)
        note.text = f"{len(images)} references, {len(constants)} named in manifest.go"
    with steps.step("find the conformance tests using each image") as note:
        uses = _uses(suite, constants.keys(), log)
        note.text = f"{sum(len(u) > 0 for u in uses.values())} images used by conformance tests"
    workshop = recipes.Workshop(
        source=suite.source,
        version=suite.version,
        target=target,
        work=directory / "work",
        packages=DebianPackages(suite.directory / "debs" / target.name, target, log),
        go=golang.find_go(),
        gomodcache=gomodcache or golang.default_gomodcache(),
        created=calendar.timegm(time.strptime(suite.manifest.module_time, "%Y-%m-%dT%H:%M:%SZ")),
        log=log,
    )
    results = [_one(image, workshop, directory, suite.directory, uses, steps) for image in images]
    return ImagesReport(
        key=key,
        version=suite.version,
        arch=target.name,
        platform=target.oci_platform,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        seconds=round(time.monotonic() - started, 1),
        images=tuple(results),
        directory=suite.directory,
    )


def _uses(suite: Suite, constants: Iterable[str], log: CommandLog) -> dict[str, list[usage.Use]]:
    conformance = {test.name for test in list_conformance_tests(suite, log=log)}
    specs = [
        usage.Spec(name=spec.name, file=spec.file, line=spec.line, conformance=spec.name in conformance)
        for spec in list_conformance_tests(suite, focus="", log=log)
    ]
    return usage.image_uses(suite.source, specs, constants)


def _one(
    image: UpstreamImage,
    workshop: recipes.Workshop,
    directory: Path,
    base: Path,
    uses: dict[str, list[usage.Use]],
    steps: Steps,
) -> ImageResult:
    status, recipe, reason = plan(image)
    result = ImageResult(reference=image.reference, name=image.name, constants=image.constants, status=status)
    if recipe is None:
        blocks = blocks_for(image, uses) if status == NOT_BUILT else ()
        return replace(result, reason=reason, blocks=blocks)
    archive = directory / image.archive_name
    try:
        with steps.step(f"image {image.reference}") as note:
            made = recipe(workshop, image.reference)
            written = oci.write_image(made.image, archive)
            note.text = f"{archive.stat().st_size / 1e6:.1f} MB"
    except (UpstreamError, CommandFailed, OSError, oci.ImageError) as exc:
        steps.console.print(f"  [red]{escape(str(exc))}[/]")
        return replace(result, status=FAILED, reason=str(exc), blocks=blocks_for(image, uses))
    return replace(
        result,
        archive=archive.relative_to(base).as_posix(),
        bytes=archive.stat().st_size,
        sha256=sha256_of(archive),
        manifest_digest=written.manifest_digest,
        sources=tuple(made.sources),
        notes=tuple(made.notes),
    )


def _remove_stale(directory: Path, report: ImagesReport) -> None:
    """Archives of an earlier build that this one did not make (they would be imported otherwise)."""
    current = {path.name for path in report.archives}
    for path in directory.glob("*.tar"):
        if path.name not in current:
            path.unlink()


def _summarize(report: ImagesReport, console: Console) -> None:
    table = Table(title=f"test images {report.version} ({report.platform})", title_justify="left")
    table.add_column("image")
    table.add_column("status")
    table.add_column("MB", justify="right")
    table.add_column("blocks", justify="right")
    styles = {BUILT: "green", FAILED: "red", NOT_BUILT: "yellow", ABSENT: "dim"}
    for image in report.images:
        table.add_row(
            image.reference,
            f"[{styles[image.status]}]{image.status}[/]",
            f"{image.bytes / 1e6:.1f}" if image.bytes else "",
            str(len(image.blocks)) if image.blocks else "",
        )
    console.print(table)
    console.print(
        f"{len(report.by_status(BUILT))} built, {len(report.by_status(NOT_BUILT))} not built, "
        f"{len(report.by_status(FAILED))} failed; {len(report.blocked_tests)} conformance tests need an "
        f"image that is missing"
    )
