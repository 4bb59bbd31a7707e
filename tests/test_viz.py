"""Every figure function runs headless and writes a non-empty image."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import descend as ds  # noqa: E402


@pytest.fixture(scope="module")
def run():
    X, y = ds.datasets.moons(40, seed=0)
    model = ds.nn.mlp([2, 5, 2], output_activation="softmax", seed=0)
    rec = ds.Recorder(every=2)
    history = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.5),
                     batch_size=10, epochs=4, seed=0, callbacks=[rec], validation_split=0.25,
                     progress=False)  # fmt: skip
    return model, X, y, rec, history


def _written(path) -> bool:
    return path.exists() and path.stat().st_size > 0


def test_network_with_and_without_input(run, tmp_path):
    model, X, *_ = run
    fig = ds.viz.network(model, path=tmp_path / "net.png")
    assert isinstance(fig, Figure) and _written(tmp_path / "net.png")
    fig = ds.viz.network(model, X[0], class_names=["a", "b"], path=tmp_path / "net.svg")
    assert _written(tmp_path / "net.svg")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("a: p=") for t in texts) and any(t.startswith("b: p=") for t in texts)


def test_network_shows_at_most_max_neurons(tmp_path):
    X, y = ds.datasets.digits(classes=(0, 1))
    model = ds.nn.mlp([64, 20, 2], output_activation="softmax", seed=0)
    fig = ds.viz.network(model, X[0], max_neurons=6, image_shape=(8, 8), path=tmp_path / "d.png")
    assert _written(tmp_path / "d.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "+58 more" in texts and "+14 more" in texts
    with pytest.raises(ValueError, match="x must have shape"):
        ds.viz.network(model, X[0, :10])


def test_backprop_figure_and_animation(run, tmp_path):
    model, X, y, *_ = run
    fig = ds.viz.backprop(model, X[0], y[:1], "categorical_cross_entropy", path=tmp_path / "b.png")
    assert isinstance(fig, Figure) and _written(tmp_path / "b.png")
    anim = ds.viz.backprop_animation(model, X[0], y[:1], "categorical_cross_entropy",
                                     path=tmp_path / "b.gif", dpi=40, figsize=(4, 3))  # fmt: skip
    assert anim.n_frames == 6 and _written(tmp_path / "b.gif")
    assert (tmp_path / "b.gif").read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    ds.viz.backprop_animation(model, X[0], y[:1], "categorical_cross_entropy",
                              path=tmp_path / "b.html", dpi=40, figsize=(4, 3))  # fmt: skip
    assert "<script" in (tmp_path / "b.html").read_text()
    with pytest.raises(ValueError, match="extension"):
        ds.viz.backprop_animation(model, X[0], y[:1], "categorical_cross_entropy",
                                  path=tmp_path / "b.mp4")  # fmt: skip


def test_surface_paths_start_end_legend_minima(tmp_path):
    problem = ds.experiments.line_problem()
    paths = ds.experiments.descent_paths(problem, ["full", 50], lr=0.3, epochs=2, seed=0)
    fig = ds.viz.surface(problem, paths, path=tmp_path / "s.png")
    assert _written(tmp_path / "s.png")
    ax = fig.axes[0]
    # Each path is drawn with one point per update plus the start.
    lines = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert [len(line.get_xydata()) for line in lines] == [3, 2 * 9 + 1]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["batch (b=442) (2 updates)", "mini-batch (b=50) (18 updates)"]
    assert {"least squares", "start", "end"} <= set(labels)
    fig = ds.viz.surface(lambda a, b: float(a * a + b * b), [np.array([[1.0, 1.0], [0.0, 0.1]])],
                         bounds=((-1, 1), (-1, 1)), kind="contour", resolution=12,
                         path=tmp_path / "s.svg")  # fmt: skip
    assert _written(tmp_path / "s.svg") and len(fig.axes) == 2  # contour + colour bar
    with pytest.raises(ValueError, match="shape"):
        ds.viz.surface(problem, [np.zeros((3, 3))])


def test_surface_html_is_self_contained(tmp_path):
    problem = ds.experiments.camel_problem()
    fig = ds.viz.surface_html(problem, {"p": np.array([[1.0, 1.0], [0.5, 0.2]])}, resolution=10,
                              path=tmp_path / "s.html")  # fmt: skip
    text = (tmp_path / "s.html").read_text()
    assert len(text) > 1_000_000  # plotly.js is inside
    assert '<script src="https://cdn' not in text
    assert len(fig.data) == 4  # surface, path, its start/end, the minima
    ds.viz.surface(problem, resolution=10, path=tmp_path / "t.html")
    assert _written(tmp_path / "t.html")


def test_history_one_run_several_and_a_comparison(run, tmp_path):
    *_, history = run
    fig = ds.viz.history(history, path=tmp_path / "h1.png")
    assert _written(tmp_path / "h1.png")
    assert fig.axes[0].get_xlabel() == "update"
    assert len(fig.axes[0].lines[0].get_xdata()) == history.n_updates
    X, y = ds.datasets.moons(30, seed=1)
    runs = {
        f"b={b}": ds.fit(ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0), X, y,
                         loss="categorical_cross_entropy", batch_size=b, epochs=2,
                         progress=False)
        for b in ("full", 1)
    }  # fmt: skip
    fig = ds.viz.history(runs, overlay=False, smooth=3, log_scale=True, path=tmp_path / "h2.svg")
    assert _written(tmp_path / "h2.svg") and len(fig.axes) == 3
    fig = ds.viz.history(runs, metric="accuracy", path=tmp_path / "h3.png")
    assert _written(tmp_path / "h3.png") and len(fig.axes) == 1
    result = ds.experiments.compare_variants(
        ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0), X, y,
        loss="categorical_cross_entropy", batch_sizes=["full", 5], epochs=2, seeds=(0, 1),
    )  # fmt: skip
    result.plot_history(path=tmp_path / "h4.png")
    result.plot_tradeoff(path=tmp_path / "t.png")
    assert _written(tmp_path / "h4.png") and _written(tmp_path / "t.png")


def test_decision_boundary_softmax_and_sigmoid(run, tmp_path):
    model, X, y, *_ = run
    fig = ds.viz.decision_boundary(model, X, y, resolution=30, path=tmp_path / "d.png")
    assert _written(tmp_path / "d.png") and "accuracy" in fig.axes[0].get_title()
    binary = ds.nn.mlp([2, 3, 1], output_activation="sigmoid", seed=0)
    ds.viz.decision_boundary(binary, X, y, resolution=30, path=tmp_path / "d.svg")
    assert _written(tmp_path / "d.svg")
    with pytest.raises(ValueError, match="2-D data"):
        ds.viz.decision_boundary(model, np.zeros((4, 3)), np.zeros(4))


def test_gradient_norms_from_recorder_or_history(run, tmp_path):
    *_, rec, history = run
    fig = ds.viz.gradient_norms(rec, path=tmp_path / "g.png")
    assert _written(tmp_path / "g.png") and len(fig.axes) == 2
    assert len(fig.axes[0].lines[0].get_xdata()) == history.n_updates
    ds.viz.gradient_norms(history, kind="ratio", step_axis="epoch", smooth=3,
                          path=tmp_path / "g.svg")  # fmt: skip
    assert _written(tmp_path / "g.svg")
    bare = ds.fit(ds.nn.mlp([2, 1], seed=0), np.zeros((4, 2)), np.zeros(4), loss="mse",
                  batch_size="full", progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="Recorder"):
        ds.viz.gradient_norms(bare)


@pytest.mark.parametrize("method", ["pca", "random"])
def test_landscape(run, tmp_path, method):
    model, X, y, rec, _ = run
    fig = ds.viz.landscape(model, X, y, "categorical_cross_entropy", rec, method, resolution=5,
                           kind="both", path=tmp_path / "l.png")  # fmt: skip
    assert _written(tmp_path / "l.png")
    assert "explains" in fig.axes[0].get_title()
    trajectory = fig.axes[0].lines[0].get_xydata()
    assert len(trajectory) == len(rec.snapshots)
    assert trajectory[-1].tolist() == [0.0, 0.0]  # the projected path ends at the origin


def test_local_minima_figure(tmp_path):
    result = ds.experiments.local_minima(batch_sizes=("full", 1), lrs=(0.05, 0.1), n_starts=5,
                                         steps=30, n_samples=10)  # fmt: skip
    fig = result.plot(0.1, path=tmp_path / "m.png")
    assert _written(tmp_path / "m.png") and len(fig.axes) == 2
    with pytest.raises(ValueError, match="was not run"):
        result.plot(0.3)


def test_bad_path_extension(run, tmp_path):
    model, *_ = run
    with pytest.raises(ValueError, match="extension"):
        ds.viz.network(model, path=tmp_path / "net.jpg")


def test_import_descend_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, descend; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_network_and_backprop_edges_show_the_sign_and_size_of_their_numbers():
    # Not only that a file was written: each drawn edge has the colour of its number's sign and
    # a width that grows with its magnitude.
    import matplotlib.colors as mcolors

    from descend.viz._common import NEGATIVE, POSITIVE

    X, y = ds.datasets.xor(20, seed=0)
    model = ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0)
    view = ds.backprop(model, X[:1], y[:1], "categorical_cross_entropy")
    figures = {
        "weights": (ds.viz.network(model), [d.weight.data for d in model.layers]),
        "dC/dW": (ds.viz.backprop(model, X[0], y[0], "categorical_cross_entropy"),
                  [r.dC_dW for r in view.layers]),
    }  # fmt: skip
    blue, orange = mcolors.to_rgb(POSITIVE), mcolors.to_rgb(NEGATIVE)
    for what, (fig, arrays) in figures.items():
        edges = fig.axes[0].collections[: len(arrays)]
        for lc, values in zip(edges, arrays, strict=True):
            v = np.asarray(values, dtype=np.float64).ravel()  # drawn in (i, j) order
            colours = [tuple(c[:3]) for c in lc.get_colors()]
            want = [blue if s >= 0 else orange for s in v]
            assert np.allclose(colours, want), what
            widths = np.asarray(lc.get_linewidths())
            assert widths[np.argmax(np.abs(v))] == widths.max(), what
