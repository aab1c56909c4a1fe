"""The kubelet's /metrics: Prometheus text from the stats summary."""

from __future__ import annotations

from k3py.agent.kubelet_api.server import prometheus_text


def test_metrics_name_every_container_and_count_the_pods() -> None:
    summary = {
        "node": {"memory": {"workingSetBytes": 1024}},
        "pods": [
            {
                "podRef": {"name": "web", "namespace": "ns"},
                "containers": [
                    {
                        "name": "main",
                        "cpu": {"usageCoreNanoSeconds": 2_500_000_000},
                        "memory": {"workingSetBytes": 7},
                    }
                ],
            }
        ],
    }
    text = prometheus_text(summary, 1)
    assert "kubelet_running_pods 1\n" in text
    assert "node_memory_working_set_bytes 1024\n" in text
    assert 'container_cpu_usage_seconds_total{container="main",namespace="ns",pod="web"} 2.5\n' in text
    assert 'container_memory_working_set_bytes{container="main",namespace="ns",pod="web"} 7\n' in text
    assert all(line.startswith(("#", "kubelet_", "node_", "container_")) for line in text.splitlines())
