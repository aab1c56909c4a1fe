"""The OpenAPI v2 document as protobuf: gnostic's ``openapi_v2.Document``, as kube-apiserver serves it.

kube-apiserver (kube-openapi's handler) parses its swagger JSON with gnostic
(``openapi_v2.ParseDocument``) and serves ``proto.Marshal`` of the result when the client asks for
``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``; kubectl does, whenever the OpenAPI
v3 document lacks a group-version. :func:`protobuf` does the same from the JSON bytes
``openapi.py`` builds, so both representations always hold the same document.

The data flow mirrors gnostic's: each JSON object becomes the message the proto defines for its
place in the document (field numbers from gnostic-models v0.7.0's ``OpenAPIv2.proto``); named
maps (definitions, properties, paths, responses) become lists of ``Named*`` pairs in document
order; oneofs are picked as gnostic picks them (``in: body`` or not, ``$ref`` or not, ...);
``default``, ``enum``, ``example`` and ``x-*`` vendor extensions become ``Any`` holding the YAML
text gnostic writes for the value (go.yaml.in/yaml/v3, reproduced by
:mod:`k3py.apiserver.openapi_yaml`). Fields are
written in field-number order and zero values left out, as Go's ``proto.Marshal`` does, so the
bytes are those kube-apiserver would serve for the same JSON. Keys the proto has no field for
(gnostic rejects them) are left out and reported in :attr:`Encoded.dropped`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Final

import orjson

from k3py.apiserver.openapi_yaml import GoYaml, scalar_text
from k3py.util.protowire import encode_varint, field_key

CONTENT_TYPE: Final = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
ACCEPTED: Final = frozenset(
    {
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",  # what client-go asks for
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
    }
)

_VARINT, _FIXED64, _BYTES = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    dropped: tuple[str, ...]
    """JSON pointers of the members the protobuf message has no field for (gnostic rejects them)."""


@functools.lru_cache(maxsize=2)
def protobuf(json_body: bytes) -> bytes:
    """The protobuf form of a served JSON document; kept while the same bytes are served."""
    return encode(orjson.loads(json_body)).data


@functools.lru_cache(maxsize=2)
def etag(json_body: bytes) -> str:
    """kube-openapi's ETag for both representations: the SHA-512 of the JSON, quoted."""
    return f'"{hashlib.sha512(json_body).hexdigest().upper()}"'


def encode(document: Any) -> Encoded:
    """Encode a swagger 2.0 document (parsed JSON) as ``openapi_v2.Document``."""
    if not isinstance(document, dict):
        raise ValueError("an OpenAPI v2 document is a JSON object")
    encoder = _Encoder()
    data = encoder.message("Document", document, "")
    assert data is not None
    return Encoded(data, tuple(encoder.dropped))


# ---------------------------------------------------------------------------------------------
# Wire format


def _bytes_field(number: int, payload: bytes) -> bytes:
    return field_key(number, _BYTES) + encode_varint(len(payload)) + payload


def _string_field(number: int, text: str) -> bytes:
    return _bytes_field(number, text.encode()) if text else b""


def _named(number: int, name: str, value: bytes) -> bytes:
    """One ``Named*`` pair (1: name, 2: value message) as field ``number`` of its parent."""
    return _bytes_field(number, _string_field(1, name) + _bytes_field(2, value))


# ---------------------------------------------------------------------------------------------
# Messages. Each one numbers its fields 1, 2, ... in the order below, written "jsonName:kind"
# (kind: str when left out, bool, double, int64, strs for repeated string, any, anys for repeated
# Any, or a message name, "*Name" when repeated); all but JsonReference then have
# ``repeated NamedAny vendor_extension`` for the x-* members.


@dataclass(frozen=True, slots=True)
class _Message:
    fields: Mapping[str, tuple[int, str]]
    extensions: int  # number of the vendor_extension field; 0: none


