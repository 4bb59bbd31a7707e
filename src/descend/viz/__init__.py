"""Figures: the network, backpropagation, cost surfaces and paths, training curves, landscapes.

Every function returns a ``matplotlib.figure.Figure`` (made without pyplot: no display is
needed and no backend is changed) and takes ``path=`` to save it as PNG, SVG or PDF. matplotlib
is imported when a function is called, so ``import descend`` works without it.

=======================  =====================================================================
``network``              neurons and weights; with an input, the activations
``backprop``             dC/da on the nodes, dC/dW on the edges
``backprop_animation``   the forward pass, then the backward pass (GIF or HTML)
``surface``              a cost over two parameters, contour + 3-D, with descent paths
``surface_html``         the same 3-D view as interactive, self-contained HTML (plotly)
``history``              loss per update and per epoch, runs overlaid
``decision_boundary``    a classifier's regions on 2-D data
``gradient_norms``       per-layer gradient norms and update-to-weight ratios
``landscape``            the loss on a plane through the final weights (Li et al. 2018)
``tradeoff``             speed against smoothness of batch / mini-batch / stochastic GD
``local_minima``         all paths of the local-minima experiment, by outcome
=======================  =====================================================================
"""

from descend.experiments import _figures
from descend.viz.boundary import decision_boundary
from descend.viz.landscape import landscape
from descend.viz.network import backprop, backprop_animation, network
from descend.viz.surface import local_minima, surface, surface_html
from descend.viz.training import gradient_norms, history, tradeoff

__all__ = [
    "backprop", "backprop_animation", "decision_boundary", "gradient_norms", "history",
    "landscape", "local_minima", "network", "surface", "surface_html", "tradeoff",
]  # fmt: skip

# A result of descend.experiments draws itself through these (experiments never imports viz).
_figures.register("history", history)
_figures.register("tradeoff", tradeoff)
_figures.register("local_minima", local_minima)
