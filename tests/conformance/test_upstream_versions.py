"""Choosing the Kubernetes release to build from ``go list -m -versions`` and naming its staging version."""

from __future__ import annotations

import pytest

from conformance.upstream.errors import VersionNotFound
from conformance.upstream.versions import exact_version, parse_release, select_version, staging_version

LISTED = (
    "k8s.io/kubernetes v1.13.0 v1.29.6 v1.36.3 v1.37.0-rc.1 v1.37.0 v1.37.10 v1.37.2 v1.37.9 "
    "v1.38.0-alpha.1 v1.38.0\n"
)


def test_the_newest_patch_of_the_default_minor_wins_numerically_not_lexically() -> None:
    assert select_version(LISTED) == "v1.37.10"


def test_a_minor_request_picks_its_newest_release_and_ignores_pre_releases() -> None:
    assert select_version(LISTED, "1.36") == "v1.36.3"


def test_pre_releases_alone_do_not_count_as_a_release() -> None:
    with pytest.raises(VersionNotFound, match=r"no k8s.io/kubernetes release v1.38.x"):
        select_version("k8s.io/kubernetes v1.38.0-alpha.1 v1.37.2", "1.38")


def test_an_exact_request_must_be_offered() -> None:
    assert select_version(LISTED, "1.37.2") == "v1.37.2"
    assert select_version(LISTED, "v1.37.9") == "v1.37.9"
    with pytest.raises(
        VersionNotFound, match=r"does not offer k8s.io/kubernetes@v1.37.3; it has v1.37.0 v1.37.2"
    ):
        select_version(LISTED, "1.37.3")


def test_nothing_offered_for_the_minor_says_what_was_listed() -> None:
    with pytest.raises(VersionNotFound, match=r"it lists: v1\.13\.0"):
        select_version("k8s.io/kubernetes v1.13.0")
    with pytest.raises(VersionNotFound, match="it lists: nothing"):
        select_version("")


def test_an_unreadable_request_is_refused() -> None:
    with pytest.raises(VersionNotFound, match="cannot read the Kubernetes version"):
        select_version(LISTED, "latest")


def test_exact_versions_are_normalized_and_minors_are_not_exact() -> None:
    assert exact_version("1.37.2") == "v1.37.2"
    assert exact_version("v1.37.2") == "v1.37.2"
    assert exact_version("1.37") is None


def test_staging_modules_are_published_at_v0_of_the_same_minor_and_patch() -> None:
    assert staging_version("v1.37.2") == "v0.37.2"
    assert staging_version("v1.37.10") == "v0.37.10"
    with pytest.raises(VersionNotFound):
        staging_version("v2.0.0")


def test_parse_release_rejects_pre_releases_and_garbage() -> None:
    assert parse_release("v1.37.2") is not None
    assert parse_release("v1.37.0-rc.1") is None
    assert parse_release("1.37.2") is None
