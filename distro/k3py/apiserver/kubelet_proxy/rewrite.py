"""Links in proxied pages, rewritten to stay behind the proxy (upstream's ``proxy.Transport``).

A page served through ``.../pods/web/proxy/`` that links to ``/status`` means the pod's
``/status``, which the browser must ask for as ``.../pods/web/proxy/status``. As kube-apiserver
does for pod, service and node proxies, absolute-path URLs in the URL attributes of HTML start
tags (``<a href>``, ``<img src>``, ``<form action>``…) and in a ``Location`` header get the
proxy's path in front; relative URLs, URLs of other hosts and URLs already under the proxy's
path stay as they are. Everything else in the page passes through byte for byte: only start
tags are touched, and never inside ``<script>`` or ``<style>`` text or comments.
"""

from __future__ import annotations

import functools
import html
import posixpath
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

URL_ATTRIBUTES: dict[str, frozenset[str]] = {
    tag: frozenset(names)
    for tag, names in {
        "a": ("href",),
        "applet": ("codebase",),
        "area": ("href",),
        "audio": ("src",),
        "base": ("href",),
        "blockquote": ("cite",),
        "body": ("background",),
        "button": ("formaction",),
        "command": ("icon",),
        "del": ("cite",),
        "embed": ("src",),
        "form": ("action",),
        "frame": ("longdesc", "src"),
        "head": ("profile",),
        "html": ("manifest",),
        "iframe": ("longdesc", "src"),
        "img": ("longdesc", "src", "usemap"),
        "input": ("src", "usemap", "formaction"),
        "ins": ("cite",),
        "link": ("href",),
        "object": ("classid", "codebase", "data", "usemap"),
        "q": ("cite",),
        "script": ("src",),
        "source": ("src",),
        "video": ("poster", "src"),
    }.items()
}
"""Upstream's ``atomsToAttrs``: the attributes of each tag that hold a URL."""

_MARKUP = re.compile(
    r"<!--.*?-->"  # a comment
    r"|<(?P<tag>[A-Za-z][^\s/>]*)(?P<attrs>(?:[^>\"']|\"[^\"]*\"|'[^']*')*)>",  # a start tag
    re.DOTALL,
)
_ATTRIBUTE = re.compile(
    r"(?P<name>[^\s\"'>/=]+)(?P<eq>\s*=\s*)(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<bare>[^\s>]+))"
)
_RAW_TEXT = ("script", "style")


def rewrite_url(url: str, prefix: str, hosts: tuple[str, ...] = ()) -> str:
    """``url`` under ``prefix`` when it is an absolute path of this server (no host, or one of
    ``hosts``); unchanged otherwise (``rewriteURL``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.netloc and parts.netloc not in hosts:
        return url
    if not parts.path.startswith("/") or parts.path.startswith(prefix):
        return url
    path = posixpath.join(prefix, parts.path.lstrip("/"))
    if parts.path.endswith("/") and not path.endswith("/"):
        path += "/"
    return urlunsplit(("", "", path, parts.query, parts.fragment))


def rewrite_html(page: str, rewrite: Callable[[str], str]) -> str:
    """``page`` with ``rewrite`` applied to every URL attribute of its start tags."""
    out: list[str] = []
    position = 0
    while (match := _MARKUP.search(page, position)) is not None:
        out.append(page[position : match.start()])
        tag = (match.group("tag") or "").lower()
        names = URL_ATTRIBUTES.get(tag)
        if names is None or match.group("attrs") is None:
            out.append(match.group(0))
        else:
            attrs = _ATTRIBUTE.sub(
                functools.partial(_attribute, names=names, rewrite=rewrite), match.group("attrs")
            )
            out.append(f"<{match.group('tag')}{attrs}>")
        position = match.end()
        if tag in _RAW_TEXT and not match.group(0).endswith("/>"):
            close = re.compile(rf"</{tag}\s*>", re.IGNORECASE).search(page, position)
            end = close.start() if close is not None else len(page)
            out.append(page[position:end])
            position = end
    out.append(page[position:])
    return "".join(out)


def _attribute(match: re.Match[str], *, names: frozenset[str], rewrite: Callable[[str], str]) -> str:
    if match.group("name").lower() not in names:
        return match.group(0)
    for group, quote in (("dq", '"'), ("sq", "'"), ("bare", "")):
        value = match.group(group)
        if value is not None:
            changed = rewrite(html.unescape(value))
            if changed == html.unescape(value):
                return match.group(0)
            quote = quote or '"'
            return f"{match.group('name')}{match.group('eq')}{quote}{html.escape(changed, quote=True)}{quote}"
    return match.group(0)
