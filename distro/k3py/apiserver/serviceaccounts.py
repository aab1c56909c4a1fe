"""Service accounts: what every namespace holds, what every pod gets, and legacy token secrets.

- :class:`NamespaceDefaults` (kube-controller-manager's serviceaccount and root-ca-cert-publisher
  controllers): every namespace that is not terminating has a ``default`` ServiceAccount and a
  ``kube-root-ca.crt`` ConfigMap holding the cluster's serving CA; either comes back when deleted,
  and the ConfigMap is rewritten when its contents drift.
- :class:`ServiceAccountAdmission` (kube-apiserver's ServiceAccount admission plugin), on pod
  creation: ``serviceAccountName`` defaults to ``default`` and must exist (the default account
  is waited for briefly, since its controller may be a moment behind a new namespace); unless
  the pod or its account opts out with ``automountServiceAccountToken: false``, a projected
  ``kube-api-access-<suffix>`` volume (a bound token, the CA bundle, the namespace) is added and
  mounted read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container.
- :class:`LegacyTokenSecrets` (the token controller): a Secret of type
  ``kubernetes.io/service-account-token`` annotated with ``kubernetes.io/service-account.name``
  gets a non-expiring token for that account, ``ca.crt`` and ``namespace``. Only such Secrets
  get one: nothing creates them unasked, as upstream since 1.24.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import string
from collections.abc import Awaitable, Callable

from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.cache import ObjectCache, each_change
from k3py.apiserver.generic import Obj, ObjectStore, WriteOptions
from k3py.apiserver.node_authz import references
from k3py.pki import TokenIssuer

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "default"
ROOT_CA = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION = 3607
"""What the admission plugin asks for: the kubelet then gets the extended lifetime (upstream)."""
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
LEGACY_TYPE = "kubernetes.io/service-account-token"
ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"
ACCOUNT_UID_ANNOTATION = "kubernetes.io/service-account.uid"
DEFAULT_ACCOUNT_ATTEMPTS = 10
MANAGER = "k3py-serviceaccounts"
RETRY_DELAY = 1.0


def _lookup(store: ObjectStore, plural: str) -> Resource:
    resource = store.registry.lookup("", "v1", plural)
    assert resource is not None, f"core/v1 {plural} is required"
    return resource


async def _create(store: ObjectStore, resource: Resource, namespace: str, obj: Obj) -> None:
    try:
        await store.create(resource, namespace, obj, WriteOptions(field_manager=MANAGER))
    except errors.ApiError as exc:
        if exc.code not in (409, 403, 404):  # exists, namespace terminating, namespace gone
            raise


class NamespaceDefaults:
    """Keeps the default ServiceAccount and the root CA ConfigMap in every namespace."""

    def __init__(self, store: ObjectStore, ca_pem: str) -> None:
        self.store = store
        self.ca_pem = ca_pem
        self.namespaces = _lookup(store, "namespaces")
        self.accounts = _lookup(store, "serviceaccounts")
        self.configmaps = _lookup(store, "configmaps")

    async def run(self) -> None:
        """Until cancelled (a supervised task)."""
        pending: set[str] = set()
        wake = asyncio.Event()
        caches = (
            ObjectCache(self.store, self.namespaces),
            ObjectCache(self.store, self.accounts, f"metadata.name={DEFAULT_ACCOUNT}"),
            ObjectCache(self.store, self.configmaps, f"metadata.name={ROOT_CA}"),
        )
        namespaces, accounts, configmaps = caches

        def namespace_changed(obj: Obj | None) -> None:
            pending.update(
                [obj["metadata"]["name"]] if obj else (o["metadata"]["name"] for o in namespaces.objects())
            )
            wake.set()

        def content_changed(obj: Obj | None) -> None:
            if obj is not None:
                pending.add(obj["metadata"].get("namespace", ""))
                wake.set()

        namespaces.subscribe(namespace_changed)
        accounts.subscribe(content_changed)
        configmaps.subscribe(content_changed)
        try:
            for cache in caches:
                await cache.start()
            while True:
                await wake.wait()
                wake.clear()
                todo = sorted(pending)
                pending.clear()
                for name in todo:
                    namespace = namespaces.get("", name)
                    if namespace is None or (namespace.get("metadata") or {}).get("deletionTimestamp"):
                        continue
                    account, configmap = accounts.get(name, DEFAULT_ACCOUNT), configmaps.get(name, ROOT_CA)
                    try:
                        await self.reconcile(name, account, configmap)
                    except errors.ApiError as exc:
                        log.warning("namespace %s defaults: %s", name, exc)
                        pending.add(name)
                if pending:
                    await asyncio.sleep(RETRY_DELAY)
                    wake.set()
        finally:
            for cache in caches:
                await cache.stop()

    async def reconcile(self, namespace: str, account: Obj | None, configmap: Obj | None) -> None:
        if account is None:
            await _create(self.store, self.accounts, namespace, {"metadata": {"name": DEFAULT_ACCOUNT}})
        wanted = {"ca.crt": self.ca_pem}
        if configmap is None:
            body = {
                "metadata": {
                    "name": ROOT_CA,
                    "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
                },
                "data": wanted,
            }
            await _create(self.store, self.configmaps, namespace, body)
        elif configmap.get("data") != wanted or configmap.get("binaryData"):

            def change(current: Obj) -> Obj:
                annotations = current["metadata"].setdefault("annotations", {})
                annotations["kubernetes.io/description"] = ROOT_CA_DESCRIPTION
                return {**{k: v for k, v in current.items() if k != "binaryData"}, "data": wanted}

            await self.store.guaranteed_update(
                self.configmaps, namespace, ROOT_CA, change, WriteOptions(field_manager=MANAGER)
            )


class ServiceAccountAdmission:
    """The pod-creation admission step (see the module docstring); an ``Admission``."""

    def __init__(self, store: ObjectStore, pause: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.store = store
        self.accounts = _lookup(store, "serviceaccounts")
        self.pause = pause

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        if res.group or res.plural != "pods" or old is not None:
            return
        meta = obj.get("metadata") or {}
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            _check_mirror(obj)  # a static pod's mirror: the kubelet's, with no account or secrets
            return
        spec = obj.setdefault("spec", {})
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_ACCOUNT
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        account = await self._account(namespace, name)
        if account is None:
            raise errors.ApiError(
                403,
                "Forbidden",
                f'pods "{meta.get("name") or ""}" is forbidden: error looking up service account '
                f'{namespace}/{name}: serviceaccount "{name}" not found',
                {"name": str(meta.get("name") or ""), "kind": "pods"},
            )
        if _automount(spec, account):
            mount_token(spec)

    async def _account(self, namespace: str, name: str) -> Obj | None:
        attempts = DEFAULT_ACCOUNT_ATTEMPTS if name == DEFAULT_ACCOUNT else 1
        for attempt in range(attempts):
            if attempt:
                await self.pause(random.uniform(0.1, 0.2))
            found = await self.store.find(self.accounts, namespace, name)
            if found is not None:
                return found
        return None


def _check_mirror(pod: Obj) -> None:
    """Upstream's rules for mirror pods: no service account, no secrets, no token projections."""
    spec = pod.get("spec") or {}
    name = str((pod.get("metadata") or {}).get("name") or "")
    why = ""
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        why = "a mirror pod may not reference service accounts"
    elif any(kind == "secret" for kind, _ in references(pod)):
        why = "a mirror pod may not reference secrets"
    elif any(
        "serviceAccountToken" in source
        for volume in spec.get("volumes") or []
        for source in ((volume.get("projected") or {}).get("sources") or [])
    ):
        why = "a mirror pod may not use ServiceAccountToken volume projections"
    if why:
        raise errors.ApiError(
            403, "Forbidden", f'pods "{name}" is forbidden: {why}', {"name": name, "kind": "pods"}
        )


