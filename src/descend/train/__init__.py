"""Training: ``fit``, ``evaluate``, ``predict``, ``History`` and callbacks."""

from descend.train.callbacks import Callback, EarlyStopping, LambdaCallback, ProgressBar
from descend.train.checkpoint import Checkpoint, TrainingState, load_checkpoint
from descend.train.history import History
from descend.train.loop import DivergenceError, evaluate, fit, predict
from descend.train.metrics import METRICS, accuracy
from descend.train.recorder import Recorder

__all__ = [
    "METRICS", "Callback", "Checkpoint", "DivergenceError", "EarlyStopping", "History",
    "LambdaCallback", "ProgressBar", "Recorder", "TrainingState", "accuracy", "evaluate", "fit",
    "load_checkpoint", "predict",
]  # fmt: skip
