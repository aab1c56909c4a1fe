"""Two builds of the same commit give the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from build.pipeline import BuildOptions, build_target
from build.report import sha256_of
from build.runner import QuietSink
from build.targets import load_target
from tests.build.conftest import Build, Silent

pytestmark = [pytest.mark.slow, pytest.mark.root]


def test_building_the_same_commit_again_gives_the_same_binary(built: Build, tmp_path: Path) -> None:
    first = built("amd64")
    again = build_target(
        load_target("amd64"), options=BuildOptions(dist=tmp_path), listener=Silent(), sink=QuietSink()
    )
    assert again.git_commit == first.git_commit
    assert sha256_of(Path(again.artifact)) == sha256_of(Path(first.artifact))
    assert again.sha256 == first.sha256
