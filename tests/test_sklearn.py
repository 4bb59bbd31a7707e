"""descend.sklearn: scikit-learn's own estimator checks, pipelines, grid search, pandas, labels."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import descend as ds  # noqa: E402
from descend.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def moons():
    return ds.datasets.moons(200, seed=0)


def test_classifier_fits_and_exposes_what_it_learned(moons):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, batch_size=20,
                        epochs=60, tol=None, random_state=0).fit(X, y)  # fmt: skip
    assert clf.score(X, y) > 0.9
    assert clf.classes_.tolist() == [0, 1] and clf.n_features_in_ == 2
    assert len(clf.loss_curve_) == 60 == clf.n_iter_
    assert clf.t_ == 60 * 10 == clf.history_.n_updates
    assert clf.loss_curve_ == clf.history_.epoch["loss"]
    assert isinstance(clf.model_, ds.nn.Sequential)
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    # model_ is an ordinary descend model: its output is the probability of class 1.
    assert np.allclose(ds.predict(clf.model_, X[:5]).ravel(), proba[:, 1], atol=1e-6)


@pytest.mark.parametrize(("batch_size", "per_epoch"), [("full", 1), (1, 200), (50, 4),
                                                       ("auto", 1), (1000, 1)])  # fmt: skip
def test_batch_size_variants(moons, batch_size, per_epoch):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(4,), batch_size=batch_size, epochs=2, tol=None,
                        random_state=0).fit(X, y)  # fmt: skip
    assert clf.t_ == 2 * per_epoch


def test_string_labels_and_three_classes():
    X, y = ds.datasets.spiral(150, n_classes=3, seed=0)
    names = np.array(["red", "green", "blue"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.02, epochs=150,
                        batch_size=30, random_state=0).fit(X, names)  # fmt: skip
    assert clf.classes_.tolist() == ["blue", "green", "red"]
    assert set(clf.predict(X)) <= {"red", "green", "blue"}
    assert clf.predict_proba(X).shape == (150, 3)
    assert clf.score(X, names) > 0.6


def test_aliases_lr_and_max_iter_win(moons):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(4,), lr=0.5, learning_rate_init=1e-9, epochs=50,
                        max_iter=3, optimizer="gd", batch_size="full", tol=None,
                        random_state=0).fit(X, y)  # fmt: skip
    assert clf.n_iter_ == 3
    assert clf.model_ is not None and clf.history_.params["optimizer"] == "GD"
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]  # lr=0.5 moved it; 1e-9 would not


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
def test_every_optimizer(moons, optimizer):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(8,), optimizer=optimizer, learning_rate_init=0.05,
                        epochs=5, batch_size=40, random_state=0).fit(X, y)  # fmt: skip
    assert clf.history_.params["optimizer"].lower().startswith(optimizer[:3])


def test_early_stopping_keeps_a_validation_curve(moons):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, validation_fraction=0.2,
                        n_iter_no_change=3, epochs=500, learning_rate_init=0.05,
                        random_state=0).fit(X, y)  # fmt: skip
    assert clf.n_iter_ < 500
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    assert sum(clf.history_.step["batch_size"]) == 160 * clf.n_iter_  # 40 held out


def test_tol_stops_when_the_loss_stalls(moons):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(4,), tol=10.0, n_iter_no_change=2, epochs=100,
                        random_state=0).fit(X, y)  # fmt: skip
    assert clf.n_iter_ == 3  # the first epoch sets the best; two more without a gain of 10


def test_regressor_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 3))
    Y = np.column_stack([X[:, 0] - 2 * X[:, 1], X[:, 2] ** 2])
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, batch_size=20,
                       epochs=150, random_state=0).fit(X, Y)  # fmt: skip
    assert reg.predict(X).shape == (200, 2) and reg.n_outputs_ == 2
    assert reg.score(X, Y) > 0.8
    reg1 = MLPRegressor(hidden_layer_sizes=(8,), epochs=5, random_state=0).fit(X, Y[:, 0])
    assert reg1.predict(X).shape == (200,)


def test_pipeline_and_grid_search():
    X, y = ds.datasets.breast_cancer()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(epochs=20, batch_size=32,
                                                         random_state=0))  # fmt: skip
    grid = GridSearchCV(
        pipe,
        {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
         "mlpclassifier__learning_rate_init": [0.001, 0.01]},
        cv=2,
    )  # fmt: skip
    grid.fit(X, y)
    assert grid.best_score_ > 0.9
    assert set(grid.best_params_) == {"mlpclassifier__hidden_layer_sizes",
                                      "mlpclassifier__learning_rate_init"}  # fmt: skip
    assert grid.score(X, y) > 0.9


def test_pandas_dataframes_in_the_estimators():
    pd = pytest.importorskip("pandas")
    X, y = ds.datasets.moons(120, seed=1)
    frame = pd.DataFrame(X, columns=["a", "b"])
    labels = pd.Series(np.where(y == 1, "yes", "no"), name="answer")
    clf = MLPClassifier(hidden_layer_sizes=(8,), epochs=30, learning_rate_init=0.02,
                        batch_size=20, random_state=0).fit(frame, labels)  # fmt: skip
    assert clf.feature_names_in_.tolist() == ["a", "b"]
    assert set(clf.predict(frame)) <= {"yes", "no"}
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)  # fitted with names, given an array: scikit-learn's warning
    reg = MLPRegressor(hidden_layer_sizes=(4,), epochs=3, random_state=0)
    reg.fit(frame, pd.Series(X[:, 0] * 2.0))
    assert reg.predict(frame).shape == (120,)


def test_pandas_dataframes_in_fit_predict_evaluate():
    pd = pytest.importorskip("pandas")
    X, y = ds.datasets.moons(60, seed=0)
    frame, target = pd.DataFrame(X, columns=["a", "b"]), pd.Series(y)
    model = ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0)
    reference = ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0)
    kwargs = dict(loss="categorical_cross_entropy", optimizer="gd", lr=0.1, batch_size=10,
                  epochs=2, seed=0, progress=False)  # fmt: skip
    ds.fit(model, frame, target, **kwargs)
    ds.fit(reference, X, y, **kwargs)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert np.array_equal(a.data, b.data)
    assert np.array_equal(ds.predict(model, frame), ds.predict(reference, X))
    assert ds.evaluate(model, frame, target, loss="categorical_cross_entropy") == ds.evaluate(
        reference, X, y, loss="categorical_cross_entropy"
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": "big"}, "hidden_layer_sizes"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate_init": -1.0}, "learning_rate_init"),
        ({"epochs": 0}, "epochs"),
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"loss": "mse"}, "loss"),
    ],
)
def test_bad_settings_raise_at_fit_naming_the_setting(moons, params, match):
    X, y = moons
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(X, y)


def test_one_class_is_an_error(moons):
    X, _ = moons
    with pytest.raises(ValueError, match="one class"):
        MLPClassifier().fit(X, np.zeros(len(X)))
