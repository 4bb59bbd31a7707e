"""The network as a drawing: neurons as nodes, weights as edges; and backpropagation on it.

A dense network of layer sizes ``[n_0, n_1, ..., n_L]`` is drawn as columns of nodes (column 0
the inputs, column L the outputs) with an edge from node i of column l to node j of column l + 1
for each weight ``W_l[i, j]`` (weights have shape (in, out)). Colour gives the sign, width and
opacity the magnitude. Wide layers show the ``max_neurons`` nodes with the largest total absolute
weight (incoming plus outgoing), and say how many are hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from descend.viz._common import NEGATIVE, POSITIVE, _check_suffix, finish, new_figure, write_text

__all__ = ["backprop", "backprop_animation", "network"]

_GREY = (0.85, 0.85, 0.85, 1.0)
_EDGE_GREY = (0.8, 0.8, 0.8, 0.35)


def _dense_layers(model) -> list:
    from descend.nn.dense import Dense
    from descend.nn.sequential import Sequential

    layers = list(model.layers) if isinstance(model, Sequential) else [model]
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    if not dense:
        raise TypeError(
            f"viz.network draws Dense layers; {type(model).__name__} has none. Build the model "
            "with ds.nn.Sequential(ds.nn.Dense(...), ...) or ds.nn.mlp([...])"
        )
    return dense


def _one_sample(x, n_features: int, name: str = "x") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n_features:
        raise ValueError(
            f"{name} must have shape ({n_features},) or (n_samples, {n_features}), got "
            f"{np.shape(x)}"
        )
    return a


def _forward(model, x: np.ndarray) -> list[np.ndarray]:
    """Each column's activations (column 0 = x), for the rows of x."""
    from descend.autodiff.tensor import Tensor, no_grad
    from descend.nn.dense import Dense
    from descend.nn.sequential import Sequential

    layers = list(model.layers) if isinstance(model, Sequential) else [model]
    a = x.astype(model.dtype or np.float64)
    acts = [np.asarray(a, dtype=np.float64)]
    with no_grad():
        for layer in layers:
            out = layer(a)
            a = out.data if isinstance(out, Tensor) else np.asarray(out)
            if isinstance(layer, Dense):
                acts.append(np.asarray(a, dtype=np.float64))
            else:
                acts[-1] = np.asarray(a, dtype=np.float64)
    return acts