_PRIMITIVE = (
    "type format items:PrimitivesItems collectionFormat default:any maximum:double exclusiveMaximum:bool "
    "minimum:double exclusiveMinimum:bool maxLength:int64 minLength:int64 pattern maxItems:int64 "
    "minItems:int64 uniqueItems:bool enum:anys multipleOf:double"
)
_PARAMETER = "required:bool in description name"
_OAUTH2 = "type flow scopes:Oauth2Scopes"
_LAYOUTS: Final = {
    "Document": "swagger info:Info host basePath schemes:strs consumes:strs produces:strs paths:Paths "
    "definitions:Definitions parameters:ParameterDefinitions responses:ResponseDefinitions "
    "security:*SecurityRequirement securityDefinitions:SecurityDefinitions tags:*Tag "
    "externalDocs:ExternalDocs",
    "Info": "title version description termsOfService contact:Contact license:License",
    "Contact": "name url email",
    "License": "name url",
    "ExternalDocs": "description url",
    "Tag": "name description externalDocs:ExternalDocs",
    "Xml": "name namespace prefix attribute:bool wrapped:bool",
    "PathItem": "$ref get:Operation put:Operation post:Operation delete:Operation options:Operation "
    "head:Operation patch:Operation parameters:*ParametersItem",
    "Operation": "tags:strs summary description externalDocs:ExternalDocs operationId produces:strs "
    "consumes:strs parameters:*ParametersItem responses:Responses schemes:strs deprecated:bool "
    "security:*SecurityRequirement",
    "BodyParameter": "description name in required:bool schema:Schema",
    "HeaderParameterSubSchema": f"{_PARAMETER} {_PRIMITIVE}",
    "FormDataParameterSubSchema": f"{_PARAMETER} allowEmptyValue:bool {_PRIMITIVE}",
    "QueryParameterSubSchema": f"{_PARAMETER} allowEmptyValue:bool {_PRIMITIVE}",
    "PathParameterSubSchema": f"{_PARAMETER} {_PRIMITIVE}",
    "PrimitivesItems": _PRIMITIVE,
    "Header": f"{_PRIMITIVE} description",
    "JsonReference": "$ref description",
    "Response": "description schema:SchemaItem headers:Headers examples:Examples",
    "Schema": "$ref format title description default:any multipleOf:double maximum:double "
    "exclusiveMaximum:bool minimum:double exclusiveMinimum:bool maxLength:int64 minLength:int64 pattern "
    "maxItems:int64 minItems:int64 uniqueItems:bool maxProperties:int64 minProperties:int64 required:strs "
    "enum:anys additionalProperties:AdditionalPropertiesItem type:TypeItem items:ItemsItem allOf:*Schema "
    "properties:Properties discriminator readOnly:bool xml:Xml externalDocs:ExternalDocs example:any",
    "FileSchema": "format title description default:any required:strs type readOnly:bool "
    "externalDocs:ExternalDocs example:any",
    "BasicAuthenticationSecurity": "type description",
    "ApiKeySecurity": "type name in description",
    "Oauth2ImplicitSecurity": f"{_OAUTH2} authorizationUrl description",
    "Oauth2PasswordSecurity": f"{_OAUTH2} tokenUrl description",
    "Oauth2ApplicationSecurity": f"{_OAUTH2} tokenUrl description",
    "Oauth2AccessCodeSecurity": f"{_OAUTH2} authorizationUrl tokenUrl description",
}


def _message(name: str, layout: str) -> _Message:
    members = [token.partition(":") for token in layout.split()]
    fields = {json: (number, kind or "str") for number, (json, _, kind) in enumerate(members, start=1)}
    return _Message(fields, 0 if name == "JsonReference" else len(fields) + 1)


_MESSAGES: Final = {name: _message(name, layout) for name, layout in _LAYOUTS.items()}

_NAMED_MAPS: Final = {  # message → kind of the values of its ``repeated Named* additional_properties``
    "Definitions": "Schema",
    "Properties": "Schema",
    "ParameterDefinitions": "Parameter",
    "ResponseDefinitions": "Response",
    "SecurityDefinitions": "SecurityDefinitionsItem",
    "Headers": "Header",
    "Examples": "any",
    "Oauth2Scopes": "str",
    "SecurityRequirement": "StringArray",
}
_RESPONSE_CODE: Final = re.compile(r"^([0-9]{3})$|^(default)$")
_NON_BODY: Final = {
    "header": (1, "HeaderParameterSubSchema"),
    "formData": (2, "FormDataParameterSubSchema"),
    "query": (3, "QueryParameterSubSchema"),
    "path": (4, "PathParameterSubSchema"),
}
_OAUTH2_FLOWS: Final = {
    "implicit": (3, "Oauth2ImplicitSecurity"),
    "password": (4, "Oauth2PasswordSecurity"),
    "application": (5, "Oauth2ApplicationSecurity"),
    "accessCode": (6, "Oauth2AccessCodeSecurity"),
}


