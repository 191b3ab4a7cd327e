"""Evaluation: confusion-matrix scores for arrays, whole splits and GeoTIFFs."""
from .metrics import ConfusionMatrix, EvaluationSet, confusion_from_pairs, json_sanitize
from .rasters import evaluate_rasters

__all__ = ["ConfusionMatrix", "EvaluationSet", "confusion_from_pairs", "evaluate_rasters",
           "json_sanitize"]
