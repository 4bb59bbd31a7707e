"""What happened during training: the loss per update and per epoch, gradient norms, trade-offs."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from descend.viz._common import PALETTE, finish, moving_average, new_figure

__all__ = ["gradient_norms", "history", "tradeoff", "tradeoff_note"]


@dataclass
class _Run:
    label: str
    step: np.ndarray | None
    steps_per_epoch: float
    epoch_x: np.ndarray
    train: np.ndarray | None
    val: np.ndarray | None
    val_name: str = "validation"
    band: tuple | None = None
    diverged: int | None = None  # the update where the shown run diverged


def _label_of(h, i: int) -> str:
    from descend.experiments.problems import variant_label

    p = getattr(h, "params", {}) or {}
    if "batch_size" in p and "n_samples" in p:
        return variant_label(p["batch_size"], p["n_samples"])
    return f"run {i + 1}"


def _from_history(h, label: str, metric: str) -> _Run:
    if not hasattr(h, "epoch") or not hasattr(h, "step"):
        raise TypeError(f"expected a descend History (what ds.fit returns), got {type(h).__name__}")
    step = h.step.get(metric)
    step = np.asarray(step, dtype=np.float64) if step else None
    n_epochs = len(h.epoch.get(metric, [])) or getattr(h, "n_epochs", 0) or 1
    spe = (h.params or {}).get("steps_per_epoch") or (
        (len(step) / n_epochs) if step is not None else 1
    )
    train = h.epoch.get(metric)
    val = h.epoch.get(f"val_{metric}")
    return _Run(
        label=label,
        step=step,
        steps_per_epoch=float(spe),
        epoch_x=np.arange(1, n_epochs + 1, dtype=np.float64),
        train=None if not train else np.asarray(train, dtype=np.float64),
        val=None if not val else np.asarray(val, dtype=np.float64),
    )


def _from_comparison(result, metric: str, seed) -> list[_Run]:
    seed = result.seeds[0] if seed is None else seed
    if seed not in result.seeds:
        raise ValueError(f"seed={seed} was not run; the comparison has seeds {result.seeds}")
    runs = []
    for variant in result.variants:
        per_seed = result.runs_of(variant)
        shown = next(r for r in per_seed if r.seed == seed)
        if metric not in shown.curve:
            raise ValueError(f"metric={metric!r} not recorded; have {sorted(shown.curve)}")
        longest = max(per_seed, key=lambda r: len(r.curve["epoch"]))
        curves = _padded([r.curve[metric] for r in per_seed])
        test_key = f"test_{metric}"
        test = None
        if test_key in shown.curve:
            test = _mean_of_finite(_padded([r.curve[test_key] for r in per_seed]))
        # Updates per full epoch from the batch size, not updates / epochs: a run that
        # diverged in its first epoch completed none.
        n = (result.settings or {}).get("n_train")
        spe = shown.steps_per_epoch or (math.ceil(n / shown.batch_size) if n else None)
        runs.append(
            _Run(
                label=variant,
                step=shown.step_loss if metric == "loss" else None,
                steps_per_epoch=float(spe or max(shown.updates, 1) / max(shown.epochs, 1)),
                epoch_x=np.asarray(longest.curve["epoch"], dtype=np.float64),
                train=_mean_of_finite(curves),
                val=test,
                val_name="test",
                # fmin/fmax skip NaN (a diverged seed's missing epochs) without a warning.
                band=(np.fmin.reduce(curves, axis=0), np.fmax.reduce(curves, axis=0))
                if len(per_seed) > 1
                else None,
                diverged=shown.diverged,
            )
        )
    return runs


def _mean_of_finite(rows: np.ndarray) -> np.ndarray:
    """The column means over the seeds, NaN where no seed has a number (after a divergence)."""
    finite = np.isfinite(rows)
    counts = finite.sum(axis=0)
    sums = np.where(finite, rows, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.full(rows.shape[1], np.nan), where=counts > 0)


def _padded(curves) -> np.ndarray:
    """Curves of unequal length (a diverged run stops early) as rows padded with NaN."""
    out = np.full((len(curves), max(len(c) for c in curves)), np.nan)
    for i, c in enumerate(curves):
        out[i, : len(c)] = c
    return out


def _collect(runs, labels, metric, seed) -> list[_Run]:
    from descend.experiments.variants import VariantComparison

    if isinstance(runs, VariantComparison):
        out = _from_comparison(runs, metric, seed)
    else:
        if isinstance(runs, Mapping):
            items = list(runs.items())
        elif hasattr(runs, "epoch") and hasattr(runs, "step"):
            items = [(None, runs)]
        else:
            items = [(None, h) for h in runs]
        out = [
            _from_history(h, label if label is not None else _label_of(h, i), metric)
            for i, (label, h) in enumerate(items)
        ]
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(out):
            raise ValueError(f"labels has {len(labels)} names for {len(out)} runs")
        for run, label in zip(out, labels, strict=True):
            run.label = str(label)
    if not out:
        raise ValueError("no runs to draw")
    return out


def history(
    runs,
    *,
    labels=None,
    metric: str = "loss",
    validation: bool = True,
    step_axis: str = "auto",
    smooth: int | None = None,
    overlay: bool = True,
    log_scale: bool = False,
    seed: int | None = None,
    title: str | None = None,
    figsize=None,
    path=None,
):
    """Draw the loss per update and per epoch, for one run or several overlaid.

    Left, the loss of the batch each update descended (noisy for small batches: the three
    variants of gradient descent side by side show how noisy each is); right, the per-epoch
    training curve (solid) and the validation or test curve (dashed).

    Parameters
    ----------
    runs : History, list or dict of History, or VariantComparison
        One run, several (a dict maps legend labels to runs), or the result of
        :func:`descend.experiments.compare_variants` (its per-epoch curves are full-data losses
        averaged over seeds, with the range over seeds shaded; the per-update curve is one
        seed's).
    labels : list of str, optional
        Legend labels (default: the variant and batch size of each run).
    metric : str, default "loss"
        What to draw per epoch (e.g. "accuracy"); the per-update panel exists for "loss".
    validation : bool, default True
        Draw the validation (or test) curve when there is one.
    step_axis : {"auto", "update", "epoch"}, default "auto"
        The per-update panel's x-axis: update number, or epochs (update i of an epoch of k
        updates at ``i / k``), which lines up runs of different batch sizes. "auto": updates
        for one run, epochs for several.
    smooth : int, optional
        Also draw a trailing moving average over this many updates (the raw curve faded).
    overlay : bool, default True
        All runs' per-update losses on one axes; False gives each run its own (same y-scale).
    log_scale : bool, default False
        Logarithmic loss axis.
    seed : int, optional
        For a VariantComparison: whose per-update losses to draw (default: the first seed).
    title : str, optional
    figsize : (float, float), optional
    path : str or Path, optional
        Save the figure (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(100, seed=0)
    >>> runs = {}
    >>> for b in ("full", 10):
    ...     model = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
    ...     runs[f"batch_size={b}"] = ds.fit(
    ...         model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.3),
    ...         batch_size=b, epochs=5, validation_split=0.2, seed=0, progress=False)
    >>> fig = ds.viz.history(runs)
    >>> [ax.get_title() for ax in fig.axes]
    ['loss per update', 'loss per epoch']
    """
    if step_axis not in ("auto", "update", "epoch"):
        raise ValueError(f"step_axis must be 'auto', 'update' or 'epoch', got {step_axis!r}")
    data = _collect(runs, labels, metric, seed)
    with_steps = [r for r in data if r.step is not None and len(r.step)]
    if step_axis == "auto":
        step_axis = "update" if len(data) == 1 else "epoch"
    n_step_axes = 0 if not with_steps else (1 if overlay else len(with_steps))
    ncols = n_step_axes + 1
    fig = new_figure(figsize or (4.6 * ncols if ncols > 2 else 5.5 * ncols, 4.2))
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    colors = {r.label: PALETTE[i % len(PALETTE)] for i, r in enumerate(data)}
    if with_steps:
        step_axes = [axes[0]] * len(with_steps) if overlay else list(axes[:n_step_axes])
        _draw_steps(step_axes, with_steps, colors, step_axis, smooth, metric, overlay, log_scale)
    _draw_epochs(axes[-1], data, colors, validation, metric, log_scale)
    if title:
        fig.suptitle(title, fontsize=11)
    return finish(fig, path)


def _diverged_label(run: _Run) -> str:
    return "" if run.diverged is None else f", diverged at update {run.diverged}"


def _draw_steps(step_axes, runs, colors, step_axis, smooth, metric, overlay, log_scale) -> None:
    """The per-update panel(s); a diverged run is drawn up to its divergence and marked."""
    # The longest (noisiest) runs first, so the smoother ones stay visible on top.
    order = sorted(range(len(runs)), key=lambda i: -len(runs[i].step))
    for rank, i in enumerate(order):
        run, ax = runs[i], step_axes[i]
        x = np.arange(1, len(run.step) + 1, dtype=np.float64)
        if step_axis == "epoch":
            x = x / run.steps_per_epoch
        color = colors[run.label]
        raw_alpha = 0.3 if smooth else (0.55 if len(run.step) > 500 else 0.9)
        lw = 0.5 if len(run.step) > 500 else 1.2
        label = f"{run.label} ({len(run.step)} updates{_diverged_label(run)})"
        ax.plot(x, run.step, color=color, lw=lw, alpha=raw_alpha, zorder=2 + rank,
                label=None if smooth else label)  # fmt: skip
        if smooth:
            ax.plot(x, moving_average(run.step, smooth), color=color, lw=1.5, zorder=10 + rank,
                    label=f"{run.label} (mean of {smooth}{_diverged_label(run)})")  # fmt: skip
    _limit_to_calm_runs(set(step_axes), runs, log_scale)
    for k, ax in enumerate(step_axes[: 1 if overlay else len(step_axes)]):
        ax.set_xlabel("epoch" if step_axis == "epoch" else "update")
        ax.set_ylabel(f"{metric} of the batch")
        ax.set_title("loss per update" if overlay else runs[k].label, fontsize=10)
        ax.legend(fontsize=7)
    if not overlay:
        # One y-scale for all runs, so their noise compares at a glance.
        for ax in step_axes[1:]:
            ax.sharey(step_axes[0])
    for i, run in enumerate(runs):
        if run.diverged is not None:
            x_end = run.diverged / run.steps_per_epoch if step_axis == "epoch" else run.diverged
            _mark_divergence(step_axes[i], x_end, colors[run.label])


def _limit_to_calm_runs(axes, runs, log_scale) -> None:
    """y-limits from the runs that did not diverge: an explosion to 1e25 would flatten them."""
    for ax in axes:
        if log_scale:
            ax.set_yscale("log")
    calm = [r.step[np.isfinite(r.step)] for r in runs if r.diverged is None]
    calm = np.concatenate(calm) if calm and len(calm) < len(runs) else np.array([])
    if log_scale:
        calm = calm[calm > 0]
    if calm.size == 0:  # nothing diverged (matplotlib's limits are right), or everything did
        return
    low, top = float(calm.min()), float(calm.max())
    for ax in axes:
        ax.set_ylim(*((low / 1.5, top * 3) if log_scale else (min(0.0, low), top * 1.15)))


def _mark_divergence(ax, x, color) -> None:
    """A dotted line where a run diverged, labelled, so it is not read as a finished run."""
    ax.axvline(x, color=color, ls=":", lw=1.2)
    ax.annotate("diverged", (x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                textcoords="offset points", color=color, fontsize=8)  # fmt: skip


def _draw_epochs(ax, data, colors, validation, metric, log_scale) -> None:
    from matplotlib.lines import Line2D

    any_val = False
    for run in data:
        color = colors[run.label]
        if run.train is not None:
            few = len(run.epoch_x) <= 40 or run.diverged is not None
            label = run.label + _diverged_label(run)
            ax.plot(run.epoch_x, run.train, "-", color=color, lw=1.6,
                    marker="." if few else None, label=label)  # fmt: skip
            if run.band is not None:
                ax.fill_between(run.epoch_x, *run.band, color=color, alpha=0.15, lw=0)
        if validation and run.val is not None:
            ax.plot(run.epoch_x, run.val, "--", color=color, lw=1.3)
            any_val = True
        if run.diverged is not None:
            _mark_divergence(ax, run.diverged / run.steps_per_epoch, color)
    handles, _ = ax.get_legend_handles_labels()
    if any_val:
        val_name = data[0].val_name
        handles += [
            Line2D([], [], color="0.3", ls="-", label="training"),
            Line2D([], [], color="0.3", ls="--", label=val_name),
        ]
    ax.legend(handles=handles, fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch", fontsize=10)
    if log_scale:
        ax.set_yscale("log")


def _norm_series(source):
    """({layer: grad norms}, {layer: update ratios}) from a Recorder or a History."""
    if hasattr(source, "grad_norms") and hasattr(source, "update_ratios"):
        return source.grad_norms, source.update_ratios
    step = getattr(source, "step", None)
    if isinstance(step, Mapping):
        grads = {k.split("/", 1)[1]: np.asarray(v) for k, v in step.items()
                 if k.startswith("grad_norm/")}  # fmt: skip
        ratios = {k.split("/", 1)[1]: np.asarray(v) for k, v in step.items()
                  if k.startswith("update_ratio/")}  # fmt: skip
        return grads, ratios
    raise TypeError(f"gradient_norms takes a Recorder or a History, got {type(source).__name__}")


def gradient_norms(
    source,
    *,
    kind: str = "both",
    smooth: int | None = None,
    log_scale: bool = True,
    step_axis: str = "update",
    title: str | None = None,
    figsize=None,
    path=None,
):
    """Draw each layer's gradient norm and update-to-weight ratio over training.

    Parameters
    ----------
    source : Recorder or History
        A :class:`~descend.train.Recorder` that was passed to ``fit``, or the History of that
        run (the recorder writes ``"grad_norm/<layer>"`` and ``"update_ratio/<layer>"`` into
        it).
    kind : {"both", "grad", "ratio"}, default "both"
        The gradient norms ``||dC/dtheta||``, the update-to-weight ratios
        ``||delta theta|| / ||theta||`` (with the rule-of-thumb 1e-3 marked), or both.
    smooth : int, optional
        Draw a trailing moving average over this many updates instead of the raw values.
    log_scale : bool, default True
    step_axis : {"update", "epoch"}, default "update"
        "epoch" needs a History (it knows the updates per epoch).
    title : str, optional
    figsize : (float, float), optional
    path : str or Path, optional
        Save the figure (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(60, seed=0)
    >>> rec = ds.Recorder()
    >>> h = ds.fit(ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0), X, y,
    ...            loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.3), batch_size=10,
    ...            epochs=3, callbacks=[rec], progress=False)
    >>> len(ds.viz.gradient_norms(rec).axes), len(ds.viz.gradient_norms(h, kind="grad").axes)
    (2, 1)
    """
    if kind not in ("both", "grad", "ratio"):
        raise ValueError(f"kind must be 'both', 'grad' or 'ratio', got {kind!r}")
    if step_axis not in ("update", "epoch"):
        raise ValueError(f"step_axis must be 'update' or 'epoch', got {step_axis!r}")
    grads, ratios = _norm_series(source)
    if not grads:
        raise ValueError(
            "no gradient norms recorded: pass callbacks=[ds.Recorder()] to ds.fit and give this "
            "function the recorder or the History"
        )
    spe = 1.0
    if step_axis == "epoch":
        params = getattr(source, "params", None)
        if not params or "steps_per_epoch" not in params:
            raise ValueError("step_axis='epoch' needs the run's History (it knows the epochs)")
        spe = float(params["steps_per_epoch"])
    panels = [("grad", grads), ("ratio", ratios)] if kind == "both" else (
        [("grad", grads)] if kind == "grad" else [("ratio", ratios)]
    )  # fmt: skip
    fig = new_figure(figsize or (5.5 * len(panels), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (what, series) in zip(axes, panels, strict=True):
        for i, (layer, values) in enumerate(series.items()):
            v = np.asarray(values, dtype=np.float64)
            if smooth:
                v = moving_average(np.where(np.isfinite(v), v, np.nan), smooth)
            x = np.arange(1, len(v) + 1) / spe
            ax.plot(x, v, color=PALETTE[i % len(PALETTE)], lw=0.8 if len(v) > 300 else 1.3,
                    alpha=0.85, label=f"layer {layer}")  # fmt: skip
        if what == "grad":
            ax.set_ylabel("‖dC/dθ‖ of the layer")
            ax.set_title("gradient norm per layer", fontsize=10)
        else:
            ax.axhline(1e-3, color="0.4", ls=":", lw=1, label="1e-3 (rule of thumb)")
            ax.set_ylabel("‖Δθ‖ / ‖θ‖ of the layer")
            ax.set_title("update-to-weight ratio per layer", fontsize=10)
        ax.set_xlabel("epoch" if step_axis == "epoch" else "update")
        if log_scale:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    return finish(fig, path)


def tradeoff(comparison, *, title: str | None = None, figsize=(11.0, 4.8), path=None):
    """Speed against smoothness, from :func:`descend.experiments.compare_variants`.

    Left: the full training loss after each epoch against training seconds (one line per
    variant through the median time and the mean loss over seeds, each seed's own points
    faint; log axes), with the target loss dashed. Right: each variant's loss noise (relative
    to its loss level, see :func:`descend.experiments.loss_noise`) against its time to the
    target loss (mean over seeds, bars: one standard deviation; a linear noise axis, so batch
    GD's noise of about 0 shows as 0). A variant without a point is named under the figure
    with the reason (it never reached the target, had too few updates to measure noise, or
    diverged); a note there says how noise and wall time were measured.

    Parameters
    ----------
    comparison : VariantComparison
    title : str, optional
    figsize : (float, float), default (11, 4.8)
    path : str or Path, optional
        Save the figure (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(80, seed=0)
    >>> result = ds.experiments.compare_variants(
    ...     ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0), X, y,
    ...     loss="categorical_cross_entropy", batch_sizes=["full", 1, 16], epochs=3)
    >>> len(ds.viz.tradeoff(result).axes)
    2
    """
    fig = new_figure(figsize)
    ax, ax2 = fig.subplots(1, 2)
    summary = {row["variant"]: row for row in comparison.summary()}
    missing = []
    for i, variant in enumerate(comparison.variants):
        color = PALETTE[i % len(PALETTE)]
        _speed_line(ax, comparison.runs_of(variant), variant, color)
        row = summary[variant]
        (tt, tt_sd), (noise, noise_sd) = row["time to target (s)"], row["loss noise"]
        if math.isfinite(tt) and math.isfinite(noise):
            ax2.errorbar(
                tt, noise, xerr=0 if math.isnan(tt_sd) else tt_sd,
                yerr=0 if math.isnan(noise_sd) else noise_sd, fmt="o", color=color, ms=8,
                capsize=3, label=variant,
            )  # fmt: skip
            ax2.annotate(variant, (tt, noise), textcoords="offset points",
                         xytext=(6, 6), fontsize=7)  # fmt: skip
        else:
            missing.append(f"{variant}: {comparison.why_incomplete(variant)}")
    if math.isfinite(comparison.target_loss):
        ax.axhline(comparison.target_loss, color="0.4", ls="--", lw=1, label="target loss")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("training loss (all data, after each epoch)")
    ax.set_title("speed: loss against time", fontsize=10)
    ax.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlabel("time to target loss (s)")
    ax2.set_ylabel("relative loss noise")
    ax2.set_title("trade-off: time to target against noise", fontsize=10)
    ax2.margins(0.3)
    ax2.autoscale_view()  # the margins first: a fixed bottom alone would freeze the top
    ax2.set_ylim(bottom=0)
    note = tradeoff_note(comparison)
    if missing:
        note += " No point on the right for " + "; ".join(missing) + "."
    lines = textwrap.wrap(note, width=int(figsize[0] * 17))
    fig.text(0.5, 0.0, "\n".join(lines), ha="center", va="bottom", fontsize=7.5, color="0.25")
    fig.get_layout_engine().set(rect=(0, 0.04 + 0.035 * len(lines), 1, 0.96 - 0.035 * len(lines)))
    if title:
        fig.suptitle(title, fontsize=11)
    return finish(fig, path)


def tradeoff_note(comparison) -> str:
    """One line on how the trade-off figure measures noise and time (also for the report).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> print(tradeoff_note(SimpleNamespace(seeds=[0], settings={"noise_window": 10})))
    ... # doctest: +NORMALIZE_WHITESPACE
    Noise: the spread of the per-update loss around its 10-update moving average, as a fraction
    of that average (second half of the run). Wall times: one run on a shared machine; they vary
    between repeats.
    """
    window = (comparison.settings or {}).get("noise_window", 10)
    n = len(comparison.seeds)
    times = (
        "one run on a shared machine; they vary between repeats"
        if n == 1
        else f"one run per seed ({n} seeds) on a shared machine; bars: one standard deviation"
    )
    return (
        f"Noise: the spread of the per-update loss around its {window}-update moving average, "
        f"as a fraction of that average (second half of the run). Wall times: {times}."
    )


def _speed_line(ax, runs, variant, color) -> None:
    """Loss against time for one variant: a line that only moves forward in time."""
    finished = [r for r in runs if r.diverged is None]
    for r in runs:  # each seed's own points, not joined (seeds run at different speeds)
        t, loss = r.curve["time"][1:], r.curve["loss"][1:]
        if len(runs) > 1 or r.diverged is not None:
            ax.plot(t, loss, "." if r.diverged is None else "x", color=color, alpha=0.35, ms=4)
    if finished:
        length = min(len(r.curve["time"]) for r in finished)
        # Each seed's times grow epoch by epoch, so their median does too.
        t = np.median([r.curve["time"][1:length] for r in finished], axis=0)
        loss = np.mean([r.curve["loss"][1:length] for r in finished], axis=0)
        ax.plot(t, loss, "-", marker="." if len(t) <= 40 else None, color=color, lw=1.4,
                label=variant)  # fmt: skip
    diverged = [r.diverged for r in runs if r.diverged is not None]
    if diverged:
        ax.plot([], [], "x", color=color, label=f"{variant}: diverged in {len(diverged)} of "
                f"{len(runs)} seeds")  # fmt: skip
