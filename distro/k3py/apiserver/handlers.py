"""HTTP handlers of the Kubernetes REST API: one per verb, all resources alike.

The handlers parse the URL, query and body, call the generic store and encode what it
returns in the representation the client asked for (JSON, YAML, Table, PartialObjectMetadata).
Every failure is an ``ApiError`` answered as a ``Status`` by the application's middleware.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import yaml
from aiohttp import web

from k3py.api import apply as ssa
from k3py.api import printers, protobuf
from k3py.api.crd import columns
from k3py.api.crd.model import schema_node
from k3py.api.resources import Registry, Resource
from k3py.api.validation import Cause
from k3py.apiserver import discovery, errors, fieldvalidation, openapi_proto
from k3py.apiserver.authn import ANONYMOUS, REQUEST_USER
from k3py.apiserver.generic import (
    DeleteOptions,
    ListOptions,
    Obj,
    ObjectStore,
    WriteOptions,
    bookmark,
)
from k3py.apiserver.openapi import OpenAPI
from k3py.apiserver.patching import apply_patch
from k3py.apiserver.request import MediaType, Target, negotiate, parse_path
from k3py.apiserver.reviews import Review
from k3py.apiserver.scale import scale_of, with_replicas
from k3py.apiserver.tokens import TokenRequests

MAX_BODY = 3 * 1024 * 1024
CUSTOM_PATCH_TYPES = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)
"""Custom resources have no strategic merge patch (no patch strategies to merge by)."""
BOOKMARK_INTERVAL = 30.0
MIN_WATCH_TIMEOUT = 1800
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = {
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
}


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def _int(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f"invalid value for {name}: {raw!r}") from None


def dumps(obj: Any, media: MediaType | None = None) -> tuple[bytes, str]:
    if media is not None and media.yaml:
        return yaml.safe_dump(obj, sort_keys=False).encode(), "application/yaml"
    return orjson.dumps(obj), JSON


def respond(
    obj: Any, status: int = 200, media: MediaType | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body, content_type = dumps(obj, media)
    return web.Response(body=body, status=status, content_type=content_type, headers=headers)


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.too_large(MAX_BODY)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.too_large(MAX_BODY)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_subresource_body(
    request: web.Request, namespace: str, kind: str, api_versions: tuple[str, ...]
) -> dict[str, Any]:
    """The body a subresource POST carries (a Binding, an Eviction): a JSON object whose kind,
    apiVersion (the first of ``api_versions`` is the one named in errors) and namespace, when
    given, are the request's, as upstream's decoding checks them."""
    raw = await read_body(request)
    body = decode_body(raw, request.headers.get("Content-Type", "application/json"))
    if not isinstance(body, dict):
        raise errors.bad_request("Object 'Kind' is missing in the request body: expected a JSON object")
    given_kind, api_version = body.get("kind"), body.get("apiVersion")
    if given_kind and given_kind != kind:
        raise errors.bad_request(
            f"the kind in the data ({given_kind}) does not match the expected kind ({kind})"
        )
    if api_version and api_version not in api_versions:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({api_versions[0]})"
        )
    meta = body.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise errors.bad_request("metadata: expected an object")
    if isinstance(meta, dict) and meta.get("namespace") not in (None, "", namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return body


def decode_body(raw: bytes, content_type: str) -> Any:
    """JSON or YAML, by Content-Type; a clear 400 for anything malformed."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if not raw.strip():
        raise errors.bad_request("the body of the request was empty")
    if mime in ("application/yaml", "application/apply-patch+yaml"):
        try:
            return json_of_yaml(yaml.safe_load(raw))
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error converting YAML to JSON: {str(exc).splitlines()[0]}") from None
        except (RecursionError, ValueError) as exc:
            raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None
    if mime == PROTOBUF:
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as exc:
            raise errors.bad_request(f"the body of the request is not valid protobuf: {exc}") from None
    if mime in ("", "application/json", "*/*") or mime.endswith("+json"):
        try:
            value = orjson.loads(raw)
            orjson.dumps(value)  # what cannot be written back (nesting deeper than orjson's limit) is refused
            return value
        except (orjson.JSONDecodeError, orjson.JSONEncodeError) as exc:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
    raise errors.unsupported_media_type(content_type)