def _pointer(path: str, key: str | int) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Encoder:
    dropped: list[str] = dataclass_field(default_factory=list)

    def message(self, name: str, value: Any, path: str) -> bytes | None:
        """The fields of message ``name`` for ``value``; None if it cannot be one (dropped)."""
        special = _SPECIAL.get(name)
        if special is not None:
            return special(self, value, path)
        if name in _NAMED_MAPS:
            return self._named_map(_NAMED_MAPS[name], value, path)
        if not isinstance(value, dict):
            return self.drop(path)
        spec = _MESSAGES[name]
        parts: list[tuple[int, bytes]] = []
        extensions: list[bytes] = []
        for key, item in value.items():
            where = _pointer(path, key)
            if key in spec.fields:
                number, kind = spec.fields[key]
                encoded = self.member(number, kind, item, where)
                if encoded is not None:
                    parts.append((number, encoded))
            elif spec.extensions and key.startswith("x-"):
                extensions.append(_named(spec.extensions, key, _any(item)))
            else:
                self.drop(where)
        parts.append((spec.extensions, b"".join(extensions)))
        parts.sort(key=lambda part: part[0])  # Go writes fields in number order
        return b"".join(encoded for _, encoded in parts)

    def drop(self, path: str) -> bytes | None:
        """Record a member the message has no place for; None, to ``return self.drop(path)``."""
        self.dropped.append(path)
        return None

    def member(self, number: int, kind: str, value: Any, path: str) -> bytes | None:
        if kind == "str":
            text = _string(value)
            return self.drop(path) if text is None else _string_field(number, text)
        if kind == "bool":
            if not isinstance(value, bool):
                return self.drop(path)
            return field_key(number, _VARINT) + b"\x01" if value else b""
        if kind == "double":
            if not _is_number(value) or math.isinf(float(value)):
                return self.drop(path)
            packed = struct.pack("<d", float(value))
            return field_key(number, _FIXED64) + packed if packed != bytes(8) else b""
        if kind == "int64":
            if not isinstance(value, int) or isinstance(value, bool) or not -(1 << 63) <= value < 1 << 63:
                return self.drop(path)
            return field_key(number, _VARINT) + encode_varint(value) if value else b""
        if kind == "any":
            return _bytes_field(number, _any(value))
        if kind in ("strs", "anys") or kind.startswith("*"):
            if not isinstance(value, list):
                return self.drop(path)
            return b"".join(self._item(number, kind, item, _pointer(path, i)) for i, item in enumerate(value))
        encoded = self.message(kind, value, path)
        return None if encoded is None else _bytes_field(number, encoded)

    def _item(self, number: int, kind: str, value: Any, path: str) -> bytes:
        if kind == "strs":
            text = _string(value)
            if text is None:
                self.drop(path)
                return b""
            return _bytes_field(number, text.encode())  # a repeated string keeps its empty items
        if kind == "anys":
            return _bytes_field(number, _any(value))
        encoded = self.message(kind[1:], value, path)
        return b"" if encoded is None else _bytes_field(number, encoded)

    def _named_map(self, kind: str, value: Any, path: str) -> bytes | None:
        if not isinstance(value, dict):
            return self.drop(path)
        return b"".join(self._pair(1, kind, key, item, _pointer(path, key)) for key, item in value.items())

    def _pair(self, number: int, kind: str, name: str, value: Any, path: str) -> bytes:
        if kind == "any":
            return _named(number, name, _any(value))
        if kind == "str":
            text = _string(value)
            if text is None:
                self.drop(path)
                return b""
            return _bytes_field(number, _string_field(1, name) + _string_field(2, text))
        if kind == "StringArray":
            encoded = self.member(1, "strs", value, path)
        else:
            encoded = self.message(kind, value, path)
        return b"" if encoded is None else _named(number, name, encoded)

    def oneof(self, choice: tuple[int, str] | None, value: Any, path: str) -> bytes | None:
        if choice is None or not isinstance(value, dict):
            return self.drop(path)
        number, name = choice
        encoded = self.message(name, value, path)
        return None if encoded is None else _bytes_field(number, encoded)


