"""Which images the suite pulls (manifest.go + --list-images) and which conformance specs use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.upstream import usage
from conformance.upstream.catalog import UpstreamImage, catalog, parse_manifest_go
from conformance.upstream.errors import ModuleLayoutChanged

MANIFEST_GO = """
var (
\tinitRegistry = RegistryList{
\t\tPromoterE2eRegistry:      "registry.k8s.io/e2e-test-images",
\t\tGcRegistry:               "registry.k8s.io",
\t\tPrivateRegistry:          "gcr.io/k8s-authenticated-test",
\t}
)

func initImageConfigs(list RegistryList) (map[ImageID]Config, map[ImageID]Config) {
\tconfigs := map[ImageID]Config{}
\tconfigs[AgnhostPrev] = Config{list.PromoterE2eRegistry, "agnhost", "2.55"}
\tconfigs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "2.66.1"}
\tconfigs[AgnhostPrivate] = Config{list.PrivateRegistry, "agnhost", "2.6"}
\tconfigs[Pause] = Config{list.GcRegistry, "pause", "3.10.2"}
\tconfigs[VolumeNFSServer] = Config{list.PromoterE2eRegistry, "volume/nfs", "1.6.0"}
}
"""


def test_manifest_go_gives_each_constant_its_full_reference() -> None:
    assert parse_manifest_go(MANIFEST_GO) == {
        "AgnhostPrev": "registry.k8s.io/e2e-test-images/agnhost:2.55",
        "Agnhost": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
        "AgnhostPrivate": "gcr.io/k8s-authenticated-test/agnhost:2.6",
        "Pause": "registry.k8s.io/pause:3.10.2",
        "VolumeNFSServer": "registry.k8s.io/e2e-test-images/volume/nfs:1.6.0",
    }


def test_an_unknown_registry_or_missing_block_is_a_layout_change() -> None:
    with pytest.raises(ModuleLayoutChanged, match=r"unknown registry list\.Nowhere"):
        parse_manifest_go(MANIFEST_GO.replace("list.GcRegistry", "list.Nowhere"))
    with pytest.raises(ModuleLayoutChanged, match="initRegistry"):
        parse_manifest_go("package image\n")


def test_the_binarys_list_is_authoritative_and_constants_are_attached() -> None:
    images = catalog(
        ["registry.k8s.io/pause:3.10.2", "registry.k8s.io/sig-storage/csi-attacher:v4.12.0"],
        parse_manifest_go(MANIFEST_GO),
    )
    by_reference = {image.reference: image for image in images}
    assert by_reference["registry.k8s.io/pause:3.10.2"].constants == ("Pause",)
    assert by_reference["registry.k8s.io/sig-storage/csi-attacher:v4.12.0"].constants == ()
    # A constant the binary did not list is still catalogued.
    assert by_reference["registry.k8s.io/e2e-test-images/agnhost:2.66.1"].constants == ("Agnhost",)
    assert [image.reference for image in images] == sorted(by_reference)


def test_image_names_and_archive_names() -> None:
    nfs = UpstreamImage(reference="registry.k8s.io/e2e-test-images/volume/nfs:1.6.0")
    assert (nfs.name, nfs.tag, nfs.archive_name) == ("volume/nfs", "1.6.0", "volume-nfs-1.6.0.tar")
    pause = UpstreamImage(reference="registry.k8s.io/pause:3.10.2")
    assert (pause.name, pause.archive_name) == ("pause", "pause-3.10.2.tar")


SPEC_FILE = """package apps

import (
\t"context"

\timageutils "k8s.io/kubernetes/test/utils/image"
)

var _ = SIGDescribe("Things", func() {
\tframework.ConformanceIt("serves nginx", func(ctx context.Context) {
\t\timage := imageutils.GetE2EImage(imageutils.Nginx)
\t\tframework.Logf("a brace in a string: }")
\t\t_ = image
\t})

\tginkgo.It("uses perl, not a conformance test", func(ctx context.Context) {
\t\t_ = imageutils.GetE2EImage(imageutils.Perl)
\t})

\tframework.ConformanceIt("uses a helper", func(ctx context.Context) {
\t\t// imageutils.Kitten in a comment does not count
\t\t_ = "imageutils.Nautilus in a string does not count"
\t\t_ = helper()
\t})
})

func helper() string {
\treturn imageutils.GetE2EImage(imageutils.NonRoot)
}
"""


def test_uses_are_direct_inside_a_spec_body_and_file_wide_outside_any(tmp_path: Path) -> None:
    path = tmp_path / "test/e2e/apps/things.go"
    path.parent.mkdir(parents=True)
    path.write_text(SPEC_FILE, encoding="utf-8")
    lines = SPEC_FILE.splitlines()
    at = {
        text: next(i for i, line in enumerate(lines, 1) if text in line)
        for text in ("nginx", "perl", 'helper"')
    }
    specs = [
        usage.Spec(name="serves nginx", file="test/e2e/apps/things.go", line=at["nginx"], conformance=True),
        usage.Spec(name="uses perl", file="test/e2e/apps/things.go", line=at["perl"], conformance=False),
        usage.Spec(
            name="uses a helper", file="test/e2e/apps/things.go", line=at['helper"'], conformance=True
        ),
    ]
    uses = usage.image_uses(tmp_path, specs, ["Nginx", "Perl", "NonRoot", "Kitten", "Nautilus"])
    assert uses["Nginx"] == [usage.Use(spec="serves nginx", file="test/e2e/apps/things.go", how="direct")]
    assert uses["Perl"] == []
    assert uses["Kitten"] == [] and uses["Nautilus"] == []
    assert [(u.spec, u.how) for u in uses["NonRoot"]] == [("serves nginx", "file"), ("uses a helper", "file")]


def test_body_lines_skip_braces_in_strings_and_comments() -> None:
    code = usage.blank_comments_and_strings("f(func() {\n\ts := \"}\"\n\t// }\n\tr := '}'\n})\nnext()\n")
    assert usage.body_lines(code, 1) == (1, 5)


def test_a_file_without_the_image_package_has_no_references() -> None:
    assert usage.references("package x\n\nvar y = imageutils.Nginx\n", ["Nginx"]) == {}
