"""descend: gradient descent and backpropagation on NumPy, with every step visible.

>>> import descend as ds
>>> X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
>>> model = ds.nn.mlp([64, 32, 4], output_activation="softmax", seed=0)
>>> history = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.5),
...                  batch_size=32, epochs=5, seed=0, progress=False)
>>> history.epoch["accuracy"][-1] > 0.9
True
"""

from descend import autodiff, cluster, compile, data, datasets, experiments, losses, nn, optim, viz
from descend.autodiff import Tensor, grad, gradcheck, no_grad, value_and_grad
from descend.backprop import BackpropResult, LayerGradients, backprop
from descend.io import ModelFileError, load, save
from descend.train import (
    Callback,
    Checkpoint,
    DivergenceError,
    EarlyStopping,
    History,
    LambdaCallback,
    ProgressBar,
    Recorder,
    evaluate,
    fit,
    load_checkpoint,
    predict,
)


def __getattr__(name: str):
    # ds.playground(X, y): the playground package is callable; imported on first use, so that
    # `import descend` stays as fast without the web server's parts.
    if name == "playground":
        import descend.playground

        return descend.playground
    raise AttributeError(f"module 'descend' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "BackpropResult", "Callback", "Checkpoint", "DivergenceError", "EarlyStopping", "History",
    "LambdaCallback", "LayerGradients", "ModelFileError", "ProgressBar", "Tensor", "autodiff",
    "backprop", "cluster", "compile", "data", "datasets", "evaluate", "fit", "gradcheck", "grad",
    "load", "load_checkpoint", "losses", "nn", "no_grad", "optim", "predict", "save",
    "value_and_grad", "Recorder", "experiments", "viz", "playground",
]  # fmt: skip
