"""Training: ``fit``, ``evaluate``, ``predict``, ``History`` and callbacks."""

from descend.train.callbacks import Callback, EarlyStopping, LambdaCallback, ProgressBar
from descend.train.history import History
from descend.train.loop import DivergenceError, evaluate, fit, predict
from descend.train.metrics import METRICS, accuracy

__all__ = [
    "METRICS", "Callback", "DivergenceError", "EarlyStopping", "History", "LambdaCallback",
    "ProgressBar", "accuracy", "evaluate", "fit", "predict",
]  # fmt: skip
