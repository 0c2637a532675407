"""``starmesh db upgrade``, ``starmesh ledger`` and ``starmesh run`` with a ledger, as a user
runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from starmesh.cli.app import app
from starmesh.cli.ledger import parse_since
from starmesh.storage import Database, Storage, upgrade
from tests.cli.test_run import flat

STARMESH = [sys.executable, "-m", "starmesh"]


def starmesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STARMESH, *args], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def test_db_upgrade_creates_the_schema_then_has_nothing_to_do(database_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "schema empty -> 0003" in flat(result.output)
    result = runner.invoke(app, ["db", "upgrade", "--database-url", database_url])
    assert "schema already at 0003" in flat(result.output)


def test_a_run_writes_the_ledger_that_starmesh_ledger_reads_back(database_url: str) -> None:
    result = starmesh("run", "--duration", "6", "--symbols", "5", "--rate", "500",
                      "--database-url", database_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ledger: " in result.stdout
    runner = CliRunner()
    shown = runner.invoke(app, ["ledger", "--database-url", database_url, "--json"])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert set(summary) >= {"fills", "positions", "realised_pnl", "alerts"}

    async def fills() -> list[tuple[str, float]]:
        storage = await Storage.open(database_url, create=False)
        try:
            return [(f.symbol, f.signed_quantity) for f in await storage.fills()]
        finally:
            await storage.close()

    rows = asyncio.run(fills())
    assert summary["fills"] == len(rows) > 0
    positions: dict[str, float] = {}
    for symbol, quantity in rows:
        positions[symbol] = positions.get(symbol, 0.0) + quantity
    assert summary["positions"] == {s: q for s, q in sorted(positions.items()) if q}
    table = runner.invoke(app, ["ledger", "--database-url", database_url, "--since", "1h"])
    assert f"fills: {len(rows):,}" in flat(table.output)
    assert "realised P&L" in table.output


def test_run_refuses_an_older_schema_and_says_what_to_run(database_url: str) -> None:
    async def older() -> None:
        database = Database(database_url)
        try:
            await upgrade(database, "0001")
        finally:
            await database.dispose()

    asyncio.run(older())
    result = starmesh("run", "--duration", "2", "--database-url", database_url)
    assert result.returncode == 1
    assert "older than this starmesh's 0003" in flat(result.stdout)
    assert "starmesh db upgrade --database-url" in flat(result.stdout)


def test_run_keeps_its_embedded_ledger_in_the_data_dir_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("STARMESH_DATA_DIR", str(data))
    result = starmesh("run", "--duration", "1", "--symbols", "2", "--no-ledger")
    assert result.returncode == 0, result.stderr
    assert "ledger: no ledger" in result.stdout
    assert not data.exists()
    result = starmesh("run", "--duration", "1", "--symbols", "2")
    assert result.returncode == 0, result.stderr
    assert f"ledger: sqlite+aiosqlite:///{data / 'ledger.db'}" in flat(result.stdout)
    assert (data / "ledger.db").exists()


def test_a_password_in_the_url_is_never_shown() -> None:
    url = "postgresql+asyncpg://trader:s3cret@127.0.0.1:1/ledger"
    result = CliRunner().invoke(app, ["ledger", "--database-url", url])
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    assert "trader:***@127.0.0.1:1/ledger" in flat(result.output)


def test_bad_database_urls_and_times_are_usage_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["ledger", "--database-url", "mysql://root@localhost/x"])
    assert result.exit_code == 2
    assert "SQLite (sqlite+aiosqlite://) or PostgreSQL" in flat(result.output)
    with pytest.raises(typer.BadParameter, match="neither a date/time"):
        parse_since("yesterday")
    assert parse_since("2h", now_s=10_000.0) == (10_000 - 7_200) * 1_000_000_000
    assert parse_since("2026-01-06T14:30") == 1_767_709_800_000_000_000
