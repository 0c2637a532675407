"""Settings, from ``STARMESH_*`` environment variables (or a ``.env`` file named by the caller).

One place for every tunable, so an operator can see them all: ``starmesh doctor`` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from starmesh.core.codec import DEFAULT_MAX_MESSAGE_BYTES
from starmesh.core.enums import DataType, EngineType

__all__ = ["DEFAULT_CACHE_TTL_S", "Settings"]

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]

DEFAULT_CACHE_TTL_S: Final[Mapping[DataType, float]] = {
    DataType.QUOTE: 1.0,
    DataType.TRADE: 1.0,
    DataType.LEVEL2: 1.0,
    DataType.BAR: 300.0,
    DataType.NEWS: 300.0,
    DataType.ECONOMIC: 3_600.0,
    DataType.FUNDAMENTAL: 86_400.0,
}
"""Seconds a market-data value stays fresh, per data type, unless ``cache_ttl_s`` says else."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STARMESH_", extra="ignore", frozen=True)

    bus_url: SecretStr | None = None
    """Engine Logic Bus URL (``redis://user:password@host:6381``); unset = the embedded bus.
    A secret: it may hold a password, so no repr or log shows it."""
    marketdata_url: SecretStr | None = None
    """MarketData Bus URL (``redis://host:6380``); unset = the same as ``bus_url``."""

    @property
    def bus_address(self) -> str | None:
        """``bus_url`` revealed: to connect with, never to show (an empty value is unset)."""
        return self.bus_url.get_secret_value() or None if self.bus_url is not None else None

    @property
    def marketdata_address(self) -> str | None:
        """``marketdata_url`` revealed: to connect with, never to show."""
        url = self.marketdata_url
        return url.get_secret_value() or None if url is not None else None

    redis_tls_ca_file: Path | None = None
    """For ``rediss://`` URLs: the CA that signed the server's certificate."""
    redis_tls_cert_file: Path | None = None
    """For ``rediss://`` URLs: this client's certificate (when the server asks for one)."""
    redis_tls_key_file: Path | None = None
    """For ``rediss://`` URLs: the key of ``redis_tls_cert_file``."""
    expose_errors: bool = False
    """Send a responder's exception text to the requesting engine (default: only its type
    and a reference; the text may hold what other engines should not see). starmesh's own
    typed errors, written to be shown, are always sent."""
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
    redis_wait_replicas: Annotated[int, Field(ge=0)] = 0
    """Redis Cluster: how many replicas must hold each publish batch before ``publish``
    returns (``WAIT`` after each master's part). 1 keeps every acknowledged publish through
    a ``kill -9`` of its master, for one replica round trip per batch; a master without that
    many replicas then takes no publish (they fail over to HTTP and the outbox). 0: Redis's
    asynchronous replication, which loses what the replica had not received yet."""
    redis_wait_timeout_ms: PositiveInt = 1_000
    """How long a master waits for ``redis_wait_replicas`` replicas before the batch is sent
    again (or, past the publish's deadline, fails over)."""
    reconnect_max_backoff_s: PositiveFloat = 2.0
    stop_timeout_s: PositiveFloat = 10.0
    """How long ``stop()`` may take to hand back and acknowledge what an instance holds.

    With Redis unreachable a stop ends after this long (plus at most ``publish_timeout`` for
    publishes already under way): what it could not acknowledge stays pending in Redis and
    is reclaimed by a live instance (or by this one after a restart).
    """

    # --- failover and HTTP (see README "Failover") -----------------------------------------
    failover_after_s: PositiveFloat = 1.0
    """How long a publish tries Redis before the message goes to the outbox (HTTP, replay)."""
    outbox_capacity: PositiveInt = 100_000
    """Entries (message x destination engine) the outbox holds before publishers wait."""
    outbox_path: Path | None = None
    """SQLite file keeping the outbox across restarts; unset = in memory (reported at stop)."""
    http_host: str = "127.0.0.1"
    """Interface an engine's HTTP endpoint binds to (and advertises, unless http_advertise_url)."""
    http_advertise_url: str | None = None
    """Base URL other engines reach this engine's ``/v1/messages`` at (default http_host:port)."""
    http_peers: dict[EngineType, str] = Field(default_factory=dict)
    """Static engine -> base URL, tried after the addresses the registry last listed (JSON)."""
    http_timeout_s: PositiveFloat = 2.0
    """One HTTP delivery attempt to an engine."""
    http_token: SecretStr | None = None
    """This process's bearer token for every starmesh HTTP endpoint (sent and, without
    http_tokens, required). See ``starmesh.bus.http.auth`` for the per-engine scheme."""
    http_tokens: dict[str, str] = Field(default_factory=dict)
    """Name (an engine, or e.g. ``operator``) -> SHA-256 hex of its token: who may call."""
    http_max_body_bytes: PositiveInt = 8 * 1024 * 1024
    """Largest body ``POST /v1/messages`` accepts (and the egress sends)."""

    # --- the ledger and engine checkpoints (see starmesh.storage) -----------------------------
    database_url: SecretStr | None = None
    """SQLAlchemy URL of the ledger (``sqlite+aiosqlite:///path/ledger.db`` or
    ``postgresql+asyncpg://user@host/db``); unset = ``ledger.db`` in ``data_dir``. Secret: it
    may carry a password, which is never logged."""
    data_dir: Path = Path(".starmesh")
    """Where the embedded ledger (SQLite) lives when no database URL is given."""
    ledger_capacity: PositiveInt = 100_000
    """Records waiting for the database before the ledger counts itself full (back-pressure:
    Portfolio places no new order until there is room)."""
    ledger_batch: PositiveInt = 2_000
    """Most records written in one transaction."""
    checkpoint_interval_s: PositiveFloat = 5.0
    """Seconds of the engine's clock between checkpoints of an engine's state."""

    # --- MarketData Hub ----------------------------------------------------------------------
    hub_http_url: str = "http://127.0.0.1:8800"
    """Where clients reach the hub over HTTP when the bus fails."""
    hub_lease: bool = True
    """Over Redis: a hub serves only while it holds the lease in Redis, so a second hub
    process waits on standby and takes over when the first dies (README, "The standby
    hub"). Every write of the active hub is fenced by its lease's token."""
    hub_lease_ttl_s: PositiveFloat = 3.0
    """How long the lease outlives its holder's last renewal (it renews every third of it):
    about how long a standby waits before it takes over from a hub that died."""
    cache_ttl_s: dict[DataType, PositiveFloat] = Field(
        default_factory=lambda: dict(DEFAULT_CACHE_TTL_S)
    )
    """Seconds a value stays fresh, per data type: a JSON object in the environment variable
    (``{"quote": 2, "bar": 60}``); the types it leaves out keep their defaults."""

    @field_validator("cache_ttl_s", mode="before")
    @classmethod
    def _ttl_over_defaults(cls, value: Any) -> Any:
        # A partial value changes what it names: {"quote": 2} must not send bars to 60 s.
        if isinstance(value, Mapping):
            return {**{t.value: s for t, s in DEFAULT_CACHE_TTL_S.items()}, **value}
        return value

    cache_max_entries: PositiveInt = 100_000
    refresh_ahead: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """A hot value is fetched again in the background in the last fraction of its TTL.

    The larger, the earlier: every refresh shortens a hot value's life by that fraction, so
    it costs upstream calls (measured with ``starmesh bench hub``: 0.2 gave 3.1% of requests
    upstream, 0.1 about 2%, for quotes of 500 Zipf-distributed symbols).
    """
    source_timeout_s: PositiveFloat = 10.0
    """The longest one upstream call may take, rate-limit wait and the source's own retries
    included; a caller's earlier deadline (a request's timeout) shortens it."""
    snapshot_reads: bool = True
    """``get_data`` reads what the L1 cache lacks from the hub's snapshot keys on the
    MarketData Bus (one ``MGET``, no hub in the way) and asks the hub only for what is not
    there or older than its TTL by this process's clock. Over Redis only."""
    max_pairs_per_request: PositiveInt = 1_000
    """The most (symbol, data type) pairs one market-data request may ask for."""
    dev_simulated_fallback: bool = False
    """DEVELOPMENT ONLY: when neither the hub (bus, HTTP) nor the cache has a value, serve a
    simulated one (marked stale, ``source="simulated-fallback"``) instead of an error."""
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
