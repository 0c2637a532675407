"""The ledger on real databases: idempotent by id, bad input refused and counted, a full
queue is back-pressure, and a database fault loses nothing."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from starmesh.storage import (
    AlertRecord,
    CheckpointRecord,
    Database,
    EquityRecord,
    FillRecord,
    InvalidRecordError,
    SignalRecord,
    Storage,
    ensure_current,
)
from tests.helpers import eventually


def fill(n: int, **changes: object) -> FillRecord:
    fields: dict[str, object] = {
        "id": f"paper-{n:08d}", "account": "paper", "seq": n, "ts_ns": 1_000 + n,
        "symbol": "AAPL", "side": "buy", "quantity": 100.0, "price": 187.25,
        "commission": 1.0, "order_id": f"paper-{n:08d}",
    }  # fmt: skip
    fields.update(changes)
    return FillRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    opened = await Storage.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_fill_redelivered_with_the_same_id_is_written_once(storage: Storage) -> None:
    ledger = storage.ledger("portfolio", "paper")
    ledger.record(fill(1))
    ledger.record(fill(1))  # twice in one batch
    await storage.flush()
    ledger.record(fill(1, price=999.0))  # and again later: the first one stands
    ledger.record(fill(2, side="sell", quantity=40.0))
    await storage.flush()
    fills = await storage.fills()
    assert [(f.id, f.side, f.quantity, f.price) for f in fills] == [
        ("paper-00000001", "buy", 100.0, 187.25),
        ("paper-00000002", "sell", 40.0, 187.25),
    ]
    stats = ledger.stats()
    assert (stats["written"], stats["duplicates"]) == (2, 2)


async def test_every_kind_of_record_round_trips(storage: Storage) -> None:
    ledger = storage.ledger("risk", "paper")
    ledger.record(SignalRecord(id="m-1", account="paper", ts_ns=5, symbol="AAPL", action="BUY",
                               quantity=100, target=100, price=187.2, strategy="ma"))  # fmt: skip
    ledger.record(AlertRecord(id="m-2", ts_ns=6, source="risk", rule="drawdown", symbol=None,
                              severity="critical", halt=True, cleared=False,
                              message="drawdown 6%", payload="{}"))  # fmt: skip
    ledger.record(EquityRecord(account="paper", ts_ns=7, cash=1.5, equity=2.5,
                               gross_exposure=1.0, net_exposure=-1.0, realised_pnl=0.25,
                               unrealised_pnl=-0.125, commissions=3.0))  # fmt: skip
    first = ledger.checkpoint('{"peak": 1}', ts_ns=8)
    second = ledger.checkpoint('{"peak": 2}', ts_ns=9)
    assert first is not None
    assert second is not None
    assert second.seq == first.seq + 1
    await storage.flush()
    (alert,) = await storage.alerts()
    assert (alert.rule, alert.halt, alert.cleared, alert.symbol) == ("drawdown", True, False, None)
    assert await ledger.last_checkpoint() == CheckpointRecord(
        engine="risk", account="paper", seq=2, ts_ns=9, state='{"peak": 2}'
    )
    assert ledger.stats()["written"] == 5


def snapshot(account: str, ts_ns: int, equity: float) -> EquityRecord:
    return EquityRecord(account=account, ts_ns=ts_ns, cash=equity, equity=equity,
                        gross_exposure=0.0, net_exposure=0.0, realised_pnl=0.0,
                        unrealised_pnl=0.0, commissions=0.0)  # fmt: skip


async def test_history_reads_back_oldest_first_and_the_last_n_when_limited(
    storage: Storage,
) -> None:
    ledger = storage.ledger("portfolio", "paper")
    for n in (3, 1, 2):  # queued out of order: read back in the order they were made
        ledger.record(fill(n, ts_ns=100 + n))
    ledger.record(fill(9, account="other", id="other-9", order_id="other-9"))
    for ts, equity in ((30, 1_003.0), (10, 1_001.0), (20, 1_002.0)):
        ledger.record(snapshot("paper", ts, equity))
    ledger.record(snapshot("other", 15, 5.0))
    for n in (2, 1, 3):
        ledger.record(AlertRecord(id=f"a-{n}", ts_ns=n, source="risk", rule="var", symbol=None,
                                  severity="warning", halt=False, cleared=False,
                                  message=f"alert {n}", payload="{}"))  # fmt: skip
    assert [f.seq for f in await ledger.fills()] == [1, 2, 3]
    assert [f.seq for f in await ledger.fills(limit=2)] == [2, 3]
    assert [(e.ts_ns, e.equity) for e in await ledger.equity()] == [
        (10, 1_001.0), (20, 1_002.0), (30, 1_003.0),
    ]  # fmt: skip
    assert [e.ts_ns for e in await ledger.equity(limit=2)] == [20, 30]
    assert [e.account for e in await storage.equity()] == ["paper", "other", "paper", "paper"]
    assert [a.id for a in await ledger.alerts(limit=2)] == ["a-2", "a-3"]
    assert [a.id for a in await storage.alerts(since_ns=2, limit=5)] == ["a-2", "a-3"]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (fill(2, price=math.nan), "price must be a finite number, got nan"),
        (fill(2, quantity=0.0), "quantity must be positive, got 0.0"),
        (fill(2, quantity=-5.0), "quantity must be positive, got -5.0"),
        (fill(2, price=math.inf), "price must be a finite number, got inf"),
        (fill(2, commission=-1.0), "commission must not be negative"),
        (fill(2, side="BUY"), "side must be 'buy' or 'sell', got 'BUY'"),
        (fill(2, symbol=""), "symbol must not be empty"),
    ],
)
async def test_a_bad_fill_is_refused_with_a_clear_error_and_counted(
    storage: Storage, bad: FillRecord, reason: str
) -> None:
    ledger = storage.ledger("portfolio", "paper")
    ledger.record(fill(1))
    with pytest.raises(InvalidRecordError, match=f"fill 'paper-00000002' refused: {reason}"):
        ledger.record(bad)
    ledger.record(fill(3))
    await storage.flush()
    assert [f.id for f in await storage.fills()] == ["paper-00000001", "paper-00000003"]
    assert ledger.stats()["rejected"] == 1
    assert storage.writer.counts["failed"] == 0


async def test_a_full_queue_is_back_pressure_counted_and_nothing_that_happened_is_dropped(
    database_url: str,
) -> None:
    storage = await Storage.open(database_url, background=False)  # writes only on flush
    storage.writer.capacity = 3
    ledger = storage.ledger("portfolio", "paper")
    try:
        for n in range(3):
            ledger.record(fill(n))
        assert not ledger.has_room()
        assert ledger.checkpoint("{}", ts_ns=1) is None  # replaceable: refused
        ledger.record(fill(3))  # a fill that happened: kept over the bound
        stats = ledger.stats()
        assert (stats["backlog"], stats["full"], stats["refused_full"]) == (4, 2, 1)
        await storage.flush()
        assert ledger.has_room()
        assert len(await storage.fills()) == 4
    finally:
        await storage.close()


async def test_a_database_fault_is_retried_and_loses_nothing(storage: Storage) -> None:
    ledger = storage.ledger("portfolio", "paper")
    ledger.record(fill(1))
    await storage.flush()
    async with storage.database.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE fills RENAME TO fills_away"))
    for n in range(2, 6):
        ledger.record(fill(n))
    await eventually(lambda: storage.writer.counts["write_errors"] >= 2, what="failed writes")
    assert storage.writer.stats()["last_error"] is not None
    assert ledger.stats()["backlog"] == 4
    async with storage.database.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE fills_away RENAME TO fills"))
    await storage.flush(timeout=30)
    assert [f.seq for f in await storage.fills()] == [1, 2, 3, 4, 5]
    assert storage.writer.counts["lost"] == 0
    assert storage.writer.stats()["last_error"] is None


async def test_closing_with_the_database_gone_says_what_was_not_written(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = storage.ledger("portfolio", "paper")
    async with storage.database.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE fills RENAME TO fills_away"))
    ledger.record(fill(7))
    await storage.writer.close(timeout=0.3)
    assert storage.writer.counts["lost"] == 1
    assert "1 records NOT written before stopping" in caplog.text
    assert "fill 'paper-00000007'" in caplog.text


async def test_keep_up_writes_only_once_the_queue_is_half_full(database_url: str) -> None:
    storage = Storage(Database(database_url), capacity=10, background=False)
    storage.revision = await ensure_current(storage.database)
    try:
        ledger = storage.ledger("portfolio", "paper")
        for n in range(1, 6):
            ledger.record(fill(n))
        await storage.keep_up()
        assert storage.writer.backlog == 5  # half full: nothing forced yet
        ledger.record(fill(6))
        await storage.keep_up()
        assert storage.writer.backlog == 0
        assert [f.seq for f in await storage.fills()] == [1, 2, 3, 4, 5, 6]
    finally:
        await storage.close()
