import pytest

from starmesh.bus.dedup import DedupWindow


def test_remembers_the_last_ids_and_forgets_the_oldest() -> None:
    window = DedupWindow(3)
    for message_id in ("a", "b", "c", "d"):
        window.add(message_id)
    assert "a" not in window
    assert all(i in window for i in "bcd")
    assert len(window) == 3


def test_adding_a_known_id_again_does_not_push_others_out() -> None:
    window = DedupWindow(2)
    window.add("a")
    window.add("b")
    window.add("b")
    assert "a" in window
    window.add("c")
    assert "a" not in window
    assert "b" in window


def test_keeps_its_bound_over_many_ids() -> None:
    window = DedupWindow(1_000)
    for n in range(250_000):
        window.add(str(n))
    assert len(window) == 1_000
    assert "249000" in window
    assert "249999" in window
    assert "248999" not in window


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        DedupWindow(0)
