"""Cluster URLs, and how the publisher tells which key a packed command is for: no server."""

from __future__ import annotations

import pytest

from starmesh import EngineType, create_messagebus_client
from starmesh.bus.redis import RedisTransport, redact_url
from starmesh.bus.redis.cluster import command_key, is_cluster_url, parse_cluster_url
from starmesh.bus.redis.fence import FencedPublish
from starmesh.bus.redis.keys import Keys
from starmesh.bus.redis.resp import XaddPacker, pack
from starmesh.core.errors import ConfigurationError


def test_a_cluster_url_names_one_node_or_several() -> None:
    assert is_cluster_url("redis+cluster://10.0.0.5:7000")
    assert is_cluster_url("rediss+cluster://10.0.0.5:7000")
    assert not is_cluster_url("redis://10.0.0.5:7000")
    assert parse_cluster_url("redis+cluster://10.0.0.5:7000") == ("redis://10.0.0.5:7000", [])
    assert parse_cluster_url("rediss+cluster://u:pw@a:7000,b:7001,[::1]:7002/0?x=1") == (
        "rediss://u:pw@a:7000?x=1",
        [("b", 7001), ("::1", 7002)],
    )
    assert parse_cluster_url("redis+cluster://a")[0] == "redis://a:6379"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://a:7000/2", "only database 0"),
        ("redis+cluster://a:port", "not a host:port"),
        ("redis+cluster://u:secret@", "at least one node"),
        ("redis+cluster://a:7000,:7001", "not a host:port"),
    ],
)
def test_a_bad_cluster_url_is_refused_clearly(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as refused:
        RedisTransport(url)
    assert "secret" not in str(refused.value)


def test_the_client_takes_a_cluster_url_and_hides_its_password() -> None:
    client = create_messagebus_client(EngineType.RISK, url="redis+cluster://u:pw@a:7000")
    assert client.address.startswith("risk/")
    assert redact_url("redis+cluster://u:pw@a:7000,b:7001") == "redis+cluster://u:***@a:7000,b:7001"
    with pytest.raises(ConfigurationError, match="redis\\+cluster://"):
        create_messagebus_client(EngineType.RISK, url="cluster://a:7000")


def test_the_key_of_each_packed_command_the_publisher_sends() -> None:
    keys = Keys("p")
    xadd = XaddPacker("p:{risk}:inbox:normal", 100)(b"\x81\xa1m\x01")
    assert command_key(xadd) == b"p:{risk}:inbox:normal"
    assert command_key(pack(b"XACK", b"p:{ml}:inbox:high", b"ml", b"1-1")) == b"p:{ml}:inbox:high"
    assert command_key(pack(b"GET", keys.registry_version.encode())) == b"p:{registry}:version"
    evaluated = pack(b"EVAL", b"return 1", b"2", b"p:{md}:lease", b"p:{md}:updates", b"x")
    assert command_key(evaluated) == b"p:{md}:lease"  # an EVAL: its first key
    fenced = FencedPublish(keys, b"17 hub-a", 1000)(b"p:{md}:snapshot:quote:AAPL", b"data")
    assert command_key(fenced) == keys.hub_lease.encode()  # the hub's fenced write
