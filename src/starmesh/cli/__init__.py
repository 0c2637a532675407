"""The ``starmesh`` command. Nothing imports this package."""
