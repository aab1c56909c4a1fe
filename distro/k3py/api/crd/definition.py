"""A CustomResourceDefinition object itself: v1 defaulting and apiextensions-apiserver's validation.

:func:`default_crd` is ``SetDefaults_CustomResourceDefinition`` (singular and list kind from the
kind, ``conversion.strategy: None``, the storage version in ``status.storedVersions``);
:func:`validate_crd` is ``ValidateCustomResourceDefinition`` and its update variant, on the
internal form kube-apiserver validates: a v1 CRD whose versions all carry the same schema,
subresources or printer columns is validated with them hoisted to ``spec.validation``,
``spec.subresources`` and ``spec.additionalPrinterColumns``, and the error paths say so, as
upstream's do (``spec.validation.openAPIV3Schema.properties[spec].type: Required value: ...``).

``spec.conversion`` (``None``, or ``Webhook`` with its client config and review versions) is
defaulted and validated by :mod:`k3py.api.crd.webhook_conversion`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from k3py.api.crd import model, schemacheck, webhook_conversion
from k3py.api.validation import (
    Cause,
    Shown,
    dns1035_errors,
    dns_subdomain_errors,
    duplicate,
    go_strings,
    immutable,
    invalid,
    not_supported,
    required,
)

Obj = dict[str, Any]

APPROVAL_ANNOTATION: Final = "api-approved.kubernetes.io"
_COLUMN_TYPES: Final = ("boolean", "date", "integer", "number", "string")
_COLUMN_FORMATS: Final = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
MAX_SELECTABLE_FIELDS: Final = 8


def default_crd(crd: Obj) -> None:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = names.get("kind")
        if not names.get("singular") and isinstance(kind, str):
            names["singular"] = kind.lower()
        if not names.get("listKind") and isinstance(kind, str) and kind:
            names["listKind"] = f"{kind}List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    elif isinstance(spec["conversion"], dict):
        webhook_conversion.default_conversion(spec["conversion"])
    for version in _versions(spec):
        scale = (
            (version.get("subresources") or {}).get("scale")
            if isinstance(version.get("subresources"), dict)
            else None
        )
        if isinstance(scale, dict) and scale.get("labelSelectorPath") == "":
            del scale["labelSelectorPath"]
    status = crd.get("status")
    if isinstance(status, dict) and not status.get("storedVersions"):
        storage = next((v.get("name") for v in _versions(spec) if v.get("storage")), None)
        if storage:
            status["storedVersions"] = [storage]


def _versions(spec: Obj) -> list[Obj]:
    found = spec.get("versions")
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def validate_crd(crd: Obj, old: Obj | None) -> list[Cause]:
    spec, status = _dict(crd.get("spec")), _dict(crd.get("status"))
    causes: list[Cause] = []
    name = _dict(crd.get("metadata")).get("name")
    names = _dict(spec.get("names"))
    if (
        old is None
        and isinstance(name, str)
        and name
        and name != f"{names.get('plural', '')}.{spec.get('group', '')}"
    ):
        causes.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    causes += _spec(spec)
    if old is not None:
        causes += _immutable(spec, _dict(old.get("spec")), model.is_true(old, model.ESTABLISHED))
    causes += _names(_dict(status.get("acceptedNames")), "status.acceptedNames")
    causes += _stored_versions(list(status.get("storedVersions") or ()), _versions(spec))
    causes += _approval(crd, old)
    if spec.get("preserveUnknownFields") is True and not (
        old and _dict(old.get("spec")).get("preserveUnknownFields")
    ):
        causes.append(
            invalid(
                "spec.preserveUnknownFields",
                True,
                "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
                "spec.versions[*].schema instead",
            )
        )
    return causes


def _immutable(spec: Obj, old: Obj, established: bool) -> list[Cause]:
    causes: list[Cause] = []
    names, old_names = _dict(spec.get("names")), _dict(old.get("names"))
    if established:
        if spec.get("scope") != old.get("scope"):
            causes.append(immutable("spec.scope", spec.get("scope", "")))
        if names.get("kind") != old_names.get("kind"):
            causes.append(immutable("spec.names.kind", names.get("kind", "")))
    if spec.get("group") != old.get("group"):
        causes.append(immutable("spec.group", spec.get("group", "")))
    if names.get("plural") != old_names.get("plural"):
        causes.append(immutable("spec.names.plural", names.get("plural", "")))
    return causes


# -- the internal form's hoisted fields ------------------------------------------------------


def _shared(versions: list[Obj], key: str) -> Any:
    """The value every version has for ``key`` when they all set the same one (else None):
    the v1-to-internal conversion moves such a value to the spec's top level."""
    if not versions:
        return None
    first = versions[0].get(key)
    if first in (None, [], {}) or any(v.get(key) != first for v in versions):
        return None
    return first


