"""``starmesh doctor``: every setting, its value and where it came from, secrets redacted."""

from __future__ import annotations

from typer.testing import CliRunner

from starmesh.cli.app import app
from starmesh.core.config import Settings


def test_every_setting_with_its_origin_and_no_secret() -> None:
    env = {
        "COLUMNS": "80",
        "STARMESH_BUS_URL": "redis://risk:hunter2@bus-host:6381",
        "STARMESH_FRED_KEY": "fredkey0123456789",
        "STARMESH_HTTP_TOKEN": "token0123456789",
        "STARMESH_CACHE_TTL_S": '{"quote": 2}',
        "STARMESH_LANE_CAPACTIY": "5",  # a typo: Settings ignores it, doctor names it
    }
    result = CliRunner().invoke(app, ["doctor"], env=env)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()
            if line.startswith(" STARMESH_")}  # fmt: skip
    assert set(rows) == {f"STARMESH_{name.upper()}" for name in Settings.model_fields}
    assert rows["STARMESH_BUS_URL"] == ["redis://risk:***@bus-host:6381", "environment"]
    assert rows["STARMESH_FRED_KEY"] == ["set", "(hidden)", "environment"]
    assert rows["STARMESH_HTTP_TOKEN"] == ["set", "(hidden)", "environment"]
    assert rows["STARMESH_KEY_PREFIX"] == ["starmesh", "default"]
    assert rows["STARMESH_CACHE_TTL_S"][:2] == ['{"quote":', "2.0,"]  # merged over defaults
    for secret in ("hunter2", "fredkey0123456789", "token0123456789"):
        assert secret not in result.output
    assert "STARMESH_LANE_CAPACTIY is not a starmesh setting: it is ignored" in result.output
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
