"""Kubernetes' own CEL libraries: regex, URLs, IP addresses and CIDRs, resource quantities.

Regex adds ``find`` and ``findAll`` to strings. ``url()`` parses an absolute URL or an absolute
path (Go's ``url.ParseRequestURI``) and offers ``getScheme``, ``getHost``, ``getHostname``,
``getPort``, ``getEscapedPath`` and ``getQuery``. ``ip()``/``cidr()`` use :mod:`ipaddress`.
``quantity()`` uses the same parsing the API server validates resource quantities with, and
compares exactly (``quantity('1') == quantity('1000m')``).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import define
from k3py.api.cel.stdlib import compile_regex
from k3py.api.cel.types import BOOL, DOUBLE, INT, STRING, list_of, map_of, opaque
from k3py.api.cel.values import INT_MAX, INT_MIN
from k3py.api.defaults import quantity_value
from k3py.api.quota import format_quantity

URL: Final = opaque("kubernetes.URL")
IP: Final = opaque("net.IP")
CIDR: Final = opaque("net.CIDR")
QUANTITY: Final = opaque("kubernetes.Quantity")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# -- regex ----------------------------------------------------------------------------------------


def find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    found = [m.group() for m in compile_regex(pattern).finditer(text)]
    return found if limit < 0 else found[:limit]


def _find(text: str, pattern: str) -> str:
    match = compile_regex(pattern).search(text)
    return match.group() if match else ""


# -- URLs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Url:
    parts: urllib.parse.SplitResult
    cel_type = "kubernetes.URL"

    def __str__(self) -> str:
        return self.parts.geturl()


def parse_url(text: str) -> Url:
    parts = urllib.parse.urlsplit(text)
    if not (parts.scheme or text.startswith("/")) or " " in text or "#" in text:
        raise CelEvalError(
            f"URL parse error during conversion from string: parse {text!r}: invalid URI for request"
        )
    return Url(parts)


def _is_url(text: str) -> bool:
    try:
        parse_url(text)
    except CelEvalError:
        return False
    return True


def _hostname(url: Url) -> str:
    host = url.parts.netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rpartition(":")[0] if ":" in host else host


def _port(url: Url) -> str:
    host = url.parts.netloc.rpartition("@")[2]
    tail = host[host.find("]") + 1 :] if host.startswith("[") else host
    return tail.rpartition(":")[2] if ":" in tail else ""


def _query(url: Url) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(url.parts.query, keep_blank_values=True)


# -- IPs and CIDRs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ip:
    address: Address
    cel_type = "net.IP"

    def __str__(self) -> str:
        return str(self.address)


@dataclass(frozen=True, slots=True)
class Cidr:
    address: Address
    network: Network
    cel_type = "net.CIDR"

    def __str__(self) -> str:
        return f"{self.address}/{self.network.prefixlen}"


def parse_ip(text: str) -> Ip:
    if "/" in text or "%" in text:
        raise CelEvalError(f'IP Address "{text}" parse error during conversion from string')
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise CelEvalError(f'IP Address "{text}" parse error during conversion from string') from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise CelEvalError(f'IP Address "{text}" parse error during conversion from string')
    return Ip(address)


def parse_cidr(text: str) -> Cidr:
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        raise CelEvalError(f'network address parse error during conversion from string: "{text}"') from None
    if "/" not in text:
        raise CelEvalError(f'network address parse error during conversion from string: "{text}"')
    return Cidr(interface.ip, interface.network)


def _valid(parse: object, text: str) -> bool:
    try:
        parse(text)  # type: ignore[operator]
    except CelEvalError:
        return False
    return True


def _contains_cidr(outer: Cidr, inner: Cidr) -> bool:
    return inner.network.version == outer.network.version and inner.network.subnet_of(outer.network)  # type: ignore[arg-type]


# -- quantities -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Quantity:
    value: Fraction
    text: str
    cel_type = "kubernetes.Quantity"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return self.text


def parse_quantity(text: str) -> Quantity:
    value = quantity_value(text)
    if value is None:
        raise CelEvalError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    return Quantity(value, text)


def _of(value: Fraction) -> Quantity:
    return Quantity(value, format_quantity(value))


def _as_integer(q: Quantity) -> int:
    if q.value.denominator != 1 or not INT_MIN <= q.value <= INT_MAX:
        raise CelEvalError("cannot convert value to integer")
    return int(q.value)


def _compare(a: Quantity, b: Quantity) -> int:
    return (a.value > b.value) - (a.value < b.value)


def _define() -> None:
    define("find", (STRING, STRING), STRING, _find, member=True)
    define("findAll", (STRING, STRING), list_of(STRING), find_all, member=True)
    define("findAll", (STRING, STRING, INT), list_of(STRING), find_all, member=True)

    define("url", (STRING,), URL, parse_url)
    define("isURL", (STRING,), BOOL, _is_url)
    define("getScheme", (URL,), STRING, lambda u: u.parts.scheme, member=True)
    define("getHost", (URL,), STRING, lambda u: u.parts.netloc.rpartition("@")[2], member=True)
    define("getHostname", (URL,), STRING, _hostname, member=True)
    define("getPort", (URL,), STRING, _port, member=True)
    define("getEscapedPath", (URL,), STRING, lambda u: u.parts.path, member=True)
    define("getQuery", (URL,), map_of(STRING, list_of(STRING)), _query, member=True)

    define("ip", (STRING,), IP, parse_ip)
    define("isIP", (STRING,), BOOL, lambda s: _valid(parse_ip, s))
    define("ip.isCanonical", (STRING,), BOOL, lambda s: str(parse_ip(s)) == s)
    define("string", (IP,), STRING, str)
    define("family", (IP,), INT, lambda i: i.address.version, member=True)
    define("isUnspecified", (IP,), BOOL, lambda i: i.address.is_unspecified, member=True)
    define("isLoopback", (IP,), BOOL, lambda i: i.address.is_loopback, member=True)
    define("isLinkLocalMulticast", (IP,), BOOL, lambda i: _link_local_multicast(i.address), member=True)
    define("isLinkLocalUnicast", (IP,), BOOL, lambda i: i.address.is_link_local, member=True)
    define("isGlobalUnicast", (IP,), BOOL, lambda i: _global_unicast(i.address), member=True)
    define("cidr", (STRING,), CIDR, parse_cidr)
    define("isCIDR", (STRING,), BOOL, lambda s: _valid(parse_cidr, s))
    define("string", (CIDR,), STRING, str)
    define("containsIP", (CIDR, IP), BOOL, lambda c, i: i.address in c.network, member=True)
    define("containsIP", (CIDR, STRING), BOOL, lambda c, s: parse_ip(s).address in c.network, member=True)
    define("containsCIDR", (CIDR, CIDR), BOOL, _contains_cidr, member=True)
    define("containsCIDR", (CIDR, STRING), BOOL, lambda c, s: _contains_cidr(c, parse_cidr(s)), member=True)
    define("ip", (CIDR,), IP, lambda c: Ip(c.address), member=True)
    define("masked", (CIDR,), CIDR, lambda c: Cidr(c.network.network_address, c.network), member=True)
    define("prefixLength", (CIDR,), INT, lambda c: c.network.prefixlen, member=True)

    define("quantity", (STRING,), QUANTITY, parse_quantity)
    define("isQuantity", (STRING,), BOOL, lambda s: quantity_value(s) is not None)
    define("sign", (QUANTITY,), INT, lambda q: (q.value > 0) - (q.value < 0), member=True)
    define(
        "isInteger",
        (QUANTITY,),
        BOOL,
        lambda q: q.value.denominator == 1 and INT_MIN <= q.value <= INT_MAX,
        member=True,
    )
    define("asInteger", (QUANTITY,), INT, _as_integer, member=True)
    define("asApproximateFloat", (QUANTITY,), DOUBLE, lambda q: float(q.value), member=True)
    define("add", (QUANTITY, QUANTITY), QUANTITY, lambda a, b: _of(a.value + b.value), member=True)
    define("add", (QUANTITY, INT), QUANTITY, lambda a, b: _of(a.value + b), member=True)
    define("sub", (QUANTITY, QUANTITY), QUANTITY, lambda a, b: _of(a.value - b.value), member=True)
    define("sub", (QUANTITY, INT), QUANTITY, lambda a, b: _of(a.value - b), member=True)
    define("compareTo", (QUANTITY, QUANTITY), INT, _compare, member=True)
    define("isGreaterThan", (QUANTITY, QUANTITY), BOOL, lambda a, b: _compare(a, b) > 0, member=True)
    define("isLessThan", (QUANTITY, QUANTITY), BOOL, lambda a, b: _compare(a, b) < 0, member=True)


def _link_local_multicast(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return address in ipaddress.ip_network("224.0.0.0/24")
    return address in ipaddress.ip_network("ff02::/16")


def _global_unicast(address: Address) -> bool:
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_link_local:
        return False
    return address != ipaddress.IPv4Address("255.255.255.255")


_define()
