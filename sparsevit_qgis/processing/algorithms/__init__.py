"""Processing algorithms. Register a new one in ``ALGORITHMS`` once its engine command exists."""
from __future__ import annotations


def all_algorithms() -> list:
    from .info import InfoAlgorithm
    return [InfoAlgorithm()]
