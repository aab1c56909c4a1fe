"""Semantic validation: one ``Cause`` per invalid field, as kube-apiserver reports them.

``validate`` runs after defaulting, on create (``old`` is None) and on update. It checks the
metadata every object has, then hands the object to its kind's validator, a port of upstream's
pkg/apis/{core,apps,batch}/validation plus the strategies' update rules (immutable selectors,
pod updates). Reasons, messages and field paths are upstream's, quirks included (a template's
labels are reported at ``spec.template.labels``, a bad sub-path at ``volumeMounts.subPath``),
because kubectl prints them as they come. Values in messages are rendered as Go's ``%#v`` would.

Updates ratchet: the old object is defaulted again before comparisons, and an update that leaves
an object's body (everything but metadata and status) or a metadata map unchanged is not held to
rules that object was stored without, so status writers and metadata edits keep working on
objects written by an older server.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import ipaddress
import json
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from k3py.api import cel, defaults, objects, priorityclasses
from k3py.api.defaults import canonical_quantity, quantity_value
from k3py.api.resources import Resource
from k3py.api.selectors import (
    SelectorError,
    from_label_selector_object,
    go_quote,
    label_key_errors,
    label_value_errors,
)

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cause:
    """One invalid field: upstream's cause reason, message and field path."""

    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
    message: str
    field: str = ""


Validator = Callable[[Obj, Obj | None], list[Cause]]
Causes = list[Cause]

MAX_INT32 = 2**31 - 1
MAX_SECRET_SIZE = 1024 * 1024
MAX_ANNOTATIONS_SIZE = 256 * 1024


def validate(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    if old is not None:
        old = _defaulted(resource, old)
    causes = _metadata(resource, obj, old)
    fn = _BY_RESOURCE.get(resource.name)
    if fn is not None and (old is None or _body(_defaulted(resource, obj)) != _body(old)):
        causes += fn(obj, old)
    return list(dict.fromkeys(causes))  # upstream's message shows each cause once


def metadata_causes(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    """The metadata checks of :func:`validate` alone, for writes whose body has rules of its own
    (the pod subresources of ``k3py.api.pods``)."""
    return _metadata(resource, obj, _defaulted(resource, old) if old is not None else None)


def _defaulted(resource: Resource, obj: Obj) -> Obj:
    copied = copy.deepcopy(obj)
    defaults.apply(resource, copied)
    return copied


def _body(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


# -- causes, with values shown as Go shows them --------------------------------------------------


class Shown(str):
    """A value already rendered the way Go's ``%#v`` (or the value's String method) prints it."""


def show(value: object) -> str:
    if isinstance(value, Shown):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, dict):
        return go_map(value)
    if isinstance(value, list):
        return go_strings(value)
    return str(value)


def required(field: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), field)


def invalid(field: str, value: object, detail: str) -> Cause:
    shown = f"Invalid value: {show(value)}"
    return Cause("FieldValueInvalid", f"{shown}: {detail}" if detail else shown, field)


def not_supported(field: str, value: object, supported: Sequence[str]) -> Cause:
    message = f"Unsupported value: {show(value)}"
    if supported:
        message += ": supported values: " + ", ".join(go_quote(v) for v in supported)
    return Cause("FieldValueNotSupported", message, field)


def duplicate(field: str, value: object) -> Cause:
    return Cause("FieldValueDuplicate", f"Duplicate value: {show(value)}", field)


def forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"Forbidden: {detail}" if detail else "Forbidden", field)


def not_found(field: str, value: object, detail: str = "") -> Cause:
    return Cause("FieldValueNotFound", f"Not found: {show(value)}" + (f": {detail}" if detail else ""), field)


def too_long(field: str, limit: int) -> Cause:
    return Cause("FieldValueTooLong", f"Too long: must have at most {limit} bytes", field)


def immutable(field: str, value: object) -> Cause:
    return invalid(field, value, "field is immutable")


def go_map(labels: Mapping[str, Any] | None) -> Shown:
    """``%#v`` of a ``map[string]string``: keys sorted, ``nil`` and empty told apart."""
    if labels is None:
        return Shown("map[string]string(nil)")
    pairs = (f"{go_quote(str(k))}:{go_quote(str(labels[k]))}" for k in sorted(labels))
    return Shown("map[string]string{" + ", ".join(pairs) + "}")


def go_strings(values: Iterable[Any] | None) -> Shown:
    if values is None:
        return Shown("[]string(nil)")
    return Shown("[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}")


def go_selector(selector: Obj | None) -> Shown:
    """``%#v`` of a ``metav1.LabelSelector`` (pointers are followed, as field errors do)."""
    sel = selector or {}
    expressions = sel.get("matchExpressions")
    if expressions is None:
        shown = "[]v1.LabelSelectorRequirement(nil)"
    else:
        shown = (
            "[]v1.LabelSelectorRequirement{"
            + ", ".join(
                f"v1.LabelSelectorRequirement{{Key:{go_quote(str(e.get('key', '')))}, "
                f"Operator:{go_quote(str(e.get('operator', '')))}, Values:{go_strings(e.get('values'))}}}"
                for e in _dicts(expressions)
            )
            + "}"
        )
    labels = go_map(_opt_map(sel.get("matchLabels")))
    return Shown(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{shown}}}")


def _int_or_string(value: object) -> Shown:
    """``intstr.IntOrString`` prints through its String method: no quotes."""
    return Shown(str(value))


# -- access helpers (objects are plain JSON; every shape is checked, never assumed) ----------------


def _dict(value: object) -> Obj:
    return value if isinstance(value, dict) else {}


def _opt_map(value: object) -> Obj | None:
    return value if isinstance(value, dict) else None


def _dicts(value: object) -> list[Obj]:
    return [v if isinstance(v, dict) else {} for v in value] if isinstance(value, list) else []


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _nonnegative(value: object, field: str) -> Causes:
    number = _int(value)
    if number is not None and number < 0:
        return [invalid(field, number, "must be greater than or equal to 0")]
    return []


# -- formats (k8s.io/apimachinery/pkg/util/validation) --------------------------------------------

_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_CONFIG_KEY_MESSAGE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
    "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
_ENV_NAME_MESSAGE = (
    "a valid environment variable name must consist only of printable ASCII characters other than '='"
)
_PERCENT = re.compile(r"[0-9]+%")
_PERCENT_MESSAGE = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
    "'93%', regex used for validation is '[0-9]+%')"
)
_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+")
_HTTP_HEADER = re.compile(r"[-A-Za-z0-9]+")
_HTTP_HEADER_MESSAGE = (
    "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', "
    "regex used for validation is '[-A-Za-z0-9]+')"
)
_IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MESSAGE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


def dns_label_errors(value: str) -> list[str]:
    """``IsDNS1123Label``, including its "must not contain dots" for would-be subdomains."""
    errors = [_max_len(63)] if _byte_len(value) > 63 else []
    if not objects.DNS1123_LABEL.match(value):
        dotted = objects.DNS1123_SUBDOMAIN.match(value)
        errors.append("must not contain dots" if dotted else objects.LABEL_MESSAGE)
    return errors


def dns_subdomain_errors(value: str) -> list[str]:
    errors = [_max_len(253)] if _byte_len(value) > 253 else []
    if not objects.DNS1123_SUBDOMAIN.match(value):
        errors.append(objects.SUBDOMAIN_MESSAGE)
    return errors


def dns1035_errors(value: str) -> list[str]:
    errors = [_max_len(63)] if _byte_len(value) > 63 else []
    if not _DNS1035_LABEL.fullmatch(value):
        errors.append(_DNS1035_MESSAGE)
    return errors


def config_key_errors(key: str) -> list[str]:
    errors = [_max_len(253)] if _byte_len(key) > 253 else []
    if not _CONFIG_KEY.fullmatch(key):
        errors.append(_CONFIG_KEY_MESSAGE)
    return errors + _chdir_prefix_errors(key)


def _chdir_prefix_errors(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"must not be '{value}'"]
    return ["must not start with '..'"] if value.startswith("..") else []


def env_name_errors(name: str) -> list[str]:
    """``IsRelaxedEnvVarName`` (RelaxedEnvironmentVariableValidation is GA and locked on)."""
    if not name:
        return ["environment variable name must be non-empty"]
    if any(not 0x20 <= ord(ch) <= 0x7E or ch == "=" for ch in name):
        return [_ENV_NAME_MESSAGE]
    return []


def port_name_errors(name: str) -> list[str]:
    errors = [_max_len(15)] if len(name) > 15 else []
    if not _PORT_NAME_CHARS.fullmatch(name):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        errors.append("must contain at least one letter (a-z)")
    if "--" in name:
        errors.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _range(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def _port_number(value: object, field: str) -> Causes:
    number = _int(value)
    if number is None or not 1 <= number <= 65535:
        return [invalid(field, value, _range(1, 65535))]
    return []


def _port_number_or_name(value: object, field: str) -> Causes:
    if isinstance(value, str):
        return [invalid(field, value, msg) for msg in port_name_errors(value)]
    return _port_number(value if value is not None else 0, field)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _ip(value: object, field: str) -> Causes:
    return [] if isinstance(value, str) and _is_ip(value) else [invalid(field, value, _IP_MESSAGE)]


def _names(value: str, field: str, check: Callable[[str], list[str]]) -> Causes:
    return [invalid(field, value, msg) for msg in check(value)]


def _qualified_name(value: str, field: str) -> Causes:
    return [invalid(field, value, msg) for msg in label_key_errors(value)]


# -- metadata ------------------------------------------------------------------------------------

_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}


def _no_more_checks(name: str) -> list[str]:
    return []


def _trust_bundle_name_check(signer: str) -> Callable[[str], list[str]]:
    """``ValidateClusterTrustBundleName``: a signer's bundles are named ``<signer, / as :>:<name>``."""

    def check(name: str) -> list[str]:
        if not signer:
            if ":" in name:
                return ['ClusterTrustBundle without signer name must not have ":" in its name']
            return dns_subdomain_errors(name)
        prefix = signer.replace("/", ":") + ":"
        if not name.startswith(prefix):
            return [f"ClusterTrustBundle for signerName {signer} must be named with prefix {prefix}"]
        return dns_subdomain_errors(name.removeprefix(prefix))

    return check


def _ip_address_name_errors(name: str) -> list[str]:
    """``ValidateIPAddressName``: an IPAddress is named by its address, in canonical form."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    if str(address) != name:
        return [f'must be in canonical form ("{address}")']
    return []


def _name_check(resource: Resource) -> Callable[[str], list[str]]:
    """The ``ValidateNameFunc`` of the kind (on top of the path-segment rules every name has)."""
    if resource.group == "rbac.authorization.k8s.io":
        return _no_more_checks  # "system:controller:..." roles: path segments only
    if resource.group == "apiregistration.k8s.io":
        return _no_more_checks  # "v1." names core's APIService; the kind's rule checks the name
    if resource.group == "certificates.k8s.io" and resource.plural == "certificatesigningrequests":
        return _no_more_checks  # "We don't care what you call your certificate requests" (upstream)
    if resource.group == "" and resource.plural == "services":
        return dns1035_errors
    if (resource.group, resource.plural) == ("networking.k8s.io", "ipaddresses"):
        return _ip_address_name_errors
    if (resource.group, resource.plural) in (("", "namespaces"), ("apps", "statefulsets")):
        return dns_label_errors
    return dns_subdomain_errors


def _metadata(resource: Resource, obj: Obj, old: Obj | None) -> Causes:
    meta = _dict(obj.get("metadata"))
    old_meta = _dict(old.get("metadata")) if old is not None else None
    causes: Causes = []
    if old is None:
        name_causes = _object_name(resource, meta, _dict(obj.get("spec")))
        if name_causes and not meta.get("name"):
            return name_causes
        causes += name_causes
    elif old_meta is not None and old_meta.get("name") != meta.get("name"):
        causes.append(immutable("metadata.name", meta.get("name")))
    for key, check in (
        ("labels", _labels),
        ("annotations", _annotations),
        ("ownerReferences", _owner_references),
        ("finalizers", _finalizers),
    ):
        value = meta.get(key)
        if old_meta is None or value != old_meta.get(key):
            causes += check(value, f"metadata.{key}")
    if old_meta is not None and old_meta.get("deletionTimestamp"):
        added = sorted(set(_strings(meta.get("finalizers"))) - set(_strings(old_meta.get("finalizers"))))
        if added:
            causes.append(
                forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {go_strings(added)}",
                )
            )
    return causes


def _object_name(resource: Resource, meta: Obj, spec: Obj) -> Causes:
    name, generate = meta.get("name"), meta.get("generateName")
    causes: Causes = []
    check = _name_check(resource)
    if (resource.group, resource.plural) == ("certificates.k8s.io", "clustertrustbundles"):
        check = _trust_bundle_name_check(str(spec.get("signerName") or ""))
    if isinstance(generate, str) and generate:
        prefix = generate[:-2] + "a" if len(generate) > 1 and generate.endswith("-") else generate
        causes += [invalid("metadata.generateName", generate, msg) for msg in check(prefix)]
    if not name:
        return [*causes, required("metadata.name", "name or generateName is required")]
    if not isinstance(name, str):
        return [invalid("metadata.name", name, "must be a string")]
    return causes + _names(name, "metadata.name", lambda n: objects.path_segment_errors(n) or check(n))


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _labels(value: object, field: str) -> Causes:
    """``ValidateLabels``: every key a qualified name, every value a label value."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [invalid(field, Shown(json.dumps(value)), "must be a map of strings")]
    causes: Causes = []
    for key in sorted(value):
        causes += _qualified_name(key, field)
        raw = value[key]
        if not isinstance(raw, str):
            causes.append(invalid(field, raw, f"value of {key!r} must be a string"))
            continue
        causes += [invalid(field, raw, msg) for msg in label_value_errors(raw)]
    return causes


