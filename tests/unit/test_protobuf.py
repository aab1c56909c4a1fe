"""Protobuf request bodies decode to exactly the JSON kube-apiserver serves for them.

The fixtures in ``data/protobuf`` are real client-go bodies with the JSON Go writes for the
objects it decodes from them (see their README); the other tests build bodies by hand.
"""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from k3py.api import protobuf
from k3py.api.protobuf import Descriptor, ProtobufError, decode
from k3py.api.resources import RESOURCES

FIXTURES = Path(__file__).parent / "data" / "protobuf"
BODIES = sorted(FIXTURES.glob("*.pb"))


# A tiny protobuf writer for hand-made bodies --------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def num(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return tag(number, 2) + varint(len(data)) + data


def body(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = (ld(1, api_version) if api_version else b"") + (ld(2, kind) if kind else b"")
    return protobuf.MAGIC + ld(1, type_meta) + ld(2, raw)


def meta(name: str, namespace: str = "") -> bytes:
    """Field 1 of every object: its ObjectMeta."""
    return ld(1, ld(1, name) + (ld(3, namespace) if namespace else b""))


def first_difference(got: Any, want: Any, path: str = "$") -> str | None:
    """Where two JSON values differ, by type, key order or value (so 1 != 1.0 != True)."""
    if type(got) is not type(want):
        return f"{path}: got {got!r}, want {want!r}"
    if isinstance(got, dict):
        if list(got) != list(want):
            return f"{path}: got keys {list(got)}, want {list(want)}"
        for key in got:
            if found := first_difference(got[key], want[key], f"{path}.{key}"):
                return found
        return None
    if isinstance(got, list):
        if len(got) != len(want):
            return f"{path}: got {len(got)} items, want {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if found := first_difference(g, w, f"{path}[{i}]"):
                return found
        return None
    return None if got == want else f"{path}: got {got!r}, want {want!r}"


# Fixtures ----------------------------------------------------------------------------------


def test_fixtures_are_there() -> None:
    names = {path.stem for path in BODIES}
    assert {"configmap", "secret", "namespace", "serviceaccount", "deployment", "pod", "lease"} <= names
    assert len(BODIES) >= 20


@pytest.mark.parametrize("path", BODIES, ids=[path.stem for path in BODIES])
def test_decodes_like_kube_apiserver(path: Path) -> None:
    want = json.loads(path.with_suffix(".json").read_text())
    got = decode(path.read_bytes())
    assert first_difference(got, want) is None


def test_fixture_details() -> None:
    """Spot checks of the rules the fixtures exercise, so a regenerated fixture cannot hide them."""
    idle = decode((FIXTURES / "deployment-replicas-0.pb").read_bytes())
    assert idle["spec"]["replicas"] == 0  # a pointer that was sent keeps its zero
    assert idle["status"] == {}  # a struct is never omitted
    assert "creationTimestamp" not in idle["metadata"]  # omitzero

    secret = decode((FIXTURES / "secret.pb").read_bytes())
    assert secret["data"] == {"blank": "", "password": "czNjcjN0", "user": "YWRtaW4="}

    pod = decode((FIXTURES / "pod.pb").read_bytes())
    assert pod["metadata"]["creationTimestamp"] == "2024-05-17T08:30:15Z"
    assert pod["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}}
    }
    container = pod["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["port"] == 8080
    assert container["startupProbe"]["tcpSocket"]["port"] == "http"
    assert container["resources"]["limits"] == {"cpu": "1500m", "example.com/gpu": "1", "memory": "128974848"}
    assert pod["spec"]["volumes"][0] == {
        "name": "cache",
        "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"},
    }

    event = decode((FIXTURES / "event.pb").read_bytes())
    assert event["eventTime"] == "2024-05-17T08:30:15.123456Z"
    assert event["series"]["lastObservedTime"] == "1970-01-01T00:00:00.000000Z"
    assert event["lastTimestamp"] == "0001-01-01T00:00:01Z"


# Envelope -------------------------------------------------------------------------------------


def test_a_hand_made_configmap() -> None:
    raw = meta("c", "default") + ld(2, ld(1, "k") + ld(2, "v")) + ld(3, ld(1, "b") + ld(2, b"\x00\xff"))
    assert decode(body("v1", "ConfigMap", raw)) == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "c", "namespace": "default"},
        "data": {"k": "v"},
        "binaryData": {"b": "AP8="},
    }


def test_kind_and_version_default_from_the_request() -> None:
    raw = meta("n")
    assert decode(body("", "", raw), api_version="v1", kind="Namespace")["apiVersion"] == "v1"
    assert decode(body("v1", "", raw), kind="Namespace")["kind"] == "Namespace"
    # the envelope wins over the defaults, as Go's copyKindDefaults
    assert (
        decode(body("v1", "ConfigMap", raw), api_version="apps/v1", kind="Namespace")["kind"] == "ConfigMap"
    )


def test_unknown_fields_and_groups_are_skipped() -> None:
    plain = decode(body("v1", "Namespace", meta("n")))
    extra = num(99, 7) + ld(100, b"junk") + tag(101, 5) + b"abcd" + tag(102, 1) + b"12345678"
    group = tag(103, 3) + num(1, 1) + tag(4, 3) + tag(4, 4) + tag(103, 4)
    assert decode(body("v1", "Namespace", meta("n") + extra + group)) == plain


def test_repeated_message_fields_merge_and_scalars_keep_the_last() -> None:
    raw = ld(1, ld(1, "first") + ld(11, ld(1, "a") + ld(2, "1"))) + ld(1, ld(1, "second"))
    got = decode(body("v1", "Namespace", raw))
    assert got["metadata"] == {"name": "second", "labels": {"a": "1"}}


