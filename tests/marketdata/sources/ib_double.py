"""A double of ``ib_async.IB``: exactly the methods ``IbkrSource`` calls, answering from files.

TWS speaks a socket protocol that cannot be recorded as HTTP, so the recorded values live in
``tests/fixtures/sources/ibkr/<SYMBOL>.json`` and this double serves them through real
``ib_async`` objects (``Contract``, ``Ticker``, ``DOMLevel``, ``BarData``, ``RequestError``,
eventkit events), behaving as ``IB`` does: snapshots and bars are awaited, depth arrives
later on the ticker's ``updateEvent``, errors about a subscription come on ``errorEvent``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from eventkit import Event  # type: ignore[import-untyped]
from ib_async import BarData, Contract, DOMLevel, RequestError, Ticker

from tests.marketdata.sources.support import fixture_json


def recorded(symbol: str) -> dict[str, Any]:
    data: dict[str, Any] = fixture_json("ibkr", f"{symbol}.json")
    return data


class FakeIB:
    def __init__(self, *symbols: str) -> None:
        self.recorded = {symbol: recorded(symbol) for symbol in symbols or ("AAPL",)}
        self.errorEvent = Event("errorEvent")
        self.connected = False
        self.connects: list[dict[str, Any]] = []
        self.refuse_connect: OSError | None = None
        self.failures: dict[str, BaseException] = {}
        """Method name -> what it raises (a ``RequestError`` as TWS reports, a lost link)."""
        self.depth_error: tuple[int, str] | None = None
        self.depth_arrives = True
        self.depth_requests: list[tuple[Contract, int, bool]] = []
        self.depth_cancels: list[tuple[Contract, bool]] = []
        self.historical: list[tuple[Any, ...]] = []
        self.next_req_id = 1

    def _ready(self, method: str) -> None:
        if not self.connected:
            raise ConnectionError("Not connected")
        failure = self.failures.get(method)
        if failure is not None:
            raise failure

    def isConnected(self) -> bool:
        return self.connected

    async def connectAsync(
        self, *, host: str, port: int, clientId: int, timeout: float | None, readonly: bool
    ) -> object:
        self.connects.append(
            {"host": host, "port": port, "clientId": clientId, "timeout": timeout,
             "readonly": readonly}
        )  # fmt: skip
        if self.refuse_connect is not None:
            raise self.refuse_connect
        self.connected = True
        return self

    def disconnect(self) -> object:
        self.connected = False
        return None

    async def qualifyContractsAsync(
        self, *contracts: Contract
    ) -> Sequence[Contract | list[Contract | None] | None]:
        self._ready("qualifyContractsAsync")
        found: list[Contract | list[Contract | None] | None] = []
        for contract in contracts:
            data = self.recorded.get(contract.symbol)
            same = data is not None and all(
                getattr(contract, field) == data["contract"][field]
                for field in ("secType", "currency")
            )
            found.append(Contract(**data["contract"]) if data is not None and same else None)
        return found

    async def reqTickersAsync(self, *contracts: Contract) -> Sequence[Ticker]:
        self._ready("reqTickersAsync")
        tickers = []
        for contract in contracts:
            ticker = Ticker(contract=contract)  # created empty, filled as TWS's ticks arrive
            for field, value in self.recorded[contract.symbol]["snapshot"].items():
                setattr(ticker, field, float(value))
            tickers.append(ticker)
        return tickers

    def reqMktDepth(self, contract: Contract, *, numRows: int, isSmartDepth: bool) -> Ticker:
        self.depth_requests.append((contract, numRows, isSmartDepth))
        ticker = Ticker(contract=contract)
        req_id, self.next_req_id = self.next_req_id, self.next_req_id + 1
        book = self.recorded[contract.symbol]["depth"]

        def arrive() -> None:
            if self.depth_error is not None:
                code, message = self.depth_error
                self.errorEvent.emit(req_id, code, message, contract)
                return
            ticker.domBids[:] = [DOMLevel(*level) for level in book["bids"][:numRows]]
            ticker.domAsks[:] = [DOMLevel(*level) for level in book["asks"][:numRows]]
            ticker.updateEvent.emit(ticker)

        if self.depth_arrives:
            asyncio.get_running_loop().call_soon(arrive)
        return ticker

    def cancelMktDepth(self, contract: Contract, *, isSmartDepth: bool) -> object:
        self.depth_cancels.append((contract, isSmartDepth))
        return None

    async def reqHistoricalDataAsync(
        self,
        contract: Contract,
        endDateTime: str,
        durationStr: str,
        barSizeSetting: str,
        whatToShow: str,
        useRTH: bool,
        *,
        formatDate: int,
        timeout: float,
    ) -> Sequence[BarData]:
        self._ready("reqHistoricalDataAsync")
        self.historical.append(
            (contract.symbol, endDateTime, durationStr, barSizeSetting, whatToShow, useRTH,
             formatDate)
        )  # fmt: skip
        rows = self.recorded[contract.symbol]["bars"].get(barSizeSetting, [])
        return [
            BarData(
                date=datetime.fromisoformat(row["date"])
                if "T" in row["date"]
                else date.fromisoformat(row["date"]),
                open=row["open"],
                high=row["high"],
                low=row["low"],
                close=row["close"],
                volume=row["volume"],
                average=row["average"],
                barCount=row["barCount"],
            )
            for row in rows
        ]


def request_error(code: int, message: str) -> RequestError:
    """The error ``IB`` raises when TWS reports one for a request (``RaiseRequestErrors``)."""
    return RequestError(7, code, message)