def _spec(spec: Obj) -> list[Cause]:
    causes = _group(spec.get("group"))
    scope = spec.get("scope")
    if not scope:
        causes.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        causes.append(not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    versions = _versions(spec)
    shared_schema = _shared(versions, "schema")
    shared_subresources = _shared(versions, "subresources")
    shared_columns = _shared(versions, "additionalPrinterColumns")
    shared_fields = _shared(versions, "selectableFields") if shared_schema is not None else None
    any_status = any(isinstance(_dict(v.get("subresources")).get("status"), dict) for v in versions)
    if shared_schema is None:
        for i, version in enumerate(versions):
            if not isinstance(_dict(version.get("schema")).get("openAPIV3Schema"), dict):
                causes.append(required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
    storage, seen, unique = 0, set(), True
    for i, version in enumerate(versions):
        storage += version.get("storage") is True
        version_name = str(version.get("name", ""))
        unique = unique and version_name not in seen
        seen.add(version_name)
        if errors := dns1035_errors(version_name):
            causes.append(invalid(f"spec.versions[{i}].name", version_name, ",".join(errors)))
        causes += _version(
            version, f"spec.versions[{i}]", shared_schema, shared_subresources, shared_columns, shared_fields
        )
    if not unique:
        causes.append(
            invalid("spec.versions", _shown_versions(versions), "must contain unique version names")
        )
    if storage != 1:
        causes.append(
            invalid(
                "spec.versions",
                _shown_versions(versions),
                "must have exactly one version marked as storage version",
            )
        )
    names = _dict(spec.get("names"))
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            causes.append(required(f"spec.names.{key}"))
    causes += _names(names, "spec.names")
    if shared_schema is not None:
        schema = _dict(shared_schema).get("openAPIV3Schema")
        if isinstance(schema, dict):
            causes += schemacheck.check_schema(schema, "spec.validation.openAPIV3Schema", status=any_status)
    if shared_subresources is not None:
        causes += _subresources(_dict(shared_subresources), "spec.subresources")
    if shared_columns is not None:
        for i, column in enumerate(shared_columns):
            causes += _column(_dict(column), f"spec.additionalPrinterColumns[{i}]")
    if shared_fields is not None:
        schema = _dict(_dict(shared_schema).get("openAPIV3Schema")) if shared_schema is not None else None
        causes += _selectable_fields(shared_fields, schema, "spec.selectableFields")
    if spec.get("conversion") is not None:
        causes += webhook_conversion.validate_conversion(
            _dict(spec.get("conversion")), preserve_unknown_fields=spec.get("preserveUnknownFields") is True
        )
    return causes


def _shown_versions(versions: list[Obj]) -> Shown:
    """``%#v`` of the versions, abridged to what tells them apart (Go prints every field)."""
    if not versions:
        return Shown("[]apiextensions.CustomResourceDefinitionVersion(nil)")
    shown = (
        f'apiextensions.CustomResourceDefinitionVersion{{Name:"{v.get("name", "")}", '
        f"Served:{str(bool(v.get('served'))).lower()}, Storage:{str(bool(v.get('storage'))).lower()}, ...}}"
        for v in versions
    )
    return Shown("[]apiextensions.CustomResourceDefinitionVersion{" + ", ".join(shown) + "}")


def _group(group: Any) -> list[Cause]:
    if not group:
        return [required("spec.group")]
    if errors := dns_subdomain_errors(str(group)):
        return [invalid("spec.group", group, ",".join(errors))]
    if len(str(group).split(".")) < 2:
        return [invalid("spec.group", group, "should be a domain with at least one dot")]
    return []


def _version(
    version: Obj,
    path: str,
    shared_schema: Any,
    shared_subresources: Any,
    shared_columns: Any,
    shared_fields: Any,
) -> list[Cause]:
    causes = _deprecation(version, path)
    subresources = _dict(version.get("subresources"))
    if shared_schema is None:
        schema = _dict(version.get("schema")).get("openAPIV3Schema")
        if isinstance(schema, dict):
            status = isinstance(subresources.get("status"), dict)
            causes += schemacheck.check_schema(schema, f"{path}.schema.openAPIV3Schema", status=status)
    if shared_subresources is None and subresources:
        causes += _subresources(subresources, f"{path}.subresources")
    if shared_columns is None:
        for i, column in enumerate(version.get("additionalPrinterColumns") or ()):
            causes += _column(_dict(column), f"{path}.additionalPrinterColumns[{i}]")
    if shared_fields is None and version.get("selectableFields"):
        schema = _dict(version.get("schema")).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            causes.append(
                invalid(
                    f"{path}.selectableFields",
                    "",
                    "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
                )
            )
        else:
            causes += _selectable_fields(version["selectableFields"], schema, f"{path}.selectableFields")
    return causes


def _deprecation(version: Obj, path: str) -> list[Cause]:
    warning = version.get("deprecationWarning")
    if warning is None:
        return []
    text = str(warning)
    if version.get("deprecated") is not True:
        return [invalid(f"{path}.deprecationWarning", text, "can only be set for deprecated versions")]
    causes = []
    if len(text) > 256:
        causes.append(invalid(f"{path}.deprecationWarning", text, "must be <= 256 characters long"))
    if not text:
        causes.append(invalid(f"{path}.deprecationWarning", text, "must not be an empty string"))
    for i, ch in enumerate(text):
        if not ch.isprintable():
            detail = (
                f"must only contain printable UTF-8 characters; non-printable character found at index {i}"
            )
            causes.append(invalid(f"{path}.deprecationWarning", text, detail))
            break
    return causes


def _names(names: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("plural", "singular"):
        value = str(names.get(key) or "")
        if value and (errors := dns1035_errors(value)):
            causes.append(invalid(f"{path}.{key}", value, ",".join(errors)))
    for key in ("kind", "listKind"):
        value = str(names.get(key) or "")
        if value and (errors := dns1035_errors(value.lower())):
            causes.append(
                invalid(
                    f"{path}.{key}",
                    value,
                    "may have mixed case, but should otherwise match: " + ",".join(errors),
                )
            )
    for i, short in enumerate(names.get("shortNames") or ()):
        if errors := dns1035_errors(str(short)):
            causes.append(invalid(f"{path}.shortNames[{i}]", short, ",".join(errors)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        causes.append(invalid(f"{path}.listKind", names["listKind"], "kind and listKind may not be the same"))
    for i, category in enumerate(names.get("categories") or ()):
        if errors := dns1035_errors(str(category)):
            causes.append(invalid(f"{path}.categories[{i}]", category, ",".join(errors)))
    return causes


def _simple_json_path(value: str, path: str) -> list[Cause]:
    if not value:
        return [invalid(path, value, "must not be empty")]
    if not value.startswith("."):
        return [invalid(path, value, "must be a simple json path starting with .")]
    return []


def _subresources(subresources: Obj, path: str) -> list[Cause]:
    scale = subresources.get("scale")
    if not isinstance(scale, dict):
        return []
    causes: list[Cause] = []
    for key, under, detail in (
        ("specReplicasPath", (".spec.",), "should be a json path under .spec"),
        ("statusReplicasPath", (".status.",), "should be a json path under .status"),
        ("labelSelectorPath", (".spec.", ".status."), "should be a json path under either .spec or .status"),
    ):
        value = str(scale.get(key) or "")
        where = f"{path}.scale.{key}"
        if not value:
            if key != "labelSelectorPath":
                causes.append(required(where))
            continue
        found = _simple_json_path(value, where)
        if not found and not value.startswith(under):
            found = [invalid(where, value, detail)]
        causes += found
    return causes


def _column(column: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not column.get("name"):
        causes.append(required(f"{path}.name"))
    kinds = ",".join(_COLUMN_TYPES)
    if not column.get("type"):
        causes.append(required(f"{path}.type", f"must be one of {kinds}"))
    elif column["type"] not in _COLUMN_TYPES:
        causes.append(invalid(f"{path}.type", column["type"], f"must be one of {kinds}"))
    if column.get("format") and column["format"] not in _COLUMN_FORMATS:
        causes.append(
            invalid(f"{path}.format", column["format"], f"must be one of {','.join(_COLUMN_FORMATS)}")
        )
    json_path = str(column.get("jsonPath") or "")
    if not json_path:
        causes.append(required(f"{path}.JSONPath"))
    else:
        causes += _simple_json_path(json_path, f"{path}.JSONPath")
    return causes


def _selectable_fields(fields: Any, schema: Obj | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, entry in enumerate(fields if isinstance(fields, list) else ()):
        json_path = str(_dict(entry).get("jsonPath") or "")
        where = f"{path}[{i}].jsonPath"
        if not json_path:
            causes.append(required(where))
            continue
        parts = [p for p in json_path.removeprefix(".").split(".")]
        node: Obj | None = schema
        for part in parts:
            props = _dict(_dict(node).get("properties"))
            node = props.get(part) if isinstance(props.get(part), dict) else None
            if node is None:
                break
        if not json_path.startswith(".") or not all(parts) or node is None:
            causes.append(invalid(where, json_path, "is an invalid path: does not refer to a valid field"))
            continue
        if parts[0] == "metadata":
            causes.append(invalid(where, json_path, "must not point to fields in metadata"))
        if node.get("type") not in ("string", "boolean", "integer"):
            detail = (
                "must point to a field of type string, boolean or integer. "
                "Enum string fields and strings with formats are allowed."
            )
            causes.append(invalid(where, json_path, detail))
        if json_path in seen:
            causes.append(duplicate(where, json_path))
        seen.add(json_path)
    if len(seen) > MAX_SELECTABLE_FIELDS:
        causes.append(
            Cause(
                "FieldValueTooMany",
                f"Too many: {len(seen)}: must have at most {MAX_SELECTABLE_FIELDS} items",
                path,
            )
        )
    return causes


def _stored_versions(stored: list[Any], versions: list[Obj]) -> list[Cause]:
    path = "status.storedVersions"
    if not stored:
        return [invalid(path, go_strings(stored), "must have at least one stored version")]
    causes: list[Cause] = []
    names = {str(v.get("name")) for v in versions}
    for version in versions:
        if version.get("storage") is True and version.get("name") not in stored:
            causes.append(
                invalid(path, go_strings(stored), f"must have the storage version {version.get('name')}")
            )
    for i, name in enumerate(stored):
        if name not in names:
            detail = (
                f"missing from spec.versions; {name} was previously a storage version, and must remain in "
                f"spec.versions until a storage migration ensures no data remains persisted in {name} and "
                f"removes {name} from status.storedVersions"
            )
            causes.append(invalid(f"{path}[{i}]", name, detail))
    return causes


def _protected(group: str) -> bool:
    return group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))


def _approval_state(annotations: Mapping[str, Any]) -> tuple[str, str]:
    value = str(annotations.get(APPROVAL_ANNOTATION) or "")
    link = "see https://github.com/kubernetes/enhancements/pull/1111"
    if not value:
        return "missing", f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}", {link}'
    if value.startswith("unapproved"):
        return "bypassed", ""
    parts = urlsplit(value)
    if (
        not parts.scheme
        or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme)
        or not (parts.netloc or parts.path)
    ):
        return "invalid", (
            f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}" '
            "with either a URL or a reason "
            f'starting with "unapproved", {link}'
        )
    return "approved", ""


def _approval(crd: Obj, old: Obj | None) -> list[Cause]:
    group = str(_dict(crd.get("spec")).get("group") or "")
    if not _protected(group):
        return []
    state, reason = _approval_state(_dict(_dict(crd.get("metadata")).get("annotations")))
    if old is not None and _approval_state(_dict(_dict(old.get("metadata")).get("annotations")))[0] == state:
        return []
    field = f"metadata.annotations[{APPROVAL_ANNOTATION}]"
    if state == "missing":
        return [required(field, reason)]
    if state == "invalid":
        return [
            invalid(
                field, _dict(_dict(crd.get("metadata")).get("annotations")).get(APPROVAL_ANNOTATION), reason
            )
        ]
    return []
