"""storage: StorageClasses and PersistentVolumeClaims as API objects."""

from __future__ import annotations

import json
from typing import Any

from conformance.suites.kube import Kube


def test_a_claim_is_validated_and_its_spec_is_immutable(kube: Kube, namespace: str) -> None:
    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    kube.apply(claim)
    assert kube.json("get", "pvc", "data", "-n", namespace)["status"]["phase"] in ("Pending", "Bound")
    claim["spec"]["accessModes"] = ["ReadOnlyMany"]
    changed = kube.run("apply", "-f", "-", input=json.dumps(claim), check=False)
    assert changed.returncode != 0 and "spec is immutable" in changed.stderr
    missing = {
        **claim,
        "metadata": {"name": "none", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"]},
    }
    refused = kube.run("create", "-f", "-", input=json.dumps(missing), check=False)
    assert refused.returncode != 0 and "spec.resources[storage]: Required value" in refused.stderr
