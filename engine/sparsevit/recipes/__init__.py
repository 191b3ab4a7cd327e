"""Committed, one-command training recipes (the bundled default model is made by one)."""
