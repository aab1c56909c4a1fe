"""Kubernetes' own go.mod, rewritten so that ``k8s.io/kubernetes`` builds from the module proxy alone.

Why the build rewrites the downloaded go.mod instead of carrying a Go module in this repository:
``k8s.io/kubernetes`` is not meant to be a dependency. Its go.mod requires every staging module
(``k8s.io/api``, ``k8s.io/client-go``…) at the placeholder ``v0.0.0`` and replaces each with
``./staging/src/k8s.io/<name>``, a directory the module zip leaves out (nested modules are never
in a zip). A consumer module would have to repeat, for every release, the list of staging
modules, the ``v0.<minor>.<patch>`` each is published at, and a go.sum of ~2,000 lines, all of
which upstream's go.mod and go.sum already pin. So the build takes the module zip of the chosen
release from the proxy (``go mod download``; its hash checked against sum.golang.org), copies it
to a writable tree, deletes ``go.work`` and runs ``go mod edit`` with the arguments
:func:`staging_edits` derives from the go.mod text: ``-dropreplace`` for each ``./staging``
replace and ``-require=<module>@v0.<minor>.<patch>`` for each staging module required as
``v0.0.0``. Every other requirement, replace and go.sum line stays upstream's; the staging
modules are checked against sum.golang.org when first downloaded. The same release gives the
same go.mod every time (the rewritten one is kept in the cache and its sha256 recorded in the
manifest), so the build is as reproducible as a checked-in module, and picking up a new patch
release needs no change here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conformance.upstream.errors import ModuleLayoutChanged

_STAGING_REPLACE = re.compile(
    r"^\s*(?:replace\s+)?(?P<module>k8s\.io/\S+)(?:\s+v\S+)?\s+=>\s+\./staging/src/\S+\s*$", re.MULTILINE
)
_PLACEHOLDER_REQUIRE = re.compile(
    r"^\s*(?:require\s+)?(?P<module>k8s\.io/\S+)\s+v0\.0\.0\s*(?://.*)?$", re.MULTILINE
)
_GO_DIRECTIVE = re.compile(r"^go\s+(?P<version>\d+\.\d+(?:\.\d+)?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class StagingEdits:
    """What to change: staging modules whose replace goes, and those whose ``v0.0.0`` becomes real."""

    drop_replace: tuple[str, ...]
    require: tuple[str, ...]
    version: str

    def arguments(self) -> list[str]:
        """The ``go mod edit`` flags, in go.mod's order (replace-only modules are just dropped)."""
        return [
            *(f"-dropreplace={module}" for module in self.drop_replace),
            *(f"-require={module}@{self.version}" for module in self.require),
        ]


def staging_modules(go_mod: str) -> list[str]:
    """Modules replaced by a ``./staging/src/…`` directory, in go.mod's order."""
    return [found.group("module") for found in _STAGING_REPLACE.finditer(go_mod)]


def placeholder_requires(go_mod: str) -> list[str]:
    """Modules required at ``v0.0.0`` (the staging placeholders), in go.mod's order."""
    return [found.group("module") for found in _PLACEHOLDER_REQUIRE.finditer(go_mod)]


def staging_edits(go_mod: str, staging_version: str) -> StagingEdits:
    """The edits for ``go mod edit`` that point every staging module at its published version.

    Modules only replaced (``sample-controller``…: never required) lose their replace and nothing
    else; a ``v0.0.0`` requirement without a staging replace means the layout changed.
    """
    staged = staging_modules(go_mod)
    if not staged:
        raise ModuleLayoutChanged("go.mod has no ./staging/src replace: is this k8s.io/kubernetes' go.mod?")
    placeholders = placeholder_requires(go_mod)
    orphans = sorted(set(placeholders) - set(staged))
    if orphans:
        raise ModuleLayoutChanged(
            f"go.mod requires {', '.join(orphans)} at v0.0.0 without a ./staging replace; "
            "the rewrite in conformance/upstream/gomod.py needs updating"
        )
    return StagingEdits(
        drop_replace=tuple(staged),
        require=tuple(module for module in staged if module in placeholders),
        version=staging_version,
    )


def leftovers(go_mod: str) -> list[str]:
    """What a rewritten go.mod must no longer contain (empty when the rewrite is complete)."""
    return [f"replace {m} => ./staging" for m in staging_modules(go_mod)] + [
        f"require {m} v0.0.0" for m in placeholder_requires(go_mod)
    ]


def go_directive(go_mod: str) -> str:
    """The ``go`` line's version (``1.26.0``): the oldest toolchain that may build the module."""
    found = _GO_DIRECTIVE.search(go_mod)
    if found is None:
        raise ModuleLayoutChanged("go.mod has no 'go' directive")
    return found.group("version")


def toolchain_satisfies(go_version: str, required: str) -> bool:
    """Whether ``go1.26.8`` (``go env GOVERSION``) is at least ``1.26.0`` (a go directive)."""
    return _numbers(go_version.removeprefix("go")) >= _numbers(required)


def _numbers(version: str) -> tuple[int, ...]:
    head = re.match(r"\d+(?:\.\d+)*", version)
    parts = [int(part) for part in head.group(0).split(".")] if head else [0]
    return tuple(parts + [0] * (3 - len(parts)))
