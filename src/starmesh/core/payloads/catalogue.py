"""Every payload type the wire carries, for docs/wire-format.md: made from the code, so the
document cannot fall behind it (a test compares them).

``.venv/bin/python -m starmesh.core.payloads.catalogue`` prints the table;
``... --write docs/wire-format.md`` puts it between the file's markers.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starmesh.core.payloads import PAYLOAD_MESSAGE_TYPES

__all__ = ["END", "START", "PayloadDoc", "catalogue", "main", "markdown_table", "with_table"]

START: Final = "<!-- payload-types:start (made by starmesh.core.payloads.catalogue) -->"
END: Final = "<!-- payload-types:end -->"


@dataclass(frozen=True)
class PayloadDoc:
    tag: str
    """The ``_type`` value on the wire."""
    name: str
    """The Python class in ``starmesh.core.payloads``."""
    message_type: str
    """The message ``type`` it implies when the publisher names none."""
    summary: str
    """The first paragraph of the class's docstring, on one line, in Markdown."""


def catalogue() -> list[PayloadDoc]:
    """One entry per typed payload, in the order of ``PAYLOAD_TYPES``."""
    entries = []
    for cls, message_type in PAYLOAD_MESSAGE_TYPES.items():
        doc = inspect.getdoc(cls)
        if not doc or doc == inspect.getdoc(cls.__mro__[1]):
            raise ValueError(f"{cls.__name__} needs a docstring: its line in docs/wire-format.md")
        summary = " ".join(doc.split("\n\n")[0].split()).replace("``", "`")  # RST -> Markdown
        tag = str(cls.__struct_config__.tag)
        entries.append(PayloadDoc(tag, cls.__name__, message_type.value, summary))
    return entries


def markdown_table() -> str:
    lines = ["| `_type` | class | `type` | what it is |", "|---|---|---|---|"]
    lines += [f"| `{e.tag}` | `{e.name}` | `{e.message_type}` | {e.summary} |" for e in catalogue()]
    return "\n".join(lines) + "\n"


def with_table(text: str) -> str:
    """``text`` with the table between its markers replaced by the current one."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the markers {START} and {END} are not both there")
    return f"{head}{START}\n\n{markdown_table()}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m starmesh.core.payloads.catalogue")
    parser.add_argument("--write", type=Path, help="rewrite the table in this Markdown file")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(markdown_table())
    else:
        args.write.write_text(with_table(args.write.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
