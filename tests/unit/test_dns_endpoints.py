from __future__ import annotations

from k3py.dns.endpoints import SKIP_MIRROR_LABEL, Port, endpoints_with, slice_with

PORTS = [Port("https", 6443)]


def test_server_written_endpoints_are_never_mirrored_and_list_each_server_once() -> None:
    first = endpoints_with(None, "default", "kubernetes", "10.0.0.1", PORTS)
    assert first is not None and first["metadata"]["labels"] == {SKIP_MIRROR_LABEL: "true"}
    assert endpoints_with(first, "default", "kubernetes", "10.0.0.1", PORTS) is None
    both = endpoints_with(first, "default", "kubernetes", "10.0.0.2", PORTS)
    assert both is not None
    assert [a["ip"] for a in both["subsets"][0]["addresses"]] == ["10.0.0.1", "10.0.0.2"]


def test_endpoints_written_before_the_label_get_it() -> None:
    old = endpoints_with(None, "default", "kubernetes", "10.0.0.1", PORTS)
    assert old is not None
    del old["metadata"]["labels"][SKIP_MIRROR_LABEL]
    relabelled = endpoints_with(old, "default", "kubernetes", "10.0.0.1", PORTS)
    assert relabelled is not None and relabelled["metadata"]["labels"][SKIP_MIRROR_LABEL] == "true"
    assert relabelled["subsets"] == old["subsets"]


def test_slices_name_their_service_and_a_manager_of_their_own() -> None:
    made = slice_with(None, "kube-system", "kube-dns", "kube-dns", "10.0.0.1", [Port("dns", 53, "UDP")])
    assert made is not None
    labels = made["metadata"]["labels"]
    assert labels["kubernetes.io/service-name"] == "kube-dns"
    assert labels["endpointslice.kubernetes.io/managed-by"] not in (
        "endpointslice-controller.k8s.io",
        "endpointslicemirroring-controller.k8s.io",
    )
