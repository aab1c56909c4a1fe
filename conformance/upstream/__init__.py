"""The upstream CNCF conformance suite, built offline: ``e2e.test``, ``ginkgo`` and the test images.

Everything comes from the Go module proxy (Kubernetes, Ginkgo, their dependencies) and Debian's
package archive (busybox, catatonit, nginx, dig…); no registry and no container engine is
involved. Everything is cached in ``<cache>/conformance/<version>/`` (``<cache>`` is
:func:`build.paths.cache_dir`, ``.cache/k3py`` by default); a second call finds it there.

The API the runner and ``invoke conformance`` use::

    from conformance.upstream import build_suite, build_images, list_conformance_tests, airgap_images

    suite = build_suite()                     # newest v1.37.x; or build_suite("1.37.2")
    suite.e2e_test, suite.ginkgo              # the binaries (Paths)
    tests = list_conformance_tests(suite)     # [ConformanceTest(name, file, line, labels)], .serial
    report = build_images(suite, "amd64")     # OCI archives + images.json; report.archives
    airgap_images(suite.directory, "amd64")   # the archives to put in <data-dir>/agent/images/

Modules: :mod:`~conformance.upstream.build` (the suite), :mod:`~conformance.upstream.gomod`
(why and how Kubernetes' go.mod is rewritten), :mod:`~conformance.upstream.golang` (Go settings),
:mod:`~conformance.upstream.cache` (manifest), :mod:`~conformance.upstream.speclist` (the test
list), :mod:`~conformance.upstream.images` and :mod:`~conformance.upstream.recipes` (the images),
:mod:`~conformance.upstream.catalog` and :mod:`~conformance.upstream.usage` (which images exist
and which tests use them), :mod:`~conformance.upstream.debs` and
:mod:`~conformance.upstream.rootfs` (image contents), :mod:`~conformance.upstream.progress`.
"""

from conformance.upstream.build import Suite, build_suite, find_suite
from conformance.upstream.errors import StepFailed, UpstreamError
from conformance.upstream.images import (
    ImageBuildFailed,
    ImageResult,
    ImagesReport,
    airgap_images,
    build_images,
)
from conformance.upstream.speclist import CONFORMANCE_FOCUS, ConformanceTest, list_conformance_tests

__all__ = [
    "CONFORMANCE_FOCUS",
    "ConformanceTest",
    "ImageBuildFailed",
    "ImageResult",
    "ImagesReport",
    "StepFailed",
    "Suite",
    "UpstreamError",
    "airgap_images",
    "build_images",
    "build_suite",
    "find_suite",
    "list_conformance_tests",
]
