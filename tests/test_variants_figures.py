"""The comparison of the variants tells the truth: divergence drawn and marked, noise relative to
the loss level, a trade-off figure that says how it measured, and no import of viz."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend.experiments import compare_variants, loss_noise


@pytest.fixture(scope="module")
def sgd_diverges_in_its_first_epoch():
    # Three rows far out: single-sample steps on them blow up at this rate, averaged ones do not.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    X[:3] *= 8
    y = X @ rng.normal(size=5) + rng.normal(size=60) * 0.1
    y = (y - y.mean()) / y.std()
    with np.errstate(all="ignore"):
        result = compare_variants(ds.nn.mlp([5, 16, 1], seed=0), X, y, loss="mse",
                                  batch_sizes=("full", 4, 1), epochs=10, lr=0.01)  # fmt: skip
    sgd = result.runs[-1]
    assert sgd.diverged is not None and sgd.epochs == 0  # the case of the report
    assert all(r.diverged is None for r in result.runs[:2])
    return result


def test_a_run_that_diverged_in_its_first_epoch_is_summarised(sgd_diverges_in_its_first_epoch):
    result = sgd_diverges_in_its_first_epoch
    sgd = result.runs[-1]
    assert sgd.steps_per_epoch == 60
    assert math.isnan(sgd.noise)  # the explosion is not the variant's noise
    rows = {row["variant"]: row for row in result.summary()}
    assert rows["stochastic (b=1)"]["diverged"] == f"1 of 1 (at update {sgd.diverged})"
    assert rows["batch (b=60)"]["diverged"] == "0 of 1"
    assert "stochastic (b=1): diverged" in result.to_markdown()
    assert f"at update {sgd.diverged}" in result.to_markdown()


def test_a_diverged_variant_is_drawn_up_to_its_divergence_and_marked(
    sgd_diverges_in_its_first_epoch, tmp_path
):
    result = sgd_diverges_in_its_first_epoch
    k = result.runs[-1].diverged
    for log_scale in (False, True):
        fig = result.plot_history(path=tmp_path / "h.png", log_scale=log_scale)
        steps, epochs = fig.axes
        legend = [t.get_text() for t in steps.get_legend().get_texts()]
        assert f"stochastic (b=1) ({k} updates, diverged at update {k})" in legend
        # drawn up to the divergence, on the epoch axis (k of 60 updates of an epoch)
        sgd_line = next(ln for ln in steps.lines if "stochastic" in str(ln.get_label()))
        assert len(sgd_line.get_xdata()) == k
        assert sgd_line.get_xdata()[-1] == pytest.approx(k / 60)
        marks = [ln for ln in steps.lines if list(ln.get_xdata()) == [k / 60, k / 60]]
        assert marks, "no line marks where the run diverged"
        assert any("diverged" in t.get_text() for t in steps.texts)
        # the calm runs set the scale, not the explosion
        calm_top = max(np.nanmax(r.step_loss) for r in result.runs[:2])
        assert steps.get_ylim()[1] <= calm_top * 3.01
        epoch_legend = [t.get_text() for t in epochs.get_legend().get_texts()]
        assert f"stochastic (b=1), diverged at update {k}" in epoch_legend
    fig = result.plot_tradeoff(path=tmp_path / "t.png")
    assert "No point on the right for stochastic (b=1): diverged" in fig.texts[0].get_text()


def test_the_command_draws_every_figure_when_a_variant_diverges(tmp_path):
    from descend.cli import main

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5))
    X[:3] *= 8
    y = X @ rng.normal(size=5)
    data = tmp_path / "d.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="a,b,c,d,e,t", comments="")
    out = tmp_path / "run"
    with np.errstate(all="ignore"):
        code = main(["--debug", "compare", str(data), "--task", "regression", "--epochs", "2",
                     "--seeds", "0", "--batches", "full,1", "--lr", "0.5", "--hidden", "8",
                     "--out", str(out)])  # fmt: skip
    assert code == 0
    assert {"curves.png", "curves_log.png", "tradeoff.png"} <= {p.name for p in out.iterdir()}
    report = (out / "report.html").read_text()
    assert "not drawn" not in report
    assert "stochastic (b=1): diverged" in report
    assert '<div class="wide"><table>' in report  # the wide table scrolls within the page


def test_loss_noise_is_relative_to_the_loss_level():
    # SGD near the bottom: a tiny loss that jumps by half its level. Mini-batch higher up: a
    # loss of 1 that moves by a tenth. The absolute spread calls SGD the smoother one.
    rng = np.random.default_rng(0)
    sgd = 0.001 * (1 + 0.5 * rng.standard_normal(4000))
    mini = 1.0 + 0.1 * rng.standard_normal(4000)
    assert loss_noise(sgd, relative=False) < loss_noise(mini, relative=False)
    assert loss_noise(sgd, window=51) == pytest.approx(0.5, rel=0.05)
    assert loss_noise(mini, window=51) == pytest.approx(0.1, rel=0.05)
    assert loss_noise(np.zeros(20)) == 0.0


def test_tradeoff_moves_forward_in_time_and_explains_itself(tmp_path):
    X, y = ds.datasets.moons(120, seed=0)
    result = compare_variants(
        lambda s: ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=s), X, y,
        loss="categorical_cross_entropy", batch_sizes=("full", 8), epochs=5, lr=0.3,
        seeds=(0, 1, 2),
    )  # fmt: skip
    fig = result.plot_tradeoff(path=tmp_path / "t.png")
    speed, _ = fig.axes
    joined = [ln for ln in speed.lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 1]
    assert len(joined) == 2  # one line per variant, the seeds as loose points
    for line in joined:
        assert np.all(np.diff(line.get_xdata()) > 0), "a line runs back in time"
    note = fig.texts[0].get_text().replace("\n", " ")
    assert "as a fraction of that average" in note
    assert "shared machine" in note and "3 seeds" in note
    # batch GD with 5 updates has no noise figure: said so, not silently left out
    assert "batch (b=120): no loss noise: 5 updates are too few" in note
    assert result.why_incomplete("mini-batch (b=8)") is None


def test_experiments_never_import_viz():
    root = Path(ds.experiments.__file__).parent
    for source in root.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("descend.viz") for n in names), source.name


def test_a_result_without_viz_says_how_to_get_the_figures(monkeypatch):
    from descend.experiments import _figures

    monkeypatch.setattr(_figures, "_DRAWERS", {})
    with pytest.raises(ImportError, match=r"descend\[plots\]"):
        _figures.draw("history", None)


def test_surface_ends_on_top_and_the_legend_off_the_plot():
    problem = ds.experiments.line_problem("bmi")
    paths = ds.experiments.descent_paths(problem, lr=0.1, epochs=2)
    fig = ds.viz.surface(problem, paths, kind="contour")
    ax = fig.axes[0]
    ends = [ln for ln in ax.lines if ln.get_marker() == "X"]
    paths_drawn = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    assert len(ends) == len(paths)
    assert min(e.get_zorder() for e in ends) > max(p.get_zorder() for p in paths_drawn)
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 <= ax.get_window_extent().y0  # below the axes, covering nothing
