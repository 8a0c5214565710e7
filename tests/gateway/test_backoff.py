"""The reconnect policy, on an injected clock and random: no sleeping."""

import pytest

from service.gateway.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def highest(low: float, high: float) -> float:
    return high


def lowest(low: float, high: float) -> float:
    return low


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.5, max_s=8, clock=Clock(), uniform=highest)
    assert [backoff.failed() for _ in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]


def test_jitter_keeps_at_least_half_the_step() -> None:
    backoff = Backoff(initial_s=1, max_s=8, clock=Clock(), uniform=lowest)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1, 2, 4, 4]
    import random

    real = Backoff(initial_s=1, max_s=8, clock=Clock(), uniform=random.Random(1).uniform)
    delays = [real.failed() for _ in range(6)]
    for delay, step in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert step / 2 <= delay <= step
    assert len(set(delays)) == len(delays)  # spread: cameras do not come back in lockstep


def test_a_stable_connection_starts_the_count_over_a_flapping_one_does_not() -> None:
    clock = Clock()
    backoff = Backoff(initial_s=1, max_s=60, stable_s=10, clock=clock, uniform=highest)
    assert [backoff.failed() for _ in range(3)] == [1, 2, 4]
    backoff.connected()
    clock.now += 2  # up for 2 s, then down: still backing off
    assert backoff.failed() == 8
    backoff.connected()
    clock.now += 10  # up for 10 s: healthy, the next failure starts over
    assert backoff.failed() == 1
    assert backoff.failed() == 2


def test_a_refusal_waits_the_cap() -> None:
    backoff = Backoff(initial_s=1, max_s=30, clock=Clock(), uniform=highest)
    assert backoff.refused() == 30
    assert Backoff(initial_s=1, max_s=30, clock=Clock(), uniform=lowest).refused() == 15


@pytest.mark.parametrize(
    "kwargs", [{"initial_s": 0}, {"initial_s": 5, "max_s": 1}, {"factor": 0.5}, {"stable_s": -1}]
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**kwargs)
