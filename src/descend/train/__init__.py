"""Training: ``Trainer`` (one update), ``fit``, ``evaluate``, ``predict``, History, callbacks."""

from descend.train.callbacks import Callback, EarlyStopping, LambdaCallback, ProgressBar
from descend.train.checkpoint import Checkpoint, TrainingState, load_checkpoint
from descend.train.history import History
from descend.train.inference import evaluate, predict
from descend.train.loop import fit
from descend.train.metrics import METRICS, accuracy
from descend.train.recorder import Recorder
from descend.train.trainer import DivergenceError, Trainer

__all__ = [
    "METRICS", "Callback", "Checkpoint", "DivergenceError", "EarlyStopping", "History",
    "LambdaCallback", "ProgressBar", "Recorder", "Trainer", "TrainingState", "accuracy",
    "evaluate", "fit", "load_checkpoint", "predict",
]  # fmt: skip
