"""REST semantics that clients rely on: pagination, resourceVersion matching, watch
bookmarks and initial events, tables and metadata-only responses, dry runs, generation."""

from __future__ import annotations

import json
import ssl
import urllib.request
from typing import Any

from tests.e2e.cluster import Cluster

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def call(
    cluster: Cluster,
    method: str,
    path: str,
    body: Any = None,
    *,
    accept: str = "application/json",
    content_type: str = "application/json",
) -> tuple[int, Any]:
    headers = {"Accept": accept}
    raw = None
    if body is not None:
        raw = json.dumps(body).encode()
        headers["Content-Type"] = content_type
    status, _, answer = cluster.request(method, path, raw, headers)
    return status, json.loads(answer) if answer else None


ROOT_CA = "kube-root-ca.crt"
"""The ConfigMap every namespace holds (the cluster's CA bundle)."""


def make(cluster: Cluster, namespace: str, count: int) -> None:
    for i in range(count):
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i:02d}", "labels": {"i": str(i % 2)}},
        }
        assert call(cluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body)[0] == 201


def test_pagination_is_consistent_and_resumable(cluster: Cluster, namespace: str) -> None:
    make(cluster, namespace, 7)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, first = call(cluster, "GET", path + "?limit=3")
    assert status == 200 and len(first["items"]) == 3
    assert first["metadata"]["remainingItemCount"] == 5  # 7 made + the namespace's kube-root-ca.crt
    rv = first["metadata"]["resourceVersion"]
    call(cluster, "POST", path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-late"}})
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        _, page = call(cluster, "GET", f"{path}?limit=3&continue={token}")
        assert page["metadata"]["resourceVersion"] == rv  # every page at the first page's revision
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == [*(f"cm-{i:02d}" for i in range(7)), ROOT_CA]  # the later create is not in this list
    assert call(cluster, "GET", f"{path}?limit=3&continue=garbage")[0] == 400

    _, exact = call(cluster, "GET", f"{path}?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert len(exact["items"]) == 8
    _, selected = call(cluster, "GET", f"{path}?labelSelector=i%3D1")
    assert [i["metadata"]["name"] for i in selected["items"]] == ["cm-01", "cm-03", "cm-05"]
    _, by_name = call(cluster, "GET", f"{path}?fieldSelector=metadata.name%3Dcm-02")
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["cm-02"]
    status, bad = call(cluster, "GET", f"{path}?fieldSelector=spec.nope%3Dx")
    assert status == 400 and bad["reason"] == "BadRequest"


def watch_lines(cluster: Cluster, path: str, count: int) -> list[dict[str, Any]]:
    tls = cluster.data_dir / "server" / "tls"
    context = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
    context.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
    events = []
    with urllib.request.urlopen(cluster.url + path, timeout=20, context=context) as response:
        for line in response:
            events.append(json.loads(line))
            if len(events) == count:
                break
    return events


def test_watch_with_initial_events_and_bookmark(cluster: Cluster, namespace: str) -> None:
    make(cluster, namespace, 2)
    query = "watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
    path = f"/api/v1/namespaces/{namespace}/configmaps?{query}&timeoutSeconds=10"
    events = watch_lines(cluster, path, 4)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "ADDED", "BOOKMARK"]  # 2 + the root CA
    assert events[3]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    status, refused = call(
        cluster, "GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&sendInitialEvents=true"
    )
    assert status == 422 and refused["reason"] == "Invalid"


def test_tables_and_metadata_only(cluster: Cluster, namespace: str) -> None:
    make(cluster, namespace, 2)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, table = call(cluster, "GET", path, accept=TABLE)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:3] == ["Name", "Data", "Age"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    _, full = call(cluster, "GET", path + "?includeObject=Object", accept=TABLE)
    assert full["rows"][0]["object"]["kind"] == "ConfigMap"
    _, meta = call(
        cluster, "GET", path, accept="application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
    )
    assert meta["kind"] == "PartialObjectMetadataList" and "data" not in meta["items"][0]
    status, refused = call(cluster, "GET", path, accept="application/vnd.kubernetes.protobuf")
    assert status == 406 and refused["reason"] == "NotAcceptable"


def test_dry_run_and_generation(cluster: Cluster, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gen"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "gen"}},
            "template": {
                "metadata": {"labels": {"app": "gen"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    status, dry = call(cluster, "POST", path + "?dryRun=All", deployment)
    assert status == 201 and dry["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert call(cluster, "GET", path + "/gen")[0] == 404
    _, created = call(cluster, "POST", path, deployment)
    assert created["metadata"]["generation"] == 1 and created["status"] == {}
    merge = "application/merge-patch+json"
    _, labelled = call(
        cluster, "PATCH", path + "/gen", {"metadata": {"labels": {"x": "y"}}}, content_type=merge
    )
    assert labelled["metadata"]["generation"] == 1  # metadata only: no new generation
    _, scaled = call(cluster, "PATCH", path + "/gen", {"spec": {"replicas": 2}}, content_type=merge)
    assert scaled["metadata"]["generation"] == 2
    _, status_patched = call(
        cluster,
        "PATCH",
        path + "/gen/status",
        {"status": {"replicas": 2}, "spec": {"replicas": 9}},
        content_type=merge,
    )
    # The deployment controller may have written conditions meanwhile; the patch merges over them.
    assert status_patched["status"]["replicas"] == 2 and status_patched["spec"]["replicas"] == 2
    assert status_patched["metadata"]["generation"] == 2


def test_delete_collection_by_label(cluster: Cluster, namespace: str) -> None:
    make(cluster, namespace, 6)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, _ = call(cluster, "DELETE", path + "?labelSelector=i%3D0")
    assert status == 200
    _, left = call(cluster, "GET", path)
    assert [i["metadata"]["name"] for i in left["items"]] == ["cm-01", "cm-03", "cm-05", ROOT_CA]


def test_node_port_services_get_ports_from_the_range(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/services"
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]},
    }
    status, created = call(cluster, "POST", path, body)
    assert status == 201
    port = created["spec"]["ports"][0]
    assert 30000 <= port["nodePort"] <= 32767 and port["targetPort"] == 80
    taken = {**body, "metadata": {"name": "np2"}}
    taken["spec"] = {**body["spec"], "ports": [{"port": 81, "nodePort": port["nodePort"]}]}
    status, refused = call(cluster, "POST", path, taken)
    assert status == 422 and "already allocated" in refused["message"]
    headless = {
        **body,
        "metadata": {"name": "headless"},
        "spec": {"clusterIP": "None", "selector": {"app": "x"}},
    }
    status, created = call(cluster, "POST", path, headless)
    assert status == 201 and created["spec"]["clusterIP"] == "None"


def test_service_type_changes_release_and_allocate_addresses(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/services"
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "morph"},
        "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"name": "http", "port": 80}]},
    }
    _, created = call(cluster, "POST", path, body)
    # to ExternalName, leaving the cluster IP and node port as they were: both are dropped
    external = {
        **created,
        "spec": {**created["spec"], "type": "ExternalName", "externalName": "a.example.com"},
    }
    status, changed = call(cluster, "PUT", f"{path}/morph", external)
    assert status == 200, changed
    assert "clusterIP" not in changed["spec"] and "clusterIPs" not in changed["spec"]
    assert "nodePort" not in changed["spec"]["ports"][0]
    # back to ClusterIP: a new address is allocated
    back = {**changed, "spec": {**changed["spec"], "type": "ClusterIP", "externalName": None}}
    status, cluster_ip = call(cluster, "PUT", f"{path}/morph", back)
    assert status == 200 and cluster_ip["spec"]["clusterIP"] and cluster_ip["spec"]["clusterIPs"]
    # to NodePort: a node port is allocated, the cluster IP stays
    node_port = {**cluster_ip, "spec": {**cluster_ip["spec"], "type": "NodePort"}}
    status, exposed = call(cluster, "PUT", f"{path}/morph", node_port)
    assert status == 200 and 30000 <= exposed["spec"]["ports"][0]["nodePort"] <= 32767
    assert exposed["spec"]["clusterIP"] == cluster_ip["spec"]["clusterIP"]


def test_events_are_one_set_of_objects_in_two_api_versions(cluster: Cluster, namespace: str) -> None:
    core_path = f"/api/v1/namespaces/{namespace}/events"
    new_path = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    old_style = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
        "reason": "Started",
        "message": "container started",
        "type": "Normal",
        "count": 2,
        "source": {"component": "kubelet"},
    }
    assert call(cluster, "POST", core_path, old_style)[0] == 201
    status, seen = call(cluster, "GET", new_path + "/e1")
    assert status == 200 and seen["apiVersion"] == "events.k8s.io/v1"
    assert seen["regarding"]["name"] == "p" and seen["note"] == "container started"
    assert seen["deprecatedCount"] == 2 and seen["deprecatedSource"] == {"component": "kubelet"}

    new_style = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e2"},
        "eventTime": "2026-11-27T05:00:00.000000Z",
        "regarding": {"kind": "Pod", "name": "q", "namespace": namespace},
        "reason": "Pulled",
        "note": "image pulled",
        "type": "Normal",
        "action": "Pull",
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
    }
    assert call(cluster, "POST", new_path, new_style)[0] == 201
    _, listed = call(cluster, "GET", core_path)
    by_name = {item["metadata"]["name"]: item for item in listed["items"]}
    assert by_name["e2"]["involvedObject"]["name"] == "q" and by_name["e2"]["message"] == "image pulled"
    assert by_name["e2"]["reportingComponent"] == "kubelet" and by_name["e2"]["apiVersion"] == "v1"
    _, selected = call(cluster, "GET", new_path + "?fieldSelector=regarding.name%3Dq")
    assert [item["metadata"]["name"] for item in selected["items"]] == ["e2"]
    assert call(cluster, "DELETE", new_path + "/e1")[0] == 200
    assert call(cluster, "GET", core_path + "/e1")[0] == 404


def test_autoscaling_v1_and_v2_share_their_objects(cluster: Cluster, namespace: str) -> None:
    v1 = f"/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers"
    v2 = f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    memory = {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}},
    }
    cpu = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
    }
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": target, "minReplicas": 1, "maxReplicas": 5, "metrics": [cpu, memory]},
    }
    assert call(cluster, "POST", v2, body)[0] == 201
    _, old = call(cluster, "GET", v1 + "/web")
    assert old["apiVersion"] == "autoscaling/v1" and old["spec"]["targetCPUUtilizationPercentage"] == 50
    assert "metrics" not in old["spec"]
    assert json.loads(old["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]) == [memory]

    old["spec"]["targetCPUUtilizationPercentage"] = 70  # a v1 client's read-modify-write
    status, _ = call(cluster, "PUT", v1 + "/web", old)
    assert status == 200
    _, new = call(cluster, "GET", v2 + "/web")
    assert new["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert new["spec"]["metrics"][1] == memory  # what v1 cannot express survived
    assert "annotations" not in new["metadata"]

    plain = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "plain"},
             "spec": {"scaleTargetRef": target, "maxReplicas": 3}}  # fmt: skip
    assert call(cluster, "POST", v1, plain)[0] == 201
    _, stored = call(cluster, "GET", v2 + "/plain")
    assert stored["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }
    ]


def test_the_default_service_cidr_is_ready(cluster: Cluster) -> None:
    status, cidr = call(cluster, "GET", "/apis/networking.k8s.io/v1/servicecidrs/kubernetes/status")
    assert status == 200 and cidr["spec"]["cidrs"] == ["10.43.0.0/16"]
    assert [(c["type"], c["status"]) for c in cidr["status"]["conditions"]] == [("Ready", "True")]


def test_apply_patches_report_repeated_keys_and_unknown_fields_as_upstream(
    cluster: Cluster, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/applied?fieldManager=me"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    repeated = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n  a: '2'\n"
    status, _, body = cluster.request("PATCH", path + "&fieldValidation=Strict", repeated, headers)
    assert status == 400 and 'line 7: key \\"a\\" already set in map' in body.decode()
    status, answer_headers, _ = cluster.request("PATCH", path + "&fieldValidation=Warn", repeated, headers)
    assert status == 201 and "already set in map" in str(answer_headers)
    unknown = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\nbogus: 1\n"
    status, _, body = cluster.request("PATCH", path, unknown, headers)
    assert status == 400 and ".bogus: field not declared in schema" in body.decode()