def _annotations(value: object, field: str) -> Causes:
    """``ValidateAnnotations``: keys are qualified names (case-insensitively), 256 KiB in all."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [invalid(field, Shown(json.dumps(value)), "must be a map of strings")]
    causes: Causes = []
    size = 0
    for key in sorted(value):
        causes += [invalid(field, key, msg) for msg in label_key_errors(key.lower())]
        raw = value[key]
        if not isinstance(raw, str):
            causes.append(invalid(field, raw, f"value of {key!r} must be a string"))
            continue
        size += _byte_len(key) + _byte_len(raw)
    if size > MAX_ANNOTATIONS_SIZE:
        causes.append(too_long(field, MAX_ANNOTATIONS_SIZE))
    return causes


def _owner_references(value: object, field: str) -> Causes:
    causes: Causes = []
    controller = ""
    for ref in _dicts(value):
        api_version, kind = _str(ref.get("apiVersion")), _str(ref.get("kind"))
        group, _, version = api_version.rpartition("/") if "/" in api_version else ("", "", api_version)
        if not version or "/" in group:
            causes.append(invalid(f"{field}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            causes.append(invalid(f"{field}.kind", kind, "must not be empty"))
        if not ref.get("name"):
            causes.append(invalid(f"{field}.name", _str(ref.get("name")), "must not be empty"))
        if not ref.get("uid"):
            causes.append(invalid(f"{field}.uid", _str(ref.get("uid")), "must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            causes.append(
                invalid(field, Shown(_go_owner(ref)), "/v1, Kind=Event is disallowed from being an owner")
            )
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name', '')}"
            if controller:
                causes.append(
                    invalid(
                        field,
                        Shown("[]v1.OwnerReference{" + ", ".join(_go_owner(r) for r in _dicts(value)) + "}"),
                        'Only one reference can have Controller set to true. Found "true" in references '
                        f"for {controller} and {current}",
                    )
                )
            else:
                controller = current
    return causes


def _go_owner(ref: Obj) -> str:
    return (
        f"v1.OwnerReference{{APIVersion:{go_quote(_str(ref.get('apiVersion')))}, "
        f"Kind:{go_quote(_str(ref.get('kind')))}, Name:{go_quote(_str(ref.get('name')))}, "
        f"UID:{go_quote(_str(ref.get('uid')))}, Controller:(*bool)(nil), BlockOwnerDeletion:(*bool)(nil)}}"
    )


def _finalizers(value: object, field: str) -> Causes:
    names = _strings(value)
    causes: Causes = []
    for name in names:
        causes += _qualified_name(name, field)
    if "orphan" in names and "foregroundDeletion" in names:
        causes.append(
            invalid(field, go_strings(names), "finalizer orphan and foregroundDeletion cannot be both set")
        )
    for i, name in enumerate(names):
        if "/" not in name and name not in _STANDARD_FINALIZERS:
            causes.append(
                invalid(
                    f"{field}[{i}]",
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return causes


# -- label selectors -----------------------------------------------------------------------------


def _label_selector(selector: Obj | None, field: str) -> Causes:
    """``ValidateLabelSelector``."""
    if selector is None:
        return []
    causes = _labels(selector.get("matchLabels"), f"{field}.matchLabels")
    for i, expr in enumerate(_dicts(selector.get("matchExpressions"))):
        path = f"{field}.matchExpressions[{i}]"
        operator, values = expr.get("operator"), expr.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(
                    required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    forbidden(
                        f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            causes.append(invalid(f"{path}.operator", _str(operator), "not a valid selector operator"))
        causes += _qualified_name(_str(expr.get("key")), f"{path}.key")
    return causes


def _matches(selector: Obj | None, labels: Obj | None) -> bool | None:
    """``LabelSelectorAsSelector(selector).Matches(labels)``; None when the selector does not parse."""
    try:
        parsed = from_label_selector_object(selector)
    except (SelectorError, TypeError, AttributeError):  # the latter two: a selector of the wrong shape
        return None
    if parsed.empty:
        return True
    return parsed.matches({k: str(v) for k, v in (labels or {}).items()})


# -- quantities and resources ---------------------------------------------------------------------

_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_STANDARD_RESOURCES = _STANDARD_CONTAINER_RESOURCES | {
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
}  # fmt: skip
_QUANTITY_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not _is_hugepages(name)


def _container_resource_name(name: str, field: str) -> Causes:
    causes = _qualified_name(name, field)
    if causes:
        return causes
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not _is_hugepages(name):
            return [invalid(field, name, "must be a standard resource type or fully qualified")]
        if name not in _STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
            return [invalid(field, name, "must be a standard resource for containers")]
    elif not _is_native(name) and (name.startswith("requests.") or label_key_errors("requests." + name)):
        return [invalid(field, name, "doesn't follow extended resource name standard")]
    return []


def _quantity(raw: object, name: str, field: str) -> Causes:
    value = quantity_value(raw)
    if value is None:
        return [invalid(field, raw if isinstance(raw, str) else Shown(show(raw)), _QUANTITY_MESSAGE)]
    shown = canonical_quantity(raw) or ""
    causes: Causes = []
    if value < 0:
        causes.append(invalid(field, shown, "must be greater than or equal to 0"))
    if not _is_native(name) and value.denominator != 1:
        causes.append(invalid(field, Shown(shown), "must be an integer"))
    return causes


def _resources(resources: Obj, field: str) -> Causes:
    """``ValidateContainerResourceRequirements``: names, quantities, requests within limits."""
    causes: Causes = []
    limits, requests = _dict(resources.get("limits")), _dict(resources.get("requests"))
    for name in sorted(limits):
        causes += _container_resource_name(name, f"{field}.limits[{name}]")
        causes += _quantity(limits[name], name, f"{field}.limits[{name}]")
    for name in sorted(requests):
        path = f"{field}.requests[{name}]"
        causes += _container_resource_name(name, path)
        causes += _quantity(requests[name], name, path)
        request = quantity_value(requests[name])
        if name in limits:
            limit = quantity_value(limits[name])
            if request is None or limit is None:
                continue
            shown_request = canonical_quantity(requests[name]) or ""
            shown_limit = canonical_quantity(limits[name]) or ""
            if request != limit and not _overcommit_allowed(name):
                causes.append(
                    invalid(
                        f"{field}.requests", shown_request, f"must be equal to {name} limit of {shown_limit}"
                    )
                )
            elif request > limit:
                causes.append(
                    invalid(
                        f"{field}.requests",
                        shown_request,
                        f"must be less than or equal to {name} limit of {shown_limit}",
                    )
                )
        elif not _overcommit_allowed(name):
            causes.append(required(f"{field}.limits", "Limit must be set for non overcommitable resources"))
    names = set(limits) | set(requests)
    if any(_is_hugepages(n) for n in names) and not names & {"cpu", "memory"}:
        causes.append(forbidden(field, "HugePages require cpu or memory"))
    return causes


# -- pod specs (ValidatePodSpec and what it calls) ------------------------------------------------

_PROTOCOLS = ("SCTP", "TCP", "UDP")
_ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)  # fmt: skip
_VOLUME_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
_CONVERTIBLE_FIELD_PATHS = {
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
    "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName", "status.phase",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}  # fmt: skip
_RESOURCE_FIELD_PATHS = (
    "limits.cpu", "limits.ephemeral-storage", "limits.memory",
    "requests.cpu", "requests.ephemeral-storage", "requests.memory",
)  # fmt: skip
_FILE_MODE_MESSAGE = "must be a number between 0 and 0777 (octal), both inclusive"
# Upstream reports a second volume type at these (misspelt) paths, and a GCE disk's contents here.
_VOLUME_TYPE_FIELDS = {"cephfs": "cephFS", "downwardAPI": "downwarAPI"}
_VOLUME_SOURCE_FIELDS = {"gcePersistentDisk": "persistentDisk"}
_EPHEMERAL_FORBIDDEN = (
    "ports", "resources", "resizePolicy", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
    "restartPolicy",
)  # fmt: skip
_ABSENT = object()


def _is_set(value: object) -> bool:
    return value not in (None, {}, [], "", 0, False)


def _volumes(spec: Obj, field: str, extra: Mapping[str, Obj]) -> tuple[dict[str, Obj], Causes]:
    """``ValidateVolumes``: the valid volumes by name (mounts may refer to those only)."""
    valid: dict[str, Obj] = dict(extra)
    causes: Causes = []
    seen: set[str] = set()
    for i, volume in enumerate(_dicts(spec.get("volumes"))):
        path = f"{field}[{i}]"
        errs = _volume_source(volume, path)
        name = _str(volume.get("name"))
        if not name:
            errs.append(required(f"{path}.name"))
        else:
            errs += _names(name, f"{path}.name", dns_label_errors)
        if name in seen:
            errs.append(duplicate(f"{path}.name", name))
        if errs:
            causes += errs
        else:
            seen.add(name)
            valid[name] = volume
    return valid, causes


def _volume_source(volume: Obj, path: str) -> Causes:
    causes: Causes = []
    count = 0
    for key in defaults.VOLUME_SOURCES:
        source = volume.get(key)
        if source is None:
            continue
        if count:
            field = f"{path}.{_VOLUME_TYPE_FIELDS.get(key, key)}"
            causes.append(forbidden(field, "may not specify more than 1 volume type"))
            continue
        count += 1
        causes += _one_volume_source(key, _dict(source), f"{path}.{_VOLUME_SOURCE_FIELDS.get(key, key)}")
    if not count:
        causes.append(required(path, "must specify a volume type"))
    return causes


def _file_mode(owner: Obj, key: str, field: str) -> Causes:
    mode = _int(owner.get(key))
    if mode is not None and not 0 <= mode <= 0o777:
        return [invalid(f"{field}.{key}", mode, _FILE_MODE_MESSAGE)]
    return []


def _key_to_path(item: Obj, field: str) -> Causes:
    causes: Causes = []
    if not item.get("key"):
        causes.append(required(f"{field}.key"))
    target = _str(item.get("path"))
    if not target:
        causes.append(required(f"{field}.path"))
    causes += _local_path(target, f"{field}.path", reserved=True)
    return causes + _file_mode(item, "mode", field)


def _local_path(target: str, field: str, *, reserved: bool = False) -> Causes:
    """``validateLocalDescendingPath`` (and ``ValidateLocalNonReservedPath`` when ``reserved``)."""
    causes: Causes = []
    if target.startswith("/"):
        causes.append(invalid(field, target, "must be a relative path"))
    if ".." in target.replace("\\", "/").split("/"):
        causes.append(invalid(field, target, "must not contain '..'"))
    elif reserved and target.startswith(".."):
        causes.append(invalid(field, target, "must not start with '..'"))
    return causes


def _one_volume_source(key: str, source: Obj, field: str) -> Causes:
    causes: Causes = []
    if key == "hostPath":
        host = _str(source.get("path"))
        if not host:
            return [required(f"{field}.path")]
        if ".." in host.split("/"):
            causes.append(invalid(f"{field}.path", host, "must not contain '..'"))
        kind = source.get("type")
        supported = (
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        )
        if kind is not None and kind not in supported:
            causes.append(not_supported(f"{field}.type", kind, supported))
    elif key in ("secret", "configMap"):
        name_key = "secretName" if key == "secret" else "name"
        if not source.get(name_key):
            causes.append(required(f"{field}.{name_key}"))
        causes += _file_mode(source, "defaultMode", field)
        for i, item in enumerate(_dicts(source.get("items"))):
            causes += _key_to_path(item, f"{field}.items[{i}]")
    elif key == "persistentVolumeClaim":
        if not source.get("claimName"):
            causes.append(required(f"{field}.claimName"))
    elif key == "downwardAPI":
        causes += _file_mode(source, "defaultMode", field)
        for item in _dicts(source.get("items")):
            causes += _downward_file(item, field)
    elif key == "projected":
        causes += _file_mode(source, "defaultMode", field)
        causes += _projections(source, field)
    elif key == "nfs":
        for name in ("server", "path"):
            if not source.get(name):
                causes.append(required(f"{field}.{name}"))
        if not _str(source.get("path")).startswith("/"):
            causes.append(invalid(f"{field}.path", _str(source.get("path")), "must be an absolute path"))
    elif key == "emptyDir":
        limit = quantity_value(source.get("sizeLimit")) if "sizeLimit" in source else None
        if limit is not None and limit < 0:
            causes.append(
                forbidden(f"{field}.sizeLimit", "SizeLimit field must be a valid resource quantity")
            )
    elif key == "csi":
        driver = _str(source.get("driver"))
        if not driver:
            causes.append(required(f"{field}.driver"))
        if len(driver) > 63:
            causes.append(
                Cause("FieldValueTooLong", "Too long: must have at most 63 bytes", f"{field}.driver")
            )
        causes += _names(driver.lower(), f"{field}.driver", dns_subdomain_errors)
    elif key == "ephemeral":
        template = source.get("volumeClaimTemplate")
        if template is None:
            causes.append(required(f"{field}.volumeClaimTemplate"))
        else:
            causes += _claim_spec(_dict(_dict(template).get("spec")), f"{field}.volumeClaimTemplate.spec")
    elif key == "image":
        causes += _pull_policy(source.get("pullPolicy"), f"{field}.pullPolicy")
    return causes


def _downward_file(item: Obj, field: str) -> Causes:
    causes: Causes = []
    target = _str(item.get("path"))
    if not target:
        causes.append(required(f"{field}.path"))
    causes += _local_path(target, f"{field}.path", reserved=True)
    if item.get("fieldRef") is not None:
        causes += _field_selector(_dict(item.get("fieldRef")), _VOLUME_FIELD_PATHS, f"{field}.fieldRef")
        if item.get("resourceFieldRef") is not None:
            causes.append(
                invalid(
                    field, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"
                )
            )
    elif item.get("resourceFieldRef") is not None:
        causes += _resource_selector(
            _dict(item.get("resourceFieldRef")), f"{field}.resourceFieldRef", volume=True
        )
    else:
        causes.append(required(field, "one of fieldRef and resourceFieldRef is required"))
    return causes + _file_mode(item, "mode", field)


def _projections(source: Obj, field: str) -> Causes:
    causes: Causes = []
    paths: set[str] = set()
    for i, projection in enumerate(_dicts(source.get("sources"))):
        src = f"{field}.sources[{i}]"
        count = 0
        for kind in ("secret", "configMap"):
            if projection.get(kind) is None:
                continue
            count += 1
            part = _dict(projection.get(kind))
            if not part.get("name"):
                causes.append(required(f"{src}.{kind}.name"))
            for j, item in enumerate(_dicts(part.get("items"))):
                causes += _key_to_path(item, f"{src}.{kind}.items[{j}]")
                target = _str(item.get("path"))
                if target and target in paths:
                    causes.append(invalid(field, _str(part.get("name")), "conflicting duplicate paths"))
                paths.add(target)
        if projection.get("downwardAPI") is not None:
            count += 1
            for item in _dicts(_dict(projection.get("downwardAPI")).get("items")):
                causes += _downward_file(item, f"{src}.downwardAPI")
                target = _str(item.get("path"))
                if target and target in paths:
                    causes.append(invalid(field, target, "conflicting duplicate paths"))
                paths.add(target)
        if projection.get("serviceAccountToken") is not None:
            count += 1
            token = _dict(projection.get("serviceAccountToken"))
            seconds = _int(token.get("expirationSeconds")) or 0
            if seconds < 600:
                causes.append(
                    invalid(
                        f"{src}.serviceAccountToken.expirationSeconds",
                        seconds,
                        "may not specify a duration less than 10 minutes",
                    )
                )
            if seconds > 1 << 32:
                causes.append(
                    invalid(
                        f"{src}.serviceAccountToken.expirationSeconds",
                        seconds,
                        "may not specify a duration larger than 2^32 seconds",
                    )
                )
            if not token.get("path"):
                causes.append(required(f"{field}.path"))
            else:
                causes += _local_path(_str(token.get("path")), f"{field}.path", reserved=True)
        if projection.get("clusterTrustBundle") is not None:
            count += 1
        if projection.get("podCertificate") is not None:
            count += 1
            # Imported here: pcr_validation builds on this module.
            from k3py.api.pcr_validation import projection_causes

            part = _dict(projection.get("podCertificate"))
            causes += projection_causes(part, f"{src}.podCertificate", field, paths)
        if count > 1:
            causes.append(forbidden(src, "may not specify more than 1 volume type per source"))
    return causes


def _field_selector(ref: Obj, expressions: Sequence[str], field: str) -> Causes:
    """``validateObjectFieldSelector`` (after ``ConvertDownwardAPIFieldLabel``)."""
    version, path = _str(ref.get("apiVersion")), _str(ref.get("fieldPath"))
    if not version:
        return [required(f"{field}.apiVersion")]
    if not path:
        return [required(f"{field}.fieldPath")]
    subscripted = path.endswith("']") and "['" in path[:-2] and not path.startswith("['")
    base, subscript = path[:-2].split("['", 1) if subscripted else (path, "")
    if version != "v1":
        error = f"unsupported pod version: {version}"
    elif subscripted and base not in ("metadata.annotations", "metadata.labels"):
        error = f"field label does not support subscript: {path}"
    elif not subscripted and path not in _CONVERTIBLE_FIELD_PATHS:
        error = f"field label not supported: {path}"
    else:
        error = ""
    if error:
        return [invalid(f"{field}.fieldPath", path, f"error converting fieldPath: {error}")]
    if subscripted:
        return _qualified_name(subscript.lower() if base == "metadata.annotations" else subscript, field)
    if path not in expressions:
        return [not_supported(f"{field}.fieldPath", path, expressions)]
    return []


def _resource_selector(ref: Obj, field: str, *, volume: bool) -> Causes:
    name = _str(ref.get("resource"))
    if volume and not ref.get("containerName"):
        return [required(f"{field}.containerName")]
    if not name:
        return [required(f"{field}.resource")]
    if name not in _RESOURCE_FIELD_PATHS and not name.startswith(
        ("requests.hugepages-", "limits.hugepages-")
    ):
        return [not_supported(f"{field}.resource", name, _RESOURCE_FIELD_PATHS)]
    divisor = canonical_quantity(ref["divisor"]) if ref.get("divisor") not in (None, "0", 0) else None
    if divisor is None:
        return []
    if name in ("limits.cpu", "requests.cpu"):
        if divisor not in ("1m", "1"):
            return [
                invalid(
                    f"{field}.divisor",
                    name,
                    "only divisor's values 1m and 1 are supported with the cpu resource",
                )
            ]
    elif divisor not in ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"):
        kind = (
            "local ephemeral storage"
            if "ephemeral-storage" in name
            else "hugepages"
            if "hugepages" in name
            else "memory"
        )
        return [
            invalid(
                f"{field}.divisor",
                name,
                "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported "
                f"with the {kind} resource",
            )
        ]
    return []


def _key_selector(ref: Obj, field: str) -> Causes:
    causes = _names(_str(ref.get("name")), f"{field}.name", dns_subdomain_errors)
    key = _str(ref.get("key"))
    if not key:
        return [*causes, required(f"{field}.key")]
    return causes + _names(key, f"{field}.key", config_key_errors)


def _env(container: Obj, field: str) -> Causes:
    causes: Causes = []
    for i, env in enumerate(_dicts(container.get("env"))):
        path = f"{field}.env[{i}]"
        name = _str(env.get("name"))
        if not name:
            causes.append(required(f"{path}.name"))
        else:
            causes += _names(name, f"{path}.name", env_name_errors)
        source = env.get("valueFrom")
        if source is None:
            continue
        source, from_path = _dict(source), f"{path}.valueFrom"
        count = 0
        if source.get("fieldRef") is not None:
            count += 1
            causes += _field_selector(_dict(source["fieldRef"]), _ENV_FIELD_PATHS, f"{from_path}.fieldRef")
        if source.get("resourceFieldRef") is not None:
            count += 1
            causes += _resource_selector(
                _dict(source["resourceFieldRef"]), f"{from_path}.resourceFieldRef", volume=False
            )
        for kind in ("configMapKeyRef", "secretKeyRef"):
            if source.get(kind) is not None:
                count += 1
                causes += _key_selector(_dict(source[kind]), f"{from_path}.{kind}")
        if count == 0:
            causes.append(
                invalid(
                    from_path,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                    "or `secretKeyRef`",
                )
            )
        elif env.get("value"):
            causes.append(invalid(from_path, "", "may not be specified when `value` is not empty"))
        elif count > 1:
            causes.append(invalid(from_path, "", "may not have more than one field specified at a time"))
    for i, env_from in enumerate(_dicts(container.get("envFrom"))):
        path = f"{field}.envFrom[{i}]"
        prefix = _str(env_from.get("prefix"))
        if prefix:
            causes += _names(prefix, f"{path}.prefix", env_name_errors)
        count = 0
        for kind in ("configMapRef", "secretRef"):
            if env_from.get(kind) is None:
                continue
            count += 1
            name = _str(_dict(env_from[kind]).get("name"))
            if not name:
                causes.append(required(f"{path}.{kind}.name"))
            else:
                prefixed = name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name
                causes += [invalid(f"{path}.{kind}.name", name, m) for m in dns_subdomain_errors(prefixed)]
        if count == 0:
            causes.append(
                invalid(f"{field}.envFrom", "", "must specify one of: `configMapRef` or `secretRef`")
            )
        elif count > 1:
            causes.append(
                invalid(f"{field}.envFrom", "", "may not have more than one field specified at a time")
            )
    return causes


def _container_ports(container: Obj, field: str) -> Causes:
    causes: Causes = []
    names: set[str] = set()
    for i, port in enumerate(_dicts(container.get("ports"))):
        path = f"{field}.ports[{i}]"
        name = _str(port.get("name"))
        if name:
            if errors := port_name_errors(name):
                causes += [invalid(f"{path}.name", name, msg) for msg in errors]
            elif name in names:
                causes.append(duplicate(f"{path}.name", name))
            else:
                names.add(name)
        if not port.get("containerPort"):
            causes.append(required(f"{path}.containerPort"))
        else:
            causes += _port_number(port.get("containerPort"), f"{path}.containerPort")
        if port.get("hostPort"):
            causes += _port_number(port.get("hostPort"), f"{path}.hostPort")
        protocol = port.get("protocol")
        if not protocol:
            causes.append(required(f"{path}.protocol"))
        elif protocol not in _PROTOCOLS:
            causes.append(not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
    return causes


def _volume_mounts(container: Obj, volumes: Mapping[str, Obj], field: str) -> Causes:
    causes: Causes = []
    mount_points: set[str] = set()
    devices = {_str(d.get("name")): _str(d.get("devicePath")) for d in _dicts(container.get("volumeDevices"))}
    privileged = _dict(container.get("securityContext")).get("privileged") is True
    for i, mount in enumerate(_dicts(container.get("volumeMounts"))):
        path = f"{field}.volumeMounts[{i}]"
        name, mount_path = _str(mount.get("name")), _str(mount.get("mountPath"))
        if not name:
            causes.append(required(f"{path}.name"))
        if name not in volumes:
            causes.append(not_found(f"{path}.name", name))
        if not mount_path:
            causes.append(required(f"{path}.mountPath"))
        if mount_path in mount_points:
            causes.append(invalid(f"{path}.mountPath", mount_path, "must be unique"))
        mount_points.add(mount_path)
        if name in devices:
            causes.append(invalid(f"{path}.name", name, "must not already exist in volumeDevices"))
        if mount_path in devices.values():
            causes.append(
                invalid(f"{path}.mountPath", mount_path, "must not already exist as a path in volumeDevices")
            )
        sub_path, sub_expr = _str(mount.get("subPath")), _str(mount.get("subPathExpr"))
        if sub_path:  # upstream reports these at the list's path, not the item's
            causes += _local_path(sub_path, f"{field}.volumeMounts.subPath")
        if sub_expr:
            if sub_path:
                causes.append(
                    invalid(f"{path}.subPathExpr", sub_expr, "subPathExpr and subPath are mutually exclusive")
                )
            causes += _local_path(sub_expr, f"{field}.volumeMounts.subPathExpr")
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            prop_path = f"{field}.volumeMounts.mountPropagation"
            if propagation not in ("Bidirectional", "HostToContainer", "None"):
                causes.append(
                    not_supported(prop_path, propagation, ("Bidirectional", "HostToContainer", "None"))
                )
            elif propagation == "Bidirectional" and not privileged:
                causes.append(
                    forbidden(
                        prop_path,
                        "Bidirectional mount propagation is available only to privileged containers",
                    )
                )
    return causes


def _pull_policy(policy: object, field: str) -> Causes:
    if not policy:
        return [required(field)]
    if policy not in ("Always", "IfNotPresent", "Never"):
        return [not_supported(field, policy, ("Always", "IfNotPresent", "Never"))]
    return []


def _id(value: object, field: str) -> Causes:
    number = _int(value)
    if number is not None and not 0 <= number <= 0xFFFFFFFF:
        return [invalid(field, number, _range(0, 0xFFFFFFFF))]
    return []


def _seccomp(profile: object, field: str) -> Causes:
    if profile is None:
        return []
    profile = _dict(profile)
    kind = profile.get("type")
    causes: Causes = []
    if not kind:
        causes.append(required(f"{field}.type", "type is required when seccompProfile is set"))
    elif kind not in ("Localhost", "RuntimeDefault", "Unconfined"):
        causes.append(not_supported(f"{field}.type", kind, ("Localhost", "RuntimeDefault", "Unconfined")))
    if kind == "Localhost":
        if profile.get("localhostProfile") is None:
            causes.append(required(f"{field}.localhostProfile", "must be set when seccomp type is Localhost"))
        else:
            causes += _local_path(_str(profile.get("localhostProfile")), f"{field}.localhostProfile")
    return causes


def _container_security(context: object, field: str) -> Causes:
    if context is None:
        return []
    sc = _dict(context)
    causes = _id(sc.get("runAsUser"), f"{field}.runAsUser") + _id(sc.get("runAsGroup"), f"{field}.runAsGroup")
    proc_mount = sc.get("procMount")
    if proc_mount is not None and proc_mount not in ("Default", "Unmasked"):
        causes.append(not_supported(f"{field}.procMount", proc_mount, ("Default", "Unmasked")))
    return causes + _seccomp(sc.get("seccompProfile"), f"{field}.seccompProfile")


def _container_common(c: Obj, volumes: Mapping[str, Obj], path: str) -> Causes:
    """``validateContainerCommon``."""
    causes: Causes = []
    name = _str(c.get("name"))
    if not name:
        causes.append(required(f"{path}.name"))
    else:
        causes += _names(name, f"{path}.name", dns_label_errors)
    if not c.get("image"):
        causes.append(required(f"{path}.image"))
    policy = c.get("terminationMessagePolicy")
    if not policy:
        causes.append(required(f"{path}.terminationMessagePolicy"))
    elif policy not in ("File", "FallbackToLogsOnError"):
        causes.append(
            not_supported(f"{path}.terminationMessagePolicy", policy, ("File", "FallbackToLogsOnError"))
        )
    causes += _container_ports(c, path)
    causes += _env(c, path)
    causes += _volume_mounts(c, volumes, path)
    causes += _pull_policy(c.get("imagePullPolicy"), f"{path}.imagePullPolicy")
    causes += _resources(_dict(c.get("resources")), f"{path}.resources")
    causes += _container_security(c.get("securityContext"), f"{path}.securityContext")
    return causes


def _handler(handler: Obj, grace: int | None, field: str, *, probe: bool) -> Causes:
    """``validateHandler``: exactly one of exec, httpGet, tcpSocket, grpc (probes), sleep (hooks)."""
    causes: Causes = []
    kinds = ("exec", "httpGet", "tcpSocket", "grpc") if probe else ("exec", "httpGet", "tcpSocket", "sleep")
    count = 0
    for kind in kinds:
        if handler.get(kind) is None:
            continue
        if count:
            causes.append(forbidden(f"{field}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        action, path = _dict(handler[kind]), f"{field}.{kind}"
        if kind == "exec" and not action.get("command"):
            causes.append(required(f"{path}.command"))
        elif kind == "httpGet":
            if not action.get("path"):
                causes.append(required(f"{path}.path"))
            causes += _port_number_or_name(action.get("port"), f"{path}.port")
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                causes.append(not_supported(f"{path}.scheme", _str(action.get("scheme")), ("HTTP", "HTTPS")))
            for header in _dicts(action.get("httpHeaders")):
                header_name = _str(header.get("name"))
                if not _HTTP_HEADER.fullmatch(header_name):
                    causes.append(invalid(f"{path}.httpHeaders", header_name, _HTTP_HEADER_MESSAGE))
        elif kind == "tcpSocket":
            causes += _port_number_or_name(action.get("port"), f"{path}.port")
        elif kind == "grpc":
            causes += _port_number(action.get("port"), f"{path}.port")
        elif kind == "sleep":
            seconds = _int(action.get("seconds")) or 0
            if grace is not None and not 0 <= seconds <= grace:
                causes.append(
                    invalid(
                        path,
                        seconds,
                        f"must be non-negative and less than terminationGracePeriodSeconds ({grace})",
                    )
                )
    if not count:
        causes.append(required(field, "must specify a handler type"))
    return causes


def _probe(probe: object, grace: int | None, field: str, kind: str) -> Causes:
    if probe is None:
        return []
    p = _dict(probe)
    causes = _handler(p, grace, field, probe=True)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        causes += _nonnegative(p.get(key), f"{field}.{key}")
    seconds = _int(p.get("terminationGracePeriodSeconds"))
    if seconds is not None and seconds <= 0:
        causes.append(invalid(f"{field}.terminationGracePeriodSeconds", seconds, "must be greater than 0"))
    if kind in ("liveness", "startup") and p.get("successThreshold") != 1:
        causes.append(invalid(f"{field}.successThreshold", p.get("successThreshold"), "must be 1"))
    if kind == "readiness" and p.get("terminationGracePeriodSeconds") is not None:
        causes.append(
            invalid(
                f"{field}.terminationGracePeriodSeconds",
                p["terminationGracePeriodSeconds"],
                "must not be set for readinessProbes",
            )
        )
    return causes


def _lifecycle_and_probes(c: Obj, grace: int | None, path: str) -> Causes:
    causes: Causes = []
    lifecycle = c.get("lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            if _dict(lifecycle).get(hook) is not None:
                causes += _handler(_dict(lifecycle[hook]), grace, f"{path}.lifecycle.{hook}", probe=False)
    for kind in ("liveness", "readiness", "startup"):
        causes += _probe(c.get(f"{kind}Probe"), grace, f"{path}.{kind}Probe", kind)
    return causes


def _host_ports(containers: Sequence[Obj], field: str, seen: set[str]) -> Causes:
    causes: Causes = []
    for i, c in enumerate(containers):
        for j, port in enumerate(_dicts(c.get("ports"))):
            if not port.get("hostPort"):
                continue
            key = f"{_str(port.get('protocol'))}/{_str(port.get('hostIP'))}/{port.get('hostPort')}"
            if key in seen:
                causes.append(duplicate(f"{field}[{i}].ports[{j}].hostPort", key))
            seen.add(key)
    return causes


def _containers(spec: Obj, volumes: Mapping[str, Obj], grace: int | None, field: str) -> Causes:
    containers = _dicts(spec.get("containers"))
    if not containers:
        return [required(f"{field}.containers")]
    causes: Causes = []
    names: set[str] = set()
    for i, c in enumerate(containers):
        path = f"{field}.containers[{i}]"
        causes += _container_common(c, volumes, path)
        name = _str(c.get("name"))
        if name in names:
            causes.append(duplicate(f"{path}.name", name))
        names.add(name)
        causes += _lifecycle_and_probes(c, grace, path)
    return causes + _host_ports(containers, f"{field}.containers", set())


def _init_containers(spec: Obj, volumes: Mapping[str, Obj], grace: int | None, field: str) -> Causes:
    causes: Causes = []
    names = {_str(c.get("name")) for c in _dicts(spec.get("containers"))}
    for i, c in enumerate(_dicts(spec.get("initContainers"))):
        path = f"{field}.initContainers[{i}]"
        causes += _container_common(c, volumes, path)
        restart = c.get("restartPolicy")
        if restart is not None and restart != "Always":
            causes.append(not_supported(f"{path}.restartPolicy", restart, ("Always",)))
        name = _str(c.get("name"))
        if name in names:
            causes.append(duplicate(f"{path}.name", name))
        elif name:
            names.add(name)
        causes += _host_ports([c], f"{field}.initContainers", set())
        if restart == "Always":
            causes += _lifecycle_and_probes(c, grace, path)
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(key) is not None:
                    causes.append(
                        forbidden(
                            f"{path}.{key}", "may not be set for init containers without restartPolicy=Always"
                        )
                    )
    return causes


def _ephemeral_containers(spec: Obj, volumes: Mapping[str, Obj], field: str) -> Causes:
    causes: Causes = []
    others = {_str(c.get("name")) for key in ("containers", "initContainers") for c in _dicts(spec.get(key))}
    names = set(others)
    for i, c in enumerate(_dicts(spec.get("ephemeralContainers"))):
        path = f"{field}.ephemeralContainers[{i}]"
        causes += _container_common(c, volumes, path)
        causes += _image_whitespace(c, path)
        name = _str(c.get("name"))
        if name in names:
            causes.append(duplicate(f"{path}.name", name))
        names.add(name)
        target = _str(c.get("targetContainerName"))
        if target and target not in others:
            causes.append(not_found(f"{path}.targetContainerName", target))
        for key in _EPHEMERAL_FORBIDDEN:
            if _is_set(c.get(key)):
                causes.append(forbidden(f"{path}.{key}", "cannot be set for an Ephemeral Container"))
        for j, mount in enumerate(_dicts(c.get("volumeMounts"))):
            for key in ("subPath", "subPathExpr"):
                if mount.get(key):
                    causes.append(
                        forbidden(
                            f"{path}.volumeMounts[{j}].{key}", "cannot be set for an Ephemeral Container"
                        )
                    )
    return causes


def _image_whitespace(c: Obj, path: str) -> Causes:
    image = _str(c.get("image"))
    if image != image.strip():
        return [invalid(f"{path}.image", image, "must not have leading or trailing whitespace")]
    return []


def _node_selector_requirement(req: Obj, field: str, *, strict_values: bool) -> Causes:
    causes: Causes = []
    operator, values = req.get("operator"), _strings(req.get("values"))
    if operator in ("In", "NotIn"):
        if not values:
            causes.append(required(f"{field}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            causes.append(
                forbidden(
                    f"{field}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
    elif operator in ("Gt", "Lt"):
        if len(values) != 1:
            causes.append(
                required(f"{field}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
            )
    else:
        causes.append(invalid(f"{field}.operator", _str(operator), "not a valid selector operator"))
    causes += _qualified_name(_str(req.get("key")), f"{field}.key")
    if strict_values:
        for i, value in enumerate(values):
            causes += [invalid(f"{field}.values[{i}]", value, msg) for msg in label_value_errors(value)]
    return causes


def _node_selector_term(term: Obj, field: str, *, strict_values: bool) -> Causes:
    causes: Causes = []
    for j, req in enumerate(_dicts(term.get("matchExpressions"))):
        causes += _node_selector_requirement(
            req, f"{field}.matchExpressions[{j}]", strict_values=strict_values
        )
    for j, req in enumerate(_dicts(term.get("matchFields"))):
        path = f"{field}.matchFields[{j}]"
        values = _strings(req.get("values"))
        if req.get("operator") in ("In", "NotIn"):
            if len(values) != 1:
                causes.append(
                    required(
                        f"{path}.values",
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    )
                )
        else:
            causes.append(
                invalid(f"{path}.operator", _str(req.get("operator")), "not a valid selector operator")
            )
        if req.get("key") != "metadata.name":
            causes.append(invalid(f"{path}.key", _str(req.get("key")), "not a valid field selector key"))
        else:
            for i, value in enumerate(values):
                causes += _names(value, f"{path}.values[{i}]", dns_subdomain_errors)
    return causes


def _affinity_term(term: Obj, field: str) -> Causes:
    causes: Causes = []
    for key in ("labelSelector", "namespaceSelector"):
        causes += _label_selector(_opt_map(term.get(key)), f"{field}.{key}")
    for name in _strings(term.get("namespaces")):
        causes += _names(name, f"{field}.namespace", dns_label_errors)
    topology = _str(term.get("topologyKey"))
    if not topology:
        causes.append(required(f"{field}.topologyKey", "can not be empty"))
    return causes + _qualified_name(topology, f"{field}.topologyKey")


def _affinity(affinity: object, field: str) -> Causes:
    if affinity is None:
        return []
    a = _dict(affinity)
    causes: Causes = []
    node = a.get("nodeAffinity")
    if node is not None:
        node, path = _dict(node), f"{field}.nodeAffinity"
        required_terms = node.get("requiredDuringSchedulingIgnoredDuringExecution")
        if required_terms is not None:
            terms_path = f"{path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
            terms = _dicts(_dict(required_terms).get("nodeSelectorTerms"))
            if not terms:
                causes.append(required(terms_path, "must have at least one node selector term"))
            for i, term in enumerate(terms):
                causes += _node_selector_term(term, f"{terms_path}[{i}]", strict_values=True)
        for i, pref in enumerate(_dicts(node.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            pref_path = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = _int(pref.get("weight")) or 0
            if not 0 < weight <= 100:
                causes.append(invalid(f"{pref_path}.weight", weight, "must be in the range 1-100"))
            causes += _node_selector_term(
                _dict(pref.get("preference")), f"{pref_path}.preference", strict_values=False
            )
    for kind in ("podAffinity", "podAntiAffinity"):
        if a.get(kind) is None:
            continue
        pod, path = _dict(a[kind]), f"{field}.{kind}"
        for i, term in enumerate(_dicts(pod.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            causes += _affinity_term(term, f"{path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
        for i, weighted in enumerate(_dicts(pod.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            weighted_path = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = _int(weighted.get("weight")) or 0
            if not 0 < weight <= 100:
                causes.append(invalid(f"{weighted_path}.weight", weight, "must be in the range 1-100"))
            causes += _affinity_term(
                _dict(weighted.get("podAffinityTerm")), f"{weighted_path}.podAffinityTerm"
            )
    return causes


def _tolerations(tolerations: object, field: str) -> Causes:
    causes: Causes = []
    for i, t in enumerate(_dicts(tolerations)):
        path = f"{field}[{i}]"
        key, operator, value, effect = (
            _str(t.get("key")),
            _str(t.get("operator")),
            _str(t.get("value")),
            _str(t.get("effect")),
        )
        if key:
            causes += _qualified_name(key, f"{path}.key")
        if not key and operator != "Exists":
            causes.append(
                invalid(
                    f"{path}.operator",
                    operator,
                    "operator must be Exists when `key` is empty, "
                    'which means "match all values and all keys"',
                )
            )
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(
                invalid(
                    f"{path}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"
                )
            )
        if operator in ("Equal", ""):
            if errors := label_value_errors(value):
                causes.append(invalid(f"{path}.operator", value, ";".join(errors)))
        elif operator == "Exists":
            if value:
                causes.append(
                    invalid(f"{path}.operator", value, "value must be empty when `operator` is 'Exists'")
                )
        else:
            causes.append(not_supported(f"{path}.operator", operator, ("Equal", "Exists")))
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(
                not_supported(f"{path}.effect", effect, ("NoSchedule", "PreferNoSchedule", "NoExecute"))
            )
    return causes


def _topology_spread(constraints: object, field: str) -> Causes:
    causes: Causes = []
    items = _dicts(constraints)
    for i, c in enumerate(items):
        path = f"{field}[{i}]"
        skew = _int(c.get("maxSkew")) or 0
        if skew <= 0:
            causes.append(invalid(f"{path}.maxSkew", skew, "must be greater than zero"))
        key, action = _str(c.get("topologyKey")), _str(c.get("whenUnsatisfiable"))
        if not key:
            causes.append(required(f"{path}.topologyKey", "can not be empty"))
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            causes.append(
                not_supported(f"{path}.whenUnsatisfiable", action, ("DoNotSchedule", "ScheduleAnyway"))
            )
        if any(
            _str(o.get("topologyKey")) == key and _str(o.get("whenUnsatisfiable")) == action
            for o in items[i + 1 :]
        ):
            causes.append(duplicate(f"{path}.{{topologyKey, whenUnsatisfiable}}", f"{{{key}, {action}}}"))
        domains = c.get("minDomains")
        if domains is not None:
            if (_int(domains) or 0) <= 0:
                causes.append(invalid(f"{path}.minDomains", domains, "must be greater than zero"))
            if action != "DoNotSchedule":
                causes.append(
                    invalid(
                        f"{path}.minDomains",
                        domains,
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}",
                    )
                )
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            if c.get(policy) is not None and c[policy] not in ("Honor", "Ignore"):
                causes.append(not_supported(f"{path}.{policy}", c[policy], ("Honor", "Ignore")))
        causes += _label_selector(_opt_map(c.get("labelSelector")), f"{path}.labelSelector")
    return causes


def _pod_security(spec: Obj, field: str) -> Causes:
    sc = spec.get("securityContext")
    if sc is None:
        return []
    sc = _dict(sc)
    causes = _id(sc.get("fsGroup"), f"{field}.fsGroup")
    causes += _id(sc.get("runAsUser"), f"{field}.runAsUser") + _id(
        sc.get("runAsGroup"), f"{field}.runAsGroup"
    )
    for i, gid in enumerate(_list(sc.get("supplementalGroups"))):
        causes += _id(gid, f"{field}.supplementalGroups[{i}]")
    causes += _sysctls(spec, _dicts(sc.get("sysctls")), f"{field}.sysctls")
    policy = sc.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        causes.append(not_supported(f"{field}.fsGroupChangePolicy", policy, ("Always", "OnRootMismatch")))
    return causes + _seccomp(sc.get("seccompProfile"), f"{field}.seccompProfile")


_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_NAME = re.compile(rf"({_SYSCTL_SEGMENT}[\./])*{_SYSCTL_SEGMENT}")
_SYSCTL_MAX_LENGTH = 253
_SYSCTL_MESSAGE = (
    f"must have at most {_SYSCTL_MAX_LENGTH} characters and match regex ^{_SYSCTL_NAME.pattern}$"
)
_IPC_SYSCTLS = {
    "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
}  # fmt: skip


def _sysctls(spec: Obj, sysctls: list[Obj], field: str) -> Causes:
    """``validateSysctls``: names as the kernel spells them (``.`` or ``/`` between segments),
    each once; none of the host's network (IPC) namespace when the pod shares it."""
    causes: Causes = []
    names: set[str] = set()
    for i, sysctl in enumerate(sysctls):
        name = _str(sysctl.get("name"))
        path = f"{field}[{i}].name"
        if not name:
            causes.append(required(path))
        elif len(name) > _SYSCTL_MAX_LENGTH or not _SYSCTL_NAME.fullmatch(name):
            causes.append(invalid(path, name, _SYSCTL_MESSAGE))
        elif name in names:
            causes.append(duplicate(path, name))
        namespace = _sysctl_namespace(name)
        if spec.get("hostNetwork") is True and namespace == "net":
            causes.append(invalid(path, name, "may not be specified when 'hostNetwork' is true"))
        elif spec.get("hostIPC") is True and namespace == "ipc":
            causes.append(invalid(path, name, "may not be specified when 'hostIPC' is true"))
        names.add(name)
    return causes


