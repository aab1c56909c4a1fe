"""api-machinery: CustomResourceDefinitions are served, validated and defaulted."""

from __future__ import annotations

import uuid

from conformance.suites.kube import Kube


def test_a_crd_serves_validates_and_defaults(kube: Kube, namespace: str) -> None:
    plural = f"gadgets{uuid.uuid4().hex[:6]}"
    group = "native.example.com"
    kube.apply(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": plural, "singular": plural[:-1], "kind": plural.capitalize()[:-1]},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {
                                            "size": {"type": "integer", "minimum": 1, "default": 2}
                                        },
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    try:
        kube.run("wait", "--for=condition=Established", f"crd/{plural}.{group}", "--timeout=60s")
        kind = plural.capitalize()[:-1]
        kube.apply(
            {
                "apiVersion": f"{group}/v1",
                "kind": kind,
                "metadata": {"name": "g", "namespace": namespace},
                "spec": {},
            }
        )
        assert kube.json("get", plural, "g", "-n", namespace)["spec"] == {"size": 2}
        bad = kube.run(
            "apply",
            "-f",
            "-",
            check=False,
            input=(
                f'{{"apiVersion":"{group}/v1","kind":"{kind}","metadata":{{"name":"b","namespace":"{namespace}"}},'
                '"spec":{"size":0}}'
            ),
        )
        assert bad.returncode != 0 and "spec.size" in bad.stderr
    finally:
        kube.run("delete", "crd", f"{plural}.{group}", "--wait=false", check=False)
