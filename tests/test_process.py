import gc

from starmesh.platform.process import settle_after_startup


def test_settling_freezes_what_is_alive() -> None:
    try:
        frozen = settle_after_startup()
        assert frozen == gc.get_freeze_count()
        assert frozen > 1_000  # at least the imported modules' objects
    finally:
        gc.unfreeze()
