"""The suite's cache: a manifest that says a build is complete, and a warm cache that builds nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from conformance.upstream import build, cache
from conformance.upstream.build import build_suite, find_suite


def fake_build(
    directory: Path, *, version: str = "v1.37.2", recipe: str | None = None
) -> cache.SuiteManifest:
    """A version directory holding two small 'binaries' and the manifest describing them."""
    (directory / "bin").mkdir(parents=True)
    (directory / "bin" / "e2e.test").write_bytes(b"\x7fELF e2e")
    (directory / "bin" / "ginkgo").write_bytes(b"\x7fELF ginkgo")
    manifest = cache.SuiteManifest(
        kubernetes_version=version,
        staging_version="v0.37.2",
        ginkgo_version="v2.32.0",
        go_version="go1.26.8",
        goos="linux",
        goarch="amd64",
        module_sum="h1:abc=",
        module_time="2026-10-27T12:01:04Z",
        go_mod_sha256="0" * 64,
        recipe=recipe or cache.recipe_digest(build._recipe()),
        binaries={name: cache.Binary.of(directory / "bin" / name, directory) for name in cache.BINARIES},
        built_at="2026-11-27T10:00:00Z",
        build_seconds=1.0,
    )
    manifest.write(directory)
    return manifest


def test_a_manifest_reads_back_as_written(tmp_path: Path) -> None:
    written = fake_build(tmp_path)
    assert cache.read_manifest(tmp_path) == written
    assert written.binaries["e2e.test"].path == "bin/e2e.test"
    assert not (tmp_path / "manifest.json.partial").exists()


def test_a_complete_build_has_no_problems(tmp_path: Path) -> None:
    manifest = fake_build(tmp_path)
    assert cache.problems(manifest, tmp_path, version="v1.37.2", recipe=manifest.recipe) == []


def test_missing_or_changed_binaries_and_other_inputs_are_problems(tmp_path: Path) -> None:
    manifest = fake_build(tmp_path)
    (tmp_path / "bin" / "ginkgo").write_bytes(b"\x7fELF gink0")  # same size, other bytes
    (tmp_path / "bin" / "e2e.test").unlink()
    found = cache.problems(manifest, tmp_path, version="v1.37.3", recipe="other")
    assert found == [
        "built for v1.37.2, not v1.37.3",
        "the build recipe changed",
        "bin/e2e.test is missing",
        "bin/ginkgo changed since it was built",
    ]


def test_an_unreadable_manifest_is_no_manifest(tmp_path: Path) -> None:
    assert cache.read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text('{"format": 1}', encoding="utf-8")
    assert cache.read_manifest(tmp_path) is None
    assert cache.problems(None, tmp_path, version="v1.37.2", recipe="x") == ["no readable manifest.json"]


def test_the_recipe_digest_is_stable_and_sensitive() -> None:
    assert cache.recipe_digest({"a": 1, "b": [2]}) == cache.recipe_digest({"b": [2], "a": 1})
    assert cache.recipe_digest({"a": 1}) != cache.recipe_digest({"a": 2})


def test_a_warm_cache_runs_no_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_build(cache.version_dir(tmp_path, "v1.37.2"))

    def no_command(*args: object, **kwargs: object) -> str:
        raise AssertionError(f"a warm cache ran a command: {args}")

    monkeypatch.setattr(build, "call", no_command)
    monkeypatch.setenv("K3PY_GO", "/nonexistent/go")
    out = io.StringIO()
    suite = build_suite("1.37.2", tmp_path, Console(file=out, width=200))
    assert suite.cached
    assert suite.e2e_test == tmp_path / "conformance" / "v1.37.2" / "bin" / "e2e.test"
    assert suite.report["kubernetes_version"] == "v1.37.2"
    assert "cached in" in out.getvalue()
    assert find_suite("v1.37.2", tmp_path) == suite


def test_a_stale_cache_is_not_found(tmp_path: Path) -> None:
    fake_build(cache.version_dir(tmp_path, "v1.37.2"), recipe="0123456789abcdef")
    assert find_suite("v1.37.2", tmp_path) is None
    assert find_suite("v1.37.3", tmp_path) is None
