"""build/protos.py reads Go type declarations and describes structs as the decoder needs them."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from k3py.api.protobuf import DATA_FILE

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def protos() -> ModuleType:
    """build/protos.py, loaded by path: build/ is tooling, not on the import path of every run."""
    name = "k3py_tests_build_protos"
    spec = importlib.util.spec_from_file_location(name, ROOT / "build" / "protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


GO_SOURCE = """\
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"example.com/api/util"
)

const x = "}{" // braces in strings do not confuse the reader

func (w *Widget) Reset() { *w = Widget{}; _ = map[string]int{"}": 1} }

// Widget is a thing.
type Widget struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	Spec   WidgetSpec `json:"spec" protobuf:"bytes,2,opt,name=spec"`
	hidden string
}

type WidgetSpec struct {
	Size  *int32            `json:"size,omitempty" protobuf:"varint,1,opt,name=size"`
	Tags  []Tag             `json:"tags,omitempty" protobuf:"bytes,2,rep,name=tags,casttype=Tag"`
	Extra map[string]Values `json:"extra,omitempty" protobuf:"bytes,3,rep,name=extra"`
	Blob  []byte            `json:"blob" protobuf:"bytes,4,opt,name=blob"`
	Inner `json:",inline" protobuf:"bytes,5,opt,name=inner"`
	Other util.Thing `json:"other" protobuf:"bytes,6,opt,name=other"`
}

type Inner struct {
	Mode Mode `json:"mode,omitempty" protobuf:"bytes,1,opt,name=mode"`
}

type Tag string
type Mode = Tag

// Values is a list that protobuf wraps in a message.
// +protobuf.nullable=true
type Values []string

type Box[T any] struct{ V T }
"""

PROTO = """\
message Widget {
  optional k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta metadata = 1;
  optional WidgetSpec spec = 2;
}
message WidgetSpec {
  optional int32 size = 1;
  repeated string tags = 2;
  map<string, Values> extra = 3;
  optional bytes blob = 4;
  optional Inner inner = 5;
  optional example.com.api.util.Thing other = 6;
}
message Inner {
  // comments are ignored
  optional string mode = 1;
}
message Values {
  repeated string items = 1;
}
"""


def test_reads_type_declarations() -> None:
    imports, decls = protos().parse_file(GO_SOURCE)
    assert imports == {"metav1": "k8s.io/apimachinery/pkg/apis/meta/v1", "util": "example.com/api/util"}
    names = [name for name, gotype, _, _ in decls if gotype is not None]
    assert names == ["Widget", "WidgetSpec", "Inner", "Tag", "Mode", "Values"]  # Box is generic
    by_name = {name: (gotype, alias, doc) for name, gotype, alias, doc in decls}
    widget = by_name["Widget"][0]
    assert [f.names for f in widget.fields] == [(), (), ("Spec",), ("hidden",)]
    assert widget.fields[1].tag == 'json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"'
    assert by_name["Mode"][1] is True
    assert "+protobuf.nullable=true" in by_name["Values"][2]
    assert "Widget is a thing" in by_name["Widget"][2]


def fake_modules(tmp_path: Path, proto: str = PROTO) -> dict[str, Path]:
    api = tmp_path / "api"
    (api / "v1").mkdir(parents=True)
    (api / "v1" / "types.go").write_text(GO_SOURCE)
    (api / "v1" / "generated.proto").write_text(proto)
    (api / "util").mkdir()
    (api / "util" / "util.go").write_text(
        'package util\n\ntype Thing struct {\n\tN int64 `json:"n" protobuf:"varint,1,opt,name=n"`\n}\n'
    )
    (api / "util" / "generated.proto").write_text("message Thing {\n  optional int64 n = 1;\n}\n")
    machinery = tmp_path / "apimachinery" / "pkg" / "apis" / "meta" / "v1"
    machinery.mkdir(parents=True)
    (machinery / "types.go").write_text(
        "package v1\n\ntype TypeMeta struct {\n"
        '\tKind string `json:"kind,omitempty" protobuf:"bytes,1,opt,name=kind"`\n}\n'
        "type ObjectMeta struct {\n"
        '\tName string `json:"name,omitempty" protobuf:"bytes,1,opt,name=name"`\n'
        '\tCreated Time `json:"created,omitempty,omitzero" protobuf:"bytes,8,opt,name=t"`\n}\n'
        "type Time struct {\n}\n"
    )
    (machinery / "generated.proto").write_text(
        "message TypeMeta {\n  optional string kind = 1;\n}\n"
        "message ObjectMeta {\n  optional string name = 1;\n  optional Time t = 8;\n}\n"
    )
    return {"example.com/api": api, "k8s.io/apimachinery": tmp_path / "apimachinery"}


def describe(modules: dict[str, Path]) -> dict[str, list[list[object]]]:
    build = protos()
    universe = build.Universe(modules)
    universe.resolve(build.GoType("name", name="Widget"), "example.com/api/v1", {})
    universe.run()
    return dict(universe.structs)


def test_describes_structs(tmp_path: Path) -> None:
    structs = describe(fake_modules(tmp_path))
    meta = "k8s.io/apimachinery/pkg/apis/meta/v1"
    assert structs["example.com/api/v1.Widget"] == [
        ["", 0, f"{meta}.TypeMeta", "i"],
        ["metadata", 1, f"{meta}.ObjectMeta", "o"],
        ["spec", 2, "example.com/api/v1.WidgetSpec", ""],
    ]
    assert structs["example.com/api/v1.WidgetSpec"] == [
        ["size", 1, "int32", "op"],
        ["tags", 2, "[]string", "o"],
        ["extra", 3, "map[string]wrap[]string", "o"],
        ["blob", 4, "bytes", ""],
        ["", 5, "example.com/api/v1.Inner", "i"],
        ["other", 6, "example.com/api/util.Thing", ""],
    ]
    assert structs[f"{meta}.ObjectMeta"] == [
        ["name", 1, "string", "o"],
        ["created", 8, "@time", "oz"],
    ]
    assert structs["example.com/api/util.Thing"] == [["n", 1, "int64", ""]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("optional int32 size = 1;", "optional int32 size = 9;"), "not in generated.proto"),
        (("optional int32 size = 1;", "optional string size = 1;"), "string in generated.proto, int32 in Go"),
        (("optional string mode = 1;", "optional string mode = 1;\n  optional string gone = 2;"), r"\[2\]"),
        (("message Inner", "message Outer"), "Inner has no message"),
    ],
)
def test_disagreements_with_generated_proto_fail(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(protos().ProtoBuildError, match=message):
        describe(fake_modules(tmp_path, PROTO.replace(*change)))


def test_regenerates_the_committed_descriptor_from_the_module_cache() -> None:
    """Offline: only when the modules are already in build/protos.py's Go module cache."""
    build = protos()
    committed = json.loads(
        gzip.decompress((ROOT / "distro" / "k3py" / "api" / "data" / DATA_FILE).read_bytes())
    )
    cache = build._cache_dir() / "pkg" / "mod"
    dirs = {module: cache / f"{module}@{version}" for module, version in committed["modules"].items()}
    if not all(path.is_dir() for path in dirs.values()):
        pytest.skip(f"the k8s.io modules are not in {cache}: run python build/protos.py once")
    assert build.describe(dirs) == {"kinds": committed["kinds"], "types": committed["types"]}
