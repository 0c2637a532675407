"""The fixture recorder: the adapter's real request, credentials scrubbed from what is saved."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx

from starmesh.marketdata.sources.record import main
from tests.marketdata.sources.cases import AV_KEY, EDGAR_AGENT, FRED_KEY
from tests.marketdata.sources.support import fixture_bytes

CREDENTIAL_ENV = ("STARMESH_ALPHAVANTAGE_KEY", "STARMESH_FRED_KEY", "STARMESH_TRADINGECONOMICS_KEY",
                  "STARMESH_DATAGOV_KEY", "STARMESH_EDGAR_USER_AGENT")  # fmt: skip


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STARMESH_ALPHAVANTAGE_KEY", AV_KEY)
    monkeypatch.setenv("STARMESH_FRED_KEY", FRED_KEY)
    monkeypatch.setenv("STARMESH_EDGAR_USER_AGENT", EDGAR_AGENT)


def everything_written(directory: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(directory.iterdir()))


def test_records_the_raw_answer_with_the_key_scrubbed(
    tmp_path: Path, respx_mock: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    body = fixture_bytes("alphavantage", "time_series_daily_IBM.json")
    echoing = body.replace(b'"Compact"', f'"Compact ({AV_KEY})"'.encode())
    route = respx_mock.get("https://www.alphavantage.co/query").mock(
        return_value=httpx.Response(
            200, content=echoing,
            headers={"Content-Type": "application/json", "Set-Cookie": f"k={AV_KEY}"},
        )
    )  # fmt: skip
    out = tmp_path / "daily.json"
    code = main(["alphavantage", "IBM", "--param", "outputsize=compact", "--out", str(out)])
    assert code == 0
    assert route.calls.last.request.url.params["apikey"] == AV_KEY  # the real request went out
    assert AV_KEY not in everything_written(tmp_path)
    assert out.read_bytes() == body.replace(b'"Compact"', b'"Compact (***)"')
    meta = json.loads((tmp_path / "daily.json.meta.json").read_text())
    assert meta["status"] == 200
    assert meta["request"]["url"] == (
        "https://www.alphavantage.co/query?function=TIME_SERIES_DAILY&symbol=IBM"
        "&outputsize=compact&apikey=***"
    )
    assert meta["headers"] == {"content-type": "application/json"}  # no cookies
    printed = capsys.readouterr().out
    assert "parsed: BarSeries" in printed
    assert AV_KEY not in printed


def test_every_answer_of_a_fetch_is_saved(tmp_path: Path, respx_mock: respx.MockRouter) -> None:
    respx_mock.get("https://api.stlouisfed.org/fred/series").mock(
        return_value=httpx.Response(200, content=fixture_bytes("fred", "series_DGS10.json"))
    )
    respx_mock.get("https://api.stlouisfed.org/fred/series/observations").mock(
        return_value=httpx.Response(
            429, content=fixture_bytes("fred", "error_too_many_requests.json"),
            headers={"Retry-After": "1", "X-RateLimit-Remaining": "0"},
        )
    )  # fmt: skip
    out = tmp_path / "observations.json"
    code = main(["fred", "DGS10", "--type", "economic", "--param", "start=2024-05-22",
                 "--out", str(out)])  # fmt: skip
    assert code == 1  # the answer was an error: recorded as it came, once, not retried
    assert (tmp_path / "observations.1.json").read_bytes() == fixture_bytes(
        "fred", "series_DGS10.json"
    )
    assert out.read_bytes() == fixture_bytes("fred", "error_too_many_requests.json")
    meta = json.loads((tmp_path / "observations.json.meta.json").read_text())
    assert meta["status"] == 429
    assert meta["headers"] == {"retry-after": "1", "x-ratelimit-remaining": "0"}
    assert "api_key=***" in meta["request"]["url"]
    assert FRED_KEY not in everything_written(tmp_path)


def test_the_edgar_user_agent_is_scrubbed_too(tmp_path: Path, respx_mock: respx.MockRouter) -> None:
    respx_mock.get("https://data.sec.gov/submissions/CIK0000320193.json").mock(
        return_value=httpx.Response(403, text=f"<h1>Undeclared</h1><p>{EDGAR_AGENT}</p>")
    )
    out = tmp_path / "submissions.html"
    assert main(["edgar", "320193", "--type", "news", "--out", str(out)]) == 1
    assert EDGAR_AGENT not in everything_written(tmp_path)


def test_no_answer_no_file(
    tmp_path: Path, respx_mock: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    respx_mock.get("https://api.db.nomics.world/v22/series/A/B/C").mock(
        side_effect=httpx.ConnectError("Name or service not known")
    )
    assert main(["dbnomics", "A/B/C", "--out", str(tmp_path / "x.json")]) == 1
    assert list(tmp_path.iterdir()) == []
    printed = capsys.readouterr().out
    assert "no answer to record" in printed
    assert "SourceUnavailableError" in printed


def test_ibkr_cannot_be_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["ibkr", "AAPL", "--out", str(tmp_path / "x.json")])
    assert exited.value.code == 2
    assert "socket protocol" in capsys.readouterr().err


def test_a_param_needs_a_value(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["fred", "DGS10", "--param", "start", "--out", str(tmp_path / "x.json")])


def test_one_out_per_answer_names_each_fixture(
    tmp_path: Path, respx_mock: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    respx_mock.get("https://api.stlouisfed.org/fred/series").mock(
        return_value=httpx.Response(200, content=fixture_bytes("fred", "series_DGS10.json"))
    )
    respx_mock.get("https://api.stlouisfed.org/fred/series/observations").mock(
        return_value=httpx.Response(200, content=fixture_bytes("fred", "observations_DGS10.json"))
    )
    series, observations = tmp_path / "series_DGS10.json", tmp_path / "observations_DGS10.json"
    code = main(["fred", "DGS10", "--out", str(series), "--out", str(observations)])
    assert code == 0
    assert series.read_bytes() == fixture_bytes("fred", "series_DGS10.json")
    assert observations.read_bytes() == fixture_bytes("fred", "observations_DGS10.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "observations_DGS10.json", "observations_DGS10.json.meta.json",
        "series_DGS10.json", "series_DGS10.json.meta.json",
    ]  # fmt: skip
    assert "parsed: EconomicSeries" in capsys.readouterr().out


def test_an_out_without_an_answer_is_said(
    tmp_path: Path, respx_mock: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    respx_mock.get("https://data.sec.gov/submissions/CIK0000320193.json").mock(
        return_value=httpx.Response(
            200, content=fixture_bytes("edgar", "submissions_CIK0000320193.json")
        )
    )
    tickers, submissions = tmp_path / "company_tickers.json", tmp_path / "submissions.json"
    code = main(["edgar", "320193", "--type", "news", "--out", str(tickers), "--out",
                 str(submissions)])  # fmt: skip
    assert code == 0  # a CIK needs no ticker lookup: one answer
    assert submissions.exists()
    assert not tickers.exists()
    assert f"no answer for {tickers}: the fetch took 1" in capsys.readouterr().out
