import pytest

from starmesh import DataType, MessageType
from starmesh.core.routing import infer_message_type, marketdata_topic, pattern_buses


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("strategy.signals.buy", MessageType.STRATEGY_SIGNAL),
        ("risk.alert.var", MessageType.RISK_ALERT),
        ("risk.limit.gross", MessageType.RISK_LIMIT_BREACH),
        ("ml.prediction.AAPL", MessageType.ML_PREDICTION),
        ("vpin.toxicity.SPY", MessageType.TOXICITY_WARNING),
        ("collateral.margin.status", MessageType.MARGIN_STATUS),
        ("collateral.margin_call.acct1", MessageType.MARGIN_CALL),
        ("analytics.performance.daily", MessageType.PERFORMANCE_METRIC),
        ("factor.returns", MessageType.FACTOR_UPDATE),
        ("features.AAPL", MessageType.FEATURE_UPDATE),
        ("portfolio.health", MessageType.ENGINE_HEALTH),
        ("strategy.orders.new", MessageType.ORDER),
        ("marketdata.quote.AAPL", MessageType.QUOTE),
        ("marketdata.level2.AAPL", MessageType.LEVEL2),
        ("marketdata.request.get", MessageType.REQUEST),
        ("portfolio.rebalance.urgent", MessageType.EVENT),
        ("risk", MessageType.EVENT),
    ],
)
def test_message_type_is_inferred_from_the_first_segments(
    topic: str, expected: MessageType
) -> None:
    assert infer_message_type(topic) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("risk.alert.*", (True, False)),
        ("risk.alert.var", (True, False)),
        ("marketdata.quote.*", (False, True)),
        ("marketdata.quote.AAPL", (False, True)),
        ("*", (True, True)),
        ("m*", (True, True)),
        ("market?ata.*", (True, True)),
        ("r*", (True, False)),
    ],
)
def test_pattern_buses(pattern: str, expected: tuple[bool, bool]) -> None:
    assert pattern_buses(pattern) == expected


def test_marketdata_topic() -> None:
    assert marketdata_topic(DataType.QUOTE, "BRK.B") == "marketdata.quote.BRK.B"
