"""Thin helpers for the lesson-7 notebooks; one module per concern (see README)."""
