"""Every command a document shows is one that exists, written as a reader can type it.

Each shell command is checked by what it runs: a ``starmesh`` command line must parse (the
command, its options and their values; nothing is run), a ``python -m`` module exist (the
recorder's arguments parse, and the recording commands replace the very fixtures the tests
read), a variable be a setting, a ``make`` target exist. A command no rule knows fails the
test: add a rule when a document starts using a new program.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import typer

from starmesh.bus.http.wire import decode_body
from starmesh.cli.app import app
from starmesh.core.codec import MessageCodec
from starmesh.core.config import Settings
from starmesh.marketdata.sources import record
from tests.docs.markdown import ROOT, Block, all_blocks, commands
from tests.marketdata.sources.support import FIXTURES

SETTINGS_VARIABLES = {f"STARMESH_{name.upper()}" for name in Settings.model_fields}
BARE = ("python", "python3", "pytest", "starmesh", "pip", "ruff", "mypy")
"""Programs of the virtualenv: a document must say ``.venv/bin/<program>``."""
LOOPBACK = re.compile(r"^https?://(127\.0\.0\.1|localhost)[:/]")


def shell_commands() -> list[tuple[Block, list[str]]]:
    return [(block, words) for block in all_blocks("sh") for words in commands(block)]


def params(items: list[tuple[Block, list[str]]]) -> list[object]:
    return [pytest.param(b, w, id=f"{b.where}:{' '.join(w)[:50]}") for b, w in items]


def settings_assignments(words: list[str]) -> list[str]:
    """``NAME=VALUE`` words before the program: each must name a setting."""
    names = []
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        names.append(words.pop(0).partition("=")[0])
    return names


def parse_starmesh(args: Sequence[str]) -> None:
    """Parse ``args`` as ``starmesh`` would (types, choices, ranges), running nothing."""
    command: Any = typer.main.get_command(app)
    pending: list[Any] = [command]
    while pending:  # typer carries its own click: groups are known by their commands
        current = pending.pop()
        if hasattr(current, "commands"):
            pending.extend(current.commands.values())
        else:
            current.callback = _stub  # parsed and converted, never run
    assert command.commands["run"].callback is _stub, "a command would run for real"
    command.main(args=list(args), prog_name="starmesh", standalone_mode=False)


def _stub(**_: object) -> None:
    """Stands in for every command while a documented command line is parsed."""


def check_python(args: list[str]) -> None:
    if args[0] == "-c":
        compile(args[1], "<python -c>", "exec")
        return
    assert args[0] == "-m", f"python {args[0]}: only -m and -c are known"
    assert importlib.util.find_spec(args[1]) is not None, f"no module {args[1]}"
    if args[1] == "starmesh.marketdata.sources.record":
        record._parser().parse_args(args[2:])


def check_curl(args: list[str]) -> None:
    urls = [a for a in args if a.startswith("http")]
    assert urls, "curl without a URL"
    assert all(LOOPBACK.match(u) for u in urls), f"curl beyond loopback: {urls}"
    if "-d" in args:
        body = args[args.index("-d") + 1].encode()
        decode_body(body, "application/json", MessageCodec())  # the documented message


def check_pytest(args: list[str]) -> None:
    for path in args:
        assert (ROOT / path).exists(), f"pytest {path}: no such path"


def check_make(args: list[str]) -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in (a for a in args if "=" not in a):
        assert re.search(rf"^{target}:", makefile, re.M), f"no make target {target}"


COMPOSE_VARIABLES = set(
    re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text())
)
"""What docker-compose.yml interpolates: a `docker compose` line may set these too."""


def check_docker(args: list[str]) -> None:
    # Docker is not run here; the compose file's structure has tests of its own.
    assert args[:1] == ["compose"], f"docker {' '.join(args)}: only `docker compose` is documented"
    assert args[1:2] in (["up"], ["down"], ["ps"], ["logs"], ["build"]), f"docker {args}"


CHECKS: dict[str, Callable[[list[str]], None]] = {
    ".venv/bin/starmesh": parse_starmesh,
    ".venv/bin/python": check_python,
    ".venv/bin/pytest": check_pytest,
    "make": check_make,
    "export": lambda args: None,  # its NAME=VALUE words are checked as settings
    "redis-cli": lambda args: None,  # run by test_code_blocks, on the private servers
    "curl": check_curl,
    "docker": check_docker,
}  # fmt: skip


@pytest.mark.parametrize(("block", "words"), params(shell_commands()))
def test_each_shell_command_is_real(block: Block, words: list[str]) -> None:
    words = list(words)
    if words[0] == "export":
        words.pop(0)
    assigned = settings_assignments(words)
    known = SETTINGS_VARIABLES | (COMPOSE_VARIABLES if words[:1] == ["docker"] else set())
    unknown = [name for name in assigned if name not in known]
    assert not unknown, f"{block.where}: {unknown} are not settings"
    if not words:
        return
    program, args = words[0], words[1:]
    assert program not in BARE, f"{block.where}: write .venv/bin/{program} (or say to activate)"
    check = CHECKS.get(program)
    assert check is not None, f"{block.where}: no test knows {program!r}; add a rule to CHECKS"
    check(args)


RECORDINGS = {
    "https://api.stlouisfed.org/fred/series": ("fred", "series_DGS10.json"),
    "https://api.stlouisfed.org/fred/series/observations": ("fred", "observations_DGS10.json"),
    "https://www.alphavantage.co/query": ("alphavantage", "time_series_intraday_5min_IBM.json"),
    "https://www.sec.gov/files/company_tickers.json": ("edgar", "company_tickers.json"),
    "https://data.sec.gov/submissions/CIK0000320193.json": (
        "edgar", "submissions_CIK0000320193.json"),
}  # fmt: skip
"""What the providers answer the documented recordings (their current fixtures)."""


def recorder_commands() -> list[tuple[Block, list[str]]]:
    found = []
    for block, words in shell_commands():
        if "starmesh.marketdata.sources.record" in words:
            found.append((block, words[words.index("starmesh.marketdata.sources.record") + 1 :]))
    return found


@pytest.mark.parametrize(("block", "args"), params(recorder_commands()))
def test_a_documented_recording_replaces_the_fixtures_the_tests_read(
    block: Block, args: list[str], tmp_path: Path, respx_mock: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for name in ("STARMESH_FRED_KEY", "STARMESH_ALPHAVANTAGE_KEY"):
        monkeypatch.setenv(name, "key-of-the-reader")
    monkeypatch.setenv("STARMESH_EDGAR_USER_AGENT", "Jane Doe jane.doe@example.com")
    for url, (source, name) in RECORDINGS.items():
        respx_mock.get(url).mock(
            return_value=httpx.Response(200, content=(FIXTURES / source / name).read_bytes())
        )
    outs = [Path(args[i + 1]) for i, a in enumerate(args) if a == "--out"]
    assert outs, f"{block.where}: a recording without --out"
    for out in outs:
        assert out.parent.parent == Path("tests/fixtures/sources"), out
        assert (ROOT / out).exists(), f"{block.where}: {out} is no fixture the tests read"
    moved = [a if a not in map(str, outs) else str(tmp_path / Path(a).name) for a in args]
    assert record.main(moved) == 0
    written = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".meta.json"))
    assert written == sorted(out.name for out in outs), f"{block.where}: wrote {written}"
