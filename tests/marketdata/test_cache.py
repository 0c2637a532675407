from starmesh.core.clock import ManualClock
from starmesh.core.enums import DataType
from starmesh.core.payloads import Quote, Snapshot
from starmesh.marketdata.cache import SnapshotCache
from starmesh.marketdata.source import DataRequest

TTL = {DataType.QUOTE: 1.0, DataType.FUNDAMENTAL: 86_400.0}


def snapshot(symbol: str, seq: int = 1) -> Snapshot:
    quote = Quote(symbol=symbol, bid=1, ask=2, bid_size=1, ask_size=1)
    return Snapshot(
        symbol=symbol, data_type=DataType.QUOTE, seq=seq, ts_event=0, source="s", data=quote
    )


def make(clock: ManualClock, max_entries: int = 100) -> SnapshotCache:
    return SnapshotCache(TTL.__getitem__, max_entries=max_entries, refresh_ahead=0.2, clock=clock)


def test_entries_are_fresh_for_their_data_types_ttl() -> None:
    clock = ManualClock()
    cache = make(clock)
    quote = cache.put(DataRequest("s", DataType.QUOTE, "AAPL"), snapshot("AAPL"))
    fundamental = cache.put(DataRequest("s", DataType.FUNDAMENTAL, "AAPL"), snapshot("AAPL"))
    clock.advance(0.999)
    assert cache.is_fresh(quote)
    clock.advance(0.001)
    assert not cache.is_fresh(quote)
    assert cache.is_fresh(fundamental)
    assert cache.age(quote) == 1.0


def test_least_recently_used_entries_go_first() -> None:
    cache = make(ManualClock(), max_entries=2)
    keys = [DataRequest("s", DataType.QUOTE, s) for s in ("A", "B", "C")]
    cache.put(keys[0], snapshot("A"))
    cache.put(keys[1], snapshot("B"))
    assert cache.get(keys[0]) is not None  # A is now the most recently used
    cache.put(keys[2], snapshot("C"))
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) is not None
    assert cache.evictions == 1
    assert len(cache) == 2


def test_only_hot_entries_late_in_life_are_due_for_refresh() -> None:
    clock = ManualClock()
    cache = make(clock)
    entry = cache.put(DataRequest("s", DataType.QUOTE, "AAPL"), snapshot("AAPL"))
    clock.advance(0.85)
    assert not cache.due_for_refresh(entry)  # late, but not hot
    entry.hits = 2
    assert cache.due_for_refresh(entry)
    early = cache.put(DataRequest("s", DataType.QUOTE, "MSFT"), snapshot("MSFT"))
    early.hits = 5
    assert not cache.due_for_refresh(early)  # hot, but early in its life
    clock.advance(0.2)
    assert not cache.due_for_refresh(entry)  # expired: a miss now, not a refresh
