"""Large-scene prediction: tiles -> classifier (pseudomask) + segmenter (land cover) -> COGs."""
from .scene import PredictOptions, predict_scene

__all__ = ["PredictOptions", "predict_scene"]
