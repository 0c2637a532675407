"""Settings, from ``STARMESH_*`` environment variables (or a ``.env`` file named by the caller).

One place for every tunable, so an operator can see them all: ``starmesh doctor`` prints them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from starmesh.core.codec import DEFAULT_MAX_MESSAGE_BYTES
from starmesh.core.enums import DataType

__all__ = ["Settings"]

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STARMESH_", extra="ignore", frozen=True)

    bus_url: str | None = None
    """Engine Logic Bus URL (``redis://host:6381``); unset = the embedded in-process bus."""
    marketdata_url: str | None = None
    """MarketData Bus URL (``redis://host:6380``); unset = the same as ``bus_url``."""
    key_prefix: str = Field(default="starmesh", pattern=r"^[A-Za-z0-9_\-]+$")
    """Prefix of every Redis key starmesh writes."""

    max_message_bytes: PositiveInt = DEFAULT_MAX_MESSAGE_BYTES
    lane_capacity: PositiveInt = 10_000
    """Per subscriber and per priority: how many messages may wait before publishers wait."""
    publish_timeout: PositiveFloat = 5.0
    """Seconds a publish may wait (full subscriber queue, unreachable bus) before it fails."""
    request_timeout: PositiveFloat = 5.0
    """Default seconds ``request`` waits for a reply."""
    max_deliveries: PositiveInt = 3
    """Attempts at handling a message before it goes to the dead letters."""
    dead_letter_capacity: PositiveInt = 10_000
    """Dead letters kept per engine type (embedded: in memory; Redis: the DLQ stream's cap)."""

    # --- Redis Streams transport ---------------------------------------------------------
    lane_maxlen: PositiveInt = 100_000
    """Approximate cap of each inbox lane stream (XADD MAXLEN ~)."""
    broadcast_maxlen: PositiveInt = 100_000
    """Approximate cap of the market-data broadcast stream."""
    reply_maxlen: PositiveInt = 10_000
    claim_idle_ms: PositiveInt = 30_000
    """A delivery pending this long (its instance died or hangs) is reclaimed by a live one."""
    read_count: PositiveInt = 256
    """Entries fetched per stream per XREADGROUP."""
    max_prefetch: PositiveInt = 1_024
    """Fetched-but-unhandled entries an instance holds before it reads only the urgent lanes."""
    block_ms: PositiveInt = 1_000
    """How long a reader's blocking XREADGROUP waits before it looks around again."""
    dedup_window: PositiveInt = 100_000
    """Message ids remembered per instance so a redelivery is not handled twice."""
    member_ttl_s: PositiveFloat = 86_400.0
    """A dead instance's subscriptions stay routed this long, so its successor gets the backlog."""
    reconnect_max_backoff_s: PositiveFloat = 2.0

    # --- MarketData Hub ----------------------------------------------------------------------
    hub_http_url: str = "http://127.0.0.1:8800"
    """Where clients reach the hub over HTTP when the bus fails."""
    cache_ttl_s: dict[DataType, PositiveFloat] = Field(
        default_factory=lambda: {
            DataType.QUOTE: 1.0,
            DataType.TRADE: 1.0,
            DataType.LEVEL2: 1.0,
            DataType.BAR: 300.0,
            DataType.NEWS: 300.0,
            DataType.ECONOMIC: 3_600.0,
            DataType.FUNDAMENTAL: 86_400.0,
        }
    )
    """Seconds a value stays fresh, per data type (JSON in the environment variable)."""
    cache_max_entries: PositiveInt = 100_000
    refresh_ahead: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """A hot value is fetched again in the background in the last fraction of its TTL.

    The larger, the earlier: every refresh shortens a hot value's life by that fraction, so
    it costs upstream calls (measured with ``starmesh bench hub``: 0.2 gave 3.1% of requests
    upstream, 0.1 about 2%, for quotes of 500 Zipf-distributed symbols).
    """
    breaker_failures: PositiveInt = 5
    """Consecutive failures of a source that open its circuit breaker."""
    breaker_reset_s: PositiveFloat = 30.0
    """Seconds an open breaker waits before letting one probe through."""

    # --- external sources (credentials never appear in logs or reprs) ------------------------
    alphavantage_key: SecretStr | None = None
    fred_key: SecretStr | None = None
    tradingeconomics_key: SecretStr | None = None
    datagov_key: SecretStr | None = None
    edgar_user_agent: str | None = None
    """SEC EDGAR requires ``Name email@example.com`` as the User-Agent."""
    ibkr_host: str = "127.0.0.1"
    ibkr_port: PositiveInt = 4002
    ibkr_client_id: int = 17
