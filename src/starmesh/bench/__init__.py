"""``starmesh bench``: reproducible measurements, each beside a baseline from the same run."""
