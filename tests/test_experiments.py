"""The experiments: variants compared, two-parameter problems, local minima, the loss plane."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import descend as ds
from descend.experiments import (
    camel_problem,
    compare_variants,
    descent_paths,
    line_problem,
    local_minima,
    loss_noise,
    loss_plane,
)
from descend.experiments.problems import camel_grad


@pytest.fixture(scope="module")
def xor_data():
    X, y = ds.datasets.xor(50, seed=0)
    Xt, yt = ds.datasets.xor(20, seed=1)
    return X, y, Xt, yt


def _model():
    return ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0)


def _compare(data, **kw):
    X, y, Xt, yt = data
    args = dict(loss="categorical_cross_entropy", test_data=(Xt, yt),
                batch_sizes=("full", 1, 7, 16), epochs=3, lr=0.1, seeds=(0, 1))  # fmt: skip
    args.update(kw)
    return compare_variants(_model(), X, y, **args)


# --- compare_variants ---------------------------------------------------------------------------


def test_update_counts_are_exact(xor_data):
    result = _compare(xor_data)
    expected = {50: 1, 1: 50, 7: 8, 16: 4}  # ceil(50 / b) per epoch
    for run in result.runs:
        per_epoch = expected[run.batch_size]
        assert run.updates == 3 * per_epoch == len(run.step_loss)
        assert run.epochs == 3
        assert run.curve["updates"].tolist() == [0, per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert [r["updates"] for r in result.summary()] == [3, 150, 24, 12]
    assert result.variants == [
        "batch (b=50)", "stochastic (b=1)", "mini-batch (b=7)", "mini-batch (b=16)",
    ]  # fmt: skip


def test_same_seed_same_result_wall_times_aside(xor_data):
    a, b = _compare(xor_data), _compare(xor_data)
    assert a.target_loss == b.target_loss
    for ra, rb in zip(a.runs, b.runs, strict=True):
        assert (ra.variant, ra.seed, ra.updates, ra.noise) == (rb.variant, rb.seed, rb.updates,
                                                                rb.noise)  # fmt: skip
        np.testing.assert_array_equal(ra.step_loss, rb.step_loss)
        assert ra.final == rb.final
        for key in ra.curve:
            if key != "time":
                np.testing.assert_array_equal(ra.curve[key], rb.curve[key])
    strip = lambda rows: [{k: v for k, v in r.items() if "time" not in k} for r in rows]  # noqa: E731
    assert json.dumps(strip(a.summary())) == json.dumps(strip(b.summary()))


def test_every_run_starts_from_the_same_weights_and_the_model_is_kept(xor_data):
    model = _model()
    before = model.state_dict()
    X, y, Xt, yt = xor_data
    result = compare_variants(model, X, y, loss="categorical_cross_entropy",
                              batch_sizes=("full", 5), epochs=2, seeds=(0, 3))  # fmt: skip
    starts = {r.curve["loss"][0] for r in result.runs}
    assert len(starts) == 1
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    # The shuffling seed matters for mini-batches, not for the full batch.
    runs = {(r.batch_size, r.seed): r for r in result.runs}
    np.testing.assert_array_equal(runs[(50, 0)].step_loss, runs[(50, 3)].step_loss)
    assert not np.array_equal(runs[(5, 0)].step_loss, runs[(5, 3)].step_loss)
    assert math.isnan(runs[(50, 0)].final["test_loss"])


def test_a_model_function_gives_each_seed_its_own_start(xor_data):
    X, y, _, _ = xor_data
    result = compare_variants(
        lambda seed: ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=seed), X, y,
        loss="categorical_cross_entropy", batch_sizes=["full", 10], epochs=1, seeds=(0, 1),
    )  # fmt: skip
    by = {(r.batch_size, r.seed): r.curve["loss"][0] for r in result.runs}
    assert by[(50, 0)] == by[(10, 0)] != by[(50, 1)] == by[(10, 1)]


def test_measures_and_rendering(xor_data):
    result = _compare(xor_data)
    rows = {r["variant"]: r for r in result.summary()}
    # The default target is the worst final training loss: every run reaches it.
    worst = max(r.final["train_loss"] for r in result.runs)
    assert result.target_loss == worst
    for run in result.runs:
        hit = run.to_target(worst)
        assert hit["updates"] <= run.updates and hit["time"] <= run.wall_time + 1e-9
    # Too few updates for a noise figure: NaN, shown as a dash.
    assert math.isnan(rows["batch (b=50)"]["loss noise"][0])
    assert "| - |" in result.to_markdown() or " - |" in result.to_markdown()
    # Batch GD's per-update loss is the smooth full-data loss; SGD's is one sample's.
    longer = _compare(xor_data, batch_sizes=("full", 1), epochs=10, seeds=(0,))
    batch, sgd = longer.runs
    assert 0 <= batch.noise < 0.01 < sgd.noise
    table = result.to_markdown()
    assert table.count("\n|") == 1 + len(result.variants)  # separator + one row per variant
    assert "mean ± std over seeds 0, 1" in table
    json.dumps(result.to_dict())
    never = result.runs[0].to_target(-1.0)
    assert math.isnan(never["time"]) and math.isnan(never["updates"])


def test_given_target_and_bad_arguments(xor_data):
    X, y, _, _ = xor_data
    result = compare_variants(_model(), X, y, loss="categorical_cross_entropy",
                              batch_sizes={"big": 25, "small": 5}, epochs=2,
                              target_loss=10.0)  # fmt: skip
    assert result.variants == ["big", "small"]
    assert all(r.to_target(10.0)["epochs"] == 0 for r in result.runs)
    with pytest.raises(ValueError, match="same variant twice"):
        compare_variants(_model(), X, y, loss="mse", batch_sizes=[50, "full"])
    with pytest.raises(ValueError, match="epochs"):
        compare_variants(_model(), X, y, loss="mse", epochs=0)
    with pytest.raises(ValueError, match="lr"):
        compare_variants(_model(), X, y, loss="mse", optimizer=ds.optim.GD(0.1), lr=0.2)


def test_a_diverging_variant_is_reported_not_raised(xor_data):
    X, y, Xt, yt = xor_data
    big = ds.nn.mlp([2, 4, 1], seed=0)
    with np.errstate(all="ignore"):
        result = compare_variants(big, X * 1e3, y.astype(float) * 1e3, loss="mse",
                                  test_data=(Xt, yt.astype(float)), batch_sizes=("full", 1),
                                  epochs=3, lr=10.0, seeds=(0, 1))  # fmt: skip
    assert all(r.diverged is not None for r in result.runs)
    assert all(math.isnan(r.final["train_loss"]) for r in result.runs)
    at = {v: ", ".join(str(r.diverged) for r in result.runs_of(v)) for v in result.variants}
    assert [row["diverged"] for row in result.summary()] == [
        f"2 of 2 (at updates {at[v]})" for v in result.variants
    ]
    json.dumps(result.to_dict())
    result.to_markdown()


def test_loss_noise_definition():
    assert loss_noise(np.linspace(2.0, 1.0, 50)) == 0.0
    assert loss_noise(np.full(40, 3.0)) == 0.0
    assert math.isnan(loss_noise([1.0, 2.0, 3.0]))
    rng = np.random.default_rng(0)
    noisy = 1.0 + rng.normal(scale=0.5, size=4000)
    assert loss_noise(noisy, window=51) == pytest.approx(0.5, rel=0.05)


# --- two-parameter problems --------------------------------------------------------------------


def test_line_problem_cost_and_minimum_are_the_data_fit():
    problem = line_problem("bmi")
    x, y = problem.X[:, 0], problem.y
    w, b = problem.minima["least squares"]
    np.testing.assert_allclose([w, b], np.polyfit(x, y, 1), rtol=1e-10)
    model = ds.nn.Sequential(ds.nn.Dense(1, 1, dtype=np.float64))
    model[0].weight.data[...] = 0.7
    model[0].bias.data[...] = -0.2
    direct = ds.evaluate(model, problem.X, y, loss="mse")["loss"]
    assert float(problem.cost(0.7, -0.2)) == pytest.approx(direct, rel=1e-12)
    W, B = np.meshgrid([0.0, 1.0], [0.0, 1.0, 2.0])
    assert problem.cost(W, B).shape == (3, 2)
    assert line_problem("bp", scale="standard").X.std() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="feature"):
        line_problem("height")


def test_paths_have_one_point_per_update_plus_the_start():
    problem = line_problem()
    paths = descent_paths(problem, ["full", 1, 100], lr=0.2, epochs=2, start=(-1.0, 1.0), seed=0)
    n = len(problem.X)
    counts = {"batch (b=442)": 2, "stochastic (b=1)": 2 * n, "mini-batch (b=100)": 2 * 5}
    assert {k: len(v) for k, v in paths.items()} == {k: c + 1 for k, c in counts.items()}
    for p in paths.values():
        np.testing.assert_array_equal(p[0], [-1.0, 1.0])
    # Batch GD on the bowl (lr below 2 / largest curvature) goes down at every step; SGD not.
    batch_cost = problem.cost(*paths["batch (b=442)"].T)
    assert np.all(np.diff(batch_cost) < 0)
    assert np.any(np.diff(problem.cost(*paths["stochastic (b=1)"].T)) > 0)
    again = descent_paths(problem, ["full", 1, 100], lr=0.2, epochs=2, start=(-1.0, 1.0), seed=0)
    for k in paths:
        np.testing.assert_array_equal(paths[k], again[k])


def test_camel_minima_are_stationary_and_ordered():
    problem = camel_problem()
    pts = np.array(list(problem.minima.values()))
    np.testing.assert_allclose(camel_grad(pts), 0.0, atol=1e-12)
    values = problem.cost(pts[:, 0], pts[:, 1])
    assert values[0] == 0.0 and np.all(values[1:] > 0.29)


# --- local minima ------------------------------------------------------------------------------


def test_local_minima_is_reproducible_and_complete():
    kw = dict(batch_sizes=("full", 5, 1), lrs=(0.05, 0.1), n_starts=12, steps=150, n_samples=20)
    a, b = local_minima(**kw), local_minima(**kw)
    assert a.rows == b.rows
    np.testing.assert_array_equal(a.starts, b.starts)
    for key in a.paths:
        np.testing.assert_array_equal(a.paths[key], b.paths[key])
        np.testing.assert_array_equal(a.outcomes[key], b.outcomes[key])
    assert len(a.rows) == 6
    for row in a.rows:
        assert row["global"] + row["local"] + row["diverged"] + row["other"] == pytest.approx(1.0)
    assert a.paths[(1, 0.05)].shape == (12, 151, 2)
    np.testing.assert_array_equal(a.paths[(1, 0.05)][:, 0], a.starts)
    assert np.all(np.abs(a.starts) <= 2.0)
    assert "| variant |" in a.to_markdown()
    assert local_minima(**{**kw, "seed": 1}).rows != a.rows


def test_without_noise_every_batch_size_is_batch_gradient_descent():
    result = local_minima(batch_sizes=("full", 4, 1), lrs=(0.05,), n_starts=10, steps=200,
                          n_samples=20, noise=0.0)  # fmt: skip
    full = result.paths[(20, 0.05)]
    for b in (4, 1):
        np.testing.assert_allclose(result.paths[(b, 0.05)], full, atol=1e-12)
        np.testing.assert_array_equal(result.outcomes[(b, 0.05)], result.outcomes[(20, 0.05)])


def test_batch_gd_ends_in_the_basin_it_starts_in():
    result = local_minima(batch_sizes=("full",), lrs=(0.05,), n_starts=30, steps=600,
                          n_samples=10)  # fmt: skip
    final = result.paths[(10, 0.05)][:, -1]
    minima = np.array(list(result.problem.minima.values()))
    nearest = np.linalg.norm(final[:, None] - minima[None], axis=2).argmin(axis=1)
    expected = np.where(nearest == 0, "global", "local")
    np.testing.assert_array_equal(result.outcomes[(10, 0.05)], expected)


# --- the loss plane ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    X, y = ds.datasets.moons(40, seed=0)
    model = ds.nn.mlp([2, 5, 2], output_activation="softmax", seed=0)
    rec = ds.Recorder()
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.5),
           batch_size=10, epochs=4, seed=0, callbacks=[rec], progress=False)  # fmt: skip
    return model, X, y, rec


@pytest.mark.parametrize("method", ["pca", "random"])
def test_plane_passes_through_the_final_weights(trained, method):
    model, X, y, rec = trained
    before = model.state_dict()
    plane = loss_plane(model, X, y, "categorical_cross_entropy", rec, method, resolution=6)
    assert plane.losses.shape == (7, 7)  # made odd
    mid = 3
    assert plane.alphas[mid] == 0.0 and plane.betas[mid] == 0.0
    expected = ds.evaluate(model, X, y, loss="categorical_cross_entropy")["loss"]
    assert plane.losses[mid, mid] == expected == plane.center_loss
    # The projected trajectory ends at the origin, exactly.
    assert plane.coords[-1].tolist() == [0.0, 0.0]
    assert len(plane.coords) == len(rec.snapshots)
    assert 0.0 <= plane.explained <= 1.0
    np.testing.assert_array_equal(plane.trajectory_loss[-1], expected)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_pca_plane_of_a_planar_trajectory_explains_everything(trained):
    model, X, y, _ = trained
    center = ds.Recorder().flatten(model).astype(np.float64)
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=center.size), rng.normal(size=center.size)
    t = np.linspace(1.0, 0.0, 9)
    traj = center + np.outer(t, u) * 0.01 + np.outer(t**2, v) * 0.01
    plane = loss_plane(model, X, y, "categorical_cross_entropy", traj, "pca", resolution=3)
    assert plane.explained == pytest.approx(1.0)
    assert sum(plane.explained_each) == pytest.approx(1.0)
    np.testing.assert_allclose(np.linalg.norm(plane.directions, axis=1), 1.0)
    rebuilt = center + plane.coords @ plane.directions
    np.testing.assert_allclose(rebuilt, traj, atol=1e-9)


def test_random_directions_are_filter_normalised(trained):
    model, X, y, rec = trained
    plane = loss_plane(model, X, y, "categorical_cross_entropy", rec, "random", resolution=3)
    d = rec.unflatten(plane.directions[0])
    for name, p in model.named_parameters().items():
        if p.data.ndim == 1:
            assert np.all(d[name] == 0)  # biases get no direction
        else:
            np.testing.assert_allclose(np.linalg.norm(d[name], axis=0),
                                       np.linalg.norm(p.data, axis=0), rtol=1e-5)  # fmt: skip
    # Two equal snapshots (no trajectory to speak of) still give a random plane.
    final = rec.flatten(model)
    flat = loss_plane(model, X, y, "categorical_cross_entropy", np.stack([final, final]),
                      "random", resolution=3)  # fmt: skip
    assert flat.explained == 0.0 and flat.coords.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="3 snapshots"):
        loss_plane(model, X, y, "categorical_cross_entropy", np.stack([final, final]), "pca")
    with pytest.raises(ValueError, match="shape"):
        loss_plane(model, X, y, "categorical_cross_entropy", final[None, :3], "random")