class _NetworkArtist:
    """Draws the columns of nodes and the edges; the colours are set afterwards."""

    def __init__(self, ax, model, max_neurons: int, node_size: float = 260.0):
        from matplotlib.collections import LineCollection

        if isinstance(max_neurons, bool) or not isinstance(max_neurons, int) or max_neurons < 2:
            raise ValueError(f"max_neurons must be an integer >= 2, got {max_neurons!r}")
        self.ax = ax
        self.dense = _dense_layers(model)
        self.weights = [np.asarray(d.weight.data, dtype=np.float64) for d in self.dense]
        self.sizes = [self.dense[0].in_features] + [d.out_features for d in self.dense]
        n_cols = len(self.sizes)
        self.shown = []
        for c, size in enumerate(self.sizes):
            limit = max(max_neurons, 20) if c == n_cols - 1 else max_neurons
            if size <= limit:
                self.shown.append(np.arange(size))
                continue
            score = np.zeros(size)
            if c > 0:
                score += np.abs(self.weights[c - 1]).sum(axis=0)
            if c < n_cols - 1:
                score += np.abs(self.weights[c]).sum(axis=1)
            # The strongest-connected neurons, kept in their own order.
            self.shown.append(np.sort(np.argsort(-score, kind="stable")[:limit]))
        tallest = max(len(s) for s in self.shown)
        self.pos = []
        for c, idx in enumerate(self.shown):
            ys = (len(idx) - 1) / 2 - np.arange(len(idx), dtype=np.float64)
            self.pos.append((np.full(len(idx), float(c) * 1.6), ys))
        self.edges, self.edge_pairs = [], []
        for layer in range(n_cols - 1):
            (x0, y0), (x1, y1) = self.pos[layer], self.pos[layer + 1]
            ii, jj = np.meshgrid(np.arange(len(x0)), np.arange(len(x1)), indexing="ij")
            segments = np.stack(
                [np.stack([x0[ii], y0[ii]], -1), np.stack([x1[jj], y1[jj]], -1)], axis=2
            ).reshape(-1, 2, 2)
            lc = LineCollection(segments, colors=[_EDGE_GREY], linewidths=0.5, zorder=1)
            ax.add_collection(lc)
            self.edges.append(lc)
            self.edge_pairs.append(
                (self.shown[layer][ii.ravel()], self.shown[layer + 1][jj.ravel()])
            )
        self.nodes = []
        for xs, ys in self.pos:
            self.nodes.append(
                ax.scatter(xs, ys, s=node_size, c=[_GREY], edgecolors="0.25", linewidths=0.8,
                           zorder=3)
            )  # fmt: skip
        for c, size in enumerate(self.sizes):
            hidden = size - len(self.shown[c])
            if hidden:
                ax.text(self.pos[c][0][0], self.pos[c][1].min() - 0.9, f"+{hidden} more",
                        ha="center", va="top", fontsize=7, color="0.35")  # fmt: skip
        names = ["input"] + [f"layer {i}" for i in range(len(self.dense))]
        for c, name in enumerate(names):
            act = "" if c == 0 else f"\n{_activation_label(self.dense[c - 1])}"
            ax.text(self.pos[c][0][0], (tallest - 1) / 2 + 1.0, f"{name}\n({self.sizes[c]}){act}",
                    ha="center", va="bottom", fontsize=8)  # fmt: skip
        ax.set_xlim(-1.0, 1.6 * (n_cols - 1) + 1.4)
        ax.set_ylim(-(tallest - 1) / 2 - 2.2, (tallest - 1) / 2 + 2.6)
        ax.set_axis_off()
        self.value_texts: list = []
        self.column_scales: dict[int, float] = {}  # column -> largest |value| of its nodes
        self.gradients = False  # backprop colours nodes as the edges: both are derivatives

    # -- colouring ---------------------------------------------------------------------------
    def color_nodes(self, c: int, values: np.ndarray | None, diverging: bool | None = None):

        nodes = self.nodes[c]
        if values is None:
            nodes.set_facecolor([_GREY])
            return
        values = np.asarray(values, dtype=np.float64)
        scale = float(np.abs(values).max()) or 1.0
        v = values[self.shown[c]]
        if diverging is None:
            diverging = bool((values < 0).any())
        cmap = self.node_cmap(diverging)
        nodes.set_facecolor(cmap(0.5 + 0.5 * v / scale if diverging else v / scale))
        self.column_scales[c] = scale

    def node_cmap(self, diverging: bool):
        """Gradients share the edges' orange/blue; activations get colours of their own
        (grey, or purple/green when they change sign), so that orange never means both a
        high activation and a negative weight."""
        import matplotlib

        if self.gradients:
            return _signed_cmap()
        return matplotlib.colormaps["PRGn" if diverging else "Greys"]

    def scale_bar(self, diverging: bool, label: str) -> None:
        """A colour bar for the nodes (relative to each column's largest value, printed under
        the column), and each column's largest value, so the colours read as numbers."""
        import matplotlib
        from matplotlib.cm import ScalarMappable

        low = -1.0 if diverging else 0.0
        mappable = ScalarMappable(matplotlib.colors.Normalize(low, 1.0), self.node_cmap(diverging))
        bar = self.ax.figure.colorbar(mappable, ax=self.ax, shrink=0.45, pad=0.0, aspect=15)
        bar.set_label(label, fontsize=7)
        bar.ax.tick_params(labelsize=7)
        bar.set_ticks([low, 0.0, 1.0] if diverging else [0.0, 0.5, 1.0])
        for c, scale in self.column_scales.items():
            self.ax.text(self.pos[c][0][0], self.pos[c][1].min() - 1.25, f"max {scale:.2g}",
                         ha="center", va="top", fontsize=7, color="0.2")  # fmt: skip

    def color_edges(self, layer: int, values: np.ndarray | None, strength: float = 1.0):
        lc = self.edges[layer]
        if values is None:
            lc.set_color([_EDGE_GREY])
            lc.set_linewidth(0.5)
            return
        ii, jj = self.edge_pairs[layer]
        v = np.asarray(values, dtype=np.float64)[ii, jj]
        mag = np.abs(v) / (float(np.abs(v).max()) or 1.0)
        colors = np.array([_rgba(POSITIVE) if s >= 0 else _rgba(NEGATIVE) for s in v])
        colors[:, 3] = (0.15 + 0.75 * mag) * strength
        lc.set_color(colors)
        lc.set_linewidth(0.3 + 3.0 * mag)

    def label_values(self, values_by_column: list, fmt: str = "{:.2g}"):
        for t in self.value_texts:
            t.remove()
        self.value_texts = []
        for c, values in enumerate(values_by_column):
            if values is None:
                continue
            xs, ys = self.pos[c]
            for k, node in enumerate(self.shown[c]):
                self.value_texts.append(
                    self.ax.text(xs[k], ys[k] + 0.33, fmt.format(values[node]), ha="center",
                                 va="bottom", fontsize=6.5, color="0.15", zorder=4)
                )  # fmt: skip

    def label_outputs(self, probs: np.ndarray, class_names, kind: str):
        xs, ys = self.pos[-1]
        best = int(np.argmax(probs)) if kind == "p" else -1
        texts = []
        for k, node in enumerate(self.shown[-1]):
            name = class_names[node] if class_names is not None else str(node)
            text = f"{name}: {kind}={probs[node]:.2f}"
            texts.append(
                self.ax.text(xs[k] + 0.35, ys[k], text, va="center", fontsize=8,
                             fontweight="bold" if node == best else "normal")
            )  # fmt: skip
        return texts


