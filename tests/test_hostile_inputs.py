"""Hostile inputs: fit, predict, evaluate, the costs and the batching on random garbage.

Every call either gives a correct result (finite numbers of the right shape) or raises ValueError or
TypeError whose message names the argument at fault; never an obscure error from deep inside
NumPy, never a silent NaN. (A DivergenceError, which names the update and the rate, is the
documented outcome of data that is valid but makes the cost overflow.)
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import descend as ds

# Fixed examples in the suite; DESCEND_HOSTILE_EXAMPLES=5000 explores more, at random.
_EXPLORE = int(os.environ.get("DESCEND_HOSTILE_EXAMPLES", "0"))
SETTINGS = settings(
    max_examples=_EXPLORE or 150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=not _EXPLORE,
)
COUNTS: dict[str, int] = {}

DTYPES = [np.bool_, np.int8, np.uint8, np.int64, np.float16, np.float32, np.float64,
          np.complex128, object, str]  # fmt: skip
SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e4, -1e4, 1e38, 1e300, np.nan, np.inf, -np.inf]


@st.composite
def arrays(draw, max_dims=3, max_side=5):
    """An array of a random dtype and shape (empty ones too), with special values; or a list."""
    ndim = draw(st.integers(0, max_dims))
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from(DTYPES))
    size = int(np.prod(shape))
    values = draw(st.lists(st.sampled_from(SPECIALS) | st.integers(-3, 3), min_size=size,
                           max_size=size))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype is str:
            a = np.array([str(v) for v in values], dtype=str)
        elif dtype is object:
            a = np.array(values + [None], dtype=object)[:size]
        else:
            a = np.array(values, dtype=np.float64).astype(dtype)
    a = a.reshape(shape)
    if draw(st.booleans()) and a.ndim >= 1 and dtype not in (object, str):
        return a.tolist()  # plain lists too
    return a


@st.composite
def datasets(draw):
    """(X, y) mostly of matching, sensible shapes, with hostile values, dtypes and lengths."""
    n = draw(st.integers(0, 6))
    d = draw(st.integers(1, 3))
    if draw(st.integers(0, 3)) == 0:
        return draw(arrays()), draw(arrays())
    X = draw(arrays(max_dims=0))  # replaced below, keeps the draw structure simple
    dtype = draw(st.sampled_from(DTYPES[:7]))
    values = draw(st.lists(st.sampled_from(SPECIALS) | st.floats(-5, 5), min_size=n * d,
                           max_size=n * d))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = np.array(values, dtype=np.float64).astype(dtype).reshape(n, d)
    m = n if draw(st.integers(0, 4)) else draw(st.integers(0, 7))  # sometimes mismatched
    y_kind = draw(st.sampled_from(["labels", "binary", "values", "onehot", "weird"]))
    if y_kind == "labels":
        y = np.array(draw(st.lists(st.integers(-1, 4), min_size=m, max_size=m)), dtype=np.int64)
    elif y_kind == "binary":
        y = np.array(draw(st.lists(st.sampled_from([0, 1, 0.5, 2]), min_size=m, max_size=m)))
    elif y_kind == "values":
        y = np.array(draw(st.lists(st.sampled_from(SPECIALS), min_size=m, max_size=m)))
    elif y_kind == "onehot":
        y = np.eye(3)[np.array(draw(st.lists(st.integers(0, 2), min_size=m, max_size=m)), int)]
    else:
        y = draw(arrays())
    return X, y


ARG_NAMES = ("X", "y", "X_val", "y_val", "batch_size", "epochs", "loss", "model", "shuffle",
             "seed", "lr", "metrics", "pred", "target", "drop_last", "validation_split",
             "optimizer", "start")  # fmt: skip


def _names_an_argument(message: str, allowed=ARG_NAMES) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(a)}(?![\w(])", message) for a in allowed)


def _check_error(exc: BaseException, allowed=ARG_NAMES) -> None:
    assert isinstance(exc, ValueError | TypeError), f"{type(exc).__name__}: {exc}"
    assert _names_an_argument(str(exc), allowed), f"names no argument: {exc}"


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


MODELS = {
    "categorical_cross_entropy": lambda d, dt: ds.nn.mlp([d, 4, 3], output_activation="softmax",
                                                         seed=0, dtype=dt),
    "binary_cross_entropy": lambda d, dt: ds.nn.mlp([d, 4, 1], output_activation="sigmoid",
                                                    seed=0, dtype=dt),
    "log_loss": lambda d, dt: ds.nn.mlp([d, 4, 3], output_activation="softmax", seed=0, dtype=dt),
    "mse": lambda d, dt: ds.nn.mlp([d, 4, 1], seed=0, dtype=dt),
}  # fmt: skip


@SETTINGS
@given(
    data=datasets(),
    loss=st.sampled_from(sorted(MODELS)),
    batch_size=st.sampled_from(["full", 1, 2, 0, -1, 2.0, "half", None, True, 100]),
    epochs=st.sampled_from([1, 2, 0, 1.5, "2"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    fused=st.booleans(),
)
def test_fit_gives_a_finite_history_or_names_the_argument(data, loss, batch_size, epochs, dtype,
                                                         fused):  # fmt: skip
    _count("fit")
    X, y = data
    d = np.shape(X)[1] if np.ndim(X) == 2 and np.shape(X)[1] > 0 else 2
    model = MODELS[loss](d, dtype)
    try:
        history = ds.fit(model, X, y, loss=loss, optimizer="adam", lr=0.01,
                         batch_size=batch_size, epochs=epochs, progress=False, compile=fused,
                         seed=0)  # fmt: skip
    except ds.DivergenceError as exc:
        assert "update" in str(exc) and "lr=" in str(exc)
        return
    except Exception as exc:  # noqa: BLE001 - the point is to see every kind
        _check_error(exc)
        return
    assert history.n_updates >= 1
    assert np.isfinite(history.step["loss"]).all() and np.isfinite(history.epoch["loss"]).all()
    for p in model.parameters():
        assert np.isfinite(p.data).all()


@SETTINGS
@given(X=arrays(), batch_size=st.sampled_from([None, 1, 2, 0, 2.5, "3"]),
       dtype=st.sampled_from([np.float32, np.float64]))  # fmt: skip
def test_predict_gives_finite_outputs_or_names_the_argument(X, batch_size, dtype):
    _count("predict")
    model = ds.nn.mlp([2, 4, 3], output_activation="softmax", seed=0, dtype=dtype)
    try:
        out = ds.predict(model, X, batch_size=batch_size)
    except Exception as exc:  # noqa: BLE001
        _check_error(exc)
        return
    assert out.shape == (len(X), 3) and out.dtype == dtype and np.isfinite(out).all()


@SETTINGS
@given(data=datasets(), loss=st.sampled_from(sorted(MODELS)),
       metrics=st.sampled_from(["auto", None, "accuracy", ["mse", "r2"], 3, "f1"]))  # fmt: skip
def test_evaluate_gives_finite_scores_or_names_the_argument(data, loss, metrics):
    _count("evaluate")
    X, y = data
    d = np.shape(X)[1] if np.ndim(X) == 2 and np.shape(X)[1] > 0 else 2
    model = MODELS[loss](d, np.float32)
    try:
        scores = ds.evaluate(model, X, y, loss=loss, metrics=metrics)
    except Exception as exc:  # noqa: BLE001
        _check_error(exc)
        return
    assert "loss" in scores and all(np.isfinite(v) for v in scores.values())


@SETTINGS
@given(pred=arrays(), target=arrays(),
       loss=st.sampled_from(["mse", "binary_cross_entropy", "categorical_cross_entropy",
                             "log_loss"]),
       from_logits=st.booleans())  # fmt: skip
def test_costs_give_a_finite_number_or_name_the_argument(pred, target, loss, from_logits):
    _count("losses")
    fn = ds.losses.get(loss)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no RuntimeWarning from inside either
            cost = fn(pred, target, from_logits=from_logits)
    except Warning as exc:
        pytest.fail(f"a warning inside the cost: {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001
        _check_error(exc)
        return
    assert cost.data.size == 1 and np.isfinite(cost.data)
    assert float(cost.data) >= 0  # cross-entropies and squared errors are never negative


@SETTINGS
@given(X=arrays(), y=st.none() | arrays(),
       batch_size=st.sampled_from(["full", 1, 2, 3, 0, -2, 1.0, "x", None, np.int64(2)]),
       shuffle=st.sampled_from([True, False, 1, "yes"]),
       seed=st.sampled_from([None, 0, -1, 1.5, "s"]),
       drop_last=st.sampled_from([False, True, 0]))  # fmt: skip
def test_batches_cover_the_data_once_or_name_the_argument(X, y, batch_size, shuffle, seed,
                                                          drop_last):  # fmt: skip
    _count("batches")
    try:
        b = ds.data.batches(X, y, batch_size=batch_size, shuffle=shuffle, seed=seed,
                            drop_last=drop_last)  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        _check_error(exc)
        return
    X = np.asarray(X)
    got = [xb for xb, _ in b]
    assert len(got) == len(b) >= 1
    rows = sum(len(xb) for xb in got)
    assert rows == X.shape[0] or (drop_last and rows == len(b) * b.batch_size)
    assert all(xb.shape[1:] == X.shape[1:] for xb in got)


def test_report_counts():
    """Not a check: prints how many random inputs each property saw (run with -s)."""
    print(f"\nhostile inputs tried: {COUNTS}")
