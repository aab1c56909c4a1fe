"""``human_duration``: kubectl's AGE column, case for case with apimachinery's duration tests."""

from __future__ import annotations

import re
from datetime import timedelta

import hypothesis.strategies as st
import pytest
from hypothesis import given

from k3py.api.printers import human_duration

S, M, H, D, Y = 1, 60, 3600, 86400, 365 * 86400
MS = timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("delta", "want"),
    [
        # upstream TestHumanDuration
        (timedelta(seconds=1), "1s"),
        (timedelta(seconds=70), "70s"),
        (timedelta(seconds=190), "3m10s"),
        (timedelta(minutes=70), "70m"),
        (timedelta(hours=47), "47h"),
        (timedelta(hours=49), "2d1h"),
        (timedelta(hours=8 * 24 + 2), "8d"),
        (timedelta(hours=367 * 24), "367d"),
        (timedelta(hours=365 * 2 * 24 + 25), "2y1d"),
        (timedelta(hours=365 * 8 * 24 + 2), "8y"),
        # upstream TestHumanDurationBoundaries
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=-2, microseconds=1), "0s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=1) - MS, "0s"),
        (timedelta(minutes=2) - MS, "119s"),
        (timedelta(minutes=2), "2m"),
        (timedelta(minutes=2, seconds=1), "2m1s"),
        (timedelta(minutes=10) - MS, "9m59s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(minutes=10, seconds=1), "10m"),
        (timedelta(hours=3) - MS, "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=1), "3h1m"),
        (timedelta(hours=8) - MS, "7h59m"),
        (timedelta(hours=8), "8h"),
        (timedelta(hours=8, minutes=59), "8h"),
        (timedelta(days=2) - MS, "47h"),
        (timedelta(days=2), "2d"),
        (timedelta(days=2, hours=1), "2d1h"),
        (timedelta(days=8) - MS, "7d23h"),
        (timedelta(days=8), "8d"),
        (timedelta(days=8, hours=23), "8d"),
        (timedelta(days=730) - MS, "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=730, hours=23, minutes=59), "2y"),
        (timedelta(days=731) - MS, "2y"),
        (timedelta(days=731), "2y1d"),
        (timedelta(days=3 * 365), "3y"),
        (timedelta(days=7 * 365), "7y"),
        (timedelta(days=8 * 365) - MS, "7y364d"),
        (timedelta(days=8 * 365), "8y"),
        (timedelta(days=8 * 365 + 364), "8y"),
        (timedelta(days=9 * 365), "9y"),
        # the brief's examples
        (timedelta(seconds=5), "5s"),
        (timedelta(minutes=3, seconds=2), "3m2s"),
        (timedelta(days=2, hours=3), "2d3h"),
        (timedelta(days=45), "45d"),
        (timedelta(days=2 * 365 + 100), "2y100d"),
    ],
)
def test_human_duration(delta: timedelta, want: str) -> None:
    assert human_duration(delta) == want


_UNIT = {"s": S, "m": M, "h": H, "d": D, "y": Y}


def _lower_bound(text: str) -> int:
    """The smallest number of seconds a rendering stands for."""
    return sum(int(n) * _UNIT[u] for n, u in re.findall(r"(\d+)([smhdy])", text))


_SECONDS = st.integers(min_value=0, max_value=20 * Y)


@given(_SECONDS, _SECONDS)
def test_ages_never_go_backwards(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert _lower_bound(human_duration(timedelta(seconds=low))) <= _lower_bound(
        human_duration(timedelta(seconds=high))
    )


@given(_SECONDS)
def test_an_age_truncates_and_keeps_two_or_three_significant_figures(seconds: int) -> None:
    shown = human_duration(timedelta(seconds=seconds))
    assert re.fullmatch(r"\d+[smhdy](\d+[smhd])?", shown)
    bound = _lower_bound(shown)
    assert bound <= seconds
    assert seconds - bound < max(S, seconds // 8)  # never off by more than 12.5%
