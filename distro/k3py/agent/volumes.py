"""Pod volumes on the node: emptyDir, configMap, secret, downwardAPI, projected, hostPath.

Each volume lives in ``<kubelet>/pods/<uid>/volumes/<plugin>/<name>``. Files that come from
the API (config maps, secrets, downward API, projected sources) are written the way the
upstream kubelet's atomic writer does: the payload goes into a fresh ``..<timestamp>``
directory, ``..data`` is switched to it with one rename, and each visible name is a link
through ``..data``, so a running container sees either the old set of files or the new one,
never a mix. :meth:`PodVolumes.refresh` re-renders them when their sources change, which is
how a config map edit reaches a running pod. Secrets, projected volumes and ``Memory``
emptyDirs are tmpfs mounts, never written to disk; :meth:`PodVolumes.teardown` unmounts
them before the pod's directory goes away.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k3py.agent.envvars import ConfigError, expand, field_value, resource_value
from k3py.agent.podcertificates import CertificateProjection, RequestApi
from k3py.agent.podcertificates import files as certificate_files
from k3py.agent.volume_ownership import expected_mode, fs_group, set_volume_ownership
from k3py.api.defaults import quantity_value

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Fetch = Callable[[str, str], Awaitable[Obj | None]]
"""``fetch(kind, name)``: a ConfigMap or Secret of the pod's namespace (None: not found)."""
TokenSource = Callable[[str, str, int], Awaitable[tuple[str, float]]]
"""``token(service_account, audience, seconds)`` → (token, expiry as a UNIX time)."""
BundleSource = Callable[[Obj], Awaitable[list[str]]]
"""``bundles(projection)``: the ``spec.trustBundle`` of each ClusterTrustBundle a projected
``clusterTrustBundle`` source names (by ``name``, or by ``signerName`` and ``labelSelector``)."""
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s.*?-----END \1-----", re.DOTALL)

DEFAULT_MODE = 0o644
DATA_DIR = "..data"


class VolumeError(Exception):
    """A volume cannot be set up (the pod stays ``ContainerCreating``; an event says why)."""


@dataclass
class _Token:
    token: str
    expires: float
    issued: float


