from starmesh import EngineType, MessagePriority, MessageType


def test_engine_values_are_lower_case_names_used_on_the_wire() -> None:
    assert EngineType.STRATEGY.value == "strategy"
    assert f"starmesh:{{{EngineType.RISK}}}:inbox" == "starmesh:{risk}:inbox"
    for engine in EngineType:
        assert engine.value == engine.name.lower()


def test_engine_default_ports_are_the_platforms() -> None:
    expected = {
        "analytics": 8100,
        "risk": 8200,
        "factor": 8300,
        "ml": 8400,
        "features": 8500,
        "websocket": 8600,
        "strategy": 8700,
        "marketdata": 8800,
        "portfolio": 8900,
        "collateral": 9000,
        "vpin": 10000,
        "backtesting": 8110,
        "toraniko": 8310,
    }
    assert {e.value: e.default_port for e in EngineType} == expected


def test_priorities_order_by_urgency() -> None:
    ordered = sorted(MessagePriority)
    assert [p.name for p in ordered] == ["LOW", "NORMAL", "HIGH", "URGENT", "FLASH_CRASH"]
    assert MessagePriority.FLASH_CRASH > MessagePriority.URGENT > MessagePriority.NORMAL
    assert MessagePriority.FLASH_CRASH.lane == "flash_crash"


def test_message_types_cover_the_business_messages() -> None:
    required = {
        "QUOTE",
        "TRADE",
        "BAR",
        "LEVEL2",
        "FUNDAMENTAL",
        "ECONOMIC",
        "STRATEGY_SIGNAL",
        "ORDER",
        "FILL",
        "POSITION_CHANGE",
        "RISK_ALERT",
        "RISK_LIMIT_BREACH",
        "ML_PREDICTION",
        "TOXICITY_WARNING",
        "MARGIN_STATUS",
        "MARGIN_CALL",
        "PERFORMANCE_METRIC",
        "FACTOR_UPDATE",
        "FEATURE_UPDATE",
        "ENGINE_HEALTH",
        "FLASH_CRASH_ALERT",
        "BACKTEST_PROGRESS",
        "REQUEST",
        "REPLY",
        "ERROR",
    }
    assert required <= {t.name for t in MessageType}
