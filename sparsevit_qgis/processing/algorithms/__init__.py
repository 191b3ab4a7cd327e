"""Processing algorithms, one per engine command."""
from __future__ import annotations


def all_algorithms() -> list:
    from .evaluate import EvaluateAlgorithm
    from .export import ExportAlgorithm
    from .fit import FitAlgorithm
    from .grid import GridAlgorithm
    from .info import InfoAlgorithm
    from .predict import PredictAlgorithm
    from .train import TrainAlgorithm
    return [InfoAlgorithm(), PredictAlgorithm(), ExportAlgorithm(), EvaluateAlgorithm(), TrainAlgorithm(),
            GridAlgorithm(), FitAlgorithm()]
