"""The README's and docs/*.md's code blocks, tables and shell commands, read as a new user
reads them. New documents and sections are picked up by the glob: nothing to register.

Conventions the tests hold the documents to (say them where you write a block):

- A ``python`` block runs as it is (``.venv/bin/python block.py``). Redis URLs on ports 6381
  (Engine Logic Bus) and 6380 (MarketData Bus), on ``127.0.0.1``, ``localhost`` or the
  placeholder ``bus-host``, are the reader's servers: the tests point them at private
  redis-servers. ``# prints: TEXT`` after code says what it prints; the tests check it.
- A ``sh`` block's commands are checked (a starmesh command line parses, a module exists, a
  variable is a setting, ...); those that are cheap and safe (``redis-cli``, ``python -c``)
  also run, in document order with the python blocks, in one directory.
- ``json`` blocks decode as what their document says they are; ``text`` blocks are not code.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
DOCUMENTS: Final = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

_FENCE: Final = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
_PRINTS: Final = re.compile(r"#\s*prints:\s*(?P<text>.+?)\s*$", re.M)
_REDIS_URL: Final = re.compile(r"redis://(?:127\.0\.0\.1|localhost|bus-host):(?P<port>638[01])\b")
BUS_PORTS: Final = {"6381": "logic", "6380": "marketdata"}
"""The documents' Redis ports: the user's layout (Engine Logic Bus, MarketData Bus)."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    """The line of the opening fence, 1-based."""
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def prints(self) -> list[str]:
        """What the block's ``# prints:`` comments say it prints."""
        return [m["text"] for m in _PRINTS.finditer(self.text)]


def blocks(document: Path, *langs: str) -> list[Block]:
    """The fenced code blocks of ``document`` (of ``langs``, if given), in order."""
    text = document.read_text()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        indent = len(match["indent"])
        body = "".join(row[indent:] for row in match["body"].splitlines(keepends=True))
        if not langs or match["lang"] in langs:
            found.append(Block(document, line, match["lang"], body))
    return found


def all_blocks(*langs: str) -> list[Block]:
    return [block for document in DOCUMENTS for block in blocks(document, *langs)]


def with_servers(code: str, urls: dict[str, str]) -> str:
    """``code`` with the documents' Redis URLs pointing at ``urls`` (``logic``, ``marketdata``)."""
    return _REDIS_URL.sub(lambda m: urls[BUS_PORTS[m["port"]]].removesuffix("/0"), code)


def commands(block: Block) -> list[list[str]]:
    """The commands of a shell block as argument lists: continued lines joined, quotes
    spanning lines kept whole, comments dropped."""
    found: list[list[str]] = []
    pending = ""
    for row in block.text.splitlines():
        pending = f"{pending}\n{row}" if pending else row
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # a quote open across lines: read on
            continue
        if words:
            found.append(words)
        pending = ""
    assert not pending, f"{block.where}: unfinished shell command {pending!r}"
    return found


def table_under(document: Path, heading: str) -> list[list[str]]:
    """The rows (cells, header and rule left out) of the first table under ``heading``."""
    text = document.read_text()
    start = text.index(f"\n{heading}\n")
    rows: list[list[str]] = []
    for row in text[start:].splitlines()[2:]:
        if row.startswith("|"):
            rows.append([cell.strip() for cell in row.strip().strip("|").split(" | ")])
        elif rows:
            break
    return [row for row in rows[1:] if not set("".join(row)) <= set("-| ")]
