"""Every document runs as written: its python blocks, and its cheap, safe shell blocks, in
document order in one directory, against private redis-servers (see tests/docs/markdown.py
for the conventions). A reader who copies a block gets what the document says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from starmesh.core.payloads import Snapshot
from starmesh.platform.config import PlatformConfig
from starmesh.testing import RedisServer
from tests.docs.markdown import DOCUMENTS, ROOT, Block, all_blocks, blocks, commands, with_servers

VENV_BIN = Path(sys.executable).parent
RUNNABLE = ("redis-cli", ".venv/bin/python")
"""Shell programs cheap and safe to run (loopback only); ``python`` only with ``-c``."""
JSON_TYPES: dict[str, type] = {"engines.md": PlatformConfig, "wire-format.md": Snapshot}
"""What the ``json`` blocks of each document are."""
LANGUAGES = {"python", "sh", "json", "text", "lua"}
"""``lua``: a Redis script as the wire format shows it, read not run (the scripts themselves
run in the hub's lease and fencing tests)."""


def runnable(block: Block) -> bool:
    return block.lang == "python" or (
        block.lang == "sh"
        and all(c[0] in RUNNABLE and (c[0] != ".venv/bin/python" or c[1] == "-c")
                for c in commands(block))
    )  # fmt: skip


@pytest.fixture
def servers() -> Iterator[dict[str, RedisServer]]:
    """Fresh servers for one document: its blocks share them, as a reader's would."""
    logic, marketdata = RedisServer().start(), RedisServer().start()
    try:
        yield {"logic": logic, "marketdata": marketdata}
    finally:
        logic.stop()
        marketdata.stop()


def environment() -> dict[str, str]:
    """The reader's environment: no STARMESH_* variable of whoever runs the tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("STARMESH_")}


def run_shell(block: Block, servers: dict[str, RedisServer], cwd: Path) -> str:
    script = block.text.replace(".venv/bin/", f"{VENV_BIN}/")
    for port, name in (("6381", "logic"), ("6380", "marketdata")):
        script = script.replace(f"-p {port} ", f"-p {servers[name].port} ")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=environment(),
        capture_output=True, text=True, errors="replace", timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{block.where} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def run_python(block: Block, servers: dict[str, RedisServer], cwd: Path) -> str:
    urls = {name: server.url for name, server in servers.items()}
    script = cwd / f"block_{block.line}.py"
    script.write_text(with_servers(block.text, urls))
    result = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=environment(),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{block.where} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, f"{block.where}:\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_document_runs_as_written(
    document: Path, servers: dict[str, RedisServer], tmp_path: Path
) -> None:
    for block in blocks(document):
        if not runnable(block):
            continue
        run = run_python if block.lang == "python" else run_shell
        output = run(block, servers, tmp_path)
        for text in block.prints():
            assert text in output, f"{block.where} should print {text!r}; it printed:\n{output}"


def test_every_block_says_what_it_is() -> None:
    unlabelled = [b.where for b in all_blocks() if b.lang not in LANGUAGES]
    assert not unlabelled, f"label each block {sorted(LANGUAGES)}: {unlabelled}"
    assert any(runnable(b) for b in all_blocks("sh")), "the walk-throughs' shell blocks run"


@pytest.mark.parametrize("block", all_blocks("json"), ids=lambda b: b.where)
def test_json_blocks_decode_as_what_they_are(block: Block) -> None:
    kind = JSON_TYPES.get(block.path.name)
    assert kind is not None, f"{block.where}: add its document to JSON_TYPES"
    msgspec.json.decode(block.text, type=kind, strict=True)
