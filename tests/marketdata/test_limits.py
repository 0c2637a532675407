import pytest

from starmesh.core.clock import ManualClock
from starmesh.marketdata.limits import CircuitBreaker, TokenBucket
from starmesh.marketdata.source import RateLimit


def test_a_burst_takes_the_capacity_then_queues_at_the_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(RateLimit(5, per_seconds=1.0), clock)
    waits = [bucket.reserve() for _ in range(8)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.2, 0.4, 0.6])
    clock.advance(0.6)  # the three queued reservations are now due
    assert bucket.available == pytest.approx(0.0)
    clock.advance(10)  # refills to capacity, not beyond
    assert bucket.available == pytest.approx(5.0)


def test_a_daily_quota_with_a_burst_of_one() -> None:
    clock = ManualClock()
    bucket = TokenBucket(RateLimit(25, per_seconds=86_400, burst=1), clock)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(86_400 / 25)


def test_a_limit_must_allow_something() -> None:
    with pytest.raises(ValueError, match="must allow"):
        TokenBucket(RateLimit(0), ManualClock())


def state_of(breaker: CircuitBreaker) -> str:
    """The state now (a function call, so a type checker does not carry an earlier reading)."""
    return breaker.state


def test_breaker_opens_after_consecutive_failures_and_probes_after_the_reset() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(threshold=3, reset_s=30, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()  # consecutive: a success starts the count again
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert state_of(breaker) == "open"
    assert not breaker.allow()
    assert breaker.retry_in == 30
    clock.advance(30)
    assert breaker.allow()  # the probe
    assert state_of(breaker) == "half_open"
    assert not breaker.allow()  # only one probe at a time
    breaker.record_failure()
    assert state_of(breaker) == "open"
    assert breaker.opened == 2
    clock.advance(30)
    assert breaker.allow()
    breaker.record_success()
    assert state_of(breaker) == "closed"
    assert breaker.allow()
