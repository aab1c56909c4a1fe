"""Converting custom resources between versions through their CRD's conversion webhook.

A CRD with ``spec.conversion.strategy: Webhook`` keeps each object in the version it was
written in (the storage version of the day). The object store calls :class:`WebhookConverter`
whenever objects must change version: a write in another version than the storage version
before it is stored, and every read (get, list, watch event) whose stored objects are in
another version than the one asked for. Objects already in the desired version are not sent;
all the others of one list go in one ConversionReview, as apiextensions-apiserver sends them.

The webhook is called through :class:`~k3py.apiserver.webhook_client.WebhookClient` (``url``
or ``service`` client config, ``caBundle``). Its answer is checked as upstream checks it: the
review's kind and uid, ``result.status: Success``, as many objects as were sent, each in the
desired apiVersion with the same kind, name, namespace and uid. A webhook may change only the
labels and annotations in an object's metadata: the rest is restored from the original. Every
failure is a 500 that names the kind and what went wrong
(``conversion webhook for stable.example.com/v1, Kind=CronTab failed: ...``).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any, Final

from k3py.api.crd.webhook_conversion import REVIEW_VERSIONS, review_version
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.webhook_client import CallError, WebhookClient

Obj = dict[str, Any]

TIMEOUT: Final = 30
"""Seconds a conversion webhook has to answer (kube-apiserver's conversion client timeout)."""
REVIEW_GROUP: Final = "apiextensions.k8s.io"
_CALL_PREFIX: Final = "failed to call webhook: "


class ConversionFailed(Exception):
    """The webhook could not convert: the message follows ``conversion webhook for <kind> ``."""


class WebhookConverter:
    """Converts objects of webhook-converted CRDs (the object store's ``conversion`` step)."""

    def __init__(self, client: WebhookClient, timeout: int = TIMEOUT) -> None:
        self.client = client
        self.timeout = timeout

    async def __call__(self, res: Resource, objs: list[Obj], api_version: str) -> list[Obj]:
        """``objs`` in ``api_version``: those already in it as they are, the others converted
        by one call to the webhook of ``res``'s CRD. Raises a 500 ``ApiError`` when it fails."""
        pending = [i for i, obj in enumerate(objs) if obj.get("apiVersion") != api_version]
        if not pending:
            return objs
        first = objs[pending[0]]
        kind = f"{first.get('apiVersion', '')}, Kind={first.get('kind', res.kind)}"
        webhook = res.custom.conversion_webhook if res.custom is not None else None
        try:
            converted = await self._convert(webhook or {}, [objs[i] for i in pending], api_version)
        except ConversionFailed as exc:
            raise errors.internal(f"conversion webhook for {kind} {exc}") from None
        out = list(objs)
        for i, obj in zip(pending, converted, strict=True):
            out[i] = obj
        return out

    async def _convert(self, webhook: Mapping[str, Any], objs: list[Obj], api_version: str) -> list[Obj]:
        version = review_version(webhook)
        if version is None:
            known = ", ".join(REVIEW_VERSIONS)
            raise ConversionFailed(
                f"failed: webhook does not accept known ConversionReview versions ({known})"
            )
        uid = str(uuid.uuid4())
        review = {
            "apiVersion": f"{REVIEW_GROUP}/{version}",
            "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": api_version, "objects": objs},
        }
        client_config = webhook.get("clientConfig")
        try:
            answer = await self.client.call(
                dict(client_config) if isinstance(client_config, Mapping) else {}, review, self.timeout
            )
        except CallError as exc:
            raise ConversionFailed(f"failed: {str(exc).removeprefix(_CALL_PREFIX)}") from None
        try:
            converted = _converted_objects(answer, version, uid)
        except ValueError as exc:
            raise ConversionFailed(f"returned invalid response: {exc}") from None
        if len(converted) != len(objs):
            raise ConversionFailed(f"returned {len(converted)} objects, expected {len(objs)}")
        return [
            _checked(original, obj, api_version, i)
            for i, (original, obj) in enumerate(zip(objs, converted, strict=True))
        ]


def _converted_objects(answer: Obj, version: str, uid: str) -> list[Any]:
    """``response.convertedObjects`` of a successful ConversionReview; ValueError says what is wrong."""
    expected = f"{REVIEW_GROUP}/{version}, Kind=ConversionReview"
    got = f"{answer.get('apiVersion', '')}, Kind={answer.get('kind', '')}"
    if got != expected:
        raise ValueError(f"expected webhook response of {expected}, got {got}")
    response = answer.get("response")
    if not isinstance(response, dict):
        raise ValueError("no response provided")
    if response.get("uid") != uid:
        raise ValueError(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
    result = response.get("result")
    result = result if isinstance(result, dict) else {}
    if result.get("status") != "Success":
        message = result.get("message")
        if message:
            raise ValueError(str(message))
        raise ValueError(f"response.result.status was '{result.get('status', '')}', not 'Success'")
    converted = response.get("convertedObjects")
    return converted if isinstance(converted, list) else []


def _checked(original: Obj, converted: Any, api_version: str, index: int) -> Obj:
    """``converted`` once it is known to be ``original`` in ``api_version``, with the original's
    metadata except its labels and annotations."""
    where = f"at index {index}"
    if not isinstance(converted, dict):
        raise ConversionFailed(f"returned invalid converted object {where}: not an object")
    if (got := converted.get("apiVersion")) != api_version:
        raise ConversionFailed(
            f"returned invalid converted object {where}: invalid groupVersion "
            f"(expected {api_version}, received {got or ''})"
        )
    if (got := converted.get("kind")) != original.get("kind"):
        raise ConversionFailed(
            f"returned invalid converted object {where}: invalid kind "
            f"(expected {original.get('kind')}, received {got or ''})"
        )
    meta, new_meta = _meta(original), converted.get("metadata")
    if not isinstance(new_meta, dict):
        raise ConversionFailed(
            f"returned invalid metadata in object {where}: missing metadata in converted object"
        )
    for field, label in (("name", "name"), ("namespace", "namespace"), ("uid", "UID")):
        if (want := meta.get(field, "")) != (got := new_meta.get(field, "")):
            raise ConversionFailed(
                f"returned invalid converted object {where}: must have the same {label}: {want} != {got}"
            )
    restored = copy.deepcopy(meta)
    for field in ("labels", "annotations"):
        value = new_meta.get(field)
        if value is None:
            restored.pop(field, None)
        elif _string_map(value):
            restored[field] = dict(value)
        else:
            raise ConversionFailed(
                f"returned invalid metadata in object {where}: invalid metadata.{field} in converted object"
            )
    return {**converted, "metadata": restored}


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