def _string(value: Any) -> str | None:
    """A JSON value as gnostic reads a string field: strings, integers as text, null as empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return "" if value is None else None


def _any(value: Any) -> bytes:
    """``openapi_v2.Any`` for a JSON value: only ``yaml`` (2) is set, as gnostic does."""
    return _bytes_field(2, GoYaml.dump(value).encode())


# Messages with their own shape: maps keyed by pattern, oneofs, and the schema unions.


def _paths(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    if not isinstance(value, dict):
        return encoder.drop(path)
    extensions, items = [], []
    for key, item in value.items():
        where = _pointer(path, key)
        if key.startswith("x-"):
            extensions.append(_named(1, key, _any(item)))
        elif key.startswith("/"):
            encoded = encoder.message("PathItem", item, where)
            if encoded is not None:
                items.append(_named(2, key, encoded))
        else:
            encoder.drop(where)
    return b"".join(extensions + items)


def _responses(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    if not isinstance(value, dict):
        return encoder.drop(path)
    codes, extensions = [], []
    for key, item in value.items():
        where = _pointer(path, key)
        if _RESPONSE_CODE.match(key):
            encoded = encoder.message("ResponseValue", item, where)
            if encoded is not None:
                codes.append(_named(1, key, encoded))
        elif key.startswith("x-"):
            extensions.append(_named(2, key, _any(item)))
        else:
            encoder.drop(where)
    return b"".join(codes + extensions)


def _type_item(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    values = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(values):
        if isinstance(item, dict | list):
            encoder.drop(_pointer(path, i) if isinstance(value, list) else path)
        else:
            out.append(_bytes_field(1, scalar_text(item).encode()))
    return b"".join(out)


def _items_item(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    if isinstance(value, list):  # the proto allows a list of schemas; gnostic reads only one
        return encoder.member(1, "*Schema", value, path)
    return encoder.member(1, "Schema", value, path)


def _additional_properties(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    if isinstance(value, bool):
        return field_key(2, _VARINT) + encode_varint(int(value))  # a oneof member is written even when false
    return encoder.oneof((1, "Schema"), value, path)


def _parameters_item(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    ref = isinstance(value, dict) and "$ref" in value
    return encoder.oneof((2, "JsonReference") if ref else (1, "Parameter"), value, path)


def _parameter(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    body = isinstance(value, dict) and value.get("in") == "body"
    return encoder.oneof((1, "BodyParameter") if body else (2, "NonBodyParameter"), value, path)


def _non_body_parameter(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    where = value.get("in") if isinstance(value, dict) else None
    return encoder.oneof(_NON_BODY.get(where) if isinstance(where, str) else None, value, path)


def _response_value(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    ref = isinstance(value, dict) and "$ref" in value
    return encoder.oneof((2, "JsonReference") if ref else (1, "Response"), value, path)


def _schema_item(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    file = isinstance(value, dict) and value.get("type") == "file"
    return encoder.oneof((2, "FileSchema") if file else (1, "Schema"), value, path)


def _security_definitions_item(encoder: _Encoder, value: Any, path: str) -> bytes | None:
    choice: tuple[int, str] | None = None
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "basic":
            choice = (1, "BasicAuthenticationSecurity")
        elif kind == "apiKey":
            choice = (2, "ApiKeySecurity")
        elif kind == "oauth2" and isinstance(value.get("flow"), str):
            choice = _OAUTH2_FLOWS.get(value["flow"])
    return encoder.oneof(choice, value, path)


_SPECIAL: Final[dict[str, Callable[[_Encoder, Any, str], bytes | None]]] = {
    "Paths": _paths,
    "Responses": _responses,
    "TypeItem": _type_item,
    "ItemsItem": _items_item,
    "AdditionalPropertiesItem": _additional_properties,
    "ParametersItem": _parameters_item,
    "Parameter": _parameter,
    "NonBodyParameter": _non_body_parameter,
    "ResponseValue": _response_value,
    "SchemaItem": _schema_item,
    "SecurityDefinitionsItem": _security_definitions_item,
}
