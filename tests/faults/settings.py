"""The settings every process of a fault test shares: short timeouts, so faults show fast."""

from __future__ import annotations

from starmesh import Settings


def fault_settings(prefix: str, **more: object) -> Settings:
    return Settings(
        key_prefix=prefix,
        failover_after_s=0.3,
        publish_timeout=5.0,
        reconnect_max_backoff_s=0.2,
        claim_idle_ms=1_000,
        stop_timeout_s=3.0,
        http_timeout_s=2.0,
        **more,  # type: ignore[arg-type]
    )
