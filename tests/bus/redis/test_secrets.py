"""Passwords in Redis URLs stay out of reprs, names, logs and errors."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from starmesh import EngineType, Settings, create_messagebus_client
from starmesh.bus.redis import RedisTransport, redact_url
from starmesh.core.errors import BusUnavailableError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://risk:hunter2@10.0.0.5:6381/0", "redis://risk:***@10.0.0.5:6381/0"),
        ("redis://:hunter2@10.0.0.5:6381", "redis://:***@10.0.0.5:6381"),
        (
            "redis://10.0.0.5:6381/0?password=hunter2&db=1",
            "redis://10.0.0.5:6381/0?password=***&db=1",
        ),
        ("rediss://h:1/0?ssl_cert_reqs=required", "rediss://h:1/0?ssl_cert_reqs=required"),
        ("unix:///run/redis.sock?db=0", "unix:///run/redis.sock?db=0"),
    ],
)
def test_urls_are_shown_without_their_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_settings_hold_bus_urls_as_secrets() -> None:
    settings = Settings(
        bus_url=SecretStr("redis://risk:hunter2@h:1/0"),
        marketdata_url=SecretStr("redis://:hunter2@h:2"),
    )
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert settings.bus_url is not None
    assert settings.bus_url.get_secret_value() == "redis://risk:hunter2@h:1/0"


async def test_a_failed_start_names_the_server_but_not_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = "redis://risk:hunter2@127.0.0.1:9/0?password=hunter2"
    transport = RedisTransport(url)
    assert "hunter2" not in repr(transport) + transport.name
    client = create_messagebus_client(EngineType.RISK, url=url)
    with pytest.raises(BusUnavailableError) as caught:
        await client.start()
    assert "127.0.0.1:9" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in caplog.text


def test_the_environment_sets_them_as_plain_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARMESH_BUS_URL", "redis://risk:hunter2@h:1/0")
    settings = Settings()
    assert settings.bus_url is not None
    assert "hunter2" not in repr(settings)
