"""Bake the Kubernetes protobuf wire layout of the served kinds into k3py's data package.

kubectl and client-go send built-in kinds as ``application/vnd.kubernetes.protobuf``. The wire
layout of those messages is defined by the Go structs in ``k8s.io/api``, ``k8s.io/apimachinery``
and ``k8s.io/apiextensions-apiserver``: every field's tag carries its protobuf number and its JSON
name (``json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"``), and the Go type says
how the value serialises (pointer or not, slice, map, nested struct, named string type...).

:func:`generate` fetches those modules (newest v0.<minor>.x) through ``go mod download`` into
``$XDG_CACHE_HOME/k3py/go``, parses the Go type declarations of the served group/versions with
the small Go reader below, walks every struct reachable from a registered kind, checks each
struct against the package's ``generated.proto`` (field numbers, names and types must agree), and
writes ``distro/k3py/api/data/protobuf-<minor>.json.gz``, which :mod:`k3py.api.protobuf` reads::

    {"modules": {module: version}, "kinds": {apiVersion: {kind: struct}},
     "types": {struct: [[json name, field number, type, flags], ...]}}

A type is a scalar (``string bool int32 int64 uint32 uint64 float64 bytes``), a struct's full
name (``k8s.io/api/core/v1.PodSpec``), ``[]T``, ``map[K]T``, ``wrap[]T`` (a map value whose named
slice type protobuf wraps in a message: ``+protobuf.nullable=true``) or one of the ``@special`` types that
have their own protobuf or JSON form (``metav1.Time``, ``resource.Quantity``...). Flags: ``o``
omitempty, ``z`` omitzero, ``p`` pointer, ``i`` embedded struct whose fields JSON inlines. Field
number 0 means the field is not on the wire (``TypeMeta``): it always serialises as its zero.

Run ``python build/protos.py`` after a Kubernetes minor bump (needs Go and the module proxy);
``--fixtures`` also regenerates the test fixtures with ``build/protofixtures/main.go``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "distro"))

from k3py.util import proc  # noqa: E402  (the build tree is not installed)

log = logging.getLogger(__name__)

KUBERNETES_MINOR = "1.37"
DATA_DIR = ROOT / "distro" / "k3py" / "api" / "data"
FIXTURES_DIR = ROOT / "tests" / "unit" / "data" / "protobuf"
FIXTURES_SOURCE = ROOT / "build" / "protofixtures" / "main.go"
MODULES = ("k8s.io/api", "k8s.io/apimachinery", "k8s.io/apiextensions-apiserver", "k8s.io/kube-aggregator")
META = "k8s.io/apimachinery/pkg/apis/meta/v1"
APIEXT = "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

# Every group/version of the API manifest can be served (a profile decides), so all are described;
# a build then keeps the kinds of what it serves. The Go package of a group is the first label of
# its name under k8s.io/api, except for these; a group mapped to None lives in a module not fetched
# here and is never served by k3py.
PACKAGE_OF_GROUP: dict[str, str | None] = {
    "": "k8s.io/api/core",
    "apiextensions.k8s.io": "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions",
    "internal.apiserver.k8s.io": "k8s.io/api/apiserverinternal",
    "apiregistration.k8s.io": "k8s.io/kube-aggregator/pkg/apis/apiregistration",
}


def group_packages() -> tuple[str, ...]:
    """The Go package of every group/version in the API manifest (apiVersion read from register.go)."""
    from k3py.api.manifest import load  # the build tree is not installed: see sys.path above

    packages = []
    for gv in load():
        base = PACKAGE_OF_GROUP.get(gv.group, f"k8s.io/api/{gv.group.split('.')[0]}")
        if base is not None:
            packages.append(f"{base}/{gv.version}")
    return tuple(packages)


# metav1.AddToGroupVersion registers these in every group/version; Status is "v1" only.
OPTION_KINDS = (
    "ListOptions",
    "GetOptions",
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
)
META_KINDS = ("PartialObjectMetadata", "PartialObjectMetadataList")

# Types with a hand-written protobuf or JSON form: the decoder knows them by these names.
SPECIALS = {
    f"{META}.Time": "@time",
    f"{META}.MicroTime": "@microtime",
    f"{META}.Duration": "@duration",
    f"{META}.FieldsV1": "@fieldsv1",
    "k8s.io/apimachinery/pkg/api/resource.Quantity": "@quantity",
    "k8s.io/apimachinery/pkg/util/intstr.IntOrString": "@intstr",
    "k8s.io/apimachinery/pkg/runtime.RawExtension": "@rawext",
    f"{APIEXT}.JSON": "@json",
    f"{APIEXT}.JSONSchemaPropsOrArray": "@propsorarray",
    f"{APIEXT}.JSONSchemaPropsOrBool": "@propsorbool",
    f"{APIEXT}.JSONSchemaPropsOrStringArray": "@propsorstringarray",
}
# The wire fields the decoder hard-codes for them, checked against the Go struct tags (Time and
# MicroTime travel as a Timestamp; Quantity as a message with one string, checked in its proto).
SPECIAL_FIELDS = {
    f"{META}.Timestamp": {"Seconds": 1, "Nanos": 2},
    f"{META}.Duration": {"Duration": 1},
    f"{META}.FieldsV1": {"Raw": 1},
    "k8s.io/apimachinery/pkg/util/intstr.IntOrString": {"Type": 1, "IntVal": 2, "StrVal": 3},
    "k8s.io/apimachinery/pkg/runtime.RawExtension": {"Raw": 1},
    f"{APIEXT}.JSON": {"Raw": 1},
    f"{APIEXT}.JSONSchemaPropsOrArray": {"Schema": 1, "JSONSchemas": 2},
    f"{APIEXT}.JSONSchemaPropsOrBool": {"Allows": 1, "Schema": 2},
    f"{APIEXT}.JSONSchemaPropsOrStringArray": {"Schema": 1, "Property": 2},
}
SCALARS = {
    "string": "string", "bool": "bool", "int32": "int32", "int64": "int64", "uint32": "uint32",
    "uint64": "uint64", "float64": "float64", "byte": "uint32", "uint8": "uint32",
}  # fmt: skip
PROTO_SCALARS = {"double": "float64", "float": "float32"}


class ProtoBuildError(Exception):
    """Go, the module proxy or the Go sources are not what this generator expects."""


# ---------------------------------------------------------------------------------------------
# Go modules


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "k3py" / "go"


def _go_env() -> dict[str, str]:
    cache = _cache_dir()
    return {
        **os.environ,
        "GOPATH": str(cache),
        "GOMODCACHE": str(cache / "pkg" / "mod"),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
    }


def _go(args: list[str], cwd: Path) -> str:
    go = proc.which("go")
    if go is None:
        raise ProtoBuildError("go is not on PATH: install Go (https://go.dev/dl) to regenerate")
    try:
        return proc.run([go, *args], cwd=cwd, env=_go_env(), capture=True).stdout
    except proc.ProcessError as err:
        raise ProtoBuildError(str(err)) from None


def newest_version(module: str, minor: str, workdir: Path) -> str:
    """The newest released ``v0.<minor>.<patch>`` of a module on the module proxy."""
    listed = _go(["list", "-m", "-versions", module], workdir).split()
    pattern = re.compile(rf"v0\.{minor.split('.')[1]}\.(\d+)")
    patches = [int(m.group(1)) for v in listed[1:] if (m := pattern.fullmatch(v))]
    if not patches:
        raise ProtoBuildError(f"no v0.{minor.split('.')[1]}.x release of {module} on the module proxy")
    return f"v0.{minor.split('.')[1]}.{max(patches)}"


def download(module: str, version: str, workdir: Path) -> Path:
    """``go mod download`` a module version; the directory of its extracted source."""
    info = json.loads(_go(["mod", "download", "-json", f"{module}@{version}"], workdir))
    if info.get("Error") or not info.get("Dir"):
        raise ProtoBuildError(f"go mod download {module}@{version}: {info.get('Error', 'no Dir')}")
    return Path(info["Dir"])


# ---------------------------------------------------------------------------------------------
# A reader for Go type declarations: tokens with semicolons inserted as the Go spec does,
# top-level `type` declarations parsed, everything else skipped by balanced brackets.

_TOKEN = re.compile(
    r"(?P<nl>\n)|(?P<ws>[ \t\r]+)|(?P<lc>//[^\n]*)|(?P<bc>/\*.*?\*/)"
    r"|(?P<raw>`[^`]*`)|(?P<str>\"(?:[^\"\\\n]|\\.)*\")|(?P<rune>'(?:[^'\\\n]|\\.)+')"
    r"|(?P<num>\.?\d[\w.]*(?:[eEpP][+-]\w+)?)|(?P<id>[^\W\d]\w*)"
    r"|(?P<op>\.\.\.|&\^=|<<=|>>=|&&|\|\||<-|\+\+|--|==|!=|<=|>=|:=|<<|>>|&\^|[-+*/%&|^]=|[-+*/%&|^<>=!~()\[\]{},;.:])",
    re.DOTALL,
)
_ENDS_STATEMENT = {"break", "continue", "fallthrough", "return", "++", "--", ")", "]", "}"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # id, num, str, raw, rune, op, ;
    text: str
    doc: str  # comments directly before this token


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    doc: list[str] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ProtoBuildError(f"cannot tokenize Go source at {source[pos : pos + 30]!r}")
        pos = match.end()
        kind, text = match.lastgroup or "", match.group()
        newline = kind == "nl" or (kind == "bc" and "\n" in text)
        if kind in ("lc", "bc"):
            doc.append(text)
        if newline and tokens and tokens[-1].kind != ";":
            last = tokens[-1]
            if last.kind in ("num", "str", "raw", "rune", "id") or last.text in _ENDS_STATEMENT:
                tokens.append(Token(";", ";", ""))
        if kind == "nl" and source[pos : pos + 1] == "\n":
            doc = []  # a blank line ends a doc comment
        if kind in ("nl", "ws", "lc", "bc"):
            continue
        tokens.append(Token(kind, text, "\n".join(doc)))
        doc = []
    tokens.append(Token(";", ";", ""))
    return tokens


@dataclass(frozen=True, slots=True)
class GoType:
    """A Go type expression: ``kind`` is name, pointer, slice, array, map, struct or opaque."""

    kind: str
    name: str = ""  # name: identifier; qualifier in `package`
    package: str = ""
    elem: GoType | None = None
    key: GoType | None = None
    fields: tuple[GoField, ...] = ()


@dataclass(frozen=True, slots=True)
class GoField:
    names: tuple[str, ...]  # empty for an embedded field
    type: GoType
    tag: str


@dataclass(frozen=True, slots=True)
class TypeDecl:
    name: str
    type: GoType
    alias: bool
    doc: str
    imports: Mapping[str, str]  # the declaring file's import names → paths


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        token = self.next()
        if token.text != text:
            raise ProtoBuildError(f"expected {text!r}, found {token.text!r}")

    def skip_statement(self) -> None:
        """Skip to the end of the current declaration (its closing semicolon at bracket depth 0)."""
        depth = 0
        while self.i < len(self.tokens):
            text = self.next().text
            if text in ("(", "[", "{"):
                depth += 1
            elif text in (")", "]", "}"):
                depth -= 1
            elif text == ";" and depth <= 0:
                return

    def type(self) -> GoType:
        token = self.next()
        if token.text == "*":
            return GoType("pointer", elem=self.type())
        if token.text == "[":
            if self.peek().text == "]":
                self.next()
                return GoType("slice", elem=self.type())
            while self.next().text != "]":
                pass
            return GoType("array", elem=self.type())
        if token.text == "map":
            self.expect("[")
            key = self.type()
            self.expect("]")
            return GoType("map", key=key, elem=self.type())
        if token.text == "struct":
            return GoType("struct", fields=self.struct_fields())
        if token.text in ("interface", "func", "chan"):
            self.i -= 1
            return GoType("opaque", name=token.text)
        if token.kind == "id":
            if self.peek().text == "." and self.peek(1).kind == "id":
                self.next()
                return GoType("name", name=self.next().text, package=token.text)
            return GoType("name", name=token.text)
        raise ProtoBuildError(f"unexpected {token.text!r} in a type")

    def struct_fields(self) -> tuple[GoField, ...]:
        self.expect("{")
        fields: list[GoField] = []
        while self.peek().text != "}":
            if self.peek().text == ";":
                self.next()
                continue
            second = self.peek(1)
            if self.peek().text == "*" or second.text in (";", "}", ".") or second.kind in ("raw", "str"):
                names: tuple[str, ...] = ()
                gotype = self.type()
            else:
                names = (self.next().text,)
                while self.peek().text == ",":
                    self.next()
                    names += (self.next().text,)
                gotype = self.type()
            tag = ""
            if self.peek().kind == "raw":
                tag = self.next().text[1:-1]
            elif self.peek().kind == "str":
                tag = json.loads(self.next().text)
            fields.append(GoField(names, gotype, tag))
        self.expect("}")
        return tuple(fields)


def parse_file(source: str) -> tuple[dict[str, str], list[tuple[str, GoType | None, bool, str]]]:
    """Imports (name → path) and type declarations (name, type or None if unreadable, alias, doc)."""
    parser = _Parser(tokenize(source))
    imports: dict[str, str] = {}
    decls: list[tuple[str, GoType | None, bool, str]] = []

    def import_spec() -> None:
        name = parser.next().text if parser.peek().kind != "str" else ""
        path = json.loads(parser.next().text)
        imports[name or path.rsplit("/", 1)[-1]] = path

    def type_spec(doc: str) -> None:
        start = parser.i
        name = parser.next().text
        if parser.peek().text == "[" and parser.peek(1).kind == "id" and parser.peek(2).text != "]":
            parser.i = start
            parser.skip_statement()  # a generic type: never part of the API
            return
        alias = parser.peek().text == "="
        if alias:
            parser.next()
        try:
            decls.append((name, parser.type(), alias, doc))
            if parser.peek().text == ";":
                parser.next()
            else:
                raise ProtoBuildError(f"trailing tokens after type {name}")
        except ProtoBuildError:
            decls.append((name, None, alias, doc))
            parser.i = start
            parser.skip_statement()

    while parser.i < len(parser.tokens) - 1:
        token = parser.next()
        if token.text not in ("import", "type"):
            if token.text != ";":
                parser.skip_statement()
            continue
        grouped = parser.peek().text == "("
        if grouped:
            parser.next()
        while not grouped or parser.peek().text != ")":
            if parser.peek().text == ";":
                parser.next()
                continue
            if token.text == "import":
                import_spec()
            else:
                type_spec(parser.peek().doc if grouped else token.doc)
            if not grouped:
                break
        if grouped:
            parser.next()
    return imports, decls


_BUILD_TAG = re.compile(r"^//go:build (.+)$", re.MULTILINE)
_MARSHAL_JSON = re.compile(r"^func \(\w+ \*?(\w+)\) MarshalJSON\(", re.MULTILINE)


@dataclass
class Package:
    path: str
    directory: Path
    types: dict[str, TypeDecl] = field(default_factory=dict)
    json_marshalers: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: str, directory: Path) -> Package:
        package = cls(path, directory)
        for file in sorted(directory.glob("*.go")):
            if file.name.endswith("_test.go") or file.name.startswith(("zz_generated", "generated.pb")):
                continue
            source = file.read_text()
            constraint = _BUILD_TAG.search(source)
            if constraint and re.search(r"(?<![!\w])[a-z]\w*", constraint.group(1)):
                continue  # needs a build tag we do not set (fieldsv1string, go1.27...)
            package.json_marshalers.update(_MARSHAL_JSON.findall(source))
            imports, decls = parse_file(source)
            for name, gotype, alias, doc in decls:
                if gotype is not None:
                    package.types[name] = TypeDecl(name, gotype, alias, doc, imports)
        return package


# ---------------------------------------------------------------------------------------------
# generated.proto, to check what the Go reader found


@dataclass(frozen=True, slots=True)
class ProtoField:
    name: str
    type: str  # a scalar, a message name, or map<K,V>
    repeated: bool


def parse_proto(text: str) -> dict[str, dict[int, ProtoField]]:
    text = re.sub(r"//[^\n]*", "", text)
    messages: dict[str, dict[int, ProtoField]] = {}
    for match in re.finditer(r"\bmessage (\w+) \{([^{}]*)\}", text):
        fields = messages.setdefault(match.group(1), {})
        for f in re.finditer(r"(optional |repeated )?(map<\w+, ?[\w.]+>|[\w.]+) (\w+) = (\d+);", match[2]):
            fields[int(f[4])] = ProtoField(f[3], f[2].replace(" ", ""), f[1] == "repeated ")
    return messages


# ---------------------------------------------------------------------------------------------
# Resolution: Go types → descriptor types


@dataclass(frozen=True, slots=True)
class Resolved:
    """A descriptor type, and the protobuf type name it must match (for the generated.proto check)."""

    text: str
    proto: str
    pointer: bool = False
    struct: str = ""  # full name when this is a (non-special) struct, for JSON inlining


_TAG_PAIR = re.compile(r'(\w+):"((?:[^"\\]|\\.)*)"')


class Universe:
    """Every Go package reachable from the served kinds, loaded on first reference."""

    def __init__(self, module_dirs: Mapping[str, Path]) -> None:
        self.module_dirs = module_dirs
        self.packages: dict[str, Package] = {}
        self.protos: dict[str, dict[str, dict[int, ProtoField]]] = {}
        self.structs: dict[str, list[list[object]]] = {}
        self.pending: list[str] = []

    def package(self, path: str) -> Package:
        if path not in self.packages:
            for module, directory in self.module_dirs.items():
                if path == module or path.startswith(module + "/"):
                    self.packages[path] = Package.load(path, directory / path[len(module) + 1 :])
                    proto = directory / path[len(module) + 1 :] / "generated.proto"
                    self.protos[path] = parse_proto(proto.read_text()) if proto.exists() else {}
                    break
            else:
                raise ProtoBuildError(
                    f"the API refers to package {path}, which is not in {list(self.module_dirs)}"
                )
        return self.packages[path]

    def decl(self, package: str, name: str) -> TypeDecl:
        found = self.package(package).types.get(name)
        if found is None:
            raise ProtoBuildError(f"type {package}.{name} not found (or not readable)")
        return found

    def resolve(self, gotype: GoType, package: str, imports: Mapping[str, str]) -> Resolved:
        if gotype.kind == "pointer" and gotype.elem is not None:
            inner = self.resolve(gotype.elem, package, imports)
            if inner.pointer:
                raise ProtoBuildError(f"pointer to pointer in {package}")
            return Resolved(inner.text, inner.proto, True, inner.struct)
        if gotype.kind == "slice" and gotype.elem is not None:
            if (
                gotype.elem.kind == "name"
                and gotype.elem.name in ("byte", "uint8")
                and not gotype.elem.package
            ):
                return Resolved("bytes", "bytes")
            inner = self.resolve(gotype.elem, package, imports)
            if inner.pointer or inner.text.startswith(("[]", "map[")):
                raise ProtoBuildError(f"unsupported slice element {inner.text} in {package}")
            return Resolved("[]" + inner.text, "[]" + inner.proto)
        if gotype.kind == "map" and gotype.key is not None and gotype.elem is not None:
            key = self.resolve(gotype.key, package, imports)
            value = self.resolve(gotype.elem, package, imports)
            if key.text not in ("string", "int32", "int64", "uint32", "uint64", "bool") or value.pointer:
                raise ProtoBuildError(f"unsupported map[{key.text}]{value.text} in {package}")
            return Resolved(f"map[{key.text}]{value.text}", f"map<{key.proto},{value.proto}>")
        if gotype.kind != "name":
            raise ProtoBuildError(f"unsupported {gotype.kind} type in {package}")
        if not gotype.package and gotype.name in SCALARS:
            return Resolved(SCALARS[gotype.name], SCALARS[gotype.name])
        if gotype.package:
            if gotype.package not in imports:
                raise ProtoBuildError(f"{package}: unknown import {gotype.package}")
            package = imports[gotype.package]
        full = f"{package}.{gotype.name}"
        if full in SPECIALS:
            return Resolved(SPECIALS[full], gotype.name)
        decl = self.decl(package, gotype.name)
        if decl.type.kind == "struct":
            if gotype.name in self.package(package).json_marshalers:
                raise ProtoBuildError(f"{full} has its own MarshalJSON: add it to SPECIALS")
            if full not in self.structs and full not in self.pending:
                self.pending.append(full)
            return Resolved(full, gotype.name, struct=full)
        underlying = self.resolve(decl.type, package, decl.imports)
        if gotype.name in self.package(package).json_marshalers:
            raise ProtoBuildError(f"{full} has its own MarshalJSON: add it to SPECIALS")
        if "+protobuf.nullable=true" in decl.doc and underlying.text.startswith("[]"):
            return Resolved("wrap" + underlying.text, gotype.name)
        return Resolved(underlying.text, underlying.proto, underlying.pointer, underlying.struct)

    def check_special(self, full: str, expected: Mapping[str, int]) -> None:
        package, name = full.rsplit(".", 1)
        decl = self.decl(package, name)
        found = {
            (f.names[0] if f.names else _embedded_name(f.type)): int(_protobuf_tag(f.tag)[1])
            for f in decl.type.fields
            if _protobuf_tag(f.tag)
        }
        if found != expected:
            raise ProtoBuildError(f"{full} has protobuf fields {found}, the decoder expects {expected}")
        quantity = self.protos[self.package("k8s.io/apimachinery/pkg/api/resource").path].get("Quantity")
        if quantity != {1: ProtoField("string", "string", False)}:
            raise ProtoBuildError(f"resource.Quantity is {quantity} in its generated.proto, not one string")

    def struct(self, full: str) -> None:
        """Describe one struct (and queue the structs it refers to)."""
        package, name = full.rsplit(".", 1)
        decl = self.decl(package, name)
        described: list[list[object]] = []
        proto = self.protos[package].get(name)
        if proto is None:
            raise ProtoBuildError(f"{full} has no message in {package}/generated.proto")
        seen: set[int] = set()
        for gofield in decl.type.fields:
            tags = dict(_TAG_PAIR.findall(gofield.tag))
            json_name, *options = tags.get("json", "").split(",")
            embedded = not gofield.names
            go_name = gofield.names[0] if gofield.names else _embedded_name(gofield.type)
            if (json_name == "-" and not options) or (not go_name[0].isupper() and not embedded):
                continue
            resolved = self.resolve(gofield.type, package, decl.imports)
            if resolved.text.startswith(("wrap", "[]wrap")):
                # The decoder renders these as gogo fills in map values (never nil).
                raise ProtoBuildError(f"{full}.{go_name}: a nullable slice type outside a map value")
            inline = embedded and not json_name and bool(resolved.struct)
            number = 0
            wire = _protobuf_tag(gofield.tag)
            if wire:
                number = int(wire[1])
                self._check_proto_field(full, proto.get(number), wire, resolved)
                seen.add(number)
            if len(gofield.names) > 1:
                raise ProtoBuildError(f"{full}.{gofield.names[1]}: several names in one field declaration")
            flags = "".join(
                flag
                for flag, on in (
                    ("o", "omitempty" in options),
                    ("z", "omitzero" in options),
                    ("p", resolved.pointer),
                    ("i", inline),
                )
                if on
            )
            described.append(["" if inline else json_name or go_name, number, resolved.text, flags])
        if missing := set(proto) - seen:
            raise ProtoBuildError(f"{full}: generated.proto fields {sorted(missing)} have no Go field")
        self.structs[full] = described

    @staticmethod
    def _check_proto_field(full: str, proto: ProtoField | None, wire: list[str], resolved: Resolved) -> None:
        if proto is None:
            raise ProtoBuildError(f"{full}: field {wire} is not in generated.proto")
        # The tag's wire kind is not checked: a few are wrong (EndpointSlice.addressType says
        # "rep", JSONSchemaProps.maximum says "bytes"); generated.proto is what the code follows.
        want = ("[]" if proto.repeated else "") + proto.type
        if _shape(want) != _shape(resolved.proto):
            raise ProtoBuildError(f"{full}.{proto.name}: {want} in generated.proto, {resolved.text} in Go")

    def run(self) -> None:
        while self.pending:
            self.struct(self.pending.pop(0))


def _protobuf_tag(tag: str) -> list[str]:
    value = dict(_TAG_PAIR.findall(tag)).get("protobuf", "")
    return value.split(",") if value and value != "-" else []


def _embedded_name(gotype: GoType) -> str:
    while gotype.elem is not None and gotype.kind == "pointer":
        gotype = gotype.elem
    return gotype.name


def _shape(proto: str) -> str:
    """A protobuf type without package qualifiers, Go scalar names for double and float."""
    if proto.startswith("[]"):
        return "[]" + _shape(proto[2:])
    if proto.startswith("map<"):
        key, value = proto[4:-1].split(",", 1)
        return f"map<{_shape(key)},{_shape(value)}>"
    name = proto.rsplit(".", 1)[-1]
    return PROTO_SCALARS.get(name, name)


def registered_kinds(universe: Universe, package: str) -> tuple[str, dict[str, str]]:
    """apiVersion and kind → struct of one group/version package, from its register.go."""
    source = (universe.package(package).directory / "register.go").read_text()
    group = re.search(r'GroupName = "([^"]*)"', source)
    if group is None:
        raise ProtoBuildError(f"{package}/register.go has no GroupName")
    version = package.rsplit("/", 1)[-1]
    api_version = f"{group.group(1)}/{version}" if group.group(1) else version
    body = re.search(r"func addKnownTypes\(.*?\n\}", source, re.DOTALL)
    if body is None:
        raise ProtoBuildError(f"{package}/register.go has no addKnownTypes")
    kinds = {name: f"{package}.{name}" for name in re.findall(r"&(\w+)\{\}", body.group())}
    kinds.update({name: f"{META}.{name}" for name in OPTION_KINDS})
    return api_version, kinds


def describe(module_dirs: Mapping[str, Path]) -> dict[str, object]:
    universe = Universe(module_dirs)
    kinds: dict[str, dict[str, str]] = {}
    for package in group_packages():
        api_version, found = registered_kinds(universe, package)
        kinds.setdefault(api_version, {}).update(found)
    kinds["v1"]["Status"] = f"{META}.Status"
    kinds["meta.k8s.io/v1"] = {name: f"{META}.{name}" for name in (*OPTION_KINDS, *META_KINDS)}
    for by_kind in kinds.values():
        for full in by_kind.values():
            package, name = full.rsplit(".", 1)
            universe.resolve(GoType("name", name=name), package, {})
    universe.run()
    for full, expected in SPECIAL_FIELDS.items():
        universe.check_special(full, expected)
    return {
        "kinds": {av: dict(sorted(k.items())) for av, k in sorted(kinds.items())},
        "types": dict(sorted(universe.structs.items())),
    }


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProtoReport:
    output: Path
    modules: Mapping[str, str]
    kinds: int
    structs: int
    json_bytes: int
    written_bytes: int


def output_path(minor: str = KUBERNETES_MINOR) -> Path:
    return DATA_DIR / f"protobuf-{minor}.json.gz"


@dataclass(frozen=True)
class Modules:
    versions: dict[str, str]
    dirs: dict[str, Path]


def fetch(minor: str, version: str | None, workdir: Path) -> Modules:
    _go(["mod", "init", "k3py.invalid/protos"], workdir)
    version = version or newest_version(MODULES[0], minor, workdir)
    dirs = {module: download(module, version, workdir) for module in MODULES}
    return Modules({module: version for module in MODULES}, dirs)


def generate(
    *, minor: str = KUBERNETES_MINOR, version: str | None = None, output: Path | None = None
) -> ProtoReport:
    """Fetch the modules, describe the served kinds, write the gzipped descriptor."""
    output = output or output_path(minor)
    with tempfile.TemporaryDirectory(prefix="k3py-protos-") as tmp:
        modules = fetch(minor, version, Path(tmp))
    described = describe(modules.dirs)
    document = {"kubernetes": minor, "modules": modules.versions, **described}
    text = json.dumps(document, separators=(",", ":")).encode()
    packed = gzip.compress(text, compresslevel=9, mtime=0)
    partial = output.with_name(output.name + ".tmp")
    partial.write_bytes(packed)
    partial.replace(output)
    kinds, types = described["kinds"], described["types"]
    assert isinstance(kinds, dict) and isinstance(types, dict)
    report = ProtoReport(
        output=output,
        modules=modules.versions,
        kinds=sum(len(k) for k in kinds.values()),
        structs=len(types),
        json_bytes=len(text),
        written_bytes=len(packed),
    )
    log.info(
        "wrote %s from %s: %d kinds, %d structs, %d bytes JSON → %d gzipped",
        output,
        " ".join(f"{m}@{v}" for m, v in modules.versions.items()),
        report.kinds,
        report.structs,
        report.json_bytes,
        report.written_bytes,
    )
    return report


def generate_fixtures(*, minor: str = KUBERNETES_MINOR, version: str | None = None) -> list[Path]:
    """Run build/protofixtures/main.go in a scratch module: writes tests/unit/data/protobuf/*."""
    with tempfile.TemporaryDirectory(prefix="k3py-protofixtures-") as tmp:
        workdir = Path(tmp)
        modules = fetch(minor, version, workdir)
        shutil.copy(FIXTURES_SOURCE, workdir / "main.go")
        for module, v in modules.versions.items():
            _go(["get", f"{module}@{v}"], workdir)
        _go(["mod", "tidy"], workdir)
        FIXTURES_DIR.mkdir(parents=True, exist_ok=True)
        for stale in [*FIXTURES_DIR.glob("*.pb"), *FIXTURES_DIR.glob("*.json")]:
            stale.unlink()  # all written by main.go: a fixture it no longer makes goes
        _go(["run", ".", str(FIXTURES_DIR)], workdir)
    written = sorted(FIXTURES_DIR.glob("*.pb"))
    log.info("wrote %d fixtures to %s", len(written), FIXTURES_DIR)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minor", default=KUBERNETES_MINOR, help="Kubernetes minor (default: %(default)s)")
    parser.add_argument("--module-version", help="pin the Go modules (default: newest v0.<minor>.x)")
    parser.add_argument("--output", type=Path, help="where to write (default: distro/k3py/api/data/...)")
    parser.add_argument("--fixtures", action="store_true", help="also regenerate tests/unit/data/protobuf")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        generate(minor=args.minor, version=args.module_version, output=args.output)
        if args.fixtures:
            generate_fixtures(minor=args.minor, version=args.module_version)
    except ProtoBuildError as err:
        log.error("error: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
