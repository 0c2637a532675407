"""The reference parts of the documents match the code: the README's configuration table
has every setting with its default, docs/wire-format.md lists every payload type, and no
example points a reader at a private network."""

from __future__ import annotations

import json
import re
from pathlib import PurePath
from typing import Any

from pydantic import SecretStr

from starmesh.core.config import DEFAULT_CACHE_TTL_S, Settings
from starmesh.core.payloads import PAYLOAD_TYPES
from starmesh.core.payloads.catalogue import END, START, with_table
from tests.docs.markdown import DOCUMENTS, ROOT, table_under

README = ROOT / "README.md"
WIRE_FORMAT = ROOT / "docs" / "wire-format.md"
PRIVATE = re.compile(
    r"\b(10(\.\d{1,3}){3}|192\.168(\.\d{1,3}){2}|172\.(1[6-9]|2\d|3[01])(\.\d{1,3}){2})\b"
)


def configuration_rows() -> dict[str, str]:
    """Variable -> its default cell, from the README's configuration table."""
    rows = {}
    for variables, default, _meaning in table_under(README, "## Configuration"):
        names = re.findall(r"`(STARMESH_[A-Z0-9_]+)`", variables)
        defaults = default.split(", ")  # `127.0.0.1`, `4002`, `17`: one per variable, in order
        for index, name in enumerate(names):
            rows[name] = defaults[index] if len(defaults) == len(names) > 1 else default
    return rows


def documented(default: str) -> Any:
    """The value a default cell gives as one literal (`5.0`, `{}`, `false`), else the cell."""
    literal = re.fullmatch(r"`([^`]*)`", default)
    if literal is None:
        return default
    try:
        return json.loads(literal[1])
    except ValueError:
        return literal[1]


def test_the_configuration_table_has_every_setting_and_no_other() -> None:
    rows = configuration_rows()
    variables = {f"STARMESH_{name.upper()}" for name in Settings.model_fields}
    assert sorted(variables - set(rows)) == [], "settings missing from the README's table"
    assert sorted(set(rows) - variables) == [], "rows of the README's table that are no setting"


def test_each_single_default_in_the_table_is_the_setting_s() -> None:
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        cell = configuration_rows()[f"STARMESH_{name.upper()}"]
        shown = documented(cell)
        if default is None or isinstance(default, SecretStr) or shown == cell:
            continue  # unset, or a cell that explains rather than quotes
        expected = str(default) if isinstance(default, PurePath) else default  # a path as typed
        variable = f"STARMESH_{name.upper()}"
        assert shown == expected, f"{variable}: the README says {cell}, it is {default}"


def test_the_cache_ttl_defaults_in_the_table() -> None:
    cell = configuration_rows()["STARMESH_CACHE_TTL_S"]  # quote, trade, level2 1 s; bar, ...
    shown = {}
    for group in cell.split("; "):
        names, _, seconds = group.rpartition(" ")[0].rpartition(" ")
        shown.update(dict.fromkeys(names.split(", "), float(seconds)))
    assert shown == {t.value: ttl for t, ttl in DEFAULT_CACHE_TTL_S.items()}


def test_the_wire_format_lists_every_payload_type_as_the_code_has_it() -> None:
    text = WIRE_FORMAT.read_text()
    assert text == with_table(text), (
        "docs/wire-format.md's _type table is out of date: run "
        ".venv/bin/python -m starmesh.core.payloads.catalogue --write docs/wire-format.md"
    )
    table = text.partition(START)[2].partition(END)[0]
    tags = re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.M)
    assert tags[1:] == [str(cls.__struct_config__.tag) for cls in PAYLOAD_TYPES]  # 0: header


def test_no_example_points_at_a_private_network() -> None:
    found = [f"{doc.relative_to(ROOT)}: {m[0]}" for doc in DOCUMENTS
             for m in PRIVATE.finditer(doc.read_text())]  # fmt: skip
    assert not found, "use 127.0.0.1 or a placeholder host (redis://bus-host:6381)"
