"""A small asynchronous client for the Kubernetes REST API, over HTTPS or the server's local socket.

Used by every component that talks to an API server: the ``k3py token`` command and the
agent over HTTPS, the controllers, the scheduler and the cluster DNS inside the server
process over its local socket (``RestClient.local``). Over HTTPS, credentials are a client
certificate or a bearer token, and the server is trusted through a CA bundle, or (only to
fetch that bundle, before a token's hash has been checked) not at all. On the local socket,
which only root can open, each request names the user it acts as in ``LOCAL_IDENTITY_HEADER``
and is authorized and admitted as that user, as over HTTPS. A failed request raises
:class:`ApiStatusError` carrying the server's ``Status`` (code, reason, message).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp
import orjson
import yaml

from k3py.pki.tls import load_pem_pair

Obj = dict[str, Any]
Body = Obj | list[Any]
"""A request body: an object, or a list (a JSON patch)."""
TIMEOUT = aiohttp.ClientTimeout(total=30)
WATCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
"""A watch stays open as long as the server keeps it (``timeoutSeconds``)."""
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


LOCAL_IDENTITY_HEADER = "K3py-Local-Identity"
"""On the server's local socket: the user a request acts as, ``{"user": ..., "groups": [...]}``."""


class ApiStatusError(Exception):
    """The server answered with an error ``Status`` (or could not be reached: code 0)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """How to trust the server and who to be."""

    ca_pem: bytes | None = None
    """The CA bundle to trust; None trusts any server (only to fetch the CA itself)."""
    cert_pem: bytes | None = field(default=None, repr=False)
    key_pem: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def ssl_context(self) -> ssl.SSLContext:
        if self.ca_pem is None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))
        if self.cert_pem is not None and self.key_pem is not None:
            load_pem_pair(context, self.cert_pem, self.key_pem)
        return context


@dataclass(frozen=True)
class LocalIdentity:
    """A client inside the server process: the server's local socket and who to be."""

    socket: Path
    user: str
    groups: tuple[str, ...] = ()

    def header(self) -> str:
        return json.dumps({"user": self.user, "groups": list(self.groups)})


@dataclass(frozen=True)
class Kubeconfig:
    server: str
    credentials: Credentials

    @classmethod
    def load(cls, path: Path) -> Kubeconfig:
        """The current context of a kubeconfig with embedded (``*-data``) credentials."""
        try:
            config = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read kubeconfig {path}: {exc}") from None
        try:
            context_name = config["current-context"]
            context = _named(config["contexts"], context_name)["context"]
            cluster = _named(config["clusters"], context["cluster"])["cluster"]
            user = _named(config["users"], context["user"])["user"]
            server = str(cluster["server"])
        except (KeyError, TypeError, LookupError) as exc:
            raise ValueError(f"kubeconfig {path} has no usable current context ({exc})") from None
        credentials = Credentials(
            ca_pem=_data(cluster, "certificate-authority-data"),
            cert_pem=_data(user, "client-certificate-data"),
            key_pem=_data(user, "client-key-data"),
            token=user.get("token"),
        )
        return cls(server, credentials)


