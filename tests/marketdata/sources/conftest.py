"""Fixtures of the source tests: a manual clock and a sleep that never waits."""

from __future__ import annotations

import pytest

from starmesh.core.clock import ManualClock
from tests.marketdata.sources.support import RecordingSleep


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()
