"""The guards' arithmetic, with a clock the test controls (no server needed)."""

from __future__ import annotations

import pytest

from chat.realtime.limits import TokenBucket, TypingThrottle, payload_size
from chat.services.visitors import origin_allowed


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_typing_starts_are_throttled_and_stops_always_pass():
    clock = Clock()
    throttle = TypingThrottle(interval=1.0, clock=clock)
    assert throttle.allow("c1", True) is True
    assert throttle.allow("c1", True) is False
    assert throttle.allow("c2", True) is True  # per conversation
    assert throttle.allow("c1", False) is True
    assert throttle.allow("c1", True) is True  # a stop re-arms
    clock.now += 1.0
    assert throttle.allow("c2", True) is True


def test_payload_size_is_the_compact_json_length():
    assert payload_size({"a": "é"}) == len('{"a":"é"}'.encode())
    assert payload_size(None) == 4


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        (None, ["https://shop.example.com"], True),
        ("https://shop.example.com", ["*"], True),
        ("https://shop.example.com", ["https://shop.example.com/"], True),
        ("https://SHOP.example.com", ["https://shop.example.com"], True),
        ("https://evil.example.net", ["https://shop.example.com"], False),
        ("http://shop.example.com", ["https://shop.example.com"], False),
        ("https://eu.shop.example.com", ["https://*.shop.example.com"], True),
        ("https://shop.example.com", [], False),
        ("https://shop.example.com", "not a list", False),
    ],
)
def test_origins(origin, allowed, expected):
    assert origin_allowed(origin, allowed) is expected