@dataclass
class PodVolumes:
    """The volumes of one pod, set up once and refreshed while it runs."""

    root: Path
    pod: Obj
    fetch: Fetch
    token: TokenSource
    node_allocatable: Mapping[str, str] = field(default_factory=dict)
    bundles: BundleSource | None = None
    certificates: RequestApi | None = None
    """Where ``podCertificate`` sources get their PodCertificateRequests (None: not on this node)."""
    paths: dict[str, Path] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)
    """Volumes the kubelet writes from API objects: always mounted read-only."""
    _mounts: list[Path] = field(default_factory=list)
    _tokens: dict[tuple[str, str, str], _Token] = field(default_factory=dict)
    _certificates: dict[tuple[str, int], CertificateProjection] = field(default_factory=dict)

    @property
    def volume_dir(self) -> Path:
        return self.root / "volumes"

    async def setup(self) -> None:
        """Make every volume present and current; raise :class:`VolumeError` for the first that cannot be."""
        for volume in (self.pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name", "")
            if any(k in volume for k in ("configMap", "secret", "downwardAPI", "projected")):
                self.read_only.add(name)
            try:
                self.paths[name] = await self._volume(volume)
            except (OSError, ConfigError, subprocess.CalledProcessError) as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from None

    async def refresh(self, pod: Obj) -> None:
        """Re-render API-backed volumes (config maps, secrets, tokens) from ``pod``'s current view."""
        self.pod = pod
        await self.setup()

    def teardown(self) -> None:
        """Unmount what was mounted and remove the pod's directory."""
        teardown_pod_dir(self.root)

    async def _volume(self, volume: Obj) -> Path:
        name = str(volume["name"])
        if (source := volume.get("hostPath")) is not None:
            return _host_path(source)
        if (source := volume.get("emptyDir")) is not None:
            path = self.volume_dir / "kubernetes.io~empty-dir" / name
            first = name not in self.paths
            if source.get("medium") == "Memory":
                self._tmpfs(path, source.get("sizeLimit"))
            else:
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(0o777)
            if first:  # once, as upstream's SetUp: later modes are the containers' own
                set_volume_ownership(path, fs_group(self.pod), read_only=False)
            return path
        if (source := volume.get("configMap")) is not None:
            path = self.volume_dir / "kubernetes.io~configmap" / name
            path.mkdir(parents=True, exist_ok=True)
            files = await self._object_files("ConfigMap", source)
            write_atomically(path, files, group=fs_group(self.pod))
            return path
        if (source := volume.get("secret")) is not None:
            path = self.volume_dir / "kubernetes.io~secret" / name
            self._tmpfs(path, None)
            source = dict(source, name=source.get("secretName", ""))
            write_atomically(path, await self._object_files("Secret", source), group=fs_group(self.pod))
            return path
        if (source := volume.get("downwardAPI")) is not None:
            path = self.volume_dir / "kubernetes.io~downward-api" / name
            path.mkdir(parents=True, exist_ok=True)
            files = self._downward_files(source, source.get("defaultMode"))
            write_atomically(path, files, group=fs_group(self.pod))
            return path
        if (source := volume.get("projected")) is not None:
            path = self.volume_dir / "kubernetes.io~projected" / name
            self._tmpfs(path, None)
            write_atomically(path, await self._projected_files(source, name), group=fs_group(self.pod))
            return path
        kinds = [k for k in volume if k != "name"]
        raise ConfigError(f"volume type {', '.join(kinds) or 'unknown'} is not supported on this node")

    def _tmpfs(self, path: Path, size: object) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if path in self._mounts or os.path.ismount(path):
            if path not in self._mounts:
                self._mounts.append(path)
            return
        options = "mode=0777" if "empty-dir" in str(path) else "mode=0755"
        limit = quantity_value(size) if size is not None else None
        if limit:
            options += f",size={int(limit)}"
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True, capture_output=True
        )
        self._mounts.append(path)

    async def _object_files(self, kind: str, source: Obj) -> dict[str, tuple[bytes, int]]:
        name = source.get("name", "")
        optional = bool(source.get("optional"))
        obj = await self.fetch(kind, name)
        if obj is None:
            if optional:
                return {}
            raise ConfigError(f'{kind.lower()} "{name}" not found')
        data = _raw_data(obj)
        mode = _mode(source.get("defaultMode"))
        items = source.get("items")
        if not items:
            return {k: (v, mode) for k, v in data.items()}
        files = {}
        for item in items:
            key = item.get("key", "")
            if key not in data:
                if optional:
                    continue
                raise ConfigError(f"configmap references non-existent config key: {key}")
            files[item.get("path") or key] = (data[key], _mode(item.get("mode"), mode))
        return files

    def _downward_files(self, source: Obj, default_mode: object) -> dict[str, tuple[bytes, int]]:
        mode = _mode(default_mode)
        files = {}
        for item in source.get("items") or []:
            if ref := item.get("fieldRef"):
                value = field_value(self.pod, str(ref.get("fieldPath") or ""))
            elif ref := item.get("resourceFieldRef"):
                value = resource_value(self.pod, "", ref, self.node_allocatable)
            else:
                continue
            files[item["path"]] = (value.encode(), _mode(item.get("mode"), mode))
        return files

    async def _projected_files(self, source: Obj, volume: str) -> dict[str, tuple[bytes, int]]:
        mode = _mode(source.get("defaultMode"))
        files: dict[str, tuple[bytes, int]] = {}
        for index, item in enumerate(source.get("sources") or []):
            if (part := item.get("configMap")) is not None:
                files.update(await self._object_files("ConfigMap", dict(part, defaultMode=mode)))
            elif (part := item.get("secret")) is not None:
                files.update(await self._object_files("Secret", dict(part, defaultMode=mode)))
            elif (part := item.get("downwardAPI")) is not None:
                files.update(self._downward_files(part, mode))
            elif (part := item.get("serviceAccountToken")) is not None:
                token = await self._service_account_token(part)
                files[part["path"]] = (token.encode(), mode if source.get("defaultMode") else 0o600 | mode)
            elif (part := item.get("clusterTrustBundle")) is not None:
                files[part["path"]] = (await self._trust_anchors(part), mode)
            elif (part := item.get("podCertificate")) is not None:
                files.update(await self._pod_certificate(volume, index, part, source))
        return files

    async def _pod_certificate(
        self, volume: str, index: int, part: Obj, source: Obj
    ) -> dict[str, tuple[bytes, int]]:
        """A ``podCertificate`` source's files (``k3py.agent.podcertificates``): the volume's mode,
        0600 when a file owner or an fsGroup is asked for, as upstream."""
        if self.certificates is None:
            raise ConfigError("podCertificate projections are not served on this node")
        projection = self._certificates.setdefault((volume, index), CertificateProjection(part))
        credentials = await projection.credentials(self.certificates, self.pod)
        owned = part.get("user") is not None or source.get("defaultUser") is not None
        owned = owned or fs_group(self.pod) is not None
        return certificate_files(part, credentials, 0o600 if owned else _mode(source.get("defaultMode")))

    async def _trust_anchors(self, source: Obj) -> bytes:
        """The certificates of the ClusterTrustBundles ``source`` selects, each once, sorted (as
        the upstream kubelet writes them, so the file does not change from one start to the
        next); none found is an error unless the source is optional."""
        found = await self.bundles(source) if self.bundles is not None else []
        blocks = sorted({match.group(0).strip() + "\n" for pem in found for match in PEM_BLOCK.finditer(pem)})
        if not blocks and not source.get("optional"):
            wanted = source.get("name") or f"signer {source.get('signerName')}"
            raise ConfigError(f"no ClusterTrustBundle found for {wanted}")
        return "".join(blocks).encode()

    async def _service_account_token(self, source: Obj) -> str:
        account = (self.pod.get("spec") or {}).get("serviceAccountName") or "default"
        audience = source.get("audience") or ""
        seconds = int(source.get("expirationSeconds") or 3600)
        key = (account, audience, str(seconds))
        now = time.time()
        held = self._tokens.get(key)
        # Refresh at 80% of the lifetime or after 24 hours, as the upstream kubelet does.
        if held is None or now >= held.issued + min(0.8 * (held.expires - held.issued), 86400):
            token, expires = await self.token(account, audience, seconds)
            held = self._tokens[key] = _Token(token, expires, now)
        return held.token


