"""The star: the MarketData Hub, its sources, and the client engines use to reach it."""
