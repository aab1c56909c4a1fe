"""The ``kube-system/extension-apiserver-authentication`` ConfigMap: how aggregated API servers
learn to trust this server, written and kept as kube-apiserver's clusterauthenticationtrust
controller keeps it.

An aggregated API server (the sample-apiserver, metrics-server) reads it at start and whenever
it changes: ``client-ca-file`` to verify client certificates itself, and the
``requestheader-*`` keys to believe the ``X-Remote-*`` headers the proxy sends (a client
certificate chaining to ``requestheader-client-ca-file`` with a CN in
``requestheader-allowed-names``). List values are JSON-encoded string arrays.

:func:`authentication_data` merges what is stored with what this server requires, as upstream
does so that several servers with different CAs can share the ConfigMap: list entries are
unioned (stored first), CA bundles concatenated with duplicates and certificates expired for
more than five minutes dropped. :func:`keep_authentication_configmap` writes that whenever the
stored data differs: at start, when the ConfigMap is changed or deleted, and every minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from k3py.apiserver import errors
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.storage import StorageError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NAMESPACE, NAME = "kube-system", "extension-apiserver-authentication"
MANAGER = "kube-apiserver"
RESYNC_PERIOD = 60.0
RETRY_DELAY = 1.0
EXPIRY_GRACE = timedelta(minutes=5)

LIST_KEYS = (
    "requestheader-username-headers",
    "requestheader-uid-headers",
    "requestheader-group-headers",
    "requestheader-extra-headers-prefix",
    "requestheader-allowed-names",
)


@dataclass(frozen=True, kw_only=True)
class TrustInfo:
    """What this server requires the ConfigMap to say."""

    client_ca: bytes
    request_header_ca: bytes
    allowed_names: tuple[str, ...] = ("system:auth-proxy",)
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    uid_headers: tuple[str, ...] = ("X-Remote-Uid",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_headers_prefix: tuple[str, ...] = ("X-Remote-Extra-",)

    def lists(self) -> dict[str, tuple[str, ...]]:
        return dict(
            zip(
                LIST_KEYS,
                (
                    self.username_headers,
                    self.uid_headers,
                    self.group_headers,
                    self.extra_headers_prefix,
                    self.allowed_names,
                ),
                strict=True,
            )
        )


def authentication_data(
    stored: dict[str, str], required: TrustInfo, now: datetime | None = None
) -> dict[str, str]:
    """The ConfigMap's data: ``stored`` merged with ``required`` (module docstring). Unreadable
    stored values are replaced, with a warning, rather than kept."""
    now = now or datetime.now(UTC)
    data = {"client-ca-file": _combined_cas(stored.get("client-ca-file", ""), required.client_ca, now)}
    for key, wanted in required.lists().items():
        data[key] = _json_list([*_stored_list(stored, key), *wanted])
    data["requestheader-client-ca-file"] = _combined_cas(
        stored.get("requestheader-client-ca-file", ""), required.request_header_ca, now
    )
    return data


def _json_list(values: Sequence[str]) -> str:
    return orjson.dumps(list(dict.fromkeys(values))).decode()


def _stored_list(stored: dict[str, str], key: str) -> list[str]:
    raw = stored.get(key, "")
    if not raw:
        return []
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        log.warning("%s/%s: %s is not a JSON list of strings; rewriting it", NAMESPACE, NAME, key)
        return []
    return value


def _combined_cas(stored: str, required: bytes, now: datetime) -> str:
    try:
        found = x509.load_pem_x509_certificates(stored.encode()) if stored.strip() else []
    except ValueError:
        log.warning("%s/%s: a stored CA bundle cannot be parsed; rewriting it", NAMESPACE, NAME)
        found = []
    found += x509.load_pem_x509_certificates(required)
    kept: dict[bytes, x509.Certificate] = {}
    for cert in found:
        if cert.not_valid_after_utc > now - EXPIRY_GRACE:
            kept.setdefault(cert.public_bytes(serialization.Encoding.DER), cert)
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in kept.values()).decode()


async def ensure_authentication_configmap(store: ObjectStore, required: TrustInfo) -> bool:
    """Write the ConfigMap if its data differs from :func:`authentication_data`; True if written."""
    configmaps = store.registry.lookup("", "v1", "configmaps")
    assert configmaps is not None, "the core API is always served"
    opts = WriteOptions(field_manager=MANAGER)
    try:
        current = await store.get(configmaps, NAMESPACE, NAME)
    except errors.ApiError as exc:
        if exc.code != 404:
            raise
        data = authentication_data({}, required)
        body = {"metadata": {"name": NAME, "namespace": NAMESPACE}, "data": data}
        await store.create(configmaps, NAMESPACE, body, opts)
        return True
    if current.get("data") == authentication_data(current.get("data") or {}, required):
        return False

    def change(obj: Obj) -> Obj:
        return {**obj, "data": authentication_data(obj.get("data") or {}, required)}

    await store.guaranteed_update(configmaps, NAMESPACE, NAME, change, opts)
    return True


async def keep_authentication_configmap(store: ObjectStore, required: TrustInfo) -> None:
    """Keep the ConfigMap current until cancelled (a supervised task)."""
    configmaps = store.registry.lookup("", "v1", "configmaps")
    assert configmaps is not None, "the core API is always served"
    cache = ObjectCache(store, configmaps, f"metadata.namespace={NAMESPACE},metadata.name={NAME}")
    changed = asyncio.Event()
    cache.subscribe(lambda _: changed.set())
    try:
        await cache.start()
        while True:
            changed.clear()
            delay = RESYNC_PERIOD
            try:
                if await ensure_authentication_configmap(store, required):
                    log.info("Wrote the authentication information to %s configmaps/%s", NAMESPACE, NAME)
            except (errors.ApiError, StorageError) as exc:
                log.warning("Could not write %s/%s: %s", NAMESPACE, NAME, exc)
                delay = RETRY_DELAY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), delay)
    finally:
        await cache.stop()