def _mode(value: object, default: int = DEFAULT_MODE) -> int:
    return int(value) & 0o777 if isinstance(value, int) else default


def _raw_data(obj: Obj) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if obj.get("kind") == "Secret":
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v)
        return out
    for k, v in (obj.get("data") or {}).items():
        out[k] = str(v).encode()
    for k, v in (obj.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v)
    return out


def _host_path(source: Obj) -> Path:
    path = Path(source.get("path") or "")
    kind = source.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o644)
    checks = {
        "Directory": (path.is_dir, "is not a directory"),
        "File": (path.is_file, "is not a file"),
        "Socket": (lambda: path.exists() and stat.S_ISSOCK(path.stat().st_mode), "is not a socket file"),
        "CharDevice": (path.is_char_device, "is not a character device"),
        "BlockDevice": (path.is_block_device, "is not a block device"),
    }
    if kind in checks:
        ok, problem = checks[kind]
        if not path.exists():
            raise ConfigError(f"hostPath type check failed: {path} does not exist")
        if not ok():
            raise ConfigError(f"hostPath type check failed: {path} {problem}")
    return path


def _payload_dir(target: Path) -> str | None:
    """The ``..<timestamp>`` directory ``..data`` names, if it names one of ours (and nothing else)."""
    link = target / DATA_DIR
    if not link.is_symlink():
        return None
    name = str(link.readlink())
    if "/" in name or not name.startswith("..") or name in ("..", DATA_DIR) or not (target / name).is_dir():
        return None
    return name


