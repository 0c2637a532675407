"""Settings: what the environment says, merged over the defaults where it is partial."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from starmesh.core.config import DEFAULT_CACHE_TTL_S, Settings
from starmesh.core.enums import DataType


def test_a_partial_cache_ttl_changes_only_what_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARMESH_CACHE_TTL_S", '{"quote": 2, "bar": 60}')
    ttl = Settings().cache_ttl_s
    assert ttl[DataType.QUOTE] == 2.0
    assert ttl[DataType.BAR] == 60.0
    assert ttl[DataType.FUNDAMENTAL] == DEFAULT_CACHE_TTL_S[DataType.FUNDAMENTAL] == 86_400.0
    assert set(ttl) == set(DataType)


def test_a_partial_cache_ttl_given_in_code_merges_too() -> None:
    ttl = Settings(cache_ttl_s={DataType.TRADE: 0.5}).cache_ttl_s
    assert ttl == {**DEFAULT_CACHE_TTL_S, DataType.TRADE: 0.5}


def test_an_unknown_data_type_or_a_bad_ttl_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARMESH_CACHE_TTL_S", '{"quotes": 2}')
    with pytest.raises(ValidationError, match="quotes"):
        Settings()
    monkeypatch.setenv("STARMESH_CACHE_TTL_S", '{"quote": 0}')
    with pytest.raises(ValidationError, match="greater than 0"):
        Settings()
