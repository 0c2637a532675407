"""Composition: wiring engines and buses into a running platform."""