def write_atomically(
    target: Path, files: Mapping[str, tuple[bytes, int]], *, group: int | None = None
) -> bool:
    """Publish ``files`` (relative path → (content, mode)) under ``target``; False when unchanged.

    With ``group`` (the pod's fsGroup) the volume gets that group and read permissions for it
    before the new payload is published (:mod:`k3py.agent.volume_ownership`).
    """
    for relative in files:
        parts = Path(relative).parts
        if not parts or Path(relative).is_absolute() or ".." in parts or parts[0].startswith(".."):
            raise ConfigError(f"invalid path {relative!r} in a volume: must be relative, without '..'")
    data_link = target / DATA_DIR
    current = _payload_dir(target)
    if current is not None and _same(target / current, files, group):
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{time.time_ns() % 10**9:09d}"
    fresh = target / stamp
    fresh.mkdir(mode=0o755)
    for relative, (content, mode) in files.items():
        path = fresh / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    set_volume_ownership(target, group, read_only=True)
    temporary = target / "..data_tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(stamp)
    old = _payload_dir(target)
    temporary.rename(data_link)
    visible = {Path(relative).parts[0] for relative in files}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_DIR}/{name}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in visible and entry.is_symlink():
            entry.unlink()
    if old is not None and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _same(current: Path, files: Mapping[str, tuple[bytes, int]], group: int | None = None) -> bool:
    present = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
    if present != set(files):
        return False
    for relative, (content, mode) in files.items():
        path = current / relative
        info = path.stat()
        if group is not None:
            mode = expected_mode(mode, read_only=True)
            if info.st_gid != group:
                return False
        if path.read_bytes() != content or (info.st_mode & 0o777) != mode:
            return False
    return True


def teardown_pod_dir(root: Path) -> None:
    """Unmount every mount under ``root`` (deepest first), then remove it."""
    if not root.exists():
        return
    mounts = []
    try:
        with Path("/proc/self/mountinfo").open() as f:
            for line in f:
                point = line.split()[4].replace("\\040", " ")
                if point == str(root) or point.startswith(f"{root}/"):
                    mounts.append(point)
    except OSError:
        pass
    for point in sorted(mounts, key=len, reverse=True):
        result = subprocess.run(["umount", point], capture_output=True, check=False)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


def mounts_for(
    container: Obj, paths: Mapping[str, Path], env: Mapping[str, str], read_only: Set[str] = frozenset()
) -> list[tuple[str, Path, bool]]:
    """A container's volume mounts as (container path, host path, read-only).

    Volumes in ``read_only`` (those the kubelet writes from API objects) are mounted read-only
    whatever the mount says, as upstream does: a container must not change what the kubelet
    keeps writing.
    """
    out = []
    for mount in container.get("volumeMounts") or []:
        source = paths.get(mount.get("name", ""))
        if source is None:
            raise ConfigError(
                f'cannot find volume "{mount.get("name")}" to mount into container "{container["name"]}"'
            )
        sub = mount.get("subPath") or ""
        if mount.get("subPathExpr"):
            sub = expand(mount["subPathExpr"], env)
        host = _sub_path(source, sub) if sub else source
        locked = mount.get("name", "") in read_only
        out.append((mount["mountPath"], host, bool(mount.get("readOnly")) or locked))
    return out


def _sub_path(source: Path, sub: str) -> Path:
    """``source / sub`` one component at a time: a link may not lead out of the volume, and
    missing directories are made only inside it."""
    if sub.startswith("/") or ".." in Path(sub).parts:
        raise ConfigError(f"invalid subpath {sub!r}: must be a relative path without '..'")
    root = source.resolve()
    current = root
    for part in Path(sub).parts:
        current = current / part
        if current.is_symlink():
            current = current.resolve()
            if not current.is_relative_to(root):
                raise ConfigError(f"subpath {sub!r} leads outside the volume")
        elif not current.exists():
            current.mkdir(mode=0o777)
    return current
