"""scikit-learn estimators: descend networks inside ``Pipeline``, ``GridSearchCV`` and friends.

:class:`MLPClassifier` and :class:`MLPRegressor` follow scikit-learn's conventions (and its
checks, ``sklearn.utils.estimator_checks.parametrize_with_checks``): the constructor only
stores its arguments, ``fit`` learns, fitted attributes end in ``_``. Inside, ``fit`` builds a
:func:`descend.nn.mlp` and trains it with :func:`descend.fit`, so ``model_`` is an ordinary
descend model (``ds.save(est.model_, path)``, ``ds.backprop(est.model_, ...)``) and
``history_`` the :class:`descend.History` of the run.

Inputs may be NumPy arrays, lists or pandas DataFrames; class labels may be any values
(strings too), as in scikit-learn. This module needs scikit-learn (``pip install
"descend[datasets]"``); ``import descend`` does not import it.
"""

from __future__ import annotations

import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ModuleNotFoundError as exc:  # only scikit-learn itself: a broken install shows as is
    if exc.name != "sklearn":
        raise
    raise ModuleNotFoundError(
        "descend.sklearn (the scikit-learn estimators MLPClassifier, MLPRegressor) needs "
        'scikit-learn, which is not installed; install it with: pip install "descend[datasets]" '
        "(or pip install scikit-learn)",
        name="sklearn",
    ) from None
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
        """Older scikit-learn's method, under the new function's name."""
        return estimator._validate_data(X, y, **kwargs)


import descend as ds

__all__ = ["MLPClassifier", "MLPRegressor"]

_OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: the settings, and training."""

    _output_kind = "regression"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        loss="auto",
        optimizer="adam",
        learning_rate_init=0.001,
        lr=None,
        batch_size="auto",
        epochs=200,
        max_iter=None,
        shuffle=True,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    # -- checks of the settings, at fit time (scikit-learn's rule: __init__ only stores) --------

    def _hidden(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            items = list(sizes)
        except TypeError:
            items = None
        if items is None or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in items
        ):
            raise ValueError(
                f"hidden_layer_sizes must be a tuple of positive ints, e.g. (100,) or (64, 32) "
                f"(or () for no hidden layer), got {self.hidden_layer_sizes!r}"
            )
        return [int(s) for s in items]

    def _n_epochs(self) -> int:
        epochs = self.epochs if self.max_iter is None else self.max_iter
        name = "epochs" if self.max_iter is None else "max_iter"
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ValueError(f"{name} must be an int >= 1, got {epochs!r}")
        return int(epochs)

    def _rate(self) -> float:
        rate = self.learning_rate_init if self.lr is None else self.lr
        name = "learning_rate_init" if self.lr is None else "lr"
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not rate > 0:
            raise ValueError(f"{name} must be a number > 0, got {rate!r}")
        return float(rate)

    def _batch(self, n: int) -> int | str:
        size = self.batch_size
        if isinstance(size, str):
            if size == "auto":
                return min(200, n)
            if size == "full":
                return "full"
        elif isinstance(size, numbers.Integral) and not isinstance(size, bool) and size >= 1:
            # As scikit-learn: a batch larger than the data is clipped to the data.
            return min(int(size), n)
        raise ValueError(
            f"batch_size must be 'auto' (min(200, n_samples)), 'full', 1 or an int k >= 1, "
            f"got {size!r}"
        )

    def _check_settings(self) -> None:
        if self.optimizer not in _OPTIMIZERS and not isinstance(self.optimizer, ds.optim.Optimizer):
            raise ValueError(
                f"optimizer must be one of {', '.join(_OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}"
            )
        n = self.n_iter_no_change
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n_iter_no_change must be an int >= 1, got {n!r}")
        if self.tol is not None and not self.tol >= 0:
            raise ValueError(f"tol must be a number >= 0 or None, got {self.tol!r}")

    # -- training ------------------------------------------------------------------------------

    def _train(self, X: np.ndarray, target: np.ndarray, n_out: int, out_act, loss: str, stratify):
        self._check_settings()
        hidden = self._hidden()
        epochs = self._n_epochs()
        rate = self._rate()
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        X = X.astype(dtype, copy=False)
        validation = None
        X_fit, y_fit = X, target
        if self.early_stopping:
            n_val = int(np.ceil(self.validation_fraction * len(X)))
            if n_val < 1 or n_val >= len(X):
                raise ValueError(
                    f"early_stopping needs validation samples: validation_fraction="
                    f"{self.validation_fraction} of {len(X)} samples leaves none on one side"
                )
            try:
                X_fit, X_val, y_fit, y_val = ds.datasets.train_test_split(
                    X, target, test_size=n_val, stratify=stratify, seed=seed
                )
            except ValueError:  # a class too small to stratify: split at random instead
                X_fit, X_val, y_fit, y_val = ds.datasets.train_test_split(
                    X, target, test_size=n_val, seed=seed
                )
            validation = (X_val, y_val)
        callbacks = []
        if validation is not None:
            callbacks.append(ds.EarlyStopping("val_loss", patience=self.n_iter_no_change,
                                              min_delta=self.tol or 0.0))  # fmt: skip
        elif self.tol is not None:
            # As scikit-learn: stop when the training loss has not improved by tol for
            # n_iter_no_change epochs (the weights are those of the last epoch).
            callbacks.append(ds.EarlyStopping("loss", patience=self.n_iter_no_change,
                                              min_delta=self.tol, restore_best=False))  # fmt: skip
        model = ds.nn.mlp([X.shape[1], *hidden, n_out], self.activation, out_act, seed=seed,
                          dtype=dtype)  # fmt: skip
        optimizer = (
            self.optimizer if isinstance(self.optimizer, ds.optim.Optimizer)
            else ds.optim.get(self.optimizer, lr=rate)
        )  # fmt: skip
        history = ds.fit(
            model, X_fit, y_fit, loss=loss, optimizer=optimizer,
            batch_size=self._batch(len(X_fit)), epochs=epochs, shuffle=self.shuffle, seed=seed,
            validation_data=validation, callbacks=callbacks, progress=bool(self.verbose),
            metrics=None,
        )  # fmt: skip
        self.model_ = model
        self.history_ = history
        self.loss_curve_ = list(history.epoch.get("loss", []))
        if validation is not None:
            self.validation_loss_curve_ = list(history.epoch.get("val_loss", []))
        self.n_iter_ = history.n_epochs
        self.t_ = history.n_updates
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else float("nan")
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else float("nan")
        return self

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dtype = self.model_.dtype or np.float64
        return ds.predict(self.model_, X.astype(dtype, copy=False)).astype(np.float64)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A dense network classifier trained by descend, with scikit-learn's interface.

    Two classes get one sigmoid output and binary cross-entropy; more get a softmax output and
    categorical cross-entropy (``loss="auto"``). Labels can be any values (``classes_`` maps
    output columns to them).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Units of each hidden layer.
    activation : {"relu", "tanh", "sigmoid", "leaky_relu"}, default "relu"
        The hidden layers' activation.
    loss : {"auto", "categorical_cross_entropy", "binary_cross_entropy", "log_loss"}
        The cost; "auto" as above.
    optimizer : {"gd", "momentum", "rmsprop", "adam", ...} or descend Optimizer, default "adam"
        The update rule (scikit-learn calls it ``solver``).
    learning_rate_init : float, default 0.001
        The learning rate. ``lr`` is the same setting under descend's name and wins when given.
    lr : float, optional
    batch_size : "auto", "full", 1 or int, default "auto"
        Samples per update: "full" is batch gradient descent, 1 stochastic, k mini-batch;
        "auto" is ``min(200, n_samples)`` (as scikit-learn).
    epochs : int, default 200
        Passes over the training data. ``max_iter`` (scikit-learn's name) wins when given.
    max_iter : int, optional
    shuffle : bool, default True
        Shuffle the samples at the start of each epoch.
    tol : float or None, default 1e-4
        Stop when the loss has not improved by ``tol`` for ``n_iter_no_change`` epochs (the
        validation loss with ``early_stopping``). None: always run every epoch.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified) and stop when its
        loss stops improving; the best weights are kept.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 10
    random_state : int, RandomState or None
        Seeds the initial weights, the shuffling and the validation split.
    verbose : bool, default False
        Show a progress bar.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame.
    model_ : descend.nn.Sequential
        The trained network.
    history_ : descend.History
        Everything ``descend.fit`` recorded (per epoch and per update).
    loss_curve_ : list of float
        The training loss at each epoch.
    n_iter_ : int
        Epochs run.
    t_ : int
        Gradient-descent updates taken.

    Examples
    --------
    >>> from descend.sklearn import MLPClassifier
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(200, seed=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, batch_size=20,
    ...                     epochs=100, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9, clf.classes_.tolist()
    (True, [0, 1])
    """

    _output_kind = "classification"

    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,); returns self."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=False)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(
                f"y has only one class ({self.classes_[0]!r}); a classifier needs samples of at "
                "least two classes"
            )
        loss, out_act, n_out = ds.losses.classification_output(self.loss, k, argument="loss=")
        target = codes.astype(np.int64)
        return self._train(X, target, n_out, out_act, loss, stratify=True)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes); columns follow ``classes_``."""
        out = self._forward(X)
        if out.shape[1] == 1:
            return np.hstack([1.0 - out, out])
        return out

    def predict_log_proba(self, X) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample, as a value of ``classes_``."""
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A dense network regressor trained by descend (mean squared error), scikit-learn style.

    The output layer is linear, one unit per target column. Scale the inputs (and a target of
    large magnitude) for gradient descent to go well, e.g. in a ``Pipeline`` with
    ``StandardScaler``, or with ``sklearn.compose.TransformedTargetRegressor``.

    Parameters
    ----------
    hidden_layer_sizes, activation, optimizer, learning_rate_init, lr, batch_size, epochs,
    max_iter, shuffle, tol, early_stopping, validation_fraction, n_iter_no_change,
    random_state, verbose
        As for :class:`MLPClassifier`.
    loss : {"auto", "mse"}, default "auto"
        Mean squared error.

    Attributes
    ----------
    n_features_in_ : int
    n_outputs_ : int
    model_ : descend.nn.Sequential
    history_ : descend.History
    loss_curve_ : list of float
    n_iter_ : int
    t_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from descend.sklearn import MLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(200, 2))
    >>> y = X[:, 0] - 2 * X[:, 1]
    >>> reg = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, batch_size=20,
    ...                    epochs=100, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    """

    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples, k)."""
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], y_numeric=True, multi_output=True
        )
        if self.loss not in ("auto", "mse", "squared_error"):
            raise ValueError(f"loss must be 'auto' or 'mse' for regression, got {self.loss!r}")
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        target = y.reshape(len(y), -1)
        self.n_outputs_ = target.shape[1]
        target = target.astype(np.float32 if X.dtype == np.float32 else np.float64)
        return self._train(X, target, self.n_outputs_, None, "mse", stratify=False)

    def predict(self, X) -> np.ndarray:
        """Predicted values, shape (n_samples,) (or (n_samples, n_targets) for several targets)."""
        out = self._forward(X)
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
