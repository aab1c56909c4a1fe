"""The node IPAM block arithmetic: blocks of a cluster CIDR, the rotating search, what counts
as one of its blocks, and the limits on the mask."""

from __future__ import annotations

import ipaddress

import pytest

from k3py.apiserver.nodeipam import CidrError, CidrSet, pod_cidr


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_allocates_blocks_in_order_from_the_start() -> None:
    cidrs = CidrSet(net("10.42.0.0/16"), 24)
    assert cidrs.size == 256
    assert [str(cidrs.allocate()) for _ in range(3)] == ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"]
    assert len(cidrs) == 3


def test_skips_taken_blocks_and_reuses_a_freed_one_last() -> None:
    cidrs = CidrSet(net("10.42.0.0/16"), 24)
    cidrs.reset([net("10.42.0.0/24"), net("10.42.2.0/24")])
    assert cidrs.allocate() == net("10.42.1.0/24")
    cidrs.release(net("10.42.0.0/24"))
    assert cidrs.allocate() == net("10.42.3.0/24")  # the search goes on from the last allocation


def test_wraps_around_and_reports_exhaustion() -> None:
    cidrs = CidrSet(net("10.42.0.0/22"), 24)
    got = [cidrs.allocate() for _ in range(4)]
    assert [str(c) for c in got] == ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24", "10.42.3.0/24"]
    assert cidrs.allocate() is None
    cidrs.release(net("10.42.1.0/24"))
    assert cidrs.allocate() == net("10.42.1.0/24")
    assert cidrs.allocate() is None


def test_reset_keeps_the_search_position() -> None:
    cidrs = CidrSet(net("10.42.0.0/16"), 24)
    cidrs.allocate()
    cidrs.allocate()
    cidrs.reset([])
    assert cidrs.allocate() == net("10.42.2.0/24")


@pytest.mark.parametrize(
    "cidr",
    ["10.43.0.0/24", "10.42.0.0/25", "10.42.0.0/23", "fd00::/64"],
)
def test_only_its_own_blocks_are_occupied(cidr: str) -> None:
    cidrs = CidrSet(net("10.42.0.0/16"), 24)
    assert not cidrs.occupy(net(cidr))
    assert len(cidrs) == 0
    assert cidrs.allocate() == net("10.42.0.0/24")


def test_other_masks_and_ipv6() -> None:
    cidrs = CidrSet(net("10.42.0.0/16"), 26)
    assert [str(cidrs.allocate()) for _ in range(2)] == ["10.42.0.0/26", "10.42.0.64/26"]
    six = CidrSet(net("fd42::/56"), 64)
    assert six.allocate() == net("fd42::/64")
    assert six.allocate() == net("fd42:0:0:1::/64")


@pytest.mark.parametrize(
    ("cluster", "mask"), [("10.42.0.0/16", 15), ("10.42.0.0/16", 33), ("10.0.0.0/8", 25)]
)
def test_impossible_masks_are_refused(cluster: str, mask: int) -> None:
    with pytest.raises(CidrError, match=r"mask|blocks"):
        CidrSet(net(cluster), mask)


def test_pod_cidr_reads_either_field() -> None:
    assert pod_cidr({"spec": {"podCIDR": "10.42.3.0/24"}}) == net("10.42.3.0/24")
    assert pod_cidr({"spec": {"podCIDRs": ["10.42.4.0/24"]}}) == net("10.42.4.0/24")
    assert pod_cidr({"spec": {}}) is None
    assert pod_cidr({"metadata": {"name": "n"}}) is None
    assert pod_cidr({"spec": {"podCIDR": "not-a-cidr"}}) is None
