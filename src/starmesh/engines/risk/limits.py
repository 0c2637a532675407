"""Pre-trade checks: what Risk answers on ``risk.rpc.check``, and what an executor applies
itself, from its copy of the limits, when Risk does not answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from starmesh.core.payloads import OrderCheck, OrderCheckResult, RiskLimits

__all__ = ["PreTradeCheck"]

_SECOND_NS = 1_000_000_000


class PreTradeCheck:
    """Position per symbol, gross notional of the book, and orders per second.

    An order that brings a position closer to flat is never refused for its size (refusing it
    would keep the risk it is trying to shed); it still counts against the order rate.
    """

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self._approved_at: deque[int] = deque()

    def check(
        self,
        order: OrderCheck,
        book: Mapping[str, float],
        prices: Mapping[str, float],
        now_ns: int,
    ) -> OrderCheckResult:
        """Approve or refuse ``order``; ``book`` is symbol -> signed quantity before it,
        ``prices`` the marks of the book's symbols. An approved order is counted.
        """
        limits = self.limits
        while self._approved_at and self._approved_at[0] <= now_ns - _SECOND_NS:
            self._approved_at.popleft()
        if len(self._approved_at) >= limits.max_orders_per_second:
            return self._refuse(
                order, f"max orders per second ({limits.max_orders_per_second:g}) reached"
            )
        signed = order.quantity if order.side == "BUY" else -order.quantity
        after = order.position + signed
        if abs(after) > abs(order.position) or after * order.position < 0:
            value_after = abs(after) * order.price
            limit = limits.position_limit(order.symbol)
            if value_after > limit:
                return self._refuse(
                    order,
                    f"{order.symbol} position would be {value_after:,.0f} "
                    f"over the limit of {limit:,.0f}",
                )
            gross = sum(
                abs(quantity) * prices.get(symbol, 0.0)
                for symbol, quantity in book.items()
                if symbol != order.symbol
            )
            if gross + value_after > limits.max_gross_notional:
                return self._refuse(
                    order,
                    f"gross notional would be {gross + value_after:,.0f} "
                    f"over the limit of {limits.max_gross_notional:,.0f}",
                )
        self._approved_at.append(now_ns)
        return OrderCheckResult(order_id=order.order_id, approved=True)

    @staticmethod
    def _refuse(order: OrderCheck, reason: str) -> OrderCheckResult:
        return OrderCheckResult(order_id=order.order_id, approved=False, reason=reason)
