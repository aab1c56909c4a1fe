"""The real thing: e2e.test, ginkgo and the test images built from the Go module proxy and Debian's archive.

Builds into the repository's cache (``.cache/k3py/conformance/<version>/``). With that cache warm
the test checks the cached build and that a second build does nothing (seconds); with it cold it
does the whole build: minutes with a warm Go build cache (``~/.cache/go-build``), about 25 minutes
on two CPUs without. It is never skipped: run it explicitly (``invoke test -m network``).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest
from rich.console import Console

from conformance.upstream import airgap_images, build_images, build_suite, list_conformance_tests
from conformance.upstream.catalog import MANIFEST_GO, parse_manifest_go
from conformance.upstream.images import BUILT

pytestmark = [pytest.mark.slow, pytest.mark.network]


def test_the_suite_and_its_images_build_offline_and_a_second_build_does_nothing() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)
    suite = build_suite(None, console=console)
    assert suite.version.startswith("v1.37.")
    version = subprocess.run([suite.e2e_test, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == suite.version
    ginkgo = subprocess.run([suite.ginkgo, "version"], capture_output=True, text=True, check=True)
    assert suite.manifest.ginkgo_version.removeprefix("v") in ginkgo.stdout

    again = build_suite(suite.version, console=console)
    assert again.cached and again.manifest == suite.manifest

    tests = list_conformance_tests(suite)
    assert len(tests) >= 400, f"only {len(tests)} [Conformance] specs"
    assert all("[Conformance]" in test.name for test in tests)
    assert "[sig-network] DNS should provide DNS for the cluster [Conformance]" in {
        test.name for test in tests
    }
    assert 0 < sum(test.serial for test in tests) < len(tests)

    report = build_images(suite, "amd64", console)
    constants = parse_manifest_go((suite.source / MANIFEST_GO).read_text(encoding="utf-8"))
    built = {image.reference for image in report.by_status(BUILT)}
    assert {constants["Agnhost"], constants["BusyBox"], constants["Pause"]} <= built
    assert airgap_images(suite.directory) == report.archives
    for archive in report.archives:
        with tarfile.open(archive) as image:
            index = json.load(image.extractfile("index.json"))  # type: ignore[arg-type]
        names = {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]}
        assert len(names) == 1 and names <= built, archive
    assert build_images(suite, "amd64", console) == report
