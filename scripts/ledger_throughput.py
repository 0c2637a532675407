"""Fills per second the ledger persists, in batches, on one database; and what queueing a
fill costs the handler that records it. A measurement, printed; nothing is asserted.

    .venv/bin/python scripts/ledger_throughput.py sqlite+aiosqlite:////tmp/bench/ledger.db
    .venv/bin/python scripts/ledger_throughput.py postgresql+asyncpg://postgres@127.0.0.1/bench

The database must be empty or a ledger (its fills are added to, under account ``bench-*``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from starmesh.storage import FillRecord, Storage


def fill(run: str, i: int) -> FillRecord:
    return FillRecord(
        id=f"{run}-{i:08d}",
        account=run,
        seq=i,
        ts_ns=1_767_709_800_000_000_000 + i,
        symbol=("AAPL", "MSFT", "NVDA", "AMZN")[i % 4],
        side="buy" if i % 2 else "sell",
        quantity=100.0,
        price=187.25 + i % 100 / 100,
        commission=1.0,
        order_id=f"{run}-{i:08d}",
    )


async def once(url: str, n: int, batch: int) -> tuple[float, float, int]:
    """(fills/s from the first record queued to the last committed, ns per record() call,
    batches)."""
    storage = await Storage.open(url)
    storage.writer.batch = batch
    ledger = storage.ledger("portfolio", f"bench-{uuid.uuid4().hex[:8]}")
    records = [fill(ledger.account, i) for i in range(1, n + 1)]
    try:
        start = time.perf_counter()
        queued_ns = 0
        for offset in range(0, n, 100):  # a handler's worth at a time, then yield to the writer
            t0 = time.perf_counter_ns()
            for record in records[offset : offset + 100]:
                ledger.record(record)
            queued_ns += time.perf_counter_ns() - t0
            await asyncio.sleep(0)
        await storage.flush()
        elapsed = time.perf_counter() - start
        assert storage.writer.counts["written"] == n, storage.writer.stats()
        return n / elapsed, queued_ns / n, storage.writer.counts["batches"]
    finally:
        await storage.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--fills", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rates, costs = [], []
    for _ in range(args.repeat):
        rate, cost, batches = await once(args.url, args.fills, args.batch)
        rates.append(rate)
        costs.append(cost)
        print(f"{args.fills:,} fills in {batches} batches: {rate:,.0f} fills/s persisted; "
              f"record() {cost / 1e3:.2f} µs each")  # fmt: skip
    print(f"median {statistics.median(rates):,.0f} fills/s "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f}); "
          f"record() median {statistics.median(costs) / 1e3:.2f} µs")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
