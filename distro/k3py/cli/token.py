"""``k3py token create|list|delete``: bootstrap tokens for joining nodes, like ``k3s token``.

A bootstrap token is a Secret ``bootstrap-token-<id>`` in kube-system (type
``bootstrap.kubernetes.io/token``), which the API server accepts as a bearer token until its
expiration. ``create`` prints the full join token, ``K10<CA hash>::<id>.<secret>``, whose
hash lets a joining node check the server before trusting it. The commands talk to the
server through the admin kubeconfig (``--kubeconfig``, else ``$KUBECONFIG``, else the
server's ``--write-kubeconfig`` path).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import secrets
import string
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from k3py.apiserver.tokens import EXTRA_GROUP
from k3py.cli.errors import CLIError, UsageError
from k3py.cli.kubectl import kubeconfig_for
from k3py.client import ApiStatusError, Kubeconfig, RestClient
from k3py.pki import jointoken

SECRETS = "/api/v1/namespaces/kube-system/secrets"
TOKEN_TYPE = "bootstrap.kubernetes.io/token"
DEFAULT_GROUP = "system:bootstrappers:k3py:default-node-token"
USAGES = ("signing", "authentication")
_ALPHABET = string.ascii_lowercase + string.digits
_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_ID = re.compile(r"^[a-z0-9]{6}$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class TokenCommandError(CLIError):
    """The server refused, could not be reached, or no kubeconfig to reach it (exit 1)."""


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """``k3py token`` and its actions, built with the parent's parser class (errors raise)."""
    token = commands.add_parser(
        "token",
        help="Manage bootstrap tokens that nodes join with.",
        description="Create, list and delete bootstrap tokens (kube-system Secrets) on a running server.",
        allow_abbrev=False,
    )
    token.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="Admin kubeconfig to reach the server "
        "(default: $KUBECONFIG, else the server's --write-kubeconfig).",
    )
    actions = token.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(token), help="What to do."
    )
    create = actions.add_parser(
        "create",
        help="Create a bootstrap token and print it as a join token.",
        description="Create a bootstrap token; prints K10<CA hash>::<id>.<secret> for `k3py agent --token`.",
        allow_abbrev=False,
    )
    create.add_argument(
        "token", nargs="?", metavar="TOKEN", help="Use this <id>.<secret> instead of a random one."
    )
    create.add_argument(
        "--ttl",
        default="24h",
        help="How long the token lives, e.g. 24h, 90m; 0 never expires (default: 24h).",
    )
    create.add_argument("--description", default="", help="A note kept with the token.")
    create.add_argument(
        "--groups",
        default=DEFAULT_GROUP,
        help=f"Comma-separated extra groups, each system:bootstrappers:... (default: {DEFAULT_GROUP}).",
    )
    create.add_argument(
        "--usages",
        default=",".join(USAGES),
        help="Comma-separated usages: signing, authentication (default: signing,authentication).",
    )
    actions.add_parser(
        "list", help="List bootstrap tokens.", description="List the bootstrap tokens and when they expire."
    )
    delete = actions.add_parser(
        "delete", help="Delete bootstrap tokens.", description="Delete bootstrap tokens by id or by token."
    )
    delete.add_argument("tokens", nargs="+", metavar="TOKEN", help="A token id, <id>.<secret> or join token.")


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        config = Kubeconfig.load(Path(args.kubeconfig or kubeconfig_for(os.environ)))
    except ValueError as exc:
        raise TokenCommandError(str(exc)) from None
    action = {"create": _create, "list": _list, "delete": _delete}[args.action]
    try:
        return asyncio.run(action(args, config, out))
    except jointoken.TokenFormatError as exc:
        raise UsageError(str(exc)) from None
    except ApiStatusError as exc:
        raise TokenCommandError(f"{exc} ({exc.code} {exc.reason})".replace(" (0 ", " (")) from None


def duration(text: str) -> timedelta:
    if text == "0":
        return timedelta(0)
    match = _DURATION.match(text)
    if not text or match is None:
        raise UsageError(f"--ttl: {text!r} is not a duration like 24h, 90m or 0")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


async def _create(args: argparse.Namespace, config: Kubeconfig, out: TextIO) -> int:
    if args.token:
        match = _TOKEN.match(jointoken.parse(args.token).credential)
        if match is None:
            raise UsageError("TOKEN must be <6 of [a-z0-9]>.<16 of [a-z0-9]>")
        token_id, secret = match.groups()
    else:
        token_id = "".join(secrets.choice(_ALPHABET) for _ in range(6))
        secret = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    ttl = duration(args.ttl)
    groups = _split(args.groups)
    if bad := [g for g in groups if not EXTRA_GROUP.match(g)]:
        raise UsageError(f"--groups: {', '.join(bad)}: each group must start with system:bootstrappers:")
    usages = _split(args.usages)
    if bad := [u for u in usages if u not in USAGES]:
        raise UsageError(f"--usages: {', '.join(bad)}: supported usages are {', '.join(USAGES)}")
    data = {"token-id": token_id, "token-secret": secret}
    if ttl:
        data["expiration"] = (datetime.now(UTC) + ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
    if args.description:
        data["description"] = args.description
    data |= {f"usage-bootstrap-{u}": "true" for u in usages}
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": TOKEN_TYPE,
        "stringData": data,
    }
    async with RestClient(config.server, config.credentials) as api:
        await api.create(SECRETS, body)
    ca = config.credentials.ca_pem or b""
    print(jointoken.JoinToken(f"{token_id}.{secret}", jointoken.ca_hash(ca) if ca else ""), file=out)
    return 0


async def _list(args: argparse.Namespace, config: Kubeconfig, out: TextIO) -> int:
    async with RestClient(config.server, config.credentials) as api:
        listed = await api.get(f"{SECRETS}?fieldSelector=type%3D{TOKEN_TYPE.replace('/', '%2F')}")
    rows = [("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
    now = datetime.now(UTC)
    for secret in listed.get("items") or []:
        data = {k: _decode(v) for k, v in (secret.get("data") or {}).items()}
        token = f"{data.get('token-id', '?')}.{data.get('token-secret', '?')}"
        expires, ttl = data.get("expiration", ""), "<forever>"
        if expires:
            try:
                left = datetime.fromisoformat(expires.replace("Z", "+00:00")) - now
                ttl = "<invalid>" if left.total_seconds() <= 0 else _short(left)
            except ValueError:
                ttl = "<invalid>"
        usages = ",".join(u for u in USAGES if data.get(f"usage-bootstrap-{u}") == "true")
        rows.append(
            (token, ttl, expires or "<never>", usages, data.get("description", "<none>") or "<none>",
             data.get("auth-extra-groups", ""))
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out
        )
    return 0


async def _delete(args: argparse.Namespace, config: Kubeconfig, out: TextIO) -> int:
    ids = []
    for given in args.tokens:
        credential = jointoken.parse(given).credential
        token_id = credential.split(".", 1)[0]
        if not _ID.match(token_id):
            raise UsageError(f"{given!r} is neither a token id nor a bootstrap token")
        ids.append(token_id)
    async with RestClient(config.server, config.credentials) as api:
        for token_id in ids:
            await api.delete(f"{SECRETS}/bootstrap-token-{token_id}")
            print(f"bootstrap token {token_id!r} deleted", file=out)
    return 0


def _decode(value: object) -> str:
    return base64.b64decode(value).decode(errors="replace") if isinstance(value, str) else ""


def _short(left: timedelta) -> str:
    seconds = int(left.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{max(1, seconds // 60)}m"