def _sysctl_namespace(name: str) -> str:
    """The kernel namespace a sysctl belongs to (``net``, ``ipc``, else ""), as the kubelet's
    sysctl helper tells it from the name (``/``-separated names read as dotted ones)."""
    separator = next((ch for ch in name if ch in "./"), ".")
    if separator == "/":
        name = name.translate(str.maketrans("./", "/."))
    name = name.split("*", 1)[0]
    if name in _IPC_SYSCTLS or name in ("kernel.shm", "kernel.msg"):
        return "ipc"
    if name.startswith("net."):
        return "net"
    if name.startswith("fs.mqueue."):
        return "ipc"
    return ""


def _dns_config(spec: Obj, field: str) -> Causes:
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if config is None:
            return [required(field, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not _dict(config).get("nameservers"):
            return [
                required(
                    f"{field}.nameservers",
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )
            ]
    if config is None:
        return []
    config = _dict(config)
    causes: Causes = []
    servers = _strings(config.get("nameservers"))
    if len(servers) > 3:
        causes.append(
            invalid(f"{field}.nameservers", go_strings(servers), "must not have more than 3 nameservers")
        )
    for i, server in enumerate(servers):
        causes += _ip(server, f"{field}.nameservers[{i}]")
    searches = _strings(config.get("searches"))
    if len(searches) > 32:
        causes.append(
            invalid(f"{field}.searches", go_strings(searches), "must not have more than 32 search paths")
        )
    if len(" ".join(searches)) > 2048:
        causes.append(
            invalid(
                f"{field}.searches",
                go_strings(searches),
                "must not have more than 2048 characters (including spaces) in the search list",
            )
        )
    for i, option in enumerate(_dicts(config.get("options"))):
        if not option.get("name"):
            causes.append(required(f"{field}.options[{i}]", "must not be empty"))
    return causes


def pod_spec_causes(
    spec: Obj, field: str, *, is_pod: bool, extra_volumes: Mapping[str, Obj] | None = None
) -> list[Cause]:
    """``ValidatePodSpec`` (``is_pod`` adds the checks upstream makes for Pods, not templates)."""
    causes: Causes = []
    grace = _int(spec.get("terminationGracePeriodSeconds"))
    if spec.get("terminationGracePeriodSeconds") is None:
        causes.append(required(f"{field}.terminationGracePeriodSeconds"))
    volumes, volume_causes = _volumes(spec, f"{field}.volumes", extra_volumes or {})
    causes += volume_causes
    causes += _containers(spec, volumes, grace, field)
    causes += _init_containers(spec, volumes, grace, field)
    causes += _ephemeral_containers(spec, volumes, field)
    if spec.get("hostNetwork") is True:
        for i, c in enumerate(_dicts(spec.get("containers"))):
            for j, port in enumerate(_dicts(c.get("ports"))):
                host, container = port.get("hostPort") or 0, port.get("containerPort") or 0
                if (is_pod or host != 0) and host != container:
                    causes.append(
                        invalid(
                            f"{field}.containers[{i}].ports[{j}].hostPort",
                            host,
                            "must match `containerPort` when `hostNetwork` is true",
                        )
                    )
    restart = spec.get("restartPolicy")
    if not restart:
        causes.append(required(f"{field}.restartPolicy"))
    elif restart not in ("Always", "OnFailure", "Never"):
        causes.append(not_supported(f"{field}.restartPolicy", restart, ("Always", "OnFailure", "Never")))
    dns = spec.get("dnsPolicy")
    if not dns:
        causes.append(required(f"{field}.dnsPolicy"))
    elif dns not in ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"):
        causes.append(
            not_supported(
                f"{field}.dnsPolicy", dns, ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
            )
        )
    causes += _labels(spec.get("nodeSelector"), f"{field}.nodeSelector")
    causes += _pod_security(spec, f"{field}.securityContext")
    for i, secret in enumerate(_dicts(spec.get("imagePullSecrets"))):
        if set(secret) - {"name"}:
            causes.append(
                invalid(
                    f"{field}.imagePullSecrets[{i}]",
                    Shown(f"core.LocalObjectReference{{Name:{go_quote(_str(secret.get('name')))}}}"),
                    "only name may be set",
                )
            )
    causes += _affinity(spec.get("affinity"), f"{field}.affinity")
    causes += _dns_config(spec, f"{field}.dnsConfig")
    for i, gate in enumerate(_dicts(spec.get("readinessGates"))):
        causes += _qualified_name(
            _str(gate.get("conditionType")), f"{field}.readinessGates[{i}].conditionType"
        )
    gates: set[str] = set()
    for i, gate in enumerate(_dicts(spec.get("schedulingGates"))):
        name = _str(gate.get("name"))
        causes += _qualified_name(name, f"{field}.schedulingGates[{i}]")
        if name in gates:
            causes.append(duplicate(f"{field}.schedulingGates[{i}]", name))
        gates.add(name)
    causes += _topology_spread(spec.get("topologySpreadConstraints"), f"{field}.topologySpreadConstraints")
    for key in ("serviceAccountName", "nodeName"):
        if spec.get(key):
            causes += _names(_str(spec[key]), f"{field}.{key}", dns_subdomain_errors)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= (_int(deadline) or 0) <= MAX_INT32:
        causes.append(invalid(f"{field}.activeDeadlineSeconds", deadline, _range(1, MAX_INT32)))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            causes += _names(_str(spec[key]), f"{field}.{key}", dns_label_errors)
    causes += _tolerations(spec.get("tolerations"), f"{field}.tolerations")
    for i, alias in enumerate(_dicts(spec.get("hostAliases"))):
        causes += _ip(alias.get("ip"), f"{field}.hostAliases[{i}].ip")
        for j, host in enumerate(_strings(alias.get("hostnames"))):
            causes += _names(host, f"{field}.hostAliases[{i}].hostnames[{j}]", dns_subdomain_errors)
    if spec.get("priorityClassName"):
        causes += _names(_str(spec["priorityClassName"]), f"{field}.priorityClassName", dns_subdomain_errors)
    if spec.get("runtimeClassName") is not None:
        causes += _names(_str(spec["runtimeClassName"]), f"{field}.runtimeClassName", dns_subdomain_errors)
    preemption = spec.get("preemptionPolicy")
    if preemption is not None:
        if not preemption:
            causes.append(required(f"{field}.preemptionPolicy"))
        elif preemption not in ("PreemptLowerPriority", "Never"):
            causes.append(
                not_supported(f"{field}.preemptionPolicy", preemption, ("PreemptLowerPriority", "Never"))
            )
    overhead = _dict(spec.get("overhead"))
    for name in sorted(overhead):
        causes += _container_resource_name(name, f"{field}.overhead.limits[{name}]")
        causes += _quantity(overhead[name], name, f"{field}.overhead.limits[{name}]")
    if spec.get("os") is not None:
        os_name = _dict(spec["os"]).get("name")
        if not os_name:
            causes.append(required(f"{field}.os.name", "cannot be empty"))
        elif os_name not in ("linux", "windows"):
            causes.append(not_supported(f"{field}.os", os_name, ("linux", "windows")))
    return causes


def pod_template_causes(
    template: Obj, field: str, extra_volumes: Mapping[str, Obj] | None = None
) -> list[Cause]:
    """``ValidatePodTemplateSpec`` (its labels are reported at ``<template>.labels``)."""
    meta = _dict(template.get("metadata"))
    causes = _labels(meta.get("labels"), f"{field}.labels")
    causes += _annotations(meta.get("annotations"), f"{field}.annotations")
    spec = _dict(template.get("spec"))
    causes += pod_spec_causes(spec, f"{field}.spec", is_pod=False, extra_volumes=extra_volumes)
    if spec.get("ephemeralContainers"):
        causes.append(
            forbidden(f"{field}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template")
        )
    return causes


# -- pods ----------------------------------------------------------------------------------------

_UPDATABLE_POD_FIELDS = ",".join(
    (
        "`spec.containers[*].image`",
        "`spec.initContainers[*].image`",
        "`spec.activeDeadlineSeconds`",
        "`spec.tolerations` (only additions to existing tolerations)",
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    )
)


def _pod(obj: Obj, old: Obj | None) -> Causes:
    spec = _dict(obj.get("spec"))
    causes = pod_spec_causes(spec, "spec", is_pod=True)
    for key in ("containers", "initContainers"):
        for i, c in enumerate(_dicts(spec.get(key))):
            causes += _image_whitespace(c, f"spec.{key}[{i}]")
    if old is None:
        if spec.get("ephemeralContainers"):
            causes.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
        if spec.get("nodeName") and spec.get("schedulingGates"):
            causes.append(
                forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared")
            )
        return causes
    return causes + _pod_update(spec, _dict(old.get("spec")))


def _pod_update(spec: Obj, old_spec: Obj) -> Causes:
    """``ValidatePodUpdate``: only images, the deadline, added tolerations and a few more may change."""
    causes: Causes = []
    for key in ("containers", "initContainers"):
        new_list, old_list = _dicts(spec.get(key)), _dicts(old_spec.get(key))
        if len(new_list) != len(old_list):
            return [*causes, forbidden(f"spec.{key}", "pod updates may not add or remove containers")]
        for i, c in enumerate(new_list):
            if not c.get("image"):
                causes.append(required(f"spec.{key}[{i}].image"))
            causes += _image_whitespace(c, f"spec.{key}[{i}]")
    deadline, old_deadline = spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if deadline is not None:
        number = _int(deadline)
        if number is None or not 0 <= number <= MAX_INT32:
            return [*causes, invalid("spec.activeDeadlineSeconds", deadline, _range(0, MAX_INT32))]
        if old_deadline is not None and (_int(old_deadline) or 0) < number:
            return [
                *causes,
                invalid("spec.activeDeadlineSeconds", number, "must be less than or equal to previous value"),
            ]
    elif old_deadline is not None:
        causes.append(
            invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        )
    new_tolerations = [_toleration_key(t) for t in _dicts(spec.get("tolerations"))]
    for toleration in _dicts(old_spec.get("tolerations")):
        if _toleration_key(toleration) not in new_tolerations:
            causes.append(
                forbidden(
                    "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
                )
            )
            break
    old_gates = {_str(g.get("name")) for g in _dicts(old_spec.get("schedulingGates"))}
    for i, gate in enumerate(_dicts(spec.get("schedulingGates"))):
        name = _str(gate.get("name"))
        if name not in old_gates:
            causes.append(
                forbidden(
                    f"spec.schedulingGates[{i}].name",
                    f"only deletion is allowed, but found new scheduling gate '{name}'",
                )
            )
    munged = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        for c, before in zip(_dicts(munged.get(key)), _dicts(old_spec.get(key)), strict=False):
            _put(c, "image", before.get("image", _ABSENT))
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        _put(munged, key, old_spec.get(key, _ABSENT))
    old_grace = _int(old_spec.get("terminationGracePeriodSeconds"))
    if old_grace is not None and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if not old_spec.get("nodeName"):
        _put(
            munged, "nodeName", old_spec.get("nodeName", _ABSENT)
        )  # k3py binds by update (no binding subresource)
    if old_spec.get("schedulingGates"):
        selector, old_selector = _dict(munged.get("nodeSelector")), _dict(old_spec.get("nodeSelector"))
        if selector != old_selector:
            if any(selector.get(k) != v for k, v in old_selector.items()):
                causes.append(
                    invalid(
                        "spec.nodeSelector",
                        go_map(selector),
                        "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                    )
                )
            _put(munged, "nodeSelector", old_spec.get("nodeSelector", _ABSENT))
    if munged != old_spec:
        causes.append(
            forbidden(
                "spec",
                f"pod updates may not change fields other than {_UPDATABLE_POD_FIELDS}\n"
                + _diff(old_spec, munged),
            )
        )
    return causes


def _toleration_key(toleration: Obj) -> Obj:
    """A toleration as Go compares it, ignoring its (mutable) tolerationSeconds."""
    return {k: v for k, v in toleration.items() if k != "tolerationSeconds" and v not in (None, "")}


def _put(target: Obj, key: str, value: object) -> None:
    """Set ``key`` to ``value``, or remove it when ``value`` is the absent marker."""
    if value is _ABSENT:
        target.pop(key, None)
    else:
        target[key] = value


def _diff(old: Obj, new: Obj) -> str:
    """A go-cmp-like summary of the top-level PodSpec fields that differ."""
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        go_name = key[:1].upper() + key[1:]
        if key in old:
            lines.append(f"- \t{go_name}: {json.dumps(old[key], separators=(',', ':'))},")
        if key in new:
            lines.append(f"+ \t{go_name}: {json.dumps(new[key], separators=(',', ':'))},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def _pod_template(obj: Obj, old: Obj | None) -> Causes:
    return pod_template_causes(_dict(obj.get("template")), "template")


# -- workloads (apps/v1, and the ReplicationController) -------------------------------------------


def _int_or_percent(value: object, field: str) -> Causes:
    if isinstance(value, str):
        return [] if _PERCENT.fullmatch(value) else [invalid(field, _int_or_string(value), _PERCENT_MESSAGE)]
    return _nonnegative(value, field)


def _int_or_percent_value(value: object) -> int:
    if isinstance(value, str):
        if _PERCENT.fullmatch(value):
            return int(value[:-1])
        return int(value) if value.isdigit() else 0
    return _int(value) or 0


def _at_most_100_percent(value: object, field: str) -> Causes:
    if isinstance(value, str) and _PERCENT.fullmatch(value) and int(value[:-1]) > 100:
        return [invalid(field, _int_or_string(value), "must not be greater than 100%")]
    return []


def _template_for_controller(spec: Obj, kind: str, extra_volumes: Mapping[str, Obj] | None = None) -> Causes:
    """The template of a ReplicaSet, Deployment, DaemonSet or StatefulSet: labels, pod spec, restarts."""
    template = _dict(spec.get("template"))
    causes: Causes = []
    causes += pod_template_causes(template, "spec.template", extra_volumes)
    pod = _dict(template.get("spec"))
    restart = pod.get("restartPolicy")
    if restart != "Always":
        causes.append(not_supported("spec.template.spec.restartPolicy", _str(restart), ("Always",)))
    if pod.get("activeDeadlineSeconds") is not None:
        causes.append(
            forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                f"activeDeadlineSeconds in {kind} is not Supported",
            )
        )
    return causes


def _selector_checks(spec: Obj, kind: str, *, required_selector: bool = True) -> tuple[Causes, bool | None]:
    """The selector's own rules, and whether it matches the template's labels (None: unparsable)."""
    causes: Causes = []
    selector = _opt_map(spec.get("selector"))
    if selector is None:
        if required_selector:
            causes.append(required("spec.selector"))
    else:
        causes += _label_selector(selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(
                invalid("spec.selector", go_selector(selector), f"empty selector is invalid for {kind}")
            )
    labels = _opt_map(_dict(_dict(spec.get("template")).get("metadata")).get("labels"))
    return causes, _matches(selector, labels)


def _mismatch(spec: Obj) -> Cause:
    labels = _opt_map(_dict(_dict(spec.get("template")).get("metadata")).get("labels"))
    return invalid(
        "spec.template.metadata.labels", go_map(labels), "`selector` does not match template `labels`"
    )


def _immutable_selector(spec: Obj, old: Obj | None) -> Causes:
    if old is None:
        return []
    old_selector = _dict(old.get("spec")).get("selector")
    if spec.get("selector") != old_selector:
        return [immutable("spec.selector", go_selector(_opt_map(spec.get("selector"))))]
    return []


def _replicaset_like(obj: Obj, old: Obj | None, kind: str, selector_kind: str) -> Causes:
    """``ValidateReplicaSetSpec`` / ``ValidateDeploymentSpec`` (minus the strategy), in upstream's order."""
    spec = _dict(obj.get("spec"))
    causes = _nonnegative(spec.get("replicas"), "spec.replicas")
    if kind == "ReplicaSet":
        causes += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    selector_causes, matched = _selector_checks(spec, selector_kind)
    causes += selector_causes
    if matched is None:
        causes.append(
            invalid("spec.selector", go_selector(_opt_map(spec.get("selector"))), "invalid label selector")
        )
    else:
        if not matched:
            causes.append(_mismatch(spec))
        causes += _template_for_controller(spec, "ReplicaSet")
    return causes


def _replicaset(obj: Obj, old: Obj | None) -> Causes:
    spec = _dict(obj.get("spec"))
    return _replicaset_like(obj, old, "ReplicaSet", "deployment") + _immutable_selector(spec, old)


def _deployment(obj: Obj, old: Obj | None) -> Causes:
    spec = _dict(obj.get("spec"))
    causes = _replicaset_like(obj, old, "Deployment", "deployment")
    strategy = _dict(spec.get("strategy"))
    kind = strategy.get("type")
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            causes.append(
                forbidden(
                    "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            )
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if rolling is None:
            causes.append(
                required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
            )
        else:
            rolling, path = _dict(rolling), "spec.strategy.rollingUpdate"
            unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
            causes += _int_or_percent(unavailable, f"{path}.maxUnavailable")
            causes += _int_or_percent(surge, f"{path}.maxSurge")
            if _int_or_percent_value(unavailable) == 0 and _int_or_percent_value(surge) == 0:
                causes.append(
                    invalid(
                        f"{path}.maxUnavailable",
                        _int_or_string(unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    )
                )
            causes += _at_most_100_percent(unavailable, f"{path}.maxUnavailable")
    else:
        causes.append(
            not_supported(
                "spec.strategy",
                Shown(_go_strategy("DeploymentStrategy", "RollingUpdateDeployment", strategy)),
                ("Recreate", "RollingUpdate"),
            )
        )
    causes += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    causes += _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = _int(spec.get("progressDeadlineSeconds"))
    if deadline is not None:
        causes += _nonnegative(deadline, "spec.progressDeadlineSeconds")
        if deadline <= (_int(spec.get("minReadySeconds")) or 0):
            causes.append(
                invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    return causes + _immutable_selector(spec, old)


def _go_strategy(kind: str, rolling_kind: str, strategy: Obj) -> str:
    rolling = "nil" if strategy.get("rollingUpdate") is None else "0xc000000000"
    kind_shown = go_quote(_str(strategy.get("type")))
    return f"apps.{kind}{{Type:{kind_shown}, RollingUpdate:(*apps.{rolling_kind})({rolling})}}"


def _daemonset(obj: Obj, old: Obj | None) -> Causes:
    spec = _dict(obj.get("spec"))
    causes = _label_selector(_opt_map(spec.get("selector")), "spec.selector")
    selector = _opt_map(spec.get("selector"))
    matched = _matches(selector, _opt_map(_dict(_dict(spec.get("template")).get("metadata")).get("labels")))
    if matched is False:
        causes.append(_mismatch(spec))
    if selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions"):
        causes.append(
            invalid("spec.selector", go_selector(selector), "empty selector is invalid for daemonset")
        )
    causes += _template_for_controller(spec, "DaemonSet")
    causes += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    causes += _nonnegative(spec.get("templateGeneration"), "spec.templateGeneration")
    strategy = _dict(spec.get("updateStrategy"))
    path = "spec.updateStrategy"
    if strategy.get("type") == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if rolling is None:
            causes.append(required(f"{path}.rollingUpdate"))
        else:
            rolling, path = _dict(rolling), f"{path}.rollingUpdate"
            unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
            causes += _int_or_percent(unavailable, f"{path}.maxUnavailable")
            causes += _int_or_percent(surge, f"{path}.maxSurge")
            causes += _at_most_100_percent(unavailable, f"{path}.maxUnavailable")
            causes += _at_most_100_percent(surge, f"{path}.maxSurge")
            has_unavailable, has_surge = (
                _int_or_percent_value(unavailable) != 0,
                _int_or_percent_value(surge) != 0,
            )
            if has_unavailable and has_surge:
                causes.append(
                    invalid(
                        f"{path}.maxSurge",
                        _int_or_string(surge),
                        "may not be set when maxUnavailable is non-zero",
                    )
                )
            elif not has_unavailable and not has_surge:
                causes.append(required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif strategy.get("type") != "OnDelete":
        causes.append(
            not_supported(
                path,
                Shown(_go_strategy("DaemonSetUpdateStrategy", "RollingUpdateDaemonSet", strategy)),
                ("RollingUpdate", "OnDelete"),
            )
        )
    causes += _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    return causes + _immutable_selector(spec, old)


_STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _statefulset(obj: Obj, old: Obj | None) -> Causes:
    spec = _dict(obj.get("spec"))
    causes: Causes = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        causes.append(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        causes.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = _dict(spec.get("updateStrategy"))
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if not kind:
        causes.append(required("spec.updateStrategy"))
    elif kind == "OnDelete":
        if rolling is not None:
            causes.append(
                invalid(
                    "spec.updateStrategy.rollingUpdate",
                    Shown("&apps.RollingUpdateStatefulSetStrategy{}"),
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            )
    elif kind == "RollingUpdate":
        if rolling is not None:
            path = "spec.updateStrategy.rollingUpdate"
            causes += _nonnegative(_dict(rolling).get("partition"), f"{path}.partition")
            unavailable = _dict(rolling).get("maxUnavailable")
            if unavailable is not None:
                causes += _int_or_percent(unavailable, f"{path}.maxUnavailable")
                if _int_or_percent_value(unavailable) == 0:
                    causes.append(
                        invalid(f"{path}.maxUnavailable", _int_or_string(unavailable), "cannot be 0")
                    )
                causes += _at_most_100_percent(unavailable, f"{path}.maxUnavailable")
    else:
        causes.append(
            invalid(
                "spec.updateStrategy",
                Shown(
                    _go_strategy("StatefulSetUpdateStrategy", "RollingUpdateStatefulSetStrategy", strategy)
                ),
                "must be 'RollingUpdate' or 'OnDelete'",
            )
        )
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        for key in ("whenDeleted", "whenScaled"):
            value = _dict(retention).get(key)
            if value not in ("Retain", "Delete"):
                causes.append(
                    not_supported(
                        f"spec.persistentVolumeClaimRetentionPolicy.{key}", _str(value), ("Retain", "Delete")
                    )
                )
    causes += _nonnegative(spec.get("replicas"), "spec.replicas")
    causes += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    if spec.get("ordinals") is not None:
        causes += _nonnegative(_dict(spec["ordinals"]).get("start"), "spec.ordinals.start")
    selector_causes, matched = _selector_checks(spec, "statefulset")
    causes += selector_causes
    claims = _dicts(spec.get("volumeClaimTemplates"))
    for i, claim in enumerate(claims):
        causes += _claim_spec(_dict(claim.get("spec")), f"spec.volumeClaimTemplates[{i}].spec")
    if matched is None:
        causes.append(invalid("spec.selector", go_selector(_opt_map(spec.get("selector"))), ""))
    else:
        if not matched:
            causes.append(_mismatch(spec))
        # Pod templates are validated since 1.34, ratcheting: an update does not start refusing
        # a template that was stored without this check and failed it.
        old_template = _dict(_dict(old.get("spec")).get("template")) if old is not None else None
        if old_template is None or not pod_template_causes(
            old_template, "spec.template", _claim_volumes(old)
        ):
            causes += pod_template_causes(_dict(spec.get("template")), "spec.template", _claim_volumes(obj))
        pod = _dict(_dict(spec.get("template")).get("spec"))
        if pod.get("restartPolicy") != "Always":
            causes.append(
                not_supported("spec.template.spec.restartPolicy", _str(pod.get("restartPolicy")), ("Always",))
            )
        if pod.get("activeDeadlineSeconds") is not None:
            causes.append(
                forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in StatefulSet is not Supported",
                )
            )
    if old is not None:
        old_spec = _dict(old.get("spec"))
        if {k: v for k, v in spec.items() if k not in _STATEFULSET_MUTABLE} != {
            k: v for k, v in old_spec.items() if k not in _STATEFULSET_MUTABLE
        }:
            causes.append(
                forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden",
                )
            )
    return causes


def _claim_volumes(obj: Obj | None) -> dict[str, Obj]:
    """The volumes a StatefulSet's claim templates add to its pods."""
    claims = _dicts(_dict(obj.get("spec")).get("volumeClaimTemplates")) if obj is not None else []
    return {_str(_dict(c.get("metadata")).get("name")): {"persistentVolumeClaim": {}} for c in claims}


def _replication_controller(obj: Obj, old: Obj | None) -> Causes:
    spec = _dict(obj.get("spec"))
    causes = _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    selector = _dict(spec.get("selector"))
    if not selector:
        causes.append(required("spec.selector"))
    causes += _nonnegative(spec.get("replicas"), "spec.replicas")
    template = spec.get("template")
    if template is None:
        return [*causes, required("spec.template")]
    labels = _opt_map(_dict(_dict(template).get("metadata")).get("labels"))
    if selector and any((labels or {}).get(k) != v for k, v in selector.items()):
        causes.append(_mismatch(spec))
    causes += pod_template_causes(_dict(template), "spec.template")
    pod = _dict(_dict(template).get("spec"))
    if pod.get("restartPolicy") != "Always":
        causes.append(
            not_supported("spec.template.spec.restartPolicy", _str(pod.get("restartPolicy")), ("Always",))
        )
    if pod.get("activeDeadlineSeconds") is not None:
        causes.append(
            forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in ReplicationController is not Supported",
            )
        )
    return causes


# -- persistent volume claims ---------------------------------------------------------------------

_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _claim_spec(spec: Obj, field: str) -> Causes:
    """``ValidatePersistentVolumeClaimSpec``."""
    causes: Causes = []
    modes = _strings(spec.get("accessModes"))
    if not modes:
        causes.append(required(f"{field}.accessModes", "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        causes += _label_selector(_opt_map(spec.get("selector")), f"{field}.selector")
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.append(not_supported(f"{field}.accessModes", mode, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and set(modes) & set(_ACCESS_MODES) - {"ReadWriteOncePod"}:
        causes.append(
            forbidden(f"{field}.accessModes", "may not use ReadWriteOncePod with other access modes")
        )
    requests = _dict(_dict(spec.get("resources")).get("requests"))
    storage_path = f"{field}.resources[storage]"
    if "storage" not in requests:
        causes.append(required(storage_path))
    else:
        value = quantity_value(requests["storage"])
        if value is None:
            causes.append(invalid(storage_path, Shown(show(requests["storage"])), _QUANTITY_MESSAGE))
        elif value <= 0:
            causes.append(
                invalid(
                    storage_path, canonical_quantity(requests["storage"]) or "", "must be greater than zero"
                )
            )
    if spec.get("storageClassName"):
        causes += _names(_str(spec["storageClassName"]), f"{field}.storageClassName", dns_subdomain_errors)
    volume_mode = spec.get("volumeMode")
    if volume_mode is not None and volume_mode not in ("Block", "Filesystem"):
        causes.append(not_supported(f"{field}.volumeMode", volume_mode, ("Block", "Filesystem")))
    return causes


def _claim(obj: Obj, old: Obj | None) -> Causes:
    """``ValidatePersistentVolumeClaim`` and, on update, ``...Update``: the spec is immutable but
    for binding (volumeName once, storageClassName from unset) and, once bound, resizing up and
    volumeAttributesClassName."""
    spec = _dict(obj.get("spec"))
    causes = _claim_spec(spec, "spec")
    if old is None:
        return causes
    new_spec, old_spec = copy.deepcopy(spec), copy.deepcopy(_dict(old.get("spec")))
    if not old_spec.get("volumeName"):
        old_spec["volumeName"] = new_spec.get("volumeName")
    if old_spec.get("storageClassName") is None:
        old_spec["storageClassName"] = new_spec.get("storageClassName")
    bound = _dict(obj.get("status")).get("phase") == "Bound"
    new_size = _dict(_dict(new_spec.get("resources")).get("requests")).get("storage")
    old_size = _dict(_dict(old_spec.get("resources")).get("requests")).get("storage")
    if bound:
        for key in ("resources", "volumeAttributesClassName"):
            new_spec.pop(key, None)
            old_spec.pop(key, None)
    if _without_nulls(new_spec) != _without_nulls(old_spec):
        detail = (
            "spec is immutable after creation except resources.requests "
            "and volumeAttributesClassName for bound claims"
        )
        causes.append(forbidden("spec", detail))
    if bound and _quantity_less(new_size, old_size):
        causes.append(
            forbidden("spec.resources.requests.storage", "field can not be less than previous value")
        )
    return causes


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _quantity_less(new: object, old: object) -> bool:
    new_value, old_value = quantity_value(new), quantity_value(old)
    return new_value is not None and old_value is not None and new_value < old_value


# -- batch/v1 ------------------------------------------------------------------------------------


def _job(obj: Obj, old: Obj | None) -> Causes:
    meta, spec = _dict(obj.get("metadata")), _dict(obj.get("spec"))
    old_spec = _dict(old.get("spec")) if old is not None else None
    causes = _generated_selector(meta, spec, old_spec)
    causes += _job_spec(spec, "spec")
    selector = _opt_map(spec.get("selector"))
    if selector is None:
        causes.append(required("spec.selector"))
    else:
        causes += _label_selector(selector, "spec.selector")
    matched = _matches(selector, _opt_map(_dict(_dict(spec.get("template")).get("metadata")).get("labels")))
    if matched is False:
        causes.append(_mismatch(spec))
    completions = _int(spec.get("completions"))
    if spec.get("completionMode") == "Indexed" and completions is not None and completions > 0:
        hostname = f"{meta.get('name', '')}-{completions - 1}"
        if dns_label_errors(hostname):
            causes.append(
                invalid(
                    "metadata.name",
                    _str(meta.get("name")),
                    f"will not able to create pod with invalid DNS label: {hostname}",
                )
            )
    if old_spec is not None:
        causes += _job_update(spec, old_spec, _dict(old.get("status")) if old is not None else {})
    return causes


def _generated_selector(meta: Obj, spec: Obj, old_spec: Obj | None) -> Causes:
    """``validateGeneratedSelector``: the generated labels are there and the selector picks them."""
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    causes: Causes = []
    uid, name = _str(meta.get("uid")), _str(meta.get("name"))
    if not uid:
        causes.append(required("metadata.uid"))
    template_labels = _opt_map(_dict(_dict(spec.get("template")).get("metadata")).get("labels"))
    labels = template_labels or {}
    prefixed = old_spec is None or all(
        key in (_dict(_dict(old_spec.get("template")).get("metadata")).get("labels") or {})
        for key in ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name")
    )
    wanted = [("controller-uid", uid), ("job-name", name)]
    if prefixed:
        wanted += [("batch.kubernetes.io/controller-uid", uid), ("batch.kubernetes.io/job-name", name)]
    for key, value in wanted:
        path = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            causes.append(required(path, f"must be '{value}'"))
        elif labels[key] != value:
            causes.append(invalid(path, go_map(template_labels), f"must be '{value}'"))
    if not _matches(_opt_map(spec.get("selector")), dict(wanted)):
        causes.append(
            invalid(
                "spec.selector", go_selector(_opt_map(spec.get("selector"))), "`selector` not auto-generated"
            )
        )
    return causes


def _job_spec(spec: Obj, field: str) -> Causes:
    """``validateJobSpec`` (shared by Jobs and CronJobs' templates)."""
    causes: Causes = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ):
        causes += _nonnegative(spec.get(key), f"{field}.{key}")
    indexed = spec.get("completionMode") == "Indexed"
    if spec.get("maxFailedIndexes") is not None:
        causes += _nonnegative(spec.get("maxFailedIndexes"), f"{field}.maxFailedIndexes")
        if spec.get("backoffLimitPerIndex") is None:
            causes.append(required(f"{field}.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    if spec.get("managedBy") is not None:
        managed_by = _str(spec["managedBy"])
        head, slash, tail = managed_by.partition("/")
        if not managed_by:
            causes.append(required(f"{field}.managedBy"))
        elif not slash or not head or not tail:
            causes.append(
                invalid(
                    f"{field}.managedBy", managed_by, 'must be a domain-prefixed path (such as "acme.io/foo")'
                )
            )
        if len(managed_by) > 63:
            causes.append(
                Cause("FieldValueTooLong", "Too long: may not be longer than 63", f"{field}.managedBy")
            )
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            causes.append(not_supported(f"{field}.completionMode", mode, ("NonIndexed", "Indexed")))
        if indexed:
            if spec.get("completions") is None:
                causes.append(required(f"{field}.completions", "when completion mode is Indexed"))
            parallelism = _int(spec.get("parallelism"))
            if parallelism is not None and parallelism > 100000:
                causes.append(
                    invalid(
                        f"{field}.parallelism",
                        parallelism,
                        "must be less than or equal to 100000 when completion mode is Indexed",
                    )
                )
    if not indexed:
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                causes.append(invalid(f"{field}.{key}", spec[key], "requires indexed completion mode"))
    if spec.get("podFailurePolicy") is not None:
        causes += _pod_failure_policy(spec, f"{field}.podFailurePolicy")
    if spec.get("successPolicy") is not None and not indexed:
        causes.append(
            invalid(
                f"{field}.successPolicy",
                Shown("batch.SuccessPolicy{...}"),
                "requires indexed completion mode",
            )
        )
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if spec.get("podFailurePolicy") is not None:
            if replacement != "Failed":
                causes.append(not_supported(f"{field}.podReplacementPolicy", replacement, ("Failed",)))
        elif replacement not in ("Failed", "TerminatingOrFailed"):
            causes.append(
                not_supported(f"{field}.podReplacementPolicy", replacement, ("Failed", "TerminatingOrFailed"))
            )
    causes += pod_template_causes(_dict(spec.get("template")), f"{field}.template")
    restart = _dict(_dict(spec.get("template")).get("spec")).get("restartPolicy")
    if restart in ("Always", "", None):
        causes.append(required(f"{field}.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        causes.append(not_supported(f"{field}.template.spec.restartPolicy", restart, ("OnFailure", "Never")))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        causes.append(
            invalid(
                f"{field}.template.spec.restartPolicy",
                restart,
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )
    return causes


def _pod_failure_policy(spec: Obj, field: str) -> Causes:
    causes: Causes = []
    rules = _dicts(_dict(spec.get("podFailurePolicy")).get("rules"))
    actions = ("Count", "FailIndex", "FailJob", "Ignore")
    if len(rules) > 20:
        causes.append(
            Cause(
                "FieldValueTooMany", f"Too many: {len(rules)}: must have at most 20 items", f"{field}.rules"
            )
        )
    for i, rule in enumerate(rules):
        path = f"{field}.rules[{i}]"
        action = rule.get("action")
        if not action:
            causes.append(
                required(f"{path}.action", "valid values: " + json.dumps(list(actions)).replace(", ", " "))
            )
        elif action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
            causes.append(invalid(f"{path}.action", action, "requires the backoffLimitPerIndex to be set"))
        elif action not in actions:
            causes.append(not_supported(f"{path}.action", action, actions))
        exit_codes, conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if exit_codes is not None and conditions:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported",
                    path,
                )
            )
        if exit_codes is None and not conditions:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    "Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
                    path,
                )
            )
    return causes


def _job_update(spec: Obj, old_spec: Obj, old_status: Obj) -> Causes:
    """``ValidateJobSpecUpdate``."""
    causes: Causes = []
    indexed = spec.get("completionMode") == "Indexed"
    if spec.get("completions") != old_spec.get("completions"):
        if not indexed:
            causes.append(immutable("spec.completions", spec.get("completions")))
        elif spec.get("completions") is not None and spec.get("completions") != spec.get("parallelism"):
            causes.append(
                invalid(
                    "spec.completions",
                    spec.get("completions"),
                    "can only be modified in tandem with spec.parallelism",
                )
            )
    if spec.get("selector") != old_spec.get("selector"):
        causes.append(immutable("spec.selector", go_selector(_opt_map(spec.get("selector")))))
    template, old_template = (
        copy.deepcopy(_dict(spec.get("template"))),
        copy.deepcopy(_dict(old_spec.get("template"))),
    )
    if old_spec.get("suspend") is True and not old_status.get("startTime"):  # mutable scheduling directives
        for owner, source in ((old_template, template),):
            owner_spec, source_spec = owner.setdefault("spec", {}), _dict(source.get("spec"))
            for key in ("nodeSelector", "tolerations", "schedulingGates"):
                _put(owner_spec, key, source_spec.get(key, _ABSENT))
            affinity = copy.deepcopy(_dict(owner_spec.get("affinity")))
            _put(affinity, "nodeAffinity", _dict(source_spec.get("affinity")).get("nodeAffinity", _ABSENT))
            _put(owner_spec, "affinity", affinity if affinity else source_spec.get("affinity", _ABSENT))
            owner_meta, source_meta = owner.setdefault("metadata", {}), _dict(source.get("metadata"))
            for key in ("labels", "annotations"):
                _put(owner_meta, key, source_meta.get(key, _ABSENT))
    if template != old_template:
        causes.append(immutable("spec.template", Shown("core.PodTemplateSpec{...}")))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        if spec.get(key) != old_spec.get(key):
            value = spec.get(key)
            causes.append(
                immutable(
                    f"spec.{key}",
                    value
                    if not isinstance(value, dict)
                    else Shown(f"&batch.{key[:1].upper()}{key[1:]}{{...}}"),
                )
            )
    return causes


def _cronjob(obj: Obj, old: Obj | None) -> Causes:
    meta, spec = _dict(obj.get("metadata")), _dict(obj.get("spec"))
    old_spec = _dict(old.get("spec")) if old is not None else None
    causes: Causes = []
    schedule = _str(spec.get("schedule"))
    time_zone = spec.get("timeZone")
    if not schedule:
        causes.append(required("spec.schedule"))
    else:
        if (error := cron_error(schedule)) is not None:
            causes.append(invalid("spec.schedule", schedule, error))
        allow_tz = old_spec is not None and "TZ" in _str(old_spec.get("schedule"))
        if allow_tz and "TZ" in schedule and time_zone is not None:
            causes.append(
                invalid(
                    "spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"
                )
            )
        elif not allow_tz and "TZ" in schedule:
            causes.append(
                invalid(
                    "spec.schedule",
                    schedule,
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                )
            )
    causes += _nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds")
    if old_spec is None or old_spec.get("timeZone") != time_zone:
        causes += _time_zone(time_zone, "spec.timeZone")
    policy = spec.get("concurrencyPolicy")
    if not policy:
        causes.append(required("spec.concurrencyPolicy"))
    elif policy not in ("Allow", "Forbid", "Replace"):
        causes.append(not_supported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    job_spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    causes += _job_spec(job_spec, "spec.jobTemplate.spec")
    if job_spec.get("selector") is not None:
        causes.append(
            invalid(
                "spec.jobTemplate.spec.selector",
                go_selector(_opt_map(job_spec["selector"])),
                "`selector` will be auto-generated",
            )
        )
    if job_spec.get("manualSelector") is True:
        causes.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ("nil", "false")))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes += _nonnegative(spec.get(key), f"spec.{key}")
    name = _str(meta.get("name"))
    if old is None and len(name) > 52:
        causes.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    return causes


_TIME_ZONE_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


def _time_zone(value: object, field: str) -> Causes:
    """``validateTimeZone``: an IANA name the time zone database knows."""
    if value is None:
        return []
    zone = _str(value)
    if not zone:
        return [invalid(field, zone, "timeZone must be nil or non-empty string")]
    for part in zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TIME_ZONE_PART.fullmatch(part):
            return [invalid(field, zone, f"unknown time zone {zone}")]
    causes: Causes = []
    if zone.lower() == "local":
        causes.append(
            invalid(
                field,
                zone,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        )
    elif not zone_exists(zone):
        causes.append(invalid(field, zone, f"unknown time zone {zone}"))
    return causes


@functools.cache
def _have_zone_database() -> bool:
    try:
        return bool(zoneinfo.available_timezones())
    except OSError:
        return False


def zone_exists(name: str) -> bool:
    """``time.LoadLocation`` succeeds (without a zone database, every well-formed name does)."""
    if name == "UTC":
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return not _have_zone_database()
    return True


# robfig/cron/v3's ParseStandard: five fields or a descriptor, its error wording verbatim.
_CRON_FIELDS = (
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            )
        },
    ),
    (0, 6, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)
_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_DURATION_UNITS = {"ns", "us", "µs", "μs", "ms", "s", "m", "h"}


def cron_error(spec: str) -> str | None:
    """The error ``cron.ParseStandard`` returns for ``spec``, or None when it parses."""
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space, equals = spec.find(" "), spec.find("=")
        location = spec[equals + 1 : space] if space >= 0 else spec[equals + 1 :]
        if not zone_exists(location):
            return f"provided bad location {location}: unknown time zone {location}"
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        return _descriptor_error(spec)
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for text, (lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True):
        for expr in filter(None, text.split(",")):
            if (error := _cron_range_error(expr, lo, hi, names)) is not None:
                return error
    return None


def _cron_range_error(expr: str, lo: int, hi: int, names: Mapping[str, int] | None) -> str | None:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        parsed = _cron_number(low_high[0], names)
        if isinstance(parsed, str):
            return parsed
        start = end = parsed
        if len(low_high) == 2:
            parsed = _cron_number(low_high[1], names)
            if isinstance(parsed, str):
                return parsed
            end = parsed
        elif len(low_high) > 2:
            return f"too many hyphens: {expr}"
    step = 1
    if len(range_and_step) == 2:
        parsed = _cron_number(range_and_step[1], None)
        if isinstance(parsed, str):
            return parsed
        step = parsed
        if len(low_high) == 1:
            end = hi
    elif len(range_and_step) > 2:
        return f"too many slashes: {expr}"
    if start < lo:
        return f"beginning of range ({start}) below minimum ({lo}): {expr}"
    if end > hi:
        return f"end of range ({end}) above maximum ({hi}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    if step == 0:
        return f"step of range should be a positive number: {expr}"
    return None


def _cron_number(text: str, names: Mapping[str, int] | None) -> int | str:
    """``parseIntOrName``/``mustParseInt``: the number, or the error message."""
    if names is not None and text.lower() in names:
        return names[text.lower()]
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return f"failed to parse int from {text}: strconv.Atoi: parsing {go_quote(text)}: invalid syntax"
    number = int(text)
    if not -(2**63) <= number < 2**63:
        return f"failed to parse int from {text}: strconv.Atoi: parsing {go_quote(text)}: value out of range"
    if number < 0:
        return f"negative number ({number}) not allowed: {text}"
    return number


def _descriptor_error(descriptor: str) -> str | None:
    if descriptor in _DESCRIPTORS:
        return None
    if descriptor.startswith("@every "):
        error = _go_duration_error(descriptor[len("@every ") :])
        return f"failed to parse duration {descriptor}: {error}" if error else None
    return f"unrecognized descriptor: {descriptor}"


def _go_duration_error(text: str) -> str | None:
    """``time.ParseDuration``'s error, or None."""
    quoted = go_quote(text)
    rest = text[1:] if text[:1] in ("+", "-") else text
    if rest == "0":
        return None
    if not rest:
        return f"time: invalid duration {quoted}"
    while rest:
        number = re.match(r"[0-9]*(\.[0-9]*)?", rest)
        digits = number.group(0) if number else ""
        if not digits or digits == ".":
            return f"time: invalid duration {quoted}"
        rest = rest[len(digits) :]
        unit = re.match(r"[^0-9.]*", rest)
        name = unit.group(0) if unit else ""
        if not name:
            return f"time: missing unit in duration {quoted}"
        if name not in _DURATION_UNITS:
            return f"time: unknown unit {go_quote(name)} in duration {quoted}"
        rest = rest[len(name) :]
    return None


# -- services ------------------------------------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _service(obj: Obj, old: Obj | None) -> Causes:
    """``ValidateService`` and ``ValidateServiceUpdate``.

    Rules on fields that depend on the type (node ports, traffic policy) apply on create and to
    updates that keep the type: upstream's strategy drops such fields when the type changes.
    """
    spec = _dict(obj.get("spec"))
    old_spec = _dict(old.get("spec")) if old is not None else None
    kind = spec.get("type")
    same_type = old_spec is None or old_spec.get("type") == kind
    headless = spec.get("clusterIP") == "None" or spec.get("clusterIPs") == ["None"]
    ports = _dicts(spec.get("ports"))
    causes: Causes = []
    if not ports and not headless and kind != "ExternalName":
        causes.append(required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        causes.append(invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    elif kind == "ExternalName":
        if old_spec is None and (spec.get("clusterIP") or spec.get("clusterIPs")):
            causes.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if old_spec is None and spec.get("ipFamilies"):
            causes.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if old_spec is None and spec.get("ipFamilyPolicy") is not None:
            causes.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = _str(spec.get("externalName")).removesuffix(".")
        if cname:
            causes += _names(cname, "spec.externalName", dns_subdomain_errors)
        else:
            causes.append(required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        causes += _service_port(port, f"spec.ports[{i}]", len(ports) > 1, names)
    causes += _labels(spec.get("selector"), "spec.selector")
    affinity = spec.get("sessionAffinity")
    if not affinity:
        causes.append(required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        causes.append(not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    if affinity == "ClientIP":
        causes += _client_ip_affinity(spec.get("sessionAffinityConfig"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        causes.append(
            forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
        )
    causes += _cluster_ips(spec)
    for i, ip in enumerate(_list(spec.get("externalIPs"))):
        causes += _ip(ip, f"spec.externalIPs[{i}]") or _special_ip(ip, f"spec.externalIPs[{i}]")
    if not kind:
        causes.append(required("spec.type"))
    elif kind not in _SERVICE_TYPES:
        causes.append(not_supported("spec.type", kind, _SERVICE_TYPES))
    if kind == "ClusterIP" and same_type:
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                causes.append(
                    forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
                )
    node_ports: set[tuple[str, str]] = set()
    service_ports: set[tuple[str, str]] = set()
    for i, port in enumerate(ports):
        protocol = _str(port.get("protocol"))
        if port.get("nodePort"):
            key = (protocol, repr(port["nodePort"]))
            if key in node_ports:
                causes.append(duplicate(f"spec.ports[{i}].nodePort", port["nodePort"]))
            node_ports.add(key)
        pair = (protocol, repr(port.get("port")))
        if pair in service_ports:
            causes.append(
                duplicate(
                    f"spec.ports[{i}]",
                    Shown(
                        f'core.ServicePort{{Name:"", Protocol:{go_quote(protocol)}, '
                        f"AppProtocol:(*string)(nil), Port:{show(port.get('port') or 0)}, "
                        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
                    ),
                )
            )
        service_ports.add(pair)
    causes += _load_balancer_fields(spec, kind, same_type, old_spec)
    causes += _traffic_policies(spec, same_type)
    if old_spec is not None:
        causes += _service_update(spec, old_spec)
    return causes


def _service_port(port: Obj, path: str, require_name: bool, names: set[str]) -> Causes:
    causes: Causes = []
    name = _str(port.get("name"))
    if require_name and not name:
        causes.append(required(f"{path}.name"))
    elif name:
        causes += _names(name, f"{path}.name", dns_label_errors)
        if name in names:
            causes.append(duplicate(f"{path}.name", name))
        names.add(name)
    causes += _port_number(port.get("port") if port.get("port") is not None else 0, f"{path}.port")
    protocol = port.get("protocol")
    if not protocol:
        causes.append(required(f"{path}.protocol"))
    elif protocol not in _PROTOCOLS:
        causes.append(not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
    causes += _port_number_or_name(port.get("targetPort"), f"{path}.targetPort")
    if port.get("appProtocol") is not None:
        causes += _qualified_name(_str(port["appProtocol"]), f"{path}.appProtocol")
    return causes


def _client_ip_affinity(config: object) -> Causes:
    detail = "when session affinity type is ClientIP"
    if config is None:
        return [required("spec.sessionAffinityConfig", detail)]
    client_ip = _dict(config).get("clientIP")
    if client_ip is None:
        return [required("spec.sessionAffinityConfig.clientIP", detail)]
    timeout = _dict(client_ip).get("timeoutSeconds")
    path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
    if timeout is None:
        return [required(path, detail)]
    if not 0 < (_int(timeout) or 0) <= 86400:
        return [invalid(path, timeout, "must be greater than 0 and less than 86400")]
    return []


def _special_ip(value: str, field: str) -> Causes:
    address = ipaddress.ip_address(value)
    causes: Causes = []
    if address.is_unspecified:
        causes.append(invalid(field, value, f"may not be unspecified ({value})"))
    if address.is_loopback:
        causes.append(invalid(field, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if address.is_link_local:
        causes.append(invalid(field, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if address in ipaddress.ip_network("224.0.0.0/24") or address in ipaddress.ip_network("ff02::/16"):
        causes.append(
            invalid(field, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        )
    return causes


def _cluster_ips(spec: Obj) -> Causes:
    """The stand-alone rules of ``ValidateServiceClusterIPsRelatedFields`` (allocation does the rest)."""
    if spec.get("type") == "ExternalName":
        return []
    causes: Causes = []
    for i, family in enumerate(_list(spec.get("ipFamilies"))):
        if family not in ("IPv4", "IPv6"):
            causes.append(not_supported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
    policy = spec.get("ipFamilyPolicy")
    supported = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if policy is not None and policy not in supported:
        causes.append(not_supported("spec.ipFamilyPolicy", policy, supported))
    ips = _list(spec.get("clusterIPs")) or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                causes.append(
                    invalid("spec.clusterIPs", go_strings(ips), "'None' must be the first and only value")
                )
            continue
        causes += _ip(ip, f"spec.clusterIPs[{i}]")
    if len(ips) > 2:
        causes.append(invalid("spec.clusterIPs", go_strings(ips), "may only hold up to 2 values"))
    return causes


def _load_balancer_fields(spec: Obj, kind: object, same_type: bool, old_spec: Obj | None) -> Causes:
    causes: Causes = []
    ranges = _list(spec.get("loadBalancerSourceRanges"))
    if ranges:
        if kind != "LoadBalancer" and same_type:
            causes.append(
                forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'")
            )
        for i, value in enumerate(ranges):
            try:
                ipaddress.ip_network(_str(value).strip(), strict=False)
            except ValueError:
                causes.append(
                    invalid(f"spec.LoadBalancerSourceRanges[{i}]", _str(value).strip(), _CIDR_MESSAGE)
                )
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer" and same_type:
        causes.append(
            forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
        )
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        causes.append(required("allocateLoadBalancerNodePorts"))
    lb_class = spec.get("loadBalancerClass")
    if kind == "LoadBalancer":
        if lb_class is not None:
            causes += _qualified_name(_str(lb_class), "spec.loadBalancerClass")
        if (
            old_spec is not None
            and old_spec.get("type") == "LoadBalancer"
            and old_spec.get("loadBalancerClass") != lb_class
        ):
            causes.append(invalid("spec.loadBalancerClass", lb_class, "may not change once set"))
    elif lb_class is not None and same_type:
        causes.append(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    return causes


def _traffic_policies(spec: Obj, same_type: bool) -> Causes:
    causes: Causes = []
    external = spec.get("externalTrafficPolicy")
    if not defaults.externally_accessible(spec):
        if external and same_type:
            causes.append(
                invalid(
                    "spec.externalTrafficPolicy",
                    external,
                    "may only be set for externally-accessible services",
                )
            )
    elif not external:
        causes.append(required("spec.externalTrafficPolicy"))
    elif external not in ("Cluster", "Local"):
        causes.append(not_supported("spec.externalTrafficPolicy", external, ("Cluster", "Local")))
    health = spec.get("healthCheckNodePort")
    needs_health = spec.get("type") == "LoadBalancer" and external == "Local"
    if not needs_health and health and same_type:
        causes.append(
            invalid(
                "spec.healthCheckNodePort",
                health,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            )
        )
    elif needs_health and health:
        causes += _port_number(health, "spec.healthCheckNodePort")
    internal = spec.get("internalTrafficPolicy")
    if internal is None:
        if spec.get("type") in ("NodePort", "LoadBalancer", "ClusterIP"):
            causes.append(required("spec.internalTrafficPolicy"))
    elif internal not in ("Cluster", "Local"):
        causes.append(not_supported("spec.internalTrafficPolicy", internal, ("Cluster", "Local")))
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution not in ("PreferClose", "PreferSameZone", "PreferSameNode"):
        causes.append(
            not_supported(
                "spec.trafficDistribution", distribution, ("PreferClose", "PreferSameZone", "PreferSameNode")
            )
        )
    return causes


def _service_update(spec: Obj, old_spec: Obj) -> Causes:
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    old_ips = old_spec.get("clusterIPs") or ([old_spec["clusterIP"]] if old_spec.get("clusterIP") else [])
    new_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if spec.get("clusterIP") != old_spec.get("clusterIP") and new_ips == old_ips and spec.get("clusterIP"):
        new_ips = [spec["clusterIP"]]  # NormalizeClusterIPs: a changed singular field wins
    if old_ips == ["None"] and new_ips == ["None"]:
        return []
    causes: Causes = []
    if len(old_ips) == len(new_ips):
        causes += [
            invalid(f"spec.clusterIPs[{i}]", go_strings(new_ips), "may not change once set")
            for i, ip in enumerate(old_ips)
            if ip != new_ips[i]
        ]
    elif len(old_ips) > len(new_ips):
        if new_ips and new_ips[0] != old_ips[0]:  # an update that leaves them out keeps them
            causes.append(invalid("spec.clusterIPs[0]", go_strings(new_ips), "may not change once set"))
    elif old_ips and new_ips[0] != old_ips[0]:
        causes.append(invalid("spec.clusterIPs[0]", go_strings(new_ips), "may not change once set"))
    return causes


# -- config maps, secrets, namespaces ------------------------------------------------------------


def _data_size(value: object, binary: bool) -> int:
    if not isinstance(value, str):
        return 0
    if not binary:
        return _byte_len(value)
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return 0


def _configmap(obj: Obj, old: Obj | None) -> Causes:
    causes: Causes = []
    data, binary = _dict(obj.get("data")), _dict(obj.get("binaryData"))
    if old is not None and old.get("immutable") is True:
        if obj.get("immutable") is not True:
            causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
        if data != _dict(old.get("data")):
            causes.append(forbidden("data", "field is immutable when `immutable` is set"))
        if binary != _dict(old.get("binaryData")):
            causes.append(forbidden("binaryData", "field is immutable when `immutable` is set"))
    size = 0
    for key in sorted(data):
        causes += _names(key, f"data[{key}]", config_key_errors)
        if key in binary:
            causes.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        size += _data_size(data[key], binary=False)
    for key in sorted(binary):
        causes += _names(key, f"binaryData[{key}]", config_key_errors)
        size += _data_size(binary[key], binary=True)
    if size > MAX_SECRET_SIZE:
        causes.append(too_long("", MAX_SECRET_SIZE))
    return causes


def _json_object_error(raw: object) -> str | None:
    """What Go's ``json.Unmarshal`` into a map says about the (base64-encoded) value."""
    try:
        text = base64.b64decode(_str(raw), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        text = ""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        return _go_json_error(text, err)
    if not isinstance(parsed, dict):
        kind = {list: "array", str: "string", bool: "bool", type(None): ""}.get(type(parsed), "number")
        return (
            None
            if not kind
            else f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
        )
    return None


_JSON_CONTEXTS = {
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Expecting ':' delimiter": "after object key",
    "Expecting ',' delimiter": "after object key:value pair",
    "Extra data": "after top-level value",
}


def _go_json_error(text: str, err: json.JSONDecodeError) -> str:
    """Go's scanner error for the point where Python's decoder gave up."""
    if err.pos >= len(text.rstrip()):
        return "unexpected end of JSON input"
    pos = err.pos
    if err.msg == "Expecting value":
        for word in ("null", "true", "false"):
            if text[pos] == word[0]:
                for i, want in enumerate(word):
                    if pos + i >= len(text):
                        return "unexpected end of JSON input"
                    if text[pos + i] != want:
                        got = _go_char(text[pos + i])
                        return f"invalid character {got} in literal {word} (expecting '{want}')"
        return f"invalid character {_go_char(text[pos])} looking for beginning of value"
    context = _JSON_CONTEXTS.get(err.msg, "looking for beginning of value")
    if err.msg == "Expecting ',' delimiter" and text.rfind("[", 0, pos) > text.rfind("{", 0, pos):
        context = "after array element"
    return f"invalid character {_go_char(text[pos])} {context}"


def _go_char(ch: str) -> str:
    return "'\\''" if ch == "'" else f"'{ch}'" if ch.isprintable() else go_quote(ch).replace('"', "'")


_SECRET_KEYS = {
    "kubernetes.io/dockercfg": ".dockercfg",
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
}


def _secret(obj: Obj, old: Obj | None) -> Causes:
    causes: Causes = []
    kind = _str(obj.get("type"))
    data = _dict(obj.get("data"))
    if old is not None:
        if kind != _str(old.get("type")):
            causes.append(immutable("type", kind))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
            if data != _dict(old.get("data")):
                causes.append(forbidden("data", "field is immutable when `immutable` is set"))
    size = 0
    for key in sorted(data):
        causes += _names(key, f"data[{key}]", config_key_errors)
        size += _data_size(data[key], binary=True)
    if size > MAX_SECRET_SIZE:
        causes.append(too_long("data", MAX_SECRET_SIZE))
    annotations = _dict(_dict(obj.get("metadata")).get("annotations"))
    if kind == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            causes.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind in _SECRET_KEYS:
        key = _SECRET_KEYS[kind]
        if key not in data:
            causes.append(required(f"data[{key}]"))
        elif (error := _json_object_error(data[key])) is not None:
            causes.append(invalid(f"data[{key}]", "<secret contents redacted>", error))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes += [required("data[username]"), required("data[password]")]
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            causes.append(required("data[ssh-privatekey]"))
    elif kind == "kubernetes.io/tls":
        causes += [required(f"data[{key}]") for key in ("tls.crt", "tls.key") if key not in data]
    return causes


def _namespace(obj: Obj, old: Obj | None) -> Causes:
    finalizers = _strings(_dict(obj.get("spec")).get("finalizers"))
    causes: Causes = []
    for name in finalizers:
        causes += _qualified_name(name, "spec.finalizers")
        if "/" not in name and name not in _STANDARD_FINALIZERS:
            causes.append(
                invalid(
                    "spec.finalizers",
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return causes


def _apiservice(obj: Obj, old: Obj | None) -> list[Cause]:
    from k3py.api import apiregistration  # it builds on this module's helpers

    return apiregistration.validate_apiservice(obj, old)


def _custom_resource_definition(obj: Obj, old: Obj | None) -> list[Cause]:
    from k3py.api.crd import definition  # it builds on this module's helpers

    return definition.validate_crd(obj, old)


# -- rbac.authorization.k8s.io/v1 ------------------------------------------------------------------

_RBAC = "rbac.authorization.k8s.io"
_RULE_LISTS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")


def _rules(obj: Obj, *, namespaced: bool) -> Causes:
    """``ValidatePolicyRule`` for every rule: lists of strings, at least one verb, resources with
    API groups, never both resources and URLs, no URLs in a namespaced Role."""
    causes: Causes = []
    for i, rule in enumerate(_list(obj.get("rules"))):
        path = f"rules[{i}]"
        if not isinstance(rule, dict):
            causes.append(invalid(path, rule, "must be an object"))
            continue
        bad = [k for k in _RULE_LISTS if k in rule and rule[k] is not None and not _is_strings(rule[k])]
        causes += [invalid(f"{path}.{k}", rule[k], "must be a list of strings") for k in bad]
        if bad:
            continue
        if not rule.get("verbs"):
            causes.append(required(f"{path}.verbs", "verbs must contain at least one value"))
        urls = _strings(rule.get("nonResourceURLs"))
        if urls:
            if namespaced:
                causes.append(
                    invalid(
                        f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"
                    )
                )
            if rule.get("apiGroups") or rule.get("resources"):
                causes.append(
                    invalid(
                        f"{path}.nonResourceURLs",
                        urls,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            causes.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            causes.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _is_strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _role(obj: Obj, old: Obj | None) -> Causes:
    return _rules(obj, namespaced=True)


def _cluster_role(obj: Obj, old: Obj | None) -> Causes:
    causes = _rules(obj, namespaced=False)
    for i, selector in enumerate(_list(_dict(obj.get("aggregationRule")).get("clusterRoleSelectors"))):
        causes += _label_selector(_opt_map(selector), f"aggregationRule.clusterRoleSelectors[{i}]")
    return causes


def _binding(obj: Obj, old: Obj | None, *, kinds: tuple[str, ...]) -> Causes:
    """``ValidateRoleBinding``/``ValidateClusterRoleBinding`` (and roleRef immutability)."""
    causes: Causes = []
    ref = _dict(obj.get("roleRef"))
    if ref.get("apiGroup") != _RBAC:
        causes.append(not_supported("roleRef.apiGroup", _str(ref.get("apiGroup")), (_RBAC,)))
    if ref.get("kind") not in kinds:
        causes.append(not_supported("roleRef.kind", _str(ref.get("kind")), kinds))
    if not ref.get("name"):
        causes.append(required("roleRef.name"))
    if old is not None and ref != _dict(old.get("roleRef")):
        causes.append(invalid("roleRef", ref, "cannot change roleRef"))
    for i, subject in enumerate(_dicts(obj.get("subjects"))):
        path, kind = f"subjects[{i}]", subject.get("kind")
        if not subject.get("name"):
            causes.append(required(f"{path}.name"))
        if kind == "ServiceAccount":
            if subject.get("apiGroup"):
                causes.append(not_supported(f"{path}.apiGroup", _str(subject.get("apiGroup")), ("",)))
            if not subject.get("namespace"):
                causes.append(required(f"{path}.namespace"))
        elif kind in ("User", "Group"):
            if subject.get("apiGroup") != _RBAC:
                causes.append(not_supported(f"{path}.apiGroup", _str(subject.get("apiGroup")), (_RBAC,)))
        else:
            causes.append(not_supported(f"{path}.kind", _str(kind), ("ServiceAccount", "User", "Group")))
    return causes


# -- admission webhook configurations ------------------------------------------------------------

MAX_MATCH_CONDITIONS = 64


def _webhook_configuration(obj: Obj, old: Obj | None) -> Causes:
    """The ``matchConditions`` part of ``ValidateValidatingWebhookConfiguration`` (and of its
    mutating twin): each expression must at least parse as CEL. Expressions the stored object
    already had are not re-checked on update, as upstream compiles those leniently."""
    stored = {
        str(c.get("expression", "")).strip()
        for hook in _dicts((old or {}).get("webhooks"))
        for c in _dicts(hook.get("matchConditions"))
    }
    causes: Causes = []
    for i, hook in enumerate(_dicts(obj.get("webhooks"))):
        field = f"webhooks[{i}].matchConditions"
        causes += _match_conditions(_list(hook.get("matchConditions")), field, stored)
    return causes


def _match_conditions(conditions: list[Any], field: str, stored: set[str]) -> Causes:
    causes: Causes = []
    if len(conditions) > MAX_MATCH_CONDITIONS:
        message = f"Too many: {len(conditions)}: must have at most {MAX_MATCH_CONDITIONS} items"
        causes.append(Cause("FieldValueTooMany", message, field))
    names: set[str] = set()
    for j, condition in enumerate(conditions):
        path = f"{field}[{j}]"
        condition = _dict(condition)
        expression = _str(condition.get("expression")).strip()
        if not expression:
            causes.append(required(f"{path}.expression"))
        elif expression not in stored and (error := cel.check(expression)) is not None:
            causes.append(invalid(f"{path}.expression", expression, f"compilation failed: {error}"))
        name = _str(condition.get("name"))
        if not name:
            causes.append(required(f"{path}.name"))
        else:
            causes += _qualified_name(name, f"{path}.name")
            if name in names:
                causes.append(duplicate(f"{path}.name", name))
            names.add(name)
    return causes


def _priority_class(obj: Obj, old: Obj | None) -> Causes:
    """Upstream's ValidatePriorityClass, and ValidatePriorityClassUpdate on updates."""
    causes: Causes = []
    name = str(_dict(obj.get("metadata")).get("name") or "")
    value = obj.get("value")
    policy = obj.get("preemptionPolicy")
    if name.startswith(priorityclasses.SYSTEM_PREFIX):
        error = priorityclasses.system_class_error(name, value, obj.get("globalDefault") is True)
        if error is not None:
            prefix = priorityclasses.SYSTEM_PREFIX
            causes.append(
                forbidden(
                    "metadata.name",
                    f"priority class names with '{prefix}' prefix are reserved for system use only. "
                    f"error: {error}",
                )
            )
    elif isinstance(value, int) and value > (highest := priorityclasses.HIGHEST_USER_DEFINABLE):
        causes.append(forbidden("value", f"maximum allowed value of a user defined priority is {highest}"))
    if policy is not None:
        if policy == "":
            causes.append(required("preemptionPolicy"))
        elif policy not in priorityclasses.PREEMPTION_POLICIES:
            causes.append(not_supported("preemptionPolicy", policy, priorityclasses.PREEMPTION_POLICIES))
    if old is not None:
        if value != old.get("value"):
            causes.append(forbidden("value", "may not be changed in an update."))
        if policy != old.get("preemptionPolicy"):
            causes.append(immutable("preemptionPolicy", policy))
    return causes


_BY_RESOURCE: dict[str, Validator] = {
    "priorityclasses.scheduling.k8s.io": _priority_class,
    "roles.rbac.authorization.k8s.io": _role,
    "clusterroles.rbac.authorization.k8s.io": _cluster_role,
    "rolebindings.rbac.authorization.k8s.io": lambda obj, old: _binding(
        obj, old, kinds=("Role", "ClusterRole")
    ),
    "clusterrolebindings.rbac.authorization.k8s.io": lambda obj, old: _binding(
        obj, old, kinds=("ClusterRole",)
    ),
    "apiservices.apiregistration.k8s.io": _apiservice,
    "customresourcedefinitions.apiextensions.k8s.io": _custom_resource_definition,
    "configmaps": _configmap,
    "secrets": _secret,
    "namespaces": _namespace,
    "pods": _pod,
    "podtemplates": _pod_template,
    "replicationcontrollers": _replication_controller,
    "persistentvolumeclaims": _claim,
    "services": _service,
    "deployments.apps": _deployment,
    "replicasets.apps": _replicaset,
    "statefulsets.apps": _statefulset,
    "daemonsets.apps": _daemonset,
    "jobs.batch": _job,
    "cronjobs.batch": _cronjob,
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": _webhook_configuration,
    "validatingwebhookconfigurations.admissionregistration.k8s.io": _webhook_configuration,
}
