"""Which Kubernetes release to build: the newest the module proxy offers; its staging modules' version.

``go list -m -versions k8s.io/kubernetes`` prints the module path and every version the proxy
knows on one line. :func:`select_version` picks the newest release (no pre-release) of the wanted
minor (``1.37`` by default) or checks an exact request (``1.37.2`` / ``v1.37.2``). Kubernetes
publishes each staging module (``k8s.io/api``, ``k8s.io/client-go``…) at ``v0.<minor>.<patch>``
for release ``v1.<minor>.<patch>`` (:func:`staging_version`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conformance.upstream.errors import VersionNotFound

MODULE = "k8s.io/kubernetes"
DEFAULT_MINOR = "1.37"
_SEMVER = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_REQUEST = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, order=True)
class Release:
    """A released (not pre-release) module version ``v<major>.<minor>.<patch>``."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


def parse_release(version: str) -> Release | None:
    """``v1.37.2`` → Release(1, 37, 2); a pre-release (``v1.37.0-rc.1``) or garbage → None."""
    found = _SEMVER.match(version.strip())
    if found is None or found.group(4) is not None:
        return None
    return Release(int(found.group(1)), int(found.group(2)), int(found.group(3)))


def offered_versions(go_list_output: str) -> list[str]:
    """The versions of ``go list -m -versions MODULE`` output (the first word is the module path)."""
    words = go_list_output.split()
    return words[1:] if words else []


def select_version(go_list_output: str, request: str | None = None) -> str:
    """The version to build: ``request`` if exact and offered, else the newest release of its minor.

    ``request`` is None (the newest ``DEFAULT_MINOR`` release), a minor (``1.37``) or an exact
    release (``1.37.2`` or ``v1.37.2``).
    """
    wanted = _REQUEST.match((request or DEFAULT_MINOR).strip())
    if wanted is None:
        raise VersionNotFound(
            f"cannot read the Kubernetes version {request!r}: give 1.37 or 1.37.2 (or v1.37.2)"
        )
    major, minor = int(wanted.group(1)), int(wanted.group(2))
    releases = sorted(
        release
        for release in map(parse_release, offered_versions(go_list_output))
        if release is not None and (release.major, release.minor) == (major, minor)
    )
    if wanted.group(3) is not None:
        exact = Release(major, minor, int(wanted.group(3)))
        if exact in releases:
            return str(exact)
        raise VersionNotFound(
            f"the module proxy does not offer {MODULE}@{exact}; it has {_listing(releases, major, minor)}"
        )
    if not releases:
        raise VersionNotFound(
            f"the module proxy offers no {MODULE} release v{major}.{minor}.x "
            f"(it lists: {' '.join(offered_versions(go_list_output)) or 'nothing'})"
        )
    return str(releases[-1])


def exact_version(request: str) -> str | None:
    """``1.37.2`` → ``v1.37.2``; a minor alone (``1.37``) or anything else → None."""
    wanted = _REQUEST.match(request.strip())
    if wanted is None or wanted.group(3) is None:
        return None
    return f"v{wanted.group(1)}.{wanted.group(2)}.{wanted.group(3)}"


def staging_version(version: str) -> str:
    """``v1.37.2`` → ``v0.37.2``: the version the staging modules are published at."""
    release = parse_release(version)
    if release is None or release.major != 1:
        raise VersionNotFound(f"{version!r} is not a Kubernetes release (v1.<minor>.<patch>)")
    return f"v0.{release.minor}.{release.patch}"


def _listing(releases: list[Release], major: int, minor: int) -> str:
    shown = " ".join(map(str, releases))
    return shown or f"no v{major}.{minor}.x release"
