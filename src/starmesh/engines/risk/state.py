"""Risk's state in the ledger: the audit log of its alerts and clearances, and the checkpoint
it resumes from (peak equity, the alerts in force, the tightenings of its limits)."""

from __future__ import annotations

import msgspec

from starmesh.core.payloads import FlashCrashAlert, RiskAlert, RiskLimits
from starmesh.storage import AlertRecord

__all__ = ["RiskState", "alert_record"]


class RiskState(msgspec.Struct, frozen=True, kw_only=True):
    peak_equity: float
    active: dict[str, RiskAlert | FlashCrashAlert]
    """Alerts not yet cleared, by ``rule:symbol``: the halt state."""
    limits: RiskLimits
    """The limits in force when the checkpoint was taken."""
    crashed_at: dict[str, int] = msgspec.field(default_factory=dict)
    """symbol -> clock ns of its last crash (its halt clears a cooldown after)."""
    toxic_until: dict[str, int] = msgspec.field(default_factory=dict)
    margin_call: bool = False


def alert_record(alert: RiskAlert | FlashCrashAlert, *, message_id: str, ts_ns: int) -> AlertRecord:
    """An alert or clearance as the audit log keeps it, with the payload as it was sent."""
    if isinstance(alert, FlashCrashAlert):
        rule, severity = "flash_crash", "critical"
    else:
        rule, severity = alert.rule, alert.severity
    return AlertRecord(
        id=message_id, ts_ns=ts_ns, source="risk", rule=rule, symbol=alert.symbol,
        severity=severity, halt=alert.halt, cleared=alert.cleared, message=alert.message,
        payload=msgspec.json.encode(alert).decode(),
    )  # fmt: skip
