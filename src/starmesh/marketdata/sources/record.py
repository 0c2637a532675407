"""Record a provider's answers as test fixtures, every credential scrubbed.

When a provider changes its format, record a fresh answer with your own key and replace
the fixtures under ``tests/fixtures/sources/<source>/``: one ``--out`` for each answer the
fetch takes, in order (FRED asks for the series' title first, then its observations)::

    STARMESH_FRED_KEY=... .venv/bin/python -m starmesh.marketdata.sources.record fred DGS10 \\
        --param start=2024-05-22 --param end=2024-05-31 \\
        --out tests/fixtures/sources/fred/series_DGS10.json \\
        --out tests/fixtures/sources/fred/observations_DGS10.json

The recorder builds the adapter with its real request code, performs the fetch once (no
retries, so an error answer is recorded as it came) and writes each raw answer body to its
``--out``, the last ``--out`` taking the last answer (the data); answers before the first
``--out`` go beside the last one as ``<stem>.<n><suffix>``. Each answer's status, URL and
the headers that matter go to ``<out>.meta.json``. Every credential starmesh holds (the API
keys and the EDGAR User-Agent) is replaced by ``***`` in URLs, headers and bodies, and
headers that can carry secrets or cookies are dropped. Then it prints what the adapter made
of the answer. IBKR speaks a socket protocol: it has no HTTP answer to record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import httpx

from starmesh.core.clock import MonotonicClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import MarketDataError
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.credentials import scrub
from starmesh.marketdata.sources.external import HTTP_SOURCES
from starmesh.marketdata.sources.http import RetryPolicy

__all__ = ["RECORDABLE", "Exchange", "RecordingTransport", "main", "record", "secrets_of"]

KEPT_HEADERS: Final = frozenset(
    {"content-type", "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "date"}
)
DEFAULT_TYPES: Final = {
    "alphavantage": DataType.BAR, "fred": DataType.ECONOMIC, "edgar": DataType.FUNDAMENTAL,
    "datagov": DataType.NEWS, "tradingeconomics": DataType.ECONOMIC,
    "dbnomics": DataType.ECONOMIC, "yahoo": DataType.BAR,
}  # fmt: skip


RECORDABLE: Final = HTTP_SOURCES
"""Every adapter that speaks HTTP (IBKR's socket protocol has no answer to record)."""


class Exchange:
    """One request as it went on the wire and the answer to it."""

    def __init__(self, request: httpx.Request, response: httpx.Response, body: bytes) -> None:
        self.request = request
        self.response = response
        self.body = body


class RecordingTransport(httpx.AsyncBaseTransport):
    """Keeps every exchange that passes through it (below the credential transport)."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append(Exchange(request, response, body))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def secrets_of(settings: Settings) -> list[str]:
    """Every credential starmesh holds, to scrub from what is recorded."""
    keys = (settings.alphavantage_key, settings.fred_key, settings.tradingeconomics_key,
            settings.datagov_key)  # fmt: skip
    found = [key.get_secret_value() for key in keys if key is not None]
    if settings.edgar_user_agent:
        found.append(settings.edgar_user_agent)
    return [secret for secret in found if secret]


def _scrub_bytes(body: bytes, secrets: Sequence[str]) -> bytes:
    for secret in secrets:
        body = body.replace(secret.encode(), b"***")
    text = body.decode("utf-8", "surrogateescape")
    return scrub(text, secrets).encode("utf-8", "surrogateescape")


def _paths(outs: Sequence[Path], count: int) -> list[Path]:
    """Where each of ``count`` answers goes: the last ``--out`` takes the last answer, the one
    before it the answer before, ...; answers left over go beside the last as ``<stem>.<n>``."""
    last = outs[-1]
    named = list(outs[-count:]) if count else []
    spare = [
        last.with_name(f"{last.stem}.{n}{last.suffix}") for n in range(1, count - len(named) + 1)
    ]
    return [*spare, *named]


async def record(
    source_name: str,
    request: DataRequest,
    out: Path | Sequence[Path],
    *,
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[list[Path], str]:
    """Fetch once, write the scrubbed answers; return their paths and what the adapter said.

    ``out``: one path per answer, in order (see :func:`_paths` for fewer)."""
    outs = [out] if isinstance(out, Path) else list(out)
    settings = settings or Settings()
    recorder = RecordingTransport(transport)
    source = RECORDABLE[source_name](
        settings, MonotonicClock(), retry=RetryPolicy(attempts=1), transport=recorder
    )
    try:
        outcome = f"parsed: {type(await source.fetch(request)).__name__}"
    except MarketDataError as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    finally:
        await source.aclose()
    secrets = secrets_of(settings)
    paths = _paths(outs, len(recorder.exchanges))
    for path, exchange in zip(paths, recorder.exchanges, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_scrub_bytes(exchange.body, secrets))
        meta = {
            "source": source_name,
            "request": {
                "method": exchange.request.method,
                "url": scrub(str(exchange.request.url), secrets),
            },
            "status": exchange.response.status_code,
            "headers": {
                name: scrub(value, secrets)
                for name, value in exchange.response.headers.items()
                if name.lower() in KEPT_HEADERS
            },
        }
        path.with_name(path.name + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return paths, outcome


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m starmesh.marketdata.sources.record",
        description="Record a provider's raw answer as a test fixture, credentials scrubbed.",
    )
    parser.add_argument("source", help=f"one of {', '.join(RECORDABLE)}")
    parser.add_argument("symbol")
    parser.add_argument(
        "--type", dest="data_type", choices=[t.value for t in DataType],
        help="the data type to fetch (default: the source's main one)",
    )  # fmt: skip
    parser.add_argument("--param", action="append", default=[], metavar="K=V")
    parser.add_argument(
        "--out", type=Path, action="append", required=True,
        help="where an answer goes; one per answer the fetch takes, in order (the last: the data)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.source not in RECORDABLE:
        hint = " (IBKR speaks a socket protocol, not HTTP)" if args.source == "ibkr" else ""
        parser.error(f"cannot record {args.source!r}{hint}; choose from {', '.join(RECORDABLE)}")
    params = dict(p.split("=", 1) for p in args.param if "=" in p)
    if len(params) != len(args.param):
        parser.error("--param takes NAME=VALUE")
    data_type = DataType(args.data_type) if args.data_type else DEFAULT_TYPES[args.source]
    request = DataRequest.of(args.source, data_type, args.symbol, params)
    paths, outcome = asyncio.run(record(args.source, request, args.out))
    for path in paths:
        print(f"wrote {path} (+ {path.name}.meta.json)")
    for unused in args.out[: max(0, len(args.out) - len(paths))]:
        print(f"no answer for {unused}: the fetch took {len(paths)}")
    if not paths:
        print("no answer to record")
    print(outcome)
    return 0 if outcome.startswith("parsed") else 1


if __name__ == "__main__":
    sys.exit(main())