def _automount(spec: Obj, account: Obj) -> bool:
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    return account.get("automountServiceAccountToken") is not False


def mount_token(spec: Obj) -> None:
    """Add the projected token volume and mount it in every container that has nothing there."""
    volumes = spec.setdefault("volumes", [])
    if any(isinstance(v, dict) and str(v.get("name", "")).startswith("kube-api-access-") for v in volumes):
        return
    suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    volume_name = f"kube-api-access-{suffix}"
    volumes.append(
        {
            "name": volume_name,
            "projected": {
                "defaultMode": 0o644,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
                    {"configMap": {"name": ROOT_CA, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            mounts = container.setdefault("volumeMounts", [])
            if any(m.get("mountPath") == TOKEN_PATH for m in mounts if isinstance(m, dict)):
                continue
            mounts.append({"name": volume_name, "readOnly": True, "mountPath": TOKEN_PATH})


class LegacyTokenSecrets:
    """Fills Secrets that ask for a legacy service-account token (see the module docstring)."""

    def __init__(self, store: ObjectStore, issuer: TokenIssuer, ca_pem: str) -> None:
        self.store = store
        self.issuer = issuer
        self.ca_pem = ca_pem
        self.secrets = _lookup(store, "secrets")
        self.accounts = _lookup(store, "serviceaccounts")

    async def run(self) -> None:
        """Until cancelled (a supervised task)."""
        secrets = ObjectCache(self.store, self.secrets, f"type={LEGACY_TYPE}")
        await each_change(secrets, self.fill, "token-secrets")

    async def fill(self, secret: Obj) -> None:
        meta = secret["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        account_name = (meta.get("annotations") or {}).get(ACCOUNT_NAME_ANNOTATION)
        if not account_name or meta.get("deletionTimestamp") or (secret.get("data") or {}).get("token"):
            return
        account = await self.store.find(self.accounts, namespace, account_name)
        if account is None:
            return  # upstream removes such a secret eventually; k3py leaves it unfilled
        uid = account["metadata"]["uid"]
        wanted_uid = (meta.get("annotations") or {}).get(ACCOUNT_UID_ANNOTATION)
        if wanted_uid and wanted_uid != uid:
            return  # meant for an earlier account of that name
        token = self.issuer.issue_legacy(namespace, account_name, uid, name)

        def change(current: Obj) -> Obj:
            if (current.get("data") or {}).get("token"):
                return current
            current["metadata"].setdefault("annotations", {})[ACCOUNT_UID_ANNOTATION] = uid
            data = dict(current.get("data") or {})
            data["token"] = _b64(token)
            data["ca.crt"] = _b64(self.ca_pem)
            data["namespace"] = _b64(namespace)
            return {**current, "data": data}

        await self.store.guaranteed_update(
            self.secrets, namespace, name, change, WriteOptions(field_manager=MANAGER)
        )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
