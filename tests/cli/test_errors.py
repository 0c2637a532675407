"""A command that cannot start says why in one line; ``--debug`` shows the traceback.

Handled once for every command, in ``starmesh.cli.app.main``; these run the real entry
point (``python -m starmesh``) as a user does.
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from typer.testing import CliRunner

from starmesh import __version__
from starmesh.cli.app import app, main
from starmesh.cli.errors import explain
from starmesh.core.errors import BusUnavailableError

STARMESH = [sys.executable, "-m", "starmesh"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def starmesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STARMESH, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def http_server() -> Iterator[int]:
    """A web server on loopback: something that answers, but not as Redis."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def assert_one_clear_line(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: {message}"), result.stderr
    assert lines[1:] == ["(starmesh --debug ... shows the traceback)"]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flags(flag: str) -> None:
    result = CliRunner().invoke(app, [flag])
    assert result.exit_code == 0
    assert result.output == f"starmesh {__version__}\n"


def test_no_redis_at_the_url_is_one_line_without_the_password() -> None:
    port = free_port()
    url = f"redis://risk:s3cret@127.0.0.1:{port}"
    result = starmesh("engine", "risk", "--url", url, "--port", "0")  # 0: risk's 8200 may be taken
    assert_one_clear_line(result, f"cannot reach Redis at redis://risk:***@127.0.0.1:{port}")
    assert "s3cret" not in result.stdout + result.stderr


def test_run_on_a_server_that_is_not_redis_says_so(http_server: int) -> None:
    url = f"redis://127.0.0.1:{http_server}"
    result = starmesh("run", "--url", url, "--no-dashboard", "--duration", "1")
    assert f"on the Redis {url}" in result.stdout
    assert_one_clear_line(result, f"the server at {url} did not answer as Redis")


def test_the_hub_on_a_server_that_is_not_redis_says_so(http_server: int) -> None:
    url = f"redis://127.0.0.1:{http_server}"
    result = starmesh("hub", "--url", url, "--no-http")
    assert_one_clear_line(result, f"the server at {url} did not answer as Redis")


def test_debug_shows_the_traceback() -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    result = starmesh("--debug", "engine", "risk", "--url", url, "--port", "0")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "BusUnavailableError" in result.stderr


def test_a_bad_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STARMESH_CACHE_TTL_S", '{"quotes": 2}')
    with pytest.raises(SystemExit) as exited:
        main(["sources", "--hub-url", f"http://127.0.0.1:{free_port()}"])
    assert exited.value.code == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("error: invalid setting: STARMESH_CACHE_TTL_S (quotes): ")


def test_the_cause_is_found_in_the_chain_and_in_groups() -> None:
    try:
        try:
            raise InvalidResponse('Protocol error, got "H" as reply type byte')
        except InvalidResponse as cause:
            raise BusUnavailableError("cannot reach Redis") from cause
    except BusUnavailableError as error:
        wrapped = ExceptionGroup("start-up", [ValueError("x"), error])
    env = {"STARMESH_BUS_URL": "redis://a:pw@bus-host:6381"}
    message = explain(wrapped, [], env)
    assert message is not None
    assert message.startswith("the server at redis://a:***@bus-host:6381 did not answer as Redis")
    connection = RedisConnectionError("Error 111 connecting to bus-host:6380.")
    assert explain(connection, ["run", "--marketdata-url=redis://bus-host:6380"], {}) == (
        "Redis at redis://bus-host:6380: Error 111 connecting to bus-host:6380."
    )
    assert explain(KeyError("a bug keeps its traceback"), [], env) is None