def _named(items: list[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    for item in items:
        if item.get("name") == name:
            return item
    raise LookupError(f"no entry named {name!r}")


def _data(section: Mapping[str, Any], key: str) -> bytes | None:
    value = section.get(key)
    return base64.b64decode(value) if isinstance(value, str) else None


class RestClient:
    """``async with RestClient(server, credentials) as api: await api.get(path)``."""

    def __init__(self, server: str, credentials: Credentials, *, local: LocalIdentity | None = None) -> None:
        self.server = server.rstrip("/")
        self.credentials = credentials
        self.local = local
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def local_client(cls, identity: LocalIdentity) -> RestClient:
        """A client of the API server in this process, over its local socket (plain HTTP)."""
        return cls("http://localhost", Credentials(), local=identity)

    async def __aenter__(self) -> Self:
        headers = {"Accept": "application/json", "User-Agent": "k3py"}
        connector: aiohttp.BaseConnector
        if self.local is not None:
            headers[LOCAL_IDENTITY_HEADER] = self.local.header()
            connector = aiohttp.UnixConnector(path=str(self.local.socket))
        else:
            if self.credentials.token:
                headers["Authorization"] = f"Bearer {self.credentials.token}"
            connector = aiohttp.TCPConnector(ssl=self.credentials.ssl_context())
        self._session = aiohttp.ClientSession(headers=headers, connector=connector, timeout=TIMEOUT)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            if self.local is None:
                # TLS connections finish closing on the next turns of the loop (aiohttp's advice).
                await asyncio.sleep(0.25)

    @property
    def where(self) -> str:
        """The server, as messages name it."""
        return f"the local socket {self.local.socket}" if self.local is not None else self.server

    async def raw(
        self, method: str, path: str, body: Body | None = None, content_type: str | None = None
    ) -> bytes:
        """The response body of a request that must succeed."""
        assert self._session is not None, "use `async with`"
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type or "application/json"} if body is not None else {}
        try:
            async with self._session.request(
                method, self.server + path, data=data, headers=headers
            ) as answer:
                payload = await answer.read()
                if answer.status >= 400:
                    raise _status_error(answer.status, payload)
                return payload
        except aiohttp.ClientError as exc:
            raise ApiStatusError(0, "ConnectionFailed", f"cannot reach {self.where}: {exc}") from None
        except TimeoutError:
            message = f"{method} {path}: {self.where} did not answer in time"
            raise ApiStatusError(0, "Timeout", message) from None

    async def request(
        self, method: str, path: str, body: Body | None = None, content_type: str | None = None
    ) -> Obj:
        answer = orjson.loads(await self.raw(method, path, body, content_type))
        if not isinstance(answer, dict):
            raise ApiStatusError(0, "BadResponse", f"{method} {path}: the answer is not an object")
        return answer

    async def get(self, path: str) -> Obj:
        return await self.request("GET", path)

    async def list(
        self, path: str, *, label_selector: str | None = None, field_selector: str | None = None
    ) -> Obj:
        """A collection (``kind: ...List``) at one resource version."""
        query = _query(labelSelector=label_selector, fieldSelector=field_selector)
        return await self.request("GET", path + query)

    async def create(self, path: str, body: Obj) -> Obj:
        return await self.request("POST", path, body)

    async def update(self, path: str, body: Obj) -> Obj:
        return await self.request("PUT", path, body)

    async def patch(self, path: str, body: Body, patch_type: str = "merge") -> Obj:
        return await self.request("PATCH", path, body, PATCH_TYPES[patch_type])

    async def delete(self, path: str, body: Obj | None = None) -> Obj:
        return await self.request("DELETE", path, body)

    async def watch(
        self,
        path: str,
        resource_version: str,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """``(type, object)`` events after ``resource_version`` until the server ends the watch.

        Bookmarks are passed on (their resourceVersion is where to resume). An ``ERROR`` event
        raises :class:`ApiStatusError` with its Status: 410 means the version is compacted and
        the caller must list again.
        """
        assert self._session is not None, "use `async with`"
        query = _query(
            watch="1",
            resourceVersion=resource_version,
            allowWatchBookmarks="true",
            fieldSelector=field_selector,
            labelSelector=label_selector,
            timeoutSeconds=str(timeout_seconds) if timeout_seconds is not None else None,
        )
        try:
            async with self._session.get(self.server + path + query, timeout=WATCH_TIMEOUT) as answer:
                if answer.status >= 400:
                    raise _status_error(answer.status, await answer.read())
                async for line in answer.content:
                    if not line.strip():
                        continue
                    event = orjson.loads(line)
                    kind, obj = event.get("type"), event.get("object")
                    if not isinstance(obj, dict) or not isinstance(kind, str):
                        raise ApiStatusError(0, "BadResponse", f"watch {path}: malformed event")
                    if kind == "ERROR":
                        raise ApiStatusError(
                            int(obj.get("code") or 500), str(obj.get("reason") or ""), str(obj.get("message"))
                        )
                    yield kind, obj
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiStatusError(0, "ConnectionFailed", f"watch {path}: {exc or 'timed out'}") from None
        except ValueError as exc:  # a line that is not JSON, or longer than the reader takes
            raise ApiStatusError(0, "BadResponse", f"watch {path}: {exc}") from None


def _query(**params: str | None) -> str:
    present = {k: v for k, v in params.items() if v is not None}
    return "?" + urlencode(present) if present else ""


def _status_error(code: int, payload: bytes) -> ApiStatusError:
    try:
        status = orjson.loads(payload)
    except orjson.JSONDecodeError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return ApiStatusError(code, str(status.get("reason") or ""), str(status.get("message") or ""))
    return ApiStatusError(code, "", payload.decode(errors="replace")[:200] or f"HTTP {code}")