INT64 = range(-(2**63), 2**63)


def json_of_yaml(value: Any, depth: int = 0) -> Any:
    """YAML's values as JSON has them, as sigs.k8s.io/yaml converts: keys become strings, binary
    becomes base64, integers beyond int64 become floats; NaN and infinities are refused."""
    if depth > 200:
        raise ValueError("the document is nested too deeply")
    if isinstance(value, dict):
        return {_yaml_key(k): json_of_yaml(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [json_of_yaml(v, depth + 1) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if value in INT64 else float(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"unsupported value: {value}")
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return orjson.loads(orjson.dumps(value))  # dates and times: RFC 3339 text


def _yaml_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _object_body(value: Any) -> Obj:
    if not isinstance(value, dict):
        raise errors.bad_request("Object 'Kind' is missing in the request body: expected a JSON object")
    return value


class Api:
    def __init__(
        self,
        store: ObjectStore,
        registry: Registry,
        reviews: Mapping[tuple[str, str], Review] | None = None,
        token_requests: TokenRequests | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.openapi = OpenAPI(registry)
        self.reviews = dict(reviews or {})
        self.token_requests = token_requests

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/version", self.version),
            web.get("/openapi/v2", self.openapi_v2),
            web.get("/openapi/v3", self.openapi_v3_index),
            web.get("/openapi/v3/{path:.+}", self.openapi_v3),
            web.get("/api", self.core_discovery),
            web.get("/api/", self.core_discovery),  # the trailing slash is the same document upstream
            web.get("/apis", self.groups_discovery),
            web.get("/apis/", self.groups_discovery),
            web.route("*", "/api/{version}", self.group_version_discovery_core),
            web.route("*", "/api/{version}/", self.group_version_discovery_core),
            web.route("*", "/apis/{group}", self.group_discovery),
            web.route("*", "/apis/{group}/", self.group_discovery),
            web.route("*", "/apis/{group}/{version}", self.group_version_discovery),
            web.route("*", "/apis/{group}/{version}/", self.group_version_discovery),
            web.route("*", "/api/{version}/{rest:.+}", self.core_resource),
            web.route("*", "/apis/{group}/{version}/{rest:.+}", self.group_resource),
        ]

    # -- discovery --------------------------------------------------------------------------

    async def version(self, request: web.Request) -> web.Response:
        return respond(discovery.version_info())

    async def openapi_v2(self, request: web.Request) -> web.Response:
        """JSON or gnostic protobuf, as the Accept header asks; one ETag for both, as kube-openapi."""
        accept = request.headers.get("Accept", "")
        media = self._openapi_v2_media(accept or "*/*")
        if media is None:
            raise errors.not_acceptable(accept)
        document = self.openapi.v2_document()
        etag = openapi_proto.etag(document)
        headers = {"ETag": etag, "Vary": "Accept"}
        if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
            return web.Response(status=304, headers=headers)
        # The first protobuf encoding takes a while (0.2 s on amd64): off the loop, then cached.
        body = document if media == JSON else await asyncio.to_thread(openapi_proto.protobuf, document)
        return web.Response(body=body, headers={**headers, "Content-Type": media})

    @staticmethod
    def _openapi_v2_media(accept: str) -> str | None:
        """The Content-Type answering ``accept``: kube-openapi's choice (goautoneg's clause order)."""
        offers = [(JSON, JSON), *((media, openapi_proto.CONTENT_TYPE) for media in openapi_proto.ACCEPTED)]
        clauses: list[tuple[float, bool, bool, int, str, str]] = []
        for part in accept.split(","):
            media, *params = (piece.strip() for piece in part.split(";"))
            kind, slash, subtype = (text.strip().lower() for text in media.partition("/"))
            if not slash and kind != "*":
                continue
            quality, extra = 1.0, 0
            for key, _, value in (param.partition("=") for param in params if "=" in param):
                if key.strip() != "q":
                    extra += 1
                    continue
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            clauses.append((-quality, kind == "*", (subtype or "*") == "*", -extra, kind, subtype or "*"))
        for *_, kind, subtype in sorted(clauses, key=lambda clause: clause[:4]):
            for offered, content_type in offers:
                offered_kind, _, offered_subtype = offered.partition("/")
                if kind in (offered_kind, "*") and subtype in (offered_subtype, "*"):
                    return content_type
        return None

    async def openapi_v3_index(self, request: web.Request) -> web.Response:
        return respond(self.openapi.v3_index())

    async def openapi_v3(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        wanted = {self.openapi.path_of(g, v): (g, v) for g, v in self.openapi.group_versions()}.get(path)
        if wanted is None:
            raise errors.not_found_path(request.path)
        body, digest = self.openapi.v3_document(*wanted)
        etag = f'"{digest}"'
        given = request.query.get("hash")
        if given is not None and given != digest:
            raise web.HTTPMovedPermanently(f"/openapi/v3/{path}?hash={digest}")
        headers = {"ETag": etag, "Cache-Control": "public, immutable" if given else "no-cache, private"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=JSON, headers=headers)

    async def core_discovery(self, request: web.Request) -> web.Response:
        if _wants_aggregated(request):
            return _aggregated(discovery.aggregated(self.registry, core=True))
        return respond(discovery.core_versions(f"{request.host}"))

    async def groups_discovery(self, request: web.Request) -> web.Response:
        if _wants_aggregated(request):
            return _aggregated(discovery.aggregated(self.registry, core=False))
        return respond(discovery.group_list(self.registry))

    async def group_discovery(self, request: web.Request) -> web.Response:
        _only_get(request)
        doc = discovery.group(self.registry, request.match_info["group"])
        if doc is None:
            raise errors.not_found_path(request.path)
        return respond(doc)

    async def group_version_discovery_core(self, request: web.Request) -> web.Response:
        _only_get(request)
        version = request.match_info["version"]
        if version not in self.registry.versions(""):
            raise errors.not_found_path(request.path)
        return respond(discovery.resource_list(self.registry, "", version))

    async def group_version_discovery(self, request: web.Request) -> web.Response:
        _only_get(request)
        group, version = request.match_info["group"], request.match_info["version"]
        if version not in self.registry.versions(group):
            raise errors.not_found_path(request.path)
        return respond(discovery.resource_list(self.registry, group, version))

    # -- resources --------------------------------------------------------------------------

    async def core_resource(self, request: web.Request) -> web.StreamResponse:
        return await self._resource(request, "", request.match_info["version"])

    async def group_resource(self, request: web.Request) -> web.StreamResponse:
        return await self._resource(request, request.match_info["group"], request.match_info["version"])

    async def _resource(self, request: web.Request, group: str, version: str) -> web.StreamResponse:
        if version not in self.registry.versions(group):
            raise errors.not_found_path(request.path)
        target = parse_path(self.registry, group, version, request.match_info["rest"].rstrip("/").split("/"))
        verb = _verb(request.method, target, watch=_bool(request.query.get("watch")))
        # A subresource's verbs are its own (status, scale: get, update, patch).
        sub = target.subresource
        allowed = discovery.SUBRESOURCE_VERBS[sub] if sub else target.resource.verbs
        if verb is None or verb not in allowed:
            raise errors.method_not_allowed(request.method, target.resource)
        custom = target.resource.custom
        if custom is not None and custom.terminating and verb == "create":
            raise errors.ApiError(
                405,
                "MethodNotAllowed",
                "create not allowed while custom resource definition is terminating",
                {"group": group, "kind": target.resource.plural},
            )
        if custom is None and (review := self.reviews.get((group, target.resource.plural))):
            return await self._review(request, target, review)
        if sub == "token":
            return await self._token_request(request, target)
        handler = {
            "get": self.get,
            "watch": self.watch,
            "list": self.list,
            "create": self.create,
            "update": self.update,
            "patch": self.patch,
            "delete": self.delete,
            "deletecollection": self.delete_collection,
        }[verb]
        return await handler(request, target)

    async def _review(self, request: web.Request, target: Target, review: Review) -> web.Response:
        """A create-only review: answered from the request, never stored.

        A review has no table or metadata-only form: asking for one is 406, as upstream answers.
        """
        media = negotiate(request.headers.get("Accept", ""), allowed_as=set())
        raw = await read_body(request)
        body = _object_body(decode_body(raw, request.headers.get("Content-Type", JSON)))
        self.store.check_type(target.resource, body)
        answer = await review(request.get(REQUEST_USER, ANONYMOUS), target.namespace, body)
        return respond(answer, status=201, media=media)

    async def _token_request(self, request: web.Request, target: Target) -> web.Response:
        if self.token_requests is None:
            raise errors.not_found_path(request.path)
        media = negotiate(request.headers.get("Accept", ""))
        raw = await read_body(request)
        body = _object_body(decode_body(raw, request.headers.get("Content-Type", JSON)))
        answer = await self.token_requests.create(
            target.resource, target.namespace, target.name, body, request.get(REQUEST_USER)
        )
        return respond(answer, status=201, media=media)

    async def get(self, request: web.Request, target: Target) -> web.Response:
        media = negotiate(request.headers.get("Accept", ""))
        obj = await self.store.get(
            target.resource, target.namespace, target.name, request.query.get("resourceVersion", "")
        )
        if target.subresource == "scale":
            return respond(scale_of(target.resource, obj), media=media)
        return respond(self._render(target.resource, obj, media, request, single=True), media=media)

    async def list(self, request: web.Request, target: Target) -> web.Response:
        media = negotiate(request.headers.get("Accept", ""))
        result = await self.store.list(target.resource, target.namespace, _list_options(request))
        return respond(self._render(target.resource, result, media, request, single=False), media=media)

    async def create(self, request: web.Request, target: Target) -> web.Response:
        media = negotiate(request.headers.get("Accept", ""))
        if target.subresource:
            raise errors.method_not_allowed("create", target.resource)
        opts = _write_options(request)
        raw = await read_body(request)
        body = _object_body(decode_body(raw, request.headers.get("Content-Type", JSON)))
        warnings = _check_fields(request, target.resource, body, raw)
        obj = await self.store.create(target.resource, target.namespace, body, opts)
        rendered = self._render(target.resource, obj, media, request, single=True)
        return respond(rendered, status=201, media=media, headers=warnings)

    async def update(self, request: web.Request, target: Target) -> web.Response:
        media = negotiate(request.headers.get("Accept", ""))
        opts = _write_options(request)
        raw = await read_body(request)
        body = _object_body(decode_body(raw, request.headers.get("Content-Type", JSON)))
        res = target.resource
        if target.subresource == "scale":
            obj = await self._update_scale(target, body, opts)
            return respond(scale_of(res, obj), media=media)
        warnings = _check_fields(request, res, body, raw)
        obj = await self.store.update(res, target.namespace, target.name, body, opts, target.subresource)
        return respond(self._render(res, obj, media, request, single=True), media=media, headers=warnings)

    async def patch(self, request: web.Request, target: Target) -> web.Response:
        media = negotiate(request.headers.get("Accept", ""))
        content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type not in PATCH_TYPES or content_type == "application/apply-patch+cbor":
            raise errors.unsupported_media_type(content_type)
        if content_type == "application/strategic-merge-patch+json" and target.resource.custom is not None:
            raise errors.ApiError(415, "UnsupportedMediaType", CUSTOM_PATCH_TYPES)
        raw = await read_body(request)
        patch_doc = decode_body(raw, content_type)
        res = target.resource
        opts = _write_options(request)
        if content_type == "application/apply-patch+yaml":
            notes = _check_apply_yaml(request, raw)
            obj, created = await self._apply(request, target, patch_doc, raw)
            rendered = self._render(res, obj, media, request, single=True)
            return respond(rendered, 201 if created else 200, media=media, headers=notes)
        if target.subresource == "scale":

            def change_scale(current: Obj) -> Obj:
                scale = apply_patch(content_type, scale_of(res, current), patch_doc, None)
                return with_replicas(res, current, scale)

            obj = await self.store.guaranteed_update(
                res, target.namespace, target.name, change_scale, opts, "scale"
            )
            return respond(scale_of(res, obj), media=media)

        warnings: dict[str, str] = {}

        def change(current: Obj) -> Obj:
            patched = apply_patch(content_type, current, patch_doc, res)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch did not produce an object")
            warnings.update(_check_fields(request, res, patched, None))
            return patched

        obj = await self.store.guaranteed_update(
            res, target.namespace, target.name, change, opts, target.subresource
        )
        return respond(self._render(res, obj, media, request, single=True), media=media, headers=warnings)

    async def delete(self, request: web.Request, target: Target) -> web.Response:
        media = negotiate(request.headers.get("Accept", ""))
        opts = await _delete_options(request)
        obj, deleted = await self.store.delete(target.resource, target.namespace, target.name, opts)
        if deleted and target.resource.plural not in _RETURN_DELETED:
            meta = obj.get("metadata", {})
            status: Obj = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": target.name, "kind": target.resource.plural, "uid": meta.get("uid", "")},
            }
            if target.resource.group:
                status["details"]["group"] = target.resource.group
            return respond(status, media=media)
        # A delete left pending (finalizers, grace, a terminating namespace) answers 200; upstream
        # keeps 202 for the one case it always did: dependents explicitly not orphaned.
        return respond(obj, status=202 if not deleted and opts.cascade_asked else 200, media=media)

    async def delete_collection(self, request: web.Request, target: Target) -> web.Response:
        media = negotiate(request.headers.get("Accept", ""))
        listed = await self.store.delete_collection(
            target.resource, target.namespace, _list_options(request), await _delete_options(request)
        )
        return respond(listed, media=media)

    async def watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        media = negotiate(request.headers.get("Accept", ""))
        res = target.resource
        opts = _list_options(request)
        if target.name:
            selector = f"metadata.name={target.name}"
            opts = ListOptions(
                opts.label_selector,
                ",".join(s for s in (opts.field_selector, selector) if s),
                0,
                "",
                opts.resource_version,
                opts.resource_version_match,
            )
        send_initial = _bool(request.query.get("sendInitialEvents"))
        bookmarks = _bool(request.query.get("allowWatchBookmarks"))
        if send_initial and not bookmarks:
            raise errors.invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                [
                    Cause(
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                        "allowWatchBookmarks",
                    )
                ],
            )
        timeout = _int(request.query, "timeoutSeconds")
        if timeout is None:
            timeout = random.randint(MIN_WATCH_TIMEOUT, 2 * MIN_WATCH_TIMEOUT)
        try:
            # shared: the objects are only written out here, so watches may share them
            events = await self.store.watch(
                res, target.namespace, opts, send_initial=send_initial, shared=True
            )
        except errors.ApiError as exc:
            if exc.code != 410:
                raise
            return await _single_error_stream(request, exc)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": JSON, "Transfer-Encoding": "chunked"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        table_state = {"first": True}
        last_rv = "0"

        async def send(kind: str, obj: Obj) -> None:
            nonlocal last_rv
            last_rv = obj.get("metadata", {}).get("resourceVersion", last_rv)
            out: Obj = obj
            if media.as_kind == "Table" and kind != "BOOKMARK":
                out = printers.table(
                    res.name,
                    [obj],
                    now=datetime.now(UTC),
                    include_object=_include_object(request),
                    printer=_printer(res),
                )
                if not table_state["first"]:
                    out["columnDefinitions"] = []
                table_state["first"] = False
            elif media.as_kind.startswith("PartialObjectMetadata") and kind != "BOOKMARK":
                out = _partial(obj)
            await response.write(orjson.dumps({"type": kind, "object": out}) + b"\n")

        handler = asyncio.current_task()
        if handler is not None:
            self.store.watch_handlers.add(handler)
        pending: asyncio.Future[tuple[str, Obj]] | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    # The next event is awaited without a timeout of its own: cancelling it would
                    # end the stream. A quiet watch gets a bookmark every BOOKMARK_INTERVAL.
                    if pending is None:
                        pending = asyncio.ensure_future(anext(events))
                    done, _ = await asyncio.wait({pending}, timeout=BOOKMARK_INTERVAL if bookmarks else None)
                    if not done:
                        # Everything the watch selects up to its progress has been sent.
                        latest = max(int(last_rv) if last_rv.isdigit() else 0, events.progress.revision())
                        await send("BOOKMARK", bookmark(res, latest))
                        continue
                    next_event, pending = pending, None
                    try:
                        kind, obj = next_event.result()
                    except StopAsyncIteration:
                        break
                    if kind == "BOOKMARK" and not bookmarks:
                        continue
                    await send(kind, obj)
        except TimeoutError:
            pass
        except errors.ApiError as exc:
            with contextlib.suppress(ConnectionError):
                await response.write(orjson.dumps({"type": "ERROR", "object": exc.status()}) + b"\n")
        except ConnectionError:
            return response
        finally:
            if handler is not None:
                self.store.watch_handlers.discard(handler)
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            with contextlib.suppress(Exception):
                await events.aclose()
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    # -- helpers ----------------------------------------------------------------------------

    def _render(
        self, res: Resource, obj: Obj, media: MediaType, request: web.Request, *, single: bool
    ) -> Obj:
        if media.as_kind == "Table":
            items = [obj] if single else obj["items"]
            return printers.table(
                res.name,
                items,
                now=datetime.now(UTC),
                include_object=_include_object(request),
                list_meta=None if single else obj["metadata"],
                printer=_printer(res),
            )
        if media.as_kind == "PartialObjectMetadata":
            if not single:
                raise errors.not_acceptable(request.headers.get("Accept", ""))
            return _partial(obj)
        if media.as_kind == "PartialObjectMetadataList":
            if single:
                raise errors.not_acceptable(request.headers.get("Accept", ""))
            return {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
                "items": [_partial(item) for item in obj["items"]],
            }
        return obj

    async def _apply(self, request: web.Request, target: Target, config: Any, raw: bytes) -> tuple[Obj, bool]:
        """Server-side apply: create the object if missing (True: created, answered 201 as
        upstream), else merge by field ownership."""
        res = target.resource
        manager = request.query.get("fieldManager", "")
        if not manager:
            raise errors.bad_request("PATCH apply requires fieldManager to be set")
        if not isinstance(config, dict):
            raise errors.bad_request("apply patch must be a YAML or JSON object")
        force = _bool(request.query.get("force"))
        opts = replace(_write_options(request), applied=True)
        # unknown fields are the typed patch object's errors (.x: field not declared in schema)
        meta = config.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if name not in (None, target.name):
            raise errors.bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({target.name})"
            )
        node = schema_node(res)

        def merge(live: Obj | None) -> Obj:
            try:
                return ssa.apply(
                    live,
                    config,
                    manager=manager,
                    force=force,
                    node=node,
                    api_version=res.api_version,
                    now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    subresource=target.subresource,
                )
            except ssa.ApplyConflict as exc:
                details = {"name": target.name, "kind": res.plural, "causes": exc.causes}
                raise errors.ApiError(409, "Conflict", str(exc), details) from None
            except ssa.ApplyError as exc:
                raise errors.bad_request(str(exc)) from None

        try:
            await self.store.get(res, target.namespace, target.name)
        except errors.ApiError as exc:
            if exc.code != 404 or target.subresource:
                raise
            created = merge(None)
            created.setdefault("metadata", {})["name"] = target.name
            try:
                return await self.store.create(res, target.namespace, created, opts), True
            except errors.ApiError as again:
                if again.code != 409:
                    raise  # someone created it meanwhile: apply to theirs below
        updated = await self.store.guaranteed_update(
            res, target.namespace, target.name, merge, opts, target.subresource
        )
        return updated, False

    async def _update_scale(self, target: Target, body: Obj, opts: WriteOptions) -> Obj:
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        wanted_rv = str((body.get("metadata") or {}).get("resourceVersion") or "")

        def change(current: Obj) -> Obj:
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise errors.conflict(target.resource, target.name, errors.STALE)
            return with_replicas(target.resource, current, {"spec": spec})

        return await self.store.guaranteed_update(
            target.resource, target.namespace, target.name, change, opts, "scale"
        )


_RETURN_DELETED = {"pods", "namespaces", "persistentvolumes", "persistentvolumeclaims", "nodes"}


def _partial(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def _printer(res: Resource) -> printers.Printer | None:
    """A custom resource's Table printer (its CRD's columns); None for a built-in's own."""
    return columns.printer(res.custom) if res.custom is not None else None


def _include_object(request: web.Request) -> str:
    value = request.query.get("includeObject", "Metadata")
    if value not in ("None", "Metadata", "Object"):
        raise errors.bad_request(f"invalid includeObject: {value!r}")
    return value


def _check_fields(request: web.Request, res: Resource, obj: Obj, raw: bytes | None) -> dict[str, str]:
    """Apply ``fieldValidation``: raise for Strict, return ``Warning`` headers for Warn."""
    mode = request.query.get("fieldValidation") or "Warn"
    if mode == "Ignore":
        fieldvalidation.unknown_fields(res, obj, drop=True)
        return {}
    content_type = request.headers.get("Content-Type", JSON)
    is_json = "json" in content_type or not content_type
    found = fieldvalidation.problems(res, obj, raw if is_json else None)
    notes = _unenforced(res, raw)
    if not found:
        return (
            {"Warning": ", ".join(f"299 - {orjson.dumps(note).decode()}" for note in notes)} if notes else {}
        )
    if mode == "Strict":
        raise errors.bad_request(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"strict decoding error: {', '.join(found)}"
        )
    return {"Warning": ", ".join(f"299 - {orjson.dumps(message).decode()}" for message in [*found, *notes])}


def _check_apply_yaml(request: web.Request, raw: bytes) -> dict[str, str]:
    """An apply patch's repeated keys: refused under ``Strict``, ``Warning`` headers under
    ``Warn`` (upstream decodes the patch strictly once, with go-yaml)."""
    mode = request.query.get("fieldValidation") or "Warn"
    found = fieldvalidation.yaml_duplicates(raw) if mode != "Ignore" else []
    if not found:
        return {}
    detail = "yaml: unmarshal errors:\n  " + "\n  ".join(found)
    if mode == "Strict":
        raise errors.bad_request(f"error strict decoding YAML: error converting YAML to JSON: {detail}")
    return {"Warning": ", ".join(f"299 - {orjson.dumps(message).decode()}" for message in found)}


UNENFORCED_CEL = (
    "x-kubernetes-validations rules are accepted but not evaluated by k3py: "
    "objects that break them are stored"
)


def _unenforced(res: Resource, raw: bytes | None) -> list[str]:
    """What a CustomResourceDefinition asks for that k3py does not enforce, said as a warning."""
    if (
        res.custom is None
        and res.group == "apiextensions.k8s.io"
        and raw
        and b"x-kubernetes-validations" in raw
    ):
        return [UNENFORCED_CEL]
    return []


def _list_options(request: web.Request) -> ListOptions:
    q = request.query
    limit = _int(q, "limit") or 0
    return ListOptions(
        label_selector=q.get("labelSelector", ""),
        field_selector=q.get("fieldSelector", ""),
        limit=max(0, limit),
        continue_token=q.get("continue", ""),
        resource_version=q.get("resourceVersion", ""),
        resource_version_match=q.get("resourceVersionMatch", ""),
    )


def _write_options(request: web.Request) -> WriteOptions:
    dry = request.query.getall("dryRun", [])
    for value in dry:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    validation = request.query.get("fieldValidation", "")
    if validation not in ("", "Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": '
            'supported values: "Ignore", "Strict", "Warn"'
        )
    return WriteOptions(dry_run=bool(dry), field_manager=_manager(request), user=request.get(REQUEST_USER))


def _manager(request: web.Request) -> str:
    """The fieldManager parameter, else the client's name from its User-Agent (as upstream)."""
    given = request.query.get("fieldManager", "")
    if len(given) > 128:
        raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
    if given:
        return given
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0][:128] if agent else "unknown"


def _verb(method: str, target: Target, *, watch: bool) -> str | None:
    """The Kubernetes verb of a request on a resource path (kube-apiserver's RequestInfo), if any.

    A namespaced resource's path without a namespace (``/api/v1/pods``) serves list and watch
    only, as kube-apiserver registers it: a DELETE there must not empty every namespace.
    """
    if target.resource.namespaced and not target.namespace and method != "GET":
        return None
    if method == "GET":  # a named GET is a get, watch=true or not, as upstream routes it
        return "get" if target.name else ("watch" if watch else "list")
    if method == "POST":
        return "create" if bool(target.name) == bool(target.subresource) else None
    if method in ("PUT", "PATCH"):
        return ("update" if method == "PUT" else "patch") if target.name else None
    if method == "DELETE":
        if not target.name:
            return "deletecollection"
        return None if target.subresource else "delete"
    return None


async def _delete_options(request: web.Request) -> DeleteOptions:
    body: Obj = {}
    raw = await read_body(request)
    if raw.strip():
        decoded = decode_body(raw, request.headers.get("Content-Type", JSON))
        if isinstance(decoded, dict):
            body = decoded
    q = request.query
    grace = _int(q, "gracePeriodSeconds")
    if grace is None and isinstance(body.get("gracePeriodSeconds"), int):
        grace = body["gracePeriodSeconds"]
    policy = q.get("propagationPolicy") or body.get("propagationPolicy") or ""
    if policy and policy not in ("Orphan", "Background", "Foreground"):
        raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
    if not policy and (_bool(q.get("orphanDependents")) or body.get("orphanDependents") is True):
        policy = "Orphan"
    orphan = q.get("orphanDependents") or body.get("orphanDependents")
    cascade_asked = orphan is False or (isinstance(orphan, str) and orphan.lower() == "false")
    pre = body.get("preconditions") or {}
    dry = q.getall("dryRun", []) or body.get("dryRun") or []
    return DeleteOptions(
        user=request.get(REQUEST_USER),
        dry_run=bool(dry),
        grace_period_seconds=grace,
        propagation_policy=str(policy),
        precondition_uid=str(pre.get("uid") or ""),
        precondition_resource_version=str(pre.get("resourceVersion") or ""),
        cascade_asked=cascade_asked,
    )


def _only_get(request: web.Request) -> None:
    if request.method != "GET":
        raise errors.method_not_allowed(request.method)


def _wants_aggregated(request: web.Request) -> bool:
    for media in request.headers.get("Accept", "").split(","):
        if "as=APIGroupDiscoveryList" in media and "v=v2" in media and "apidiscovery.k8s.io" in media:
            return True
    return False


def _aggregated(doc: Obj) -> web.Response:
    return web.Response(body=orjson.dumps(doc), headers={"Content-Type": discovery.AGGREGATED_V2})


async def _single_error_stream(request: web.Request, exc: errors.ApiError) -> web.StreamResponse:
    """A watch that cannot start (410) answers 200 with one ERROR event, as upstream does."""
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(orjson.dumps({"type": "ERROR", "object": exc.status()}) + b"\n")
    await response.write_eof()
    return response
