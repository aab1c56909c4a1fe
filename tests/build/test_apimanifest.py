"""The build's API step: the stripped manifest reads back, its schemas are whole, the report is current."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from build import schemas as full_schemas
from build.apimanifest import (
    ALWAYS_KEPT,
    REPORT_COMMAND,
    StripError,
    StrippedApi,
    output_dir,
    references,
    render_manifest,
    render_report,
    strip,
    toml_value,
)
from k3py.api.manifest import Manifest, Stability, Stripped, load, parse
from k3py.api.printers import PRINTERS, Doc
from k3py.api.profiles import Profile, select
from k3py.api.schema import Schemas

ROOT = Path(__file__).resolve().parents[2]
API_REPORT = ROOT / "docs" / "api-surface.md"
DISTRO = ROOT / "distro" / "k3py"
# A definition name spelled out in k3py's source: io.k8s.<lowercase parts>.<Kind>.
DEFINITION_NAME = re.compile(r"io\.k8s(?:\.[a-z0-9-]+)+\.[A-Z][A-Za-z0-9]*")


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> StrippedApi:
    return strip(Profile(), tmp_path_factory.mktemp("default"))


def full() -> Schemas:
    return Schemas.from_file(full_schemas.output_path())


def bundle(stripped: StrippedApi) -> Schemas:
    return Schemas.from_file(stripped.schemas_path)


def written(stripped: StrippedApi) -> Manifest:
    return parse(stripped.manifest_path.read_bytes(), str(stripped.manifest_path))


def test_the_default_profile_strips_every_alpha_and_keeps_every_ga_groupversion(default: StrippedApi) -> None:
    manifest = written(default)
    names = {gv.name for gv in manifest}
    assert not [gv for gv in manifest if gv.stability is Stability.ALPHA]
    assert {gv.name for gv in load() if gv.stability is Stability.GA} <= names
    assert {gv.name for gv in load() if gv.stability is Stability.ALPHA}.isdisjoint(names)
    assert manifest.stripped == Stripped()
    assert len(default.served) == len(manifest.groupversions)


@pytest.mark.parametrize(
    "profile",
    [
        Profile(),
        Profile(keep_alpha=True),
        Profile(keep_deprecated=True),
        Profile(only=("apps", "core/v1", "rbac.authorization.k8s.io")),
    ],
    ids=["default", "keep-alpha", "keep-deprecated", "only"],
)
def test_the_written_manifest_reads_back_as_what_was_kept(profile: Profile, tmp_path: Path) -> None:
    stripped = strip(profile, tmp_path)
    manifest = written(stripped)
    selection = stripped.selection
    assert manifest.kubernetes == selection.manifest.kubernetes
    assert [(gv.group, gv.version) for gv in manifest] == [
        (gv.group, gv.version) for gv in selection.groupversions()
    ]
    assert tuple(manifest.resources()) == tuple(selection.resources())
    for gv, original in zip(manifest, selection.groupversions(), strict=True):
        assert gv == dataclasses.replace(original, resources=gv.resources)
    assert manifest.stripped == Stripped(
        keep_alpha=profile.keep_alpha,
        keep_deprecated=profile.keep_deprecated,
        only=profile.only,
        drop=profile.drop,
    )
    # The server selects again from what the build kept, with the [build] table's keep_*: all of it stays.
    again = select(manifest, Profile(keep_alpha=profile.keep_alpha, keep_deprecated=profile.keep_deprecated))
    assert tuple(again.resources()) == tuple(manifest.resources())


def test_awkward_strings_survive_the_toml_writer(tmp_path: Path) -> None:
    awkward = 'say "hi" \\ C:\\path\ttab\nnew line \x01 \x7f é ∞ \U0001f600'
    manifest = load()
    gv = manifest.groupversions[0]
    first = dataclasses.replace(gv.resources[0], conformance=True, conformance_reason=awkward)
    changed = Manifest(
        manifest.kubernetes,
        (dataclasses.replace(gv, resources=(first, *gv.resources[1:])), *manifest.groupversions[1:]),
    )
    stripped = Stripped(only=(awkward,), drop=("a]b", "c,d"))
    text = render_manifest(select(changed), stripped)
    again = parse(text.encode())
    assert next(again.resources()).conformance_reason == awkward
    assert again.stripped == stripped


@given(st.one_of(st.text(), st.booleans(), st.lists(st.text()).map(tuple)))
def test_toml_values_read_back_as_written(value: str | bool | tuple[str, ...]) -> None:
    read = tomllib.loads(f"key = {toml_value(value)}\n")["key"]
    assert (tuple(read) if isinstance(read, list) else read) == value


def test_the_stripped_bundle_holds_every_served_kind_and_resolves_every_ref(
    default: StrippedApi, tmp_path: Path
) -> None:
    schemas, upstream = bundle(default), full()
    for r in default.selection.resources():
        node = schemas.kind(r.group, r.version, r.kind)
        assert node is not None, f"{r.group_version} {r.kind} has no definition"
        assert node.name is not None
        listed = node.name + "List"  # create-only kinds (Binding, TokenReview...) have no list
        assert (listed in schemas) == (listed in upstream), f"{r.group_version} {r.kind}List"
    for name in schemas.names():
        assert schemas.definition(name) == upstream.definition(name)
        for ref in references(schemas.definition(name)):
            assert ref in schemas, f"{name} refers to {ref}, which the stripped bundle lacks"
    assert default.after.definitions == len(schemas) < len(upstream) == default.before.definitions
    assert default.after.gzip_bytes == default.schemas_path.stat().st_size < default.before.gzip_bytes
    again = strip(Profile(), tmp_path)
    assert again.schemas_path.read_bytes() == default.schemas_path.read_bytes()
    assert again.manifest_path.read_bytes() == default.manifest_path.read_bytes()


def test_every_definition_k3py_names_is_in_the_default_bundle(default: StrippedApi) -> None:
    schemas = bundle(default)
    named = {
        (name, str(path.relative_to(ROOT)))
        for path in DISTRO.rglob("*.py")
        for name in DEFINITION_NAME.findall(path.read_text(encoding="utf-8"))
    }
    assert named, "the pattern finds nothing: has k3py stopped naming definitions?"
    missing = sorted(f"{name} ({where})" for name, where in named if name not in schemas)
    assert not missing, f"add them to build/apimanifest.py ALWAYS_KEPT: {missing}"
    assert set(ALWAYS_KEPT) <= set(schemas.names())


def test_printer_column_docs_of_served_resources_are_in_the_default_bundle(default: StrippedApi) -> None:
    schemas, upstream = bundle(default), full()
    served = {r.name for r in default.selection.resources()}
    docs = {
        column.description.definition
        for resource, printer in PRINTERS.items()
        if resource in served
        for column in printer.columns
        if isinstance(column.description, Doc)
    }
    assert docs
    assert sorted(d for d in docs if d in upstream and d not in schemas) == []


def test_keep_alpha_keeps_the_alpha_groupversions_and_their_definitions(
    default: StrippedApi, tmp_path: Path
) -> None:
    stripped = strip(Profile(keep_alpha=True), tmp_path)
    assert stripped.build.keep_alpha
    gv = load().groupversion("scheduling.k8s.io", "v1alpha3")
    assert stripped.selection.decision(gv.group, gv.version).kept
    assert gv.name in {g.name for g in written(stripped)}
    schemas, slim = bundle(stripped), bundle(default)
    for r in gv.resources:
        node = schemas.kind(r.group, r.version, r.kind)
        assert node is not None and node.name is not None
        assert node.name not in slim
    assert stripped.after.gzip_bytes > default.after.gzip_bytes
    assert output_dir(tmp_path, Profile(keep_alpha=True)) != output_dir(tmp_path, Profile())


def test_only_and_drop_decide_what_exists(tmp_path: Path) -> None:
    only = strip(Profile(only=("core", "apps", "rbac.authorization.k8s.io")), tmp_path / "only")
    assert [gv.name for gv in written(only)] == ["core/v1", "apps/v1", "rbac.authorization.k8s.io/v1"]
    schemas = bundle(only)
    assert "io.k8s.api.apps.v1.Deployment" in schemas
    assert "io.k8s.api.batch.v1.Job" not in schemas
    assert set(ALWAYS_KEPT) <= set(schemas.names())
    assert written(only).stripped == Stripped(only=("core", "apps", "rbac.authorization.k8s.io"))

    drop = strip(Profile(drop=("batch", "autoscaling/v2")), tmp_path / "drop")
    names = {gv.name for gv in written(drop)}
    assert "batch/v1" not in names and "autoscaling/v2" not in names
    assert {"core/v1", "apps/v1", "autoscaling/v1"} <= names
    assert "io.k8s.api.batch.v1.CronJob" not in bundle(drop)
    assert drop.selection.decision("batch", "v1").reason == "dropped by --drop batch"


def test_a_profile_naming_nothing_known_or_stripping_what_k3py_needs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StripError, match="unknown API group 'nosuch'") as caught:
        strip(Profile(drop=("nosuch",)), tmp_path)
    assert caught.value.exit_code == 2
    with pytest.raises(
        StripError,
        match=re.escape("strips core/v1/namespaces, core/v1/services, rbac.authorization.k8s.io/v1/roles"),
    ):
        strip(Profile(only=("apps",)), tmp_path)
    with pytest.raises(StripError, match="strips core/v1/namespaces"):
        strip(Profile(drop=("core",)), tmp_path)
    with pytest.raises(StripError, match="runtime-config"):
        strip(Profile(runtime_config={"api/all": True}), tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_api_surface_report_is_current(default: StrippedApi) -> None:
    expected = render_report(default)
    assert str(ROOT) not in expected
    current = API_REPORT.read_text(encoding="utf-8") if API_REPORT.exists() else ""
    assert current == expected, f"{API_REPORT.relative_to(ROOT)} is stale: run `{REPORT_COMMAND}`"


def test_the_report_names_the_conformance_exceptions(default: StrippedApi) -> None:
    report = render_report(default)
    assert REPORT_COMMAND in report
    assert "- `core/v1/endpoints`: deprecated in 1.33" in report
    assert "Endpoint resource lifecycle" in report
    assert f"| stripped | {default.after.gzip_bytes:,} | {default.after.definitions:,} |" in report


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "invoke", "manifest", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_invoke_manifest_rejects_an_unknown_group_in_one_line() -> None:
    result = invoke("--drop", "nosuch")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("manifest: unknown API group 'nosuch' in --drop 'nosuch'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_invoke_manifest_writes_the_report_only_for_the_default_profile() -> None:
    result = invoke("--keep-alpha", "--write-report")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "manifest: --write-report documents the default profile; run it without --keep-alpha"
    )


def test_the_wire_layout_keeps_the_served_kinds_and_everything_they_reach(tmp_path: Path) -> None:
    stripped = strip(Profile(), tmp_path / "api")
    wire = json.loads(gzip.decompress(stripped.protobuf_path.read_bytes()))
    served = {gv.group_version for gv in stripped.served}
    assert set(wire["kinds"]) == served | {"meta.k8s.io/v1"}
    assert "Deployment" in wire["kinds"]["apps/v1"] and "Status" in wire["kinds"]["v1"]
    assert not [v for v in wire["kinds"] if "alpha" in v or "beta" in v]
    for fields in wire["types"].values():
        for _json, _number, text, _flags in fields:
            for name in re.findall(r"[\w.\-]+/[\w./\-]+\.\w+", text):
                assert name in wire["types"], name
    assert stripped.protobuf_after.definitions < stripped.protobuf_before.definitions
    assert set(stripped.paths.values()) == {
        "manifest.toml",
        "data/definitions-1.37.json.gz",
        "data/protobuf-1.37.json.gz",
    }


def test_subresource_bodies_stay_in_the_wire_layout_when_their_group_goes(tmp_path: Path) -> None:
    dropped = strip(Profile(drop=("autoscaling", "policy")), tmp_path / "api")
    wire = json.loads(gzip.decompress(dropped.protobuf_path.read_bytes()))
    assert set(wire["kinds"]["autoscaling/v1"]) == {"Scale"} and set(wire["kinds"]["policy/v1"]) == {
        "Eviction"
    }
    assert wire["kinds"]["autoscaling/v1"]["Scale"] in wire["types"]
    assert "HorizontalPodAutoscaler" not in wire["kinds"].get("autoscaling/v2", {})


def test_a_stripped_binary_ignores_turning_off_what_it_lacks_and_refuses_turning_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from k3py.api import resources
    from k3py.config import ConfigError, ServerConfig, load_server_config
    from k3py.server import run

    stripped = parse(strip(Profile(), tmp_path / "api").manifest_path.read_bytes())
    monkeypatch.setattr(run, "load_manifest", lambda: stripped)
    monkeypatch.setattr(resources, "load_manifest", lambda: stripped)

    def config(setting: str) -> ServerConfig:
        return load_server_config({"runtime-config": setting}, env={}, default_config_file=tmp_path / "none")

    registry = run.served_apis(config("storagemigration.k8s.io/v1beta1=false,v1/componentstatuses=false"))
    assert registry.lookup("apps", "v1", "deployments") is not None
    assert "this build does not serve it anyway" in caplog.text
    with pytest.raises(ConfigError, match="rebuild with `invoke build --keep-alpha`"):
        run.served_apis(config("storagemigration.k8s.io/v1beta1=true"))
