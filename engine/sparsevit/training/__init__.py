"""Stage 1 training: torch data adapter, normalisation, checkpoints, metrics, train loop."""
from .checkpoint import load_checkpoint_config, load_model, load_training_state, normalizer_from_config, save_checkpoint
from .data import TorchSampleDataset, flip_rotate, random_crop
from .loop import TrainConfig, TrainResult, evaluate, predict_probs, train
from .metrics import multilabel_scores
from .normalization import Normalizer, compute_stats

__all__ = ["Normalizer", "TorchSampleDataset", "TrainConfig", "TrainResult", "compute_stats",
           "evaluate", "flip_rotate", "load_checkpoint_config", "load_model",
           "load_training_state", "multilabel_scores", "normalizer_from_config", "predict_probs",
           "random_crop", "save_checkpoint", "train"]
