"""The API manifest holds upstream 1.37's facts, and profiles keep and strip what they say they do."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from k3py.api.manifest import DATA_FILE, Manifest, ManifestError, Stability, load, parse
from k3py.api.profiles import ROW_HEADER, Profile, ProfileError, Selection, parse_runtime_config, select
from k3py.api.resources import RESOURCES, unserved_reason

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_YAML = ROOT.parent / "shared" / "conformance" / "conformance.yaml"

GVK = tuple[str, str, str]

# Kinds of the definitions that are the bodies of subresources, not resources of their own.
SUBRESOURCE_BODIES: dict[GVK, tuple[str, str, str, str]] = {
    ("autoscaling", "v1", "Scale"): ("apps", "v1", "deployments", "scale"),
    ("policy", "v1", "Eviction"): ("", "v1", "pods", "eviction"),
    ("authentication.k8s.io", "v1", "TokenRequest"): ("", "v1", "serviceaccounts", "token"),
}


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load()


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    """The 1.37 ``$defs`` of the installed kubernetes-validate, read as build/schemas.py reads them."""
    dist = importlib.metadata.distribution("kubernetes-validate")
    relative = "kubernetes_validate/kubernetes-json-schema/v1.37.0-local/_definitions.json"
    document = json.loads(Path(str(dist.locate_file(relative))).read_text())
    defs: dict[str, dict[str, Any]] = document["$defs"]
    return defs


def served_kinds() -> dict[GVK, str]:
    """Every group/version/kind of the definitions that is a resource a server serves.

    Left out: schemas declaring several kinds (DeleteOptions and WatchEvent are registered in
    every group-version), the apimachinery meta types (Status, APIGroup, APIVersions...),
    collections (``FooList`` with ``items``) and the bodies of subresources.
    """
    kinds: dict[GVK, str] = {}
    for name, schema in definitions().items():
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        if len(gvks) != 1 or name.startswith("io.k8s.apimachinery.pkg.apis.meta."):
            continue
        gvk = (gvks[0].get("group", ""), gvks[0]["version"], gvks[0]["kind"])
        if gvk[2].endswith("List") and "items" in schema.get("properties", {}):
            continue
        if gvk not in SUBRESOURCE_BODIES:
            kinds[gvk] = name
    return kinds


def manifest_kinds(manifest: Manifest) -> set[GVK]:
    return {(r.group, r.version, r.kind) for r in manifest.resources()}


# The data.


def test_the_bundled_manifest_loads_and_is_shared(manifest: Manifest) -> None:
    assert load() is manifest
    assert manifest.kubernetes == "1.37"
    assert manifest.groups()[0] == ""
    assert manifest.versions("resource.k8s.io") == ("v1", "v1beta2", "v1beta1", "v1alpha3")
    pods = manifest.resource("", "v1", "pods")
    assert (pods.kind, pods.singular, pods.short_names, pods.categories) == ("Pod", "pod", ("po",), ("all",))
    assert {"binding", "eviction", "ephemeralcontainers", "resize", "log", "exec"} <= set(pods.subresources)
    assert manifest.resource("", "v1", "namespaces").verbs == (
        "create", "delete", "get", "list", "patch", "update", "watch",
    )  # fmt: skip


def test_every_manifest_kind_is_a_kind_of_the_definitions(manifest: Manifest) -> None:
    missing = sorted(manifest_kinds(manifest) - set(served_kinds()))
    assert not missing, f"not in the 1.37 definitions: {missing}"


def test_every_served_kind_of_the_definitions_is_in_the_manifest(manifest: Manifest) -> None:
    missing = sorted(set(served_kinds()) - manifest_kinds(manifest))
    assert not missing, f"in the 1.37 definitions but not in the manifest: {missing}"


def test_the_subresource_bodies_left_out_are_subresources_in_the_manifest(manifest: Manifest) -> None:
    for gvk, (group, version, plural, sub) in SUBRESOURCE_BODIES.items():
        assert gvk in set(definitions_kinds()), gvk
        assert sub in manifest.resource(group, version, plural).subresources, gvk


def definitions_kinds() -> Iterator[GVK]:
    for schema in definitions().values():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            yield gvk.get("group", ""), gvk["version"], gvk["kind"]


def test_stability_follows_the_version_and_alpha_is_never_on_by_default(manifest: Manifest) -> None:
    for gv in manifest:
        assert gv.stability is not Stability.ALPHA or not gv.served_by_default, gv.name
        assert (gv.stability is Stability.GA) == bool(re.fullmatch(r"v\d+", gv.version)), gv.name


def test_lifecycle_facts_carry_over(manifest: Manifest) -> None:
    status = manifest.resource("", "v1", "componentstatuses")
    assert (status.deprecated_in, status.verbs, status.namespaced) == ("1.19", ("get", "list"), False)
    endpoints = manifest.resource("", "v1", "endpoints")
    assert endpoints.deprecated_in == "1.33"
    assert endpoints.replacement == "discovery.k8s.io/v1 EndpointSlice"
    assert endpoints.conformance and "Endpoint resource lifecycle" in endpoints.conformance_reason
    for plural in ("tokenreviews", "selfsubjectreviews"):
        assert manifest.resource("authentication.k8s.io", "v1", plural).verbs == ("create",)
    assert manifest.resource("", "v1", "bindings").verbs == ("create",)


def test_conformance_needs_only_apis_upstream_serves_by_default(manifest: Manifest) -> None:
    for gv in manifest:
        for r in gv.resources:
            assert not r.conformance or gv.served_by_default, f"{gv.name} {r.plural}"


@pytest.mark.skipif(not CONFORMANCE_YAML.is_file(), reason=f"no {CONFORMANCE_YAML}")
def test_conformance_reasons_name_tests_of_the_suite(manifest: Manifest) -> None:
    tests = {t["testname"] for t in yaml.safe_load(CONFORMANCE_YAML.read_text())}
    for r in manifest.resources():
        if r.conformance:
            assert any(name in r.conformance_reason for name in tests), (r.name, r.conformance_reason)


@functools.cache
def openapi_paths() -> dict[tuple[str, str, str], dict[str, Any]]:
    """Scope, verbs and subresources of every resource, from the 1.37 OpenAPI paths.

    The kubernetes Python client 37 is generated from them: each operation's ``_serialize``
    method names its HTTP method and path.
    """
    try:
        dist = importlib.metadata.distribution("kubernetes")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the kubernetes client is not installed")
    if not dist.version.startswith("37."):
        pytest.skip(f"kubernetes client {dist.version} is not generated from 1.37")
    api = Path(str(dist.locate_file("kubernetes/client/api")))
    operation = re.compile(r"method='(\w+)',\s*resource_path='([^']+)'")
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for source in sorted(api.glob("*_api.py")):
        for method, path in operation.findall(source.read_text()):
            parts = path.strip("/").split("/")
            if parts[0] == "api" and len(parts) > 2:
                group, version, rest = "", parts[1], parts[2:]
            elif parts[0] == "apis" and len(parts) > 3 and "{" not in parts[1]:
                group, version, rest = parts[1], parts[2], parts[3:]
            else:
                continue
            namespaced = rest[:2] == ["namespaces", "{namespace}"] and len(rest) > 2
            rest = rest[2:] if namespaced else rest
            entry = found.setdefault(
                (group, version, rest[0]), {"namespaced": False, "verbs": set(), "subresources": set()}
            )
            entry["namespaced"] |= namespaced
            if len(rest) > 2:
                entry["subresources"].add(rest[2])
                continue
            named = len(rest) == 2
            verb = {
                ("GET", True): "get",
                ("GET", False): "list",
                ("POST", False): "create",
                ("PUT", True): "update",
                ("PATCH", True): "patch",
                ("DELETE", True): "delete",
                ("DELETE", False): "deletecollection",
            }[(method, named)]
            entry["verbs"].add(verb)
    return found


def test_rest_facts_match_the_1_37_openapi_paths(manifest: Manifest) -> None:
    paths = openapi_paths()
    assert {(r.group, r.version, r.plural) for r in manifest.resources()} == set(paths)
    for r in manifest.resources():
        upstream = paths[(r.group, r.version, r.plural)]
        assert r.namespaced == upstream["namespaced"], r.name
        assert set(r.subresources) == upstream["subresources"], r.name
        # Watch is not an operation of its own: every lister watches but componentstatuses.
        assert set(r.verbs) - {"watch"} == upstream["verbs"], r.name
        assert ("watch" in r.verbs) == ("list" in r.verbs and r.plural != "componentstatuses"), r.name


def test_the_served_resources_are_what_the_default_profile_keeps_and_k3py_can_serve(
    manifest: Manifest,
) -> None:
    kept = {(r.group, r.version, r.plural): r for r in select(manifest, Profile()).resources()}
    served = {(r.group, r.version, r.plural): r for r in RESOURCES}
    assert served.keys() <= kept.keys()
    left_out = {key: unserved_reason(kept[key]) for key in kept.keys() - served.keys()}
    assert all(left_out.values()), left_out
    assert ("", "v1", "bindings") in left_out  # create only, and no handler yet
    assert ("authorization.k8s.io", "v1", "subjectaccessreviews") in served  # answered by reviews.py
    assert served[("", "v1", "serviceaccounts")].subresources == ("token",)
    assert ("apiregistration.k8s.io", "v1", "apiservices") in served
    assert all(not key[1].endswith(("alpha1", "alpha2", "alpha3")) for key in served)
    pods = served[("", "v1", "pods")]
    # status, ephemeralcontainers and resize (generic) and eviction (its own handler, listed for
    # kubectl drain's discovery); log, exec, binding... have handlers of their own and are not
    # listed here.
    assert pods.subresources == ("ephemeralcontainers", "eviction", "resize", "status")
    assert "deletecollection" not in served[("", "v1", "namespaces")].verbs
    assert served[("events.k8s.io", "v1", "events")].storage_prefix() == b"/registry/core/events/"
    assert {"deployments", "leases", "resourceclaims", "flowschemas"} <= {key[2] for key in served}


# Loading errors name the place.

GOOD = """
kubernetes = "1.37"
[[groupversion]]
group = "example.k8s.io"
version = "v1"
stability = "ga"
served_by_default = true
[[groupversion.resource]]
kind = "Widget"
plural = "widgets"
singular = "widget"
namespaced = true
verbs = ["get", "list"]
"""


def test_a_small_manifest_parses() -> None:
    parsed = parse(GOOD.encode(), "good.toml")
    assert parsed.groupversion("example.k8s.io", "v1").resources[0].group_version == "example.k8s.io/v1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('stability = "ga"', 'stability = "beta"'),
            "example.k8s.io/v1: version 'v1' is not spelled like a beta",
        ),
        (('stability = "ga"', 'stability = "stable"'), "stability must be one of ga, beta, alpha"),
        (("verbs = ", "vrebs = "), "example.k8s.io/v1 widgets: missing verbs"),
        (('"list"]', '"list", "explode"]'), "widgets: verbs must be some of"),
        (("namespaced = true", 'namespaced = "yes"'), "widgets: namespaced must be a bool"),
        (("namespaced = true", "namespaced = true\ncolour = 1"), "widgets: unknown field(s) colour"),
        (("namespaced = true", "namespaced = true\nconformance = true"), "widgets: conformance = true needs"),
        (
            ("namespaced = true", 'namespaced = true\ndeprecated_in = "1.40"'),
            "deprecated_in 1.40 is after 1.37",
        ),
        (("namespaced = true", 'namespaced = true\nremoved_in = "1.30"'), "removed_in 1.30"),
        (('plural = "widgets"', 'plural = "Widgets"'), "resource #1: plural 'Widgets' does not match"),
        (
            ("served_by_default = true", "served_by_default = true\nstray = 2"),
            "example.k8s.io/v1: unknown field",
        ),
        (('kubernetes = "1.37"', 'kubernetes = "one"'), "kubernetes must look like 1.NN"),
        (("namespaced = true", "namespaced = "), "is not valid TOML"),
    ],
)
def test_bad_data_is_reported_where_it_is(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse(GOOD.replace(*change).encode(), "bad.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("bad.toml")


def test_duplicates_are_reported() -> None:
    twice = GOOD + GOOD[GOOD.index("[[groupversion.resource]]") :]
    with pytest.raises(ManifestError, match="plural 'widgets' is listed twice"):
        parse(twice.encode())
    with pytest.raises(ManifestError, match=r"group-version 'example\.k8s\.io/v1' is listed twice"):
        parse((GOOD + GOOD.replace('kubernetes = "1.37"', "")).encode())


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / DATA_FILE
    path.write_text(GOOD)
    assert load(path).groups() == ("example.k8s.io",)


# Profiles.


def kept(selection: Selection) -> set[str]:
    return {f"{r.group or 'core'}/{r.version}/{r.plural}" for r in selection.resources()}


def test_the_default_is_upstreams_default_less_alpha_and_deprecated(manifest: Manifest) -> None:
    selection = select(manifest)
    expected = {
        f"{gv.group or 'core'}/{gv.version}/{r.plural}"
        for gv in manifest
        if gv.served_by_default and gv.stability is not Stability.ALPHA and not gv.deprecated
        for r in gv.resources
        if not r.deprecated or r.conformance
    }
    assert kept(selection) == expected
    for gv in manifest:
        decision = selection.decision(gv.group, gv.version)
        if gv.stability is Stability.ALPHA:
            assert (decision.kept, decision.reason) == (False, "alpha"), gv.name
        elif not gv.served_by_default:
            assert not decision.kept and "not served by default upstream" in decision.reason, gv.name
    assert "core/v1/componentstatuses" not in kept(selection)
    assert selection.decision("", "v1", "componentstatuses").reason == "deprecated in 1.19"


def test_the_default_keeps_what_conformance_needs_and_says_why(manifest: Manifest) -> None:
    endpoints = select(manifest).decision("", "v1", "endpoints")
    assert endpoints.kept
    assert endpoints.reason.startswith("deprecated in 1.33 (use discovery.k8s.io/v1 EndpointSlice), kept: ")
    assert "conformance needs it (test Endpoint resource lifecycle" in endpoints.reason


def test_beta_versions_say_when_they_are_deprecated_too(manifest: Manifest) -> None:
    decision = select(manifest).decision("resource.k8s.io", "v1beta1")
    assert decision.reason == (
        "beta, not served by default upstream; deprecated in 1.35 (use resource.k8s.io/v1)"
    )


def test_keep_alpha_and_keep_deprecated(manifest: Manifest) -> None:
    selection = select(manifest, Profile(keep_alpha=True, keep_deprecated=True))
    alpha = selection.decision("admissionregistration.k8s.io", "v1alpha1")
    assert (alpha.kept, alpha.reason) == (True, "alpha, kept by keep_alpha")
    assert "admissionregistration.k8s.io/v1alpha1/mutatingadmissionpolicies" in kept(selection)
    status = selection.decision("", "v1", "componentstatuses")
    assert (status.kept, status.reason) == (True, "deprecated in 1.19, kept by keep_deprecated")
    assert not selection.decision("scheduling.k8s.io", "v1beta1").kept  # beta stays off


def test_only_and_drop(manifest: Manifest) -> None:
    only = select(manifest, Profile(only=("apps", "core/v1")))
    assert {d.name for d in only.groupversion_decisions.values() if d.kept} == {"apps/v1", "core/v1"}
    assert only.decision("batch", "v1").reason == "not in --only (apps, core/v1)"
    dropped = select(manifest, Profile(drop=("batch", "core")))
    assert not any(r.group in ("", "batch") for r in dropped.resources())
    assert dropped.decision("", "v1", "pods").reason == "dropped by --drop core"
    narrowed = select(manifest, Profile(only=("resource.k8s.io",), drop=("resource.k8s.io/v1",)))
    assert list(narrowed.resources()) == []


def test_runtime_config_as_kube_apiserver_reads_it(manifest: Manifest) -> None:
    beta = select(manifest, Profile(runtime_config={"api/beta": True, "resource.k8s.io/v1beta1": False}))
    assert beta.decision("scheduling.k8s.io", "v1beta1").reason == "enabled by --runtime-config api/beta=true"
    assert not beta.decision("resource.k8s.io", "v1beta1").kept
    assert not beta.decision("resource.k8s.io", "v1alpha3").kept
    apps_off = select(manifest, Profile(runtime_config={"apps/v1": False, "v1/componentstatuses": True}))
    assert not any(r.group == "apps" for r in apps_off.resources())
    assert apps_off.decision("", "v1", "componentstatuses").kept
    core_only = select(manifest, Profile(runtime_config={"api/all": False, "v1": True}))
    assert {r.group for r in core_only.resources()} == {""}
    # As upstream, a version-level key replaces the resource-level choices made before it.
    assert select(manifest, Profile(runtime_config={"v1": True})).decision("", "v1", "componentstatuses").kept
    # only/drop decide what exists at all, so they win over --runtime-config.
    assert (
        not select(manifest, Profile(drop=("apps",), runtime_config={"apps/v1": True}))
        .decision("apps", "v1")
        .kept
    )


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (Profile(only=("widgets.example.com",)), "unknown API group 'widgets.example.com' in --only"),
        (Profile(drop=("v1",)), "unknown API group 'v1' in --drop 'v1' (the core group is written core)"),
        (Profile(only=("apps/v9",)), "unknown version 'v9' of apps in --only"),
        (Profile(runtime_config={"widgets.example.com/v1": True}), "unknown API group 'widgets.example.com'"),
        (Profile(runtime_config={"apps/v1beta1": True}), "apps has no version 'v1beta1'"),
        (Profile(runtime_config={"apps/v1/Deployments": False}), "always its lowercase plural"),
        (Profile(runtime_config={"apps/v1/widgets": False}), "apps/v1 has no resource 'widgets'"),
        (Profile(runtime_config={"api/all": False}), "api/all=false alone"),
        (Profile(runtime_config={"api/legacy": False}), "unknown API group 'api'"),
    ],
)
def test_unknown_names_are_errors_that_say_what_is_known(
    manifest: Manifest, profile: Profile, message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        select(manifest, profile)
    assert message in str(caught.value)


def test_unknown_groups_are_listed_with_the_known_ones(manifest: Manifest) -> None:
    with pytest.raises(ProfileError, match=r"known groups: core, admissionregistration\.k8s\.io, .*apps"):
        select(manifest, Profile(only=("app",)))


def test_every_decision_has_a_reason_and_rows_cover_every_groupversion(manifest: Manifest) -> None:
    for profile in (Profile(), Profile(keep_alpha=True), Profile(runtime_config={"api/all": True})):
        selection = select(manifest, profile)
        decisions = [*selection.groupversion_decisions.values(), *selection.resource_decisions.values()]
        assert all(d.reason for d in decisions)
        rows = selection.rows()
        assert {d.name for d in rows if not d.resource} == {gv.name for gv in manifest}
        assert all(len(row.cells()) == len(ROW_HEADER) for row in rows)
    by_name = {d.name: d for d in select(manifest).rows()}
    assert by_name["core/v1/componentstatuses"].cells() == (
        "core/v1/componentstatuses",
        "ga",
        "stripped",
        "deprecated in 1.19",
    )
    assert "core/v1/pods" not in by_name  # a resource that follows its group-version has no row of its own
    assert {gv.name for gv in select(manifest).groupversions()} >= {"core/v1", "apps/v1"}


def test_parse_runtime_config() -> None:
    assert parse_runtime_config("api/alpha=true, apps/v1=false,v1/pods,batch/v1=0") == {
        "api/alpha": True,
        "apps/v1": False,
        "v1/pods": True,
        "batch/v1": False,
    }
    with pytest.raises(ProfileError, match="needs =true or =false"):
        parse_runtime_config("api/beta")
    with pytest.raises(ProfileError, match="is not a boolean"):
        parse_runtime_config("apps/v1=maybe")


def test_a_stripped_manifest_records_how_it_was_stripped() -> None:
    text = (Path(__file__).resolve().parents[2] / "distro/k3py/api/manifest.toml").read_bytes()
    assert load().stripped is None
    build = b'\n[build]\nkeep_alpha = true\nkeep_deprecated = false\ndrop = ["batch", "core/v1"]\n'
    stripped = parse(text + build).stripped
    assert stripped is not None and stripped.keep_alpha and not stripped.keep_deprecated
    assert stripped.drop == ("batch", "core/v1") and stripped.only == ()
    with pytest.raises(ManifestError, match=r"\[build\].*keep_deprecated"):
        parse(text + b"\n[build]\nkeep_alpha = true\n")
    with pytest.raises(ManifestError, match="unknown field"):
        parse(text + b"\n[build]\nkeep_alpha = true\nkeep_deprecated = true\nkeep_beta = true\n")
