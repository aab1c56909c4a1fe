"""Bad requests get upstream's status code and reason, and leave the store as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.cluster import Cluster


def call(
    cluster: Cluster,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    status, headers, raw = cluster.request(
        method, path, body, {"Content-Type": content_type} if body is not None else {}
    )
    return status, json.loads(raw) if raw else {}, headers


def names(cluster: Cluster, namespace: str) -> list[str]:
    _, listed, _ = call(cluster, "GET", f"/api/v1/namespaces/{namespace}/configmaps")
    return sorted(
        name for item in listed["items"] if (name := item["metadata"]["name"]) != "kube-root-ca.crt"
    )


def changes_since(cluster: Cluster, namespace: str, version: str) -> list[str]:
    """The watch events of ``namespace``'s config maps after ``version`` (a short watch)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion={version}&timeoutSeconds=1"
    status, _, body = cluster.request("GET", path)
    assert status == 200
    return [line for line in body.decode().splitlines() if line.strip()]


def revision(cluster: Cluster) -> str:
    _, listed, _ = call(cluster, "GET", "/api/v1/namespaces")
    return str(listed["metadata"]["resourceVersion"])


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}, "data": {"a": "b"}}


@pytest.mark.parametrize(
    ("body", "content_type", "code", "reason"),
    [
        (
            b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ',
            "application/json",
            400,
            "BadRequest",
        ),
        (
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n",
            "application/yaml",
            400,
            "BadRequest",
        ),
        (json.dumps({**CM, "kind": "Secret"}).encode(), "application/json", 400, "BadRequest"),
        (json.dumps({**CM, "apiVersion": "apps/v1"}).encode(), "application/json", 400, "BadRequest"),
        (
            json.dumps({**CM, "metadata": {"name": "Not_A_Valid_Name"}}).encode(),
            "application/json",
            422,
            "Invalid",
        ),
        (json.dumps({**CM, "metadata": {}}).encode(), "application/json", 422, "Invalid"),
        (json.dumps(CM).encode(), "text/plain", 415, "UnsupportedMediaType"),
        (b"[1, 2, 3]", "application/json", 400, "BadRequest"),
    ],
    ids=[
        "malformed-json",
        "malformed-yaml",
        "wrong-kind",
        "wrong-apiversion",
        "invalid-name",
        "missing-name",
        "unknown-media-type",
        "not-an-object",
    ],
)
def test_bad_create_is_refused_and_stores_nothing(
    cluster: Cluster, namespace: str, body: bytes, content_type: str, code: int, reason: str
) -> None:
    before = revision(cluster)
    status, answer, _ = call(
        cluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body, content_type
    )
    assert (status, answer.get("kind"), answer.get("reason"), answer.get("code")) == (
        code,
        "Status",
        reason,
        code,
    )
    assert answer["message"]
    assert names(cluster, namespace) == []
    # Nothing was written for it: no event of this namespace's config maps since ``before``
    # (the server's controllers write elsewhere meanwhile, so the global revision may move).
    assert changes_since(cluster, namespace, before) == []


def test_invalid_name_names_the_field(cluster: Cluster, namespace: str) -> None:
    body = json.dumps({**CM, "metadata": {"name": "Bad_Name"}}).encode()
    _, answer, _ = call(cluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    causes = answer["details"]["causes"]
    assert causes[0]["field"] == "metadata.name" and causes[0]["reason"] == "FieldValueInvalid"
    assert "RFC 1123" in answer["message"]


def test_unknown_fields_under_strict_warn_and_ignore(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = json.dumps({**CM, "metadata": {"name": "strict"}, "bogus": 1, "data": {"a": "b"}}).encode()
    status, answer, _ = call(cluster, "POST", path + "?fieldValidation=Strict", body)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert 'unknown field "bogus"' in answer["message"]
    assert names(cluster, namespace) == []

    status, answer, headers = call(cluster, "POST", path + "?fieldValidation=Warn", body)
    assert status == 201
    assert 'unknown field \\"bogus\\"' in headers.get("Warning", "")
    assert "bogus" not in answer  # never stored
    status, _, headers = call(
        cluster, "PUT", path + "/strict?fieldValidation=Ignore", json.dumps(answer | {"bogus": 2}).encode()
    )
    assert status == 200 and "Warning" not in headers

    duplicated = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1","a":"2"}}'
    status, answer, _ = call(cluster, "POST", path + "?fieldValidation=Strict", duplicated)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert 'duplicate field "data.a"' in answer["message"]


def test_oversized_body_is_refused(cluster: Cluster, namespace: str) -> None:
    huge = json.dumps(
        {**CM, "metadata": {"name": "huge"}, "data": {"a": "x" * (3 * 1024 * 1024 + 1)}}
    ).encode()
    status, answer, _ = call(cluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", huge)
    assert (status, answer["reason"]) == (413, "RequestEntityTooLarge")
    assert names(cluster, namespace) == []


def test_missing_required_fields_of_a_deployment(cluster: Cluster, namespace: str) -> None:
    body = json.dumps(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}
    ).encode()
    status, answer, _ = call(cluster, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body)
    assert (status, answer["reason"]) == (422, "Invalid")
    fields = {c["field"] for c in answer["details"]["causes"]}
    assert "spec.selector" in fields


def test_conflicts_not_found_and_method_not_allowed(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, created, _ = call(cluster, "POST", path, json.dumps(CM).encode())
    assert status == 201
    assert call(cluster, "POST", path, json.dumps(CM).encode())[1]["reason"] == "AlreadyExists"
    stale = created | {"metadata": created["metadata"] | {"resourceVersion": "1"}}
    status, answer, _ = call(cluster, "PUT", path + "/ok", json.dumps(stale).encode())
    assert (status, answer["reason"]) == (409, "Conflict")
    assert call(cluster, "GET", path + "/nope")[1]["reason"] == "NotFound"
    assert call(cluster, "POST", path + "/ok", json.dumps(CM).encode())[0] == 405
    assert call(cluster, "GET", "/apis/nothing.example.com/v1/things")[0] == 404