def test_packed_and_unpacked_repeated_integers() -> None:
    packed = varint(1000) + varint(0) + varint(-5)
    security = ld(4, packed) + num(4, 7)  # PodSecurityContext.supplementalGroups, both forms
    got = decode(body("v1", "Pod", meta("p") + ld(2, ld(14, security))))
    assert got["spec"]["securityContext"] == {"supplementalGroups": [1000, 0, -5, 7]}
    assert got["spec"]["containers"] is None  # a nil slice without omitempty


def test_non_canonical_quantities_on_the_wire_come_out_as_go_serves_them() -> None:
    hard = b"".join(
        ld(1, ld(1, key) + ld(2, ld(1, value))) for key, value in [("cpu", "1000m"), ("mem", "1024Mi")]
    )
    got = decode(body("v1", "ResourceQuota", meta("q") + ld(2, hard)))
    assert got["spec"] == {"hard": {"cpu": "1", "mem": "1Gi"}}


def test_descriptor_covers_every_served_kind() -> None:
    descriptor = Descriptor.get()
    missing = [
        f"{r.api_version} {r.kind}" for r in RESOURCES if descriptor.kind(r.api_version, r.kind) is None
    ]
    assert missing == []
    assert descriptor.modules["k8s.io/api"].startswith("v0.37.")


# Malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty data"),
        (b"k8s", "prefix"),
        (b"{}", "prefix"),
        (b"k8s\x01" + ld(2, b""), "prefix"),
        (protobuf.MAGIC, "empty body"),
        (protobuf.MAGIC + b"\x0a", "unexpected end of data"),  # truncated length
        (protobuf.MAGIC + b"\x0a\x05ab", "unexpected end of data"),  # length past the end
        (protobuf.MAGIC + b"\x08\xff\xff", "unexpected end of data"),  # truncated varint
        (protobuf.MAGIC + b"\x08" + b"\xff" * 10 + b"\x01", "overflow"),
        (protobuf.MAGIC + tag(5, 4), "end group"),
        (protobuf.MAGIC + tag(5, 6), "illegal wireType 6"),
        (protobuf.MAGIC + b"\x02\x00", "illegal tag 0"),
        (protobuf.MAGIC + num(1, 3), "wrong wireType"),
        (body("v1", "Nonsense", b""), 'no kind "Nonsense" is registered for version "v1"'),
        (body("nope/v9", "Pod", b""), 'no kind "Pod" is registered for version "nope/v9"'),
        (body("apps/v1", "", b""), "'Kind' is missing"),
        (body("", "Pod", b""), "'apiVersion' is missing"),
        (body("a/b/c", "Pod", b""), "'apiVersion' is missing"),
    ],
)
def test_malformed_bodies(data: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode(data)


def test_errors_say_where() -> None:
    with pytest.raises(ProtobufError) as caught:
        decode(body("apps/v1", "Deployment", ld(2, ld(1, "three"))))  # spec.replicas as a string
    assert caught.value.path == ("spec", "replicas")
    assert str(caught.value).startswith("spec.replicas: wrong wireType = 2")


@pytest.mark.parametrize(
    ("api_version", "kind", "raw", "message"),
    [
        # spec.ports[0].targetPort with an IntOrString type of 2
        ("v1", "Service", ld(2, ld(1, ld(4, num(1, 2)))), "impossible IntOrString.Type"),
        # data that is CBOR, or not JSON at all
        ("apps/v1", "ControllerRevision", ld(2, ld(1, b"\xd9\xd9\xf7\xa0")), "RawExtension holds no JSON"),
        ("apps/v1", "ControllerRevision", ld(2, ld(1, b"{nope")), "does not hold JSON"),
        # spec.hard with a quantity Go cannot parse
        ("v1", "ResourceQuota", ld(2, ld(1, ld(1, "cpu") + ld(2, ld(1, "1.2.3")))), "quantities must match"),
        # metadata.creationTimestamp out of the years Go prints
        ("v1", "Namespace", ld(1, ld(8, num(1, 1 << 40))), "out of range"),
    ],
)
def test_values_go_would_refuse(api_version: str, kind: str, raw: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode(body(api_version, kind, raw))


def test_nesting_is_bounded() -> None:
    # JSONSchemaProps.not (field 28) inside itself, deeper than MAX_DEPTH
    props = b""
    for _ in range(protobuf.MAX_DEPTH + 5):
        props = ld(28, props)
    version = ld(1, "v1") + ld(4, ld(1, props))  # versions[0].schema.openAPIV3Schema
    crd = meta("w.example.com") + ld(2, ld(7, version))
    with pytest.raises(ProtobufError, match="nested deeper"):
        decode(body("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd))


def test_invalid_utf8_is_replaced_per_byte_as_go_does() -> None:
    got = decode(body("v1", "Namespace", ld(1, ld(11, ld(1, "k") + ld(2, b"a\xe2\x82b\xff")))))
    assert got["metadata"]["labels"] == {"k": "a\ufffd\ufffdb\ufffd"}


def test_damaged_bodies_fail_cleanly() -> None:
    """Flipped, cut and inserted bytes give a ProtobufError or a dict, never another exception."""
    rng = random.Random(37)
    bodies = [path.read_bytes() for path in BODIES]
    for _ in range(3000):
        data = bytearray(rng.choice(bodies))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(protobuf.MAGIC), len(data))
            action = rng.randrange(3)
            if action == 0:
                data[pos] = rng.randrange(256)
            elif action == 1:
                del data[pos : pos + rng.randint(1, 8)]
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 4))
            if len(data) <= len(protobuf.MAGIC) + 1:
                break
        with contextlib.suppress(ProtobufError):
            assert isinstance(decode(bytes(data)), dict)
