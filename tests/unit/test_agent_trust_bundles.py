from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from k3py.agent.envvars import ConfigError
from k3py.agent.volumes import PodVolumes

Obj = dict[str, Any]
A = "-----BEGIN CERTIFICATE-----\nQUFB\n-----END CERTIFICATE-----\n"
B = "-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----\n"


def volumes(tmp_path: Path, bundles: dict[str, list[str]]) -> PodVolumes:
    async def nothing(*_: Any) -> Any:
        return None

    async def by_source(source: Obj) -> list[str]:
        return bundles.get(str(source.get("name") or source.get("signerName")), [])

    return PodVolumes(tmp_path, {"metadata": {"name": "p"}}, nothing, nothing, {}, by_source)


def anchors(volumes: PodVolumes, source: Obj) -> bytes:
    return asyncio.run(volumes._trust_anchors(source))


def test_certificates_of_the_selected_bundles_once_each_in_order(tmp_path: Path) -> None:
    found = volumes(tmp_path, {"signer.example/one": [B + A, A], "single": ["junk " + A]})
    assert anchors(found, {"signerName": "signer.example/one", "path": "x"}).decode() == A + B
    assert anchors(found, {"name": "single", "path": "x"}).decode() == A


def test_nothing_found_is_empty_when_optional_and_an_error_otherwise(tmp_path: Path) -> None:
    found = volumes(tmp_path, {})
    assert anchors(found, {"name": "missing", "path": "x", "optional": True}) == b""
    with pytest.raises(ConfigError, match="no ClusterTrustBundle found for missing"):
        anchors(found, {"name": "missing", "path": "x"})
