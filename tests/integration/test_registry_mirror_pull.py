"""containerd pulls through the embedded registry mirror: a real containerd, CRI PullImage, hosts.toml.

The mirror serves an archive the containerd has never imported, so the pull must resolve
the tag and fetch every blob from it; the mirror's request log shows it did. Then the node's
own case: an image imported from the air-gap directory, pulled again (``imagePullPolicy:
Always``), resolves through the mirror and needs no registry. The image's registry is
``localhost:1``, where nothing listens: only the mirror can answer, and a pull that missed it
would fail on loopback without any traffic leaving the host.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k3py.agent import airgap, registry_hosts
from k3py.agent.registry_content import index_directory
from k3py.agent.registry_mirror import RegistryMirror
from tests.integration.containerd_support import Node, busybox_image, running_containerd

pytestmark = [pytest.mark.root, pytest.mark.slow]

REFERENCE = "localhost:1/e2e/busybox:1.36"
REGISTRY = "localhost:1"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with running_containerd(tmp_path) as started:
        yield started


async def serve(node: Node, images: Path, content: Path) -> RegistryMirror:
    catalog, failed = index_directory(images, content)
    assert failed == {}
    mirror = RegistryMirror(catalog)
    await mirror.start()
    registry_hosts.write_hosts(
        node.paths.certs_dir,
        registry_hosts.Registries(),
        mirror_url=mirror.url,
        mirrored=catalog.registries(),
    )
    return mirror


async def test_containerd_fetches_an_image_it_lacks_from_the_mirror(node: Node, tmp_path: Path) -> None:
    written = busybox_image(tmp_path / "images" / "busybox.tar", REFERENCE)
    assert await node.runtime.image_status(REFERENCE) is None
    mirror = await serve(node, tmp_path / "images", tmp_path / "registry")
    try:
        await node.runtime.pull_image(REFERENCE)
    finally:
        await mirror.stop()
    status = await node.runtime.image_status(REFERENCE)
    assert status is not None
    assert status["repo_digests"] == [f"localhost:1/e2e/busybox@{written.manifest_digest}"]
    served = {(r.method, r.path, r.ns, r.status) for r in mirror.requests}
    base = "/v2/e2e/busybox"
    assert (
        {("HEAD", f"{base}/manifests/1.36", REGISTRY, 200)}
        | {("GET", f"{base}/blobs/{d}", REGISTRY, 200) for d in (written.config_digest, written.layer_digest)}
    ) <= served, served


async def test_an_imported_image_pulled_again_resolves_through_the_mirror(node: Node, tmp_path: Path) -> None:
    written = busybox_image(tmp_path / "images" / "busybox.tar", REFERENCE)
    await airgap.import_archive(node.paths.socket, written.path)
    mirror = await serve(node, tmp_path / "images", tmp_path / "registry")
    try:
        await node.runtime.pull_image(REFERENCE)
    finally:
        await mirror.stop()
    assert ("HEAD", "/v2/e2e/busybox/manifests/1.36", REGISTRY, 200) in {
        (r.method, r.path, r.ns, r.status) for r in mirror.requests
    }
    status = await node.runtime.image_status(REFERENCE)
    assert status is not None and status["id"] == written.config_digest
