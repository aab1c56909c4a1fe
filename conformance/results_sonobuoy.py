"""The sonobuoy-compatible results tarball of a run, so that sonobuoy's tools and people read it as theirs.

Layout (sonobuoy's ``docs/snapshot.md`` and ``pkg/client/results``), named
``<YYYYmmDDHHMM>_sonobuoy_<uuid>.tar.gz`` with the uuid of ``meta/config.json``::

    meta/config.json                           the run's configuration; ``UUID`` and ``Version`` matter:
                                               sonobuoy's reader picks the archive layout from Version
    meta/info.json                             {"plugins": ["e2e"]}: the plugins ``sonobuoy results`` lists
    meta/run.log                               the harness's log, JSON lines as sonobuoy's logrus writes them
    meta/clusterhealth.json                    API server version and node health (``sonobuoy results``)
    plugins/e2e/results/global/junit_01.xml    the suite's report (a job plugin's results live in ``global``)
    plugins/e2e/results/global/e2e.log         the suite's output
    plugins/e2e/sonobuoy_results.yaml          the post-processed tree ``sonobuoy results`` prints:
                                               plugin > file > suite > test, each with a status
    serverversion.json                         GET /version of the cluster, when known
    servergroups.json                          the cluster's API groups, when known

The CNCF submission takes ``e2e.log`` and ``junit_01.xml`` from ``plugins/e2e/results/global``.
Entries are written in a fixed order with fixed owners and the run's finish time, so the same
results give the same archive.
"""

from __future__ import annotations

import gzip
import io
import json
import shlex
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from conformance.results_model import Case, RunMeta, tally

PLUGIN = "e2e"
RESULTS_DIR = f"plugins/{PLUGIN}/results/global"
# The sonobuoy release whose archive layout this follows; its reader keys the layout on it.
LAYOUT_VERSION = "v0.57.3"
SUITE_NAMES = {"cncf": "Kubernetes e2e suite", "native": "k3py native conformance suite"}


def tarball_name(meta: RunMeta) -> str:
    return f"{meta.finished.strftime('%Y%m%d%H%M')}_sonobuoy_{meta.uuid}.tar.gz"


def write_tarball(
    directory: Path, cases: Sequence[Case], meta: RunMeta, *, suite: str, junit: Path, e2e_log: Path
) -> Path:
    """Write the archive into ``directory`` and return its path."""
    entries: list[tuple[str, bytes]] = [
        ("meta/config.json", _json(_config(meta, suite))),
        ("meta/info.json", _json({"plugins": [PLUGIN]})),
        ("meta/run.log", _run_log(cases, meta, suite)),
        ("meta/clusterhealth.json", _json(_cluster_health(meta))),
        (f"{RESULTS_DIR}/junit_01.xml", junit.read_bytes()),
        (f"{RESULTS_DIR}/e2e.log", e2e_log.read_bytes()),
        (f"plugins/{PLUGIN}/sonobuoy_results.yaml", _yaml(results_tree(cases, suite=suite))),
    ]
    if meta.cluster.server_version is not None:
        entries.append(("serverversion.json", _json(meta.cluster.server_version)))
    if meta.cluster.server_groups is not None:
        entries.append(("servergroups.json", _json(meta.cluster.server_groups)))
    target = directory / tarball_name(meta)
    _pack(target, entries, mtime=int(meta.finished.timestamp()))
    return target


def results_tree(cases: Sequence[Case], *, suite: str) -> dict[str, Any]:
    """The ``sonobuoy_results.yaml`` tree: plugin summary > junit file > suite > one item per test."""
    tests = [_item(case) for case in cases]
    status = _aggregate(cases)
    suite_item = {"name": SUITE_NAMES.get(suite, suite), "status": status, "items": tests}
    file_item = {
        "name": "junit_01.xml",
        "status": status,
        "meta": {"file": "results/global/junit_01.xml", "type": "file"},
        "items": [suite_item],
    }
    return {"name": PLUGIN, "status": status, "meta": {"type": "summary"}, "items": [file_item]}


def _item(case: Case) -> dict[str, Any]:
    item: dict[str, Any] = {"name": case.name, "status": case.status}
    if case.status == "failed" and case.message:
        item["details"] = {"failure": case.message}
    return item


def _aggregate(cases: Sequence[Case]) -> str:
    # sonobuoy's AggregateStatus: failures bubble up; no results at all is "unknown", never "passed".
    if not cases:
        return "unknown"
    return "failed" if tally(cases).failed else "passed"


def _config(meta: RunMeta, suite: str) -> dict[str, Any]:
    return {
        "Description": f"k3py conformance run {meta.run_id} ({suite} suite); sonobuoy archive layout",
        "UUID": meta.uuid,
        "Version": LAYOUT_VERSION,
        "ResultsDir": "/tmp/sonobuoy/results",
        "Resources": [],
        "Namespace": "sonobuoy",
        "Plugins": [{"name": PLUGIN}],
        "k3py": {
            "suite": suite,
            "version": meta.k3py_version,
            "commit": meta.commit,
            "binary": str(meta.binary) if meta.binary else None,
            "binarySha256": meta.binary_sha256,
            "datastore": meta.datastore,
            "focus": meta.focus,
            "skip": meta.skip,
            "interrupted": meta.interrupted,
        },
    }


def _cluster_health(meta: RunMeta) -> dict[str, Any]:
    nodes = meta.cluster.nodes
    return {
        "node_health": {
            "total_nodes": len(nodes),
            "healthy_nodes": sum(nodes.values()),
            "details": [
                {"name": name, "healthy": ready, "ready": "True" if ready else "False"}
                for name, ready in sorted(nodes.items())
            ],
        },
        "pod_health": {"total_nodes": 0, "healthy_nodes": 0},
        "api_version": meta.cluster.server_git_version or "",
        "error_summary": {},
    }


def _run_log(cases: Sequence[Case], meta: RunMeta, suite: str) -> bytes:
    counts = tally(cases)
    outcome = "interrupted" if meta.interrupted else "finished"
    lines = [
        ("info", f"k3py conformance run {meta.run_id}: {suite} suite", meta.started),
        *(("info", "running: " + shlex.join(command), meta.started) for command in meta.commands),
        (
            "warning" if meta.interrupted or counts.failed else "info",
            f"{outcome}: {counts.passed} passed, {counts.failed} failed, {counts.skipped} skipped",
            meta.finished,
        ),
    ]
    return "".join(
        json.dumps({"level": level, "msg": msg, "time": when.isoformat()}) + "\n"
        for level, msg, when in lines
    ).encode()


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, indent=2, sort_keys=False).encode() + b"\n"


def _yaml(value: Mapping[str, Any]) -> bytes:
    return yaml.safe_dump(dict(value), sort_keys=False, allow_unicode=True, width=1000).encode()


def _pack(target: Path, entries: Sequence[tuple[str, bytes]], *, mtime: int) -> None:
    directories: list[str] = []
    for name, _ in entries:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in directories:
                directories.append(directory)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            archive.addfile(info)
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, mtime
            archive.addfile(info, io.BytesIO(data))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime, filename="") as gz:
        gz.write(buffer.getvalue())