def _edge_scale(art, layer: int, grads: np.ndarray) -> None:
    """The largest |dC/dW| of a layer, between its columns: the widest edge stands for it."""
    x = (art.pos[layer][0][0] + art.pos[layer + 1][0][0]) / 2
    y = min(art.pos[layer][1].min(), art.pos[layer + 1][1].min()) - 1.25
    art.ax.text(x, y, f"widest edge:\n|dC/dW| = {float(np.abs(grads).max()):.2g}",
                ha="center", va="top", fontsize=6.5, color="0.35")  # fmt: skip


def _signed_cmap():
    """Orange (negative) - white - blue (positive): the edges' colours, for signed node values."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("signed", [NEGATIVE, "#ffffff", POSITIVE])


def _rgba(color: str):
    import matplotlib.colors as mcolors

    return mcolors.to_rgba(color)


def _activation_label(layer) -> str:
    from descend.nn.activations import activation_name

    return activation_name(layer.activation) or "custom"


def _legend(ax, positive: str, negative: str, title: str | None = None):
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=POSITIVE, lw=2, label=positive),
        Line2D([], [], color=NEGATIVE, lw=2, label=negative),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=7, frameon=False, title=title,
              title_fontsize=7)  # fmt: skip


def _output_kind(dense) -> str:
    from descend.nn.activations import activation_name

    return "p" if activation_name(dense[-1].activation) in ("softmax", "sigmoid") else "ŷ"


def _show_image(fig, ax, x_row: np.ndarray, image_shape):
    if image_shape is None:
        return
    shape = tuple(image_shape)
    if int(np.prod(shape)) != x_row.size:
        raise ValueError(f"image_shape={shape} does not hold {x_row.size} input values")
    inset = ax.inset_axes((0.0, 0.72, 0.14, 0.24))
    inset.imshow(x_row.reshape(shape), cmap="gray_r")
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_title("input", fontsize=7)


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def network(
    model,
    x=None,
    *,
    max_neurons: int = 12,
    class_names: Sequence[str] | None = None,
    image_shape: tuple[int, int] | None = None,
    title: str | None = None,
    ax=None,
    figsize=(8.0, 5.0),
    path=None,
):
    """Draw a dense network: weights as edges, and with an input, the neurons' activations.

    Parameters
    ----------
    model : Sequential or Dense
        The network (its Dense layers are drawn; activation layers are folded into them).
    x : ndarray of shape (n_features,) or (1, n_features), optional
        One input. Nodes are then shaded by their activation (each column scaled to its
        largest absolute value; yellow to brown for non-negative columns, orange/blue when values
        change sign) and the outputs are labelled with their values (``p=`` for softmax or sigmoid
        outputs). Several rows are averaged.
    max_neurons : int, default 12
        Nodes drawn per column at most (the output column: up to 20); the rest are summarised.
    class_names : sequence of str, optional
        Names of the outputs (default: their indices).
    image_shape : (int, int), optional
        With ``x``: also show the input as an image of this shape (``(8, 8)`` for digits).
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.
    figsize : (float, float), default (8, 5)
    path : str or Path, optional
        Save the figure there (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
    >>> model = ds.nn.mlp([64, 16, 4], output_activation="softmax", seed=0)
    >>> fig = ds.viz.network(model, X[3], image_shape=(8, 8))
    >>> len(fig.axes) >= 1
    True
    """
    fig, ax = _axes(ax, figsize)
    art = _NetworkArtist(ax, model, max_neurons)
    for layer, w in enumerate(art.weights):
        art.color_edges(layer, w, strength=0.8 if x is not None else 1.0)
    if x is not None:
        xs = _one_sample(x, art.sizes[0])
        acts = [a.mean(axis=0) for a in _forward(model, xs)]
        for c, a in enumerate(acts):
            art.color_nodes(c, a)
        art.label_outputs(acts[-1], class_names, _output_kind(art.dense))
        _show_image(fig, ax, xs.mean(axis=0), image_shape)
        signed = any((a < 0).any() for a in acts)
        art.scale_bar(signed, "activation a, as a fraction of\nthe largest |a| in its column")
        default = "activations for one input; edges: weights"
    else:
        for c in range(len(art.sizes)):
            art.color_nodes(c, None)
        default = "the network: edges are weights"
    _legend(ax, "positive weight", "negative weight")
    ax.set_title(title or default, fontsize=10)
    return finish(fig, path)


def _targets_of(y, n_rows: int) -> np.ndarray:
    """The target of one sample taken the way the sample is (X[0] with y[0]): a label or value
    becomes a one-element array, a one-hot or multi-output row a (1, k) array."""
    y = np.asarray(y)
    if y.ndim == 0:
        return y.reshape(1)
    if n_rows == 1 and y.ndim == 1 and y.shape[0] > 1:
        return y.reshape(1, -1)
    return y


def _backprop_values(model, x, y, loss):
    from descend.backprop import backprop as run_backprop

    dense = _dense_layers(model)
    xs = _one_sample(x, dense[0].in_features)
    view = run_backprop(model, xs, _targets_of(y, len(xs)), loss)
    from descend.nn.dense import Dense

    records = [r for r in view.layers if isinstance(r.layer, Dense)]
    # Node values: dC/d(input of each Dense layer) for columns 0..L-1, dC/dz at the output.
    node_grads = [r.dC_da_in.sum(axis=0) for r in records]
    node_grads.append(records[-1].dC_dz.sum(axis=0))
    edge_grads = [np.asarray(r.dC_dW, dtype=np.float64) for r in records]
    acts = [a.mean(axis=0) for a in _forward(model, xs)]
    return view.cost, node_grads, edge_grads, acts


def backprop(
    model,
    x,
    y,
    loss: str | Callable = "mse",
    *,
    max_neurons: int = 12,
    annotate: bool | None = None,
    title: str | None = None,
    ax=None,
    figsize=(8.0, 5.0),
    path=None,
):
    """Draw backpropagation: dC/d(activation) on the nodes, dC/dW on the edges.

    Computed by :func:`descend.backprop` for the input ``x`` and target ``y``. Node colours
    (blue positive, orange negative, as on the edges; each column scaled to its largest
    magnitude) are the partial derivatives of the cost with respect to each layer's input
    activations, and at the output column the error ``dC/dz``. Edge colour and width give the
    sign and size of ``dC/dW``: gradient descent moves each weight against it.

    Parameters
    ----------
    model : Sequential or Dense
    x : ndarray of shape (n_features,) or (n_samples, n_features)
        One input (or a batch: node values are then summed over its rows).
    y : ndarray
        Its target(s), as ``loss`` expects them (a class label, one-hot row or value).
    loss : str or callable, default "mse"
    max_neurons : int, default 12
    annotate : bool, optional
        Write the values next to the nodes; default when no column shows more than 6 nodes.
    title : str, optional
    ax : matplotlib Axes, optional
    figsize : (float, float), default (8, 5)
    path : str or Path, optional
        Save the figure there (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0)
    >>> fig = ds.viz.backprop(model, np.array([0.5, -1.0]), np.array([1]),
    ...                       "categorical_cross_entropy")
    >>> fig.axes[0].get_title().startswith("backpropagation")
    True
    """
    cost, node_grads, edge_grads, _ = _backprop_values(model, x, y, loss)
    fig, ax = _axes(ax, figsize)
    art = _NetworkArtist(ax, model, max_neurons)
    art.gradients = True
    for c, g in enumerate(node_grads):
        art.color_nodes(c, g, diverging=True)
    for layer, g in enumerate(edge_grads):
        art.color_edges(layer, g)
        _edge_scale(art, layer, g)
    if annotate is None:
        annotate = max(len(s) for s in art.shown) <= 6
    if annotate:
        art.label_values(node_grads)
    _legend(ax, "> 0", "< 0", "sign of dC/dW (edges)\nand dC/da (nodes);\nwidth: |dC/dW|")
    art.scale_bar(True, "dC/da, as a fraction of the\nlargest |dC/da| in its column")
    ax.set_title(
        title or f"backpropagation: C = {cost:.4g}; nodes dC/da (output: dC/dz), edges dC/dW",
        fontsize=10,
    )
    return finish(fig, path)


def backprop_animation(
    model,
    x,
    y,
    loss: str | Callable = "mse",
    *,
    max_neurons: int = 12,
    interval: int = 900,
    figsize=(7.0, 4.5),
    dpi: int = 80,
    path=None,
):
    """Animate one training step: the forward pass layer by layer, then the backward pass.

    Frames: the input; each layer's activations in turn (edges: its weights); the cost and
    the output error dC/dz; then from the last layer back to the first, dC/dW on its edges and
    dC/da on the nodes that feed it.

    Parameters
    ----------
    model : Sequential or Dense
    x : ndarray of shape (n_features,) or (n_samples, n_features)
    y : ndarray
    loss : str or callable, default "mse"
    max_neurons : int, default 12
    interval : int, default 900
        Milliseconds per frame.
    figsize : (float, float), default (7, 4.5)
    dpi : int, default 80
        Resolution of the saved frames.
    path : str or Path, optional
        Save as ``.gif`` (Pillow) or ``.html`` (a self-contained JavaScript player,
        ``Animation.to_jshtml()``).

    Returns
    -------
    matplotlib.animation.FuncAnimation
        ``anim.to_jshtml()`` gives the HTML player (in a notebook:
        ``IPython.display.HTML(anim.to_jshtml())``).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0)
    >>> anim = ds.viz.backprop_animation(model, np.array([0.5, -1.0]), np.array([1]),
    ...                                  "categorical_cross_entropy")
    >>> anim.n_frames        # input, 2 layers forward, the error, 2 layers backward
    6
    """
    from matplotlib.animation import FuncAnimation

    cost, node_grads, edge_grads, acts = _backprop_values(model, x, y, loss)
    fig = new_figure(figsize, dpi=dpi)
    ax = fig.add_subplot()
    art = _NetworkArtist(ax, model, max_neurons)
    n_layers = len(art.dense)
    kind = _output_kind(art.dense)
    title = ax.set_title("", fontsize=10)
    _legend(ax, "> 0", "< 0", "sign")

    frames = []
    frames.append(("forward: the input x", {0: ("a", 0)}, {}))
    for k in range(1, n_layers + 1):
        act = _activation_label(art.dense[k - 1])
        nodes = {c: ("a", c) for c in range(k + 1)}
        edges = {layer: ("w", layer) for layer in range(k)}
        frames.append((f"forward: layer {k - 1}, a = {act}(a_prev W + b)", nodes, edges))
    frames.append(
        (f"cost C = {cost:.4g}; the output's error dC/dz", {n_layers: ("g", n_layers)}, {})
    )
    for k in range(n_layers, 0, -1):
        nodes = {c: ("g", c) for c in range(k - 1, n_layers + 1)}
        edges = {layer: ("dw", layer) for layer in range(k - 1, n_layers)}
        frames.append((f"backward: dC/dW of layer {k - 1}, dC/da of its inputs", nodes, edges))
    out_texts: list = []

    def draw(i):
        nonlocal out_texts
        text, nodes, edges = frames[i]
        for t in out_texts:
            t.remove()
        out_texts = []
        for c in range(n_layers + 1):
            what = nodes.get(c)
            if what is None:
                art.color_nodes(c, None)
            elif what[0] == "a":
                art.color_nodes(c, acts[c])
            else:
                art.color_nodes(c, node_grads[c], diverging=True)
        for layer in range(n_layers):
            what = edges.get(layer)
            if what is None:
                art.color_edges(layer, None)
            elif what[0] == "w":
                art.color_edges(layer, art.weights[layer], strength=0.8)
            else:
                art.color_edges(layer, edge_grads[layer])
        if n_layers in nodes and nodes[n_layers][0] == "a":
            out_texts = art.label_outputs(acts[-1], None, kind)
        title.set_text(text)
        return []

    anim = FuncAnimation(fig, draw, frames=len(frames), interval=interval, repeat_delay=1500)
    anim.n_frames = len(frames)
    draw(0)
    # The first frame is drawn above; without this flag matplotlib warns, when an animation
    # that was only inspected (not saved or shown) is garbage-collected, that nothing rendered.
    anim._draw_was_started = True
    if path is not None:
        _save_animation(anim, path, interval, dpi)
    return anim


def _save_animation(anim, path, interval: int, dpi: int) -> Path:
    from descend.viz._common import _atomic

    suffix = _check_suffix(path, ("gif", "html"))
    if suffix == "html":
        return write_text(path, anim.to_jshtml())
    try:
        import PIL  # noqa: F401
    except ImportError as exc:  # pragma: no cover - matplotlib depends on Pillow
        raise ImportError("saving a GIF needs Pillow: pip install pillow") from exc
    from matplotlib.animation import PillowWriter

    writer = PillowWriter(fps=max(1000.0 / interval, 0.1))
    return _atomic(path, lambda tmp: anim.save(tmp, writer=writer, dpi=dpi))
