"""A private Redis Cluster (3 masters, 3 replicas) per test module, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from starmesh.testing import LocalRedisCluster


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(masters=3, replicas=1).start()
    try:
        yield cluster
    finally:
        cluster.stop()
